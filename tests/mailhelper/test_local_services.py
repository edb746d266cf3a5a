"""`make up` on a machine where PostgreSQL and Redis are installed but not running (manage.py local_services).

Each test points the URLs at free loopback ports, where nothing answers, so the start, reuse, stop and
error paths run for real on this machine without touching the PostgreSQL and Redis the suite uses.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest
import redis

from mailhelper.local_services import answers, endpoint
from tests.plugins.mailservers import free_port

ROOT = Path(__file__).resolve().parents[2]
SYNC_KEY = "dGVzdHMtb25seS1zeW5jLWtleS0zMi1ieXRlcyEhISE="


@pytest.fixture
def tmp_path(tmp_path_factory):
    """Run as root, the servers run as the `postgres` user, who cannot enter pytest's 0700 directories."""
    path = Path(tempfile.mkdtemp(prefix="mailhelper-up-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _environment(tmp_path: Path, database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "mailhelper.settings",
        "MAILHELPER_ENV_FILE": str(tmp_path / "absent.env"),
        "DEBUG": "1",
        "MAILHELPER_SYNC_KEY": SYNC_KEY,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "MAILHELPER_LOCAL_SERVICES_DIR": str(tmp_path / "var"),
        **extra,
    }


def _local_services(environment: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "local_services", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture
def free_urls():
    pg_port, redis_port = free_port(), free_port()
    return f"postgres://postgres@127.0.0.1:{pg_port}/mailhelper_up", f"redis://127.0.0.1:{redis_port}/0"


def test_ensure_starts_loopback_servers_reuses_them_and_stop_stops_only_them(tmp_path, free_urls):
    database_url, redis_url = free_urls
    pg, cache = endpoint("postgresql", database_url), endpoint("redis", redis_url)
    environment = _environment(tmp_path, database_url, redis_url)
    try:
        first = _local_services(environment, "ensure")
        assert first.returncode == 0, first.stderr
        assert "postgresql at 127.0.0.1" in first.stdout and "starting a project-local server" in first.stdout

        with psycopg.connect(host="127.0.0.1", port=pg.port, user="postgres", dbname="postgres") as conn:
            assert conn.execute("SHOW listen_addresses").fetchone()[0] == "127.0.0.1"
        client = redis.Redis(host="127.0.0.1", port=cache.port)
        assert client.ping() and client.config_get("bind")["bind"] == "127.0.0.1"

        second = _local_services(environment, "ensure")
        assert second.returncode == 0, second.stderr
        assert second.stdout.count("answering, using it") == 2 and "starting" not in second.stdout
        assert set(json.loads((tmp_path / "var" / "local-services.json").read_text())) == {
            f"postgresql:{pg.port}",
            f"redis:{cache.port}",
        }
    finally:
        stopped = _local_services(environment, "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not answers(pg) and not answers(cache)
    assert not (tmp_path / "var" / "local-services.json").exists()


def test_missing_postgresql_names_what_to_install(tmp_path, free_urls):
    database_url, redis_url = free_urls
    empty = tmp_path / "bin"
    empty.mkdir()
    environment = _environment(tmp_path, database_url, redis_url, PATH=str(empty))

    result = _local_services(environment, "ensure", "--pg-bin-glob", str(tmp_path / "nowhere" / "*"))

    assert result.returncode == 1
    assert "postgresql is not installed: install PostgreSQL (Debian/Ubuntu: apt-get install postgresql" in result.stderr
    assert "docker compose -f deploy/compose.yml up -d postgres redis" in result.stderr


def test_missing_redis_names_what_to_install(tmp_path, free_urls):
    _, redis_url = free_urls
    empty = tmp_path / "bin"
    empty.mkdir()
    # The suite's own PostgreSQL answers, so only Redis has to be started, and cannot be.
    environment = _environment(tmp_path, "postgres://postgres@127.0.0.1:5432/postgres", redis_url, PATH=str(empty))

    result = _local_services(environment, "ensure")

    assert result.returncode == 1
    assert "postgresql at 127.0.0.1:5432: answering, using it" in result.stdout
    assert "redis is not installed: install Redis (Debian/Ubuntu: apt-get install redis-server" in result.stderr


def test_a_remote_url_that_does_not_answer_is_an_error_not_a_local_start(tmp_path, free_urls):
    _, redis_url = free_urls
    environment = _environment(tmp_path, "postgres://postgres:s3cret@192.0.2.1:5432/mailhelper", redis_url)

    result = _local_services(environment, "ensure")

    assert result.returncode == 1
    assert "nothing answers at postgresql at 192.0.2.1:5432" in result.stderr
    assert "s3cret" not in result.stdout + result.stderr
    assert not (tmp_path / "var" / "local-services.json").exists()


@pytest.mark.slow
@pytest.mark.skipif(not (ROOT / ".venv").exists(), reason="the Procfile runs .venv/bin/* (a worktree has none)")
def test_make_up_serves_the_product_and_ctrl_c_stops_the_local_servers(tmp_path, free_urls):
    database_url, redis_url = free_urls
    web_port = free_port()
    environment = _environment(
        tmp_path, database_url, redis_url, PORT=str(web_port), CELERY_WORKER_CONCURRENCY="1", PY=sys.executable
    )
    process = subprocess.Popen(
        ["bash", "scripts/up.sh"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 150
        status = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/healthz", timeout=5) as response:
                    status = response.status
                    break
            except OSError:
                time.sleep(1)
        assert status == 200, f"no /healthz within the deadline; up.sh exited {process.poll()}"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
        output, _ = process.communicate(timeout=90)
        print(output)
    assert f"Mailhelper is starting at http://127.0.0.1:{web_port}/" in output
    assert "stopping the project-local postgresql" in output and "stopping the project-local redis" in output
    assert not answers(endpoint("postgresql", database_url)) and not answers(endpoint("redis", redis_url))
