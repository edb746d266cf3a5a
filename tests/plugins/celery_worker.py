"""A real Celery worker in a subprocess, on the test database and the test broker.

A subprocess (not an in-process thread) so that tests can kill it like a crashed machine would.
Tests that use it need `transactional_db`: the worker only sees committed rows.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class WorkerProcess:
    process: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _die_with_parent() -> None:
    """Linux: SIGTERM the worker if the test run dies, so no orphan keeps eating the test queue."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def service_env() -> dict[str, str]:
    """Environment for a Celery process (worker or beat) working on the test database and broker."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": _database_url(),
        "PYTHONUNBUFFERED": "1",
    }


def _database_url() -> str:
    db = settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def start_worker(
    log_path: Path,
    concurrency: int = 2,
    extra_args: tuple[str, ...] = (),
    env_overrides: dict[str, str] | None = None,
    hostname: str = "",
    nice: int = 0,
    pool: str = "prefork",
) -> WorkerProcess:
    """A worker subprocess; `nice` lowers its CPU priority as deploy/systemd does (Nice=10); `pool`
    "threads" is how deploy/ runs the sync queue."""
    env = {**service_env(), **(env_overrides or {})}
    cmd = [
        sys.executable, "-m", "celery", "-A", "mailhelper", "worker",
        "--loglevel", "INFO", "--concurrency", str(concurrency), "--pool", pool,
        "--without-gossip", "--without-mingle", "-O", "fair", "--hostname", hostname or f"test-{os.getpid()}@%h",
        *extra_args,
    ]  # fmt: skip
    log = log_path.open("ab")
    process = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=lambda: (_die_with_parent(), os.nice(nice)),  # noqa: PLW1509 - test helper, no threads yet
    )
    worker = WorkerProcess(process, log_path)
    _wait_until_ready(worker, hostname)
    return worker


def _wait_until_ready(worker: WorkerProcess, hostname: str = "", timeout: float = 30.0) -> None:
    from mailhelper.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.process.poll() is not None:
            raise RuntimeError(f"celery worker exited with {worker.process.returncode}:\n{worker.log_tail()}")
        replies = app.control.ping(timeout=0.5, destination=[hostname] if hostname else None)
        if replies:
            return
    stop_worker(worker)
    raise RuntimeError(f"celery worker did not answer within {timeout}s:\n{worker.log_tail()}")


def stop_worker(worker: WorkerProcess, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
    if worker.process.poll() is not None:
        return
    os.killpg(worker.process.pid, sig)
    try:
        worker.process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(worker.process.pid, signal.SIGKILL)
        worker.process.wait(5)


def wait_until_worker_idle(timeout: float = 30.0) -> None:
    """Wait until the Celery worker on the test broker has nothing running, reserved or queued.

    Returns at once when no worker answers (nobody would run queued tasks anyway).
    """
    from mailhelper.celery import app

    deadline = time.monotonic() + timeout
    while True:
        inspect = app.control.inspect(timeout=1.0, limit=1)  # one worker per test session; answers in ms
        active = inspect.active()
        if active is None:
            return
        busy = any(active.values()) or any((inspect.reserved() or {}).values())
        with app.connection_for_read() as connection:  # the Redis broker keeps a queue as a list
            client = connection.default_channel.client
            queued = sum(client.llen(queue.name) for queue in app.conf.task_queues)
        if not busy and not queued:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the celery worker was still busy {timeout} s after the test: {active}")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[WorkerProcess]:
    """One worker for the session; tests that kill workers start their own with start_worker()."""
    from mailhelper.celery import app

    app.control.purge()  # leftovers of an interrupted earlier run must not execute here
    worker = start_worker(tmp_path_factory.mktemp("celery") / "worker.log")
    yield worker
    stop_worker(worker)


@pytest.fixture
def celery_worker(celery_worker_process: WorkerProcess) -> Iterator[WorkerProcess]:
    """The session's worker, left idle after the test.

    Tasks a test started (a sync chains analysis, a page queues a write-back) keep writing after
    the test body ends; flushing the database under them deadlocks. This fixture is torn down
    before the database fixtures, so it waits for the worker first.
    """
    yield celery_worker_process
    wait_until_worker_idle()


# ---- Workers on a broker of their own ------------------------------------------------------------


@contextlib.contextmanager
def private_redis(port: int) -> Iterator[Callable[[], None]]:
    """A redis-server of the test's own (the machine's shared Redis must never be restarted), so that
    its workers cannot take the session worker's tasks nor it theirs.

    Yields a function that kills and restarts it on the same port without persistence: the queue,
    the unacked hash and the cache are all gone, as after a crash of an in-memory Redis.
    """
    state: dict[str, subprocess.Popen] = {}

    def start() -> None:
        state["p"] = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait(lambda: _redis_pings(port), 10, "redis-server to accept connections")

    def restart() -> None:
        state["p"].kill()
        state["p"].wait(10)
        start()

    start()
    try:
        yield restart
    finally:
        state["p"].kill()
        state["p"].wait(10)


def start_private_worker(
    log_path: Path,
    env: dict[str, str],
    queues: list[str],
    hostname: str,
    cwd: Path = ROOT,
    pool: str = "prefork",
    loglevel: str = "INFO",
) -> WorkerProcess:
    """A worker on a private broker (env's CELERY_BROKER_URL), consuming only `queues`.

    Readiness is read from its log: it answers no ping on the shared broker. `cwd` other than the
    checkout (with PYTHONPATH in env) shows that a worker needs no file of another's. `pool`
    "threads" is how deploy/ runs the sync queue (its syncs may start parser processes).
    """
    log = log_path.open("ab")
    cmd = [
        sys.executable, "-m", "celery", "-A", "mailhelper", "worker", "--loglevel", loglevel, "--concurrency", "1",
        "--pool", pool, "--without-gossip", "--without-mingle", "-Q", ",".join(queues), "--hostname", hostname,
    ]  # fmt: skip
    process = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent,  # noqa: PLW1509 - no orphan worker if the test run dies
    )
    worker = WorkerProcess(process, log_path)
    try:
        _wait(lambda: process.poll() is not None or " ready." in log_path.read_text(errors="replace"), 30, "ready")
    except AssertionError:
        stop_worker(worker)
        raise
    if process.poll() is not None:
        raise RuntimeError(f"worker exited:\n{worker.log_tail()}")
    return worker


def _redis_pings(port: int) -> bool:
    import redis

    try:
        return bool(redis.Redis(host="127.0.0.1", port=port, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False


def _wait(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)
