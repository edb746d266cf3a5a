"""Project-local PostgreSQL and Redis for `make up` on a machine where they are installed but not running.

Why: a newcomer's first command should work without knowing how their distribution starts services. When
nothing answers on the configured loopback URL, the server is started from its own binaries into a
git-ignored directory (``var/``), bound to 127.0.0.1 only, and stopped again with the rest of `make up`.
A URL pointing elsewhere is never "fixed" by starting something locally: that is a configuration error.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# Where distributions keep PostgreSQL's server binaries off the PATH (Debian/Ubuntu, RHEL's PGDG packages).
DEFAULT_PG_BIN_GLOB = "/usr/lib/postgresql/*/bin:/usr/pgsql-*/bin"
INSTALL_HINT = {
    "postgresql": "install PostgreSQL (Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql)",
    "redis": "install Redis (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis)",
}
COMPOSE_HINT = "or start both with: docker compose -f deploy/compose.yml up -d postgres redis"


class LocalServiceError(Exception):
    """What to do, in one sentence for the person at the terminal (no URL passwords)."""


@dataclass(frozen=True)
class Endpoint:
    kind: str  # "postgresql" or "redis"
    host: str
    port: int
    user: str = ""

    @property
    def label(self) -> str:
        return f"{self.kind} at {self.host}:{self.port}"


def endpoint(kind: str, url: str) -> Endpoint:
    parts = urlsplit(url)
    default_port = 5432 if kind == "postgresql" else 6379
    return Endpoint(kind, parts.hostname or "127.0.0.1", parts.port or default_port, parts.username or "postgres")


def answers(point: Endpoint, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((point.host, point.port), timeout=timeout):
            return True
    except OSError:
        return False


def _find(binary: str, search: str) -> str | None:
    found = shutil.which(binary)
    if found:
        return found
    candidates = [path for pattern in search.split(":") for path in glob.glob(os.path.join(pattern, binary))]
    # Highest version first: /usr/lib/postgresql/17/bin before .../15/bin.
    candidates.sort(key=lambda path: [int(p) if p.isdigit() else 0 for p in Path(path).parts], reverse=True)
    return candidates[0] if candidates else None


class LocalServices:
    """Starts what does not answer, remembers what it started (``var/local-services.json``), stops only that."""

    def __init__(self, directory: Path, pg_bin_glob: str = DEFAULT_PG_BIN_GLOB) -> None:
        self.directory = directory
        self.pg_bin_glob = pg_bin_glob
        self.state_file = directory / "local-services.json"

    def _started(self) -> dict[str, dict]:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def _remember(self, started: dict[str, dict]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(started, indent=2))

    def ensure(self, points: list[Endpoint], say=print) -> list[Endpoint]:
        """Start each endpoint that does not answer; returns those started. Raises LocalServiceError."""
        started_now = []
        started = self._started()
        for point in points:
            if answers(point):
                say(f"{point.label}: answering, using it")
                continue
            if point.host not in LOOPBACK:
                raise LocalServiceError(
                    f"nothing answers at {point.label}; start it there or point the URL at a local server"
                )
            say(f"{point.label}: nothing answers, starting a project-local server in {self.directory}/")
            started[f"{point.kind}:{point.port}"] = self._start(point)
            self._remember(started)
            started_now.append(point)
        return started_now

    def stop(self, say=print) -> int:
        """Stop every server this directory's `ensure` started; returns how many."""
        started = self._started()
        for record in started.values():
            say(f"stopping the project-local {record['kind']} on port {record['port']}")
            if record["kind"] == "postgresql":
                self._run_as(record["owner"], [record["pg_ctl"], "-D", record["data"], "-m", "fast", "-w", "stop"])
            else:
                subprocess.run(  # noqa: S603 (our own state file, written by ensure)
                    [record["cli"], "-h", "127.0.0.1", "-p", str(record["port"]), "shutdown"],
                    capture_output=True,
                    timeout=30,
                )
        if started:
            self.state_file.unlink(missing_ok=True)
        return len(started)

    # --- starting ---------------------------------------------------------------------------------

    def _start(self, point: Endpoint) -> dict:
        return self._start_postgres(point) if point.kind == "postgresql" else self._start_redis(point)

    def _missing(self, kind: str) -> LocalServiceError:
        return LocalServiceError(f"{kind} is not installed: {INSTALL_HINT[kind]}, {COMPOSE_HINT}")

    def _owner(self) -> str:
        """PostgreSQL refuses to run as root: as root, the cluster belongs to the `postgres` system user."""
        if os.geteuid() != 0:
            return ""
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            raise LocalServiceError(
                "running as root, PostgreSQL needs a system user named postgres; run `make up` as a normal user"
            ) from None
        return "postgres"

    def _run_as(self, owner: str, command: list[str]) -> subprocess.CompletedProcess:
        if owner:
            command = ["runuser", "-u", owner, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)  # noqa: S603 (no user input)

    def _start_postgres(self, point: Endpoint) -> dict:
        initdb, pg_ctl = _find("initdb", self.pg_bin_glob), _find("pg_ctl", self.pg_bin_glob)
        if not initdb or not pg_ctl:
            raise self._missing("postgresql")
        owner = self._owner()
        data = self.directory / f"postgres-{point.port}"
        sockets = self.directory / "sockets"
        sockets.mkdir(parents=True, exist_ok=True)
        if owner:
            shutil.chown(sockets, owner)
        if not (data / "PG_VERSION").exists():
            data.mkdir(parents=True, exist_ok=True)
            if owner:
                shutil.chown(data, owner)
                if self._run_as(owner, ["test", "-w", str(data)]).returncode:
                    raise LocalServiceError(
                        f"the {owner} system user cannot reach {data} (a parent directory is closed to it); "
                        "open the parents (chmod o+x) or set MAILHELPER_LOCAL_SERVICES_DIR elsewhere"
                    )
            # trust on loopback only (the server listens nowhere else), like the README's services.
            result = self._run_as(
                owner, [initdb, "-D", str(data), "-U", point.user, "--auth=trust", "-E", "UTF8", "--no-instructions"]
            )
            if result.returncode:
                raise LocalServiceError(f"initdb failed: {result.stderr.strip()[-300:]}")
        options = f"-p {point.port} -c listen_addresses=127.0.0.1 -k {sockets}"
        log = self.directory / f"postgres-{point.port}.log"
        if owner and not log.exists():
            log.touch()
            shutil.chown(log, owner)
        result = self._run_as(owner, [pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "start"])
        if result.returncode:
            raise LocalServiceError(f"PostgreSQL did not start (see {log}): {result.stderr.strip()[-300:]}")
        return {"kind": "postgresql", "port": point.port, "pg_ctl": pg_ctl, "data": str(data), "owner": owner}

    def _start_redis(self, point: Endpoint) -> dict:
        server, cli = _find("redis-server", ""), _find("redis-cli", "")
        if not server or not cli:
            raise self._missing("redis")
        data = self.directory / f"redis-{point.port}"
        data.mkdir(parents=True, exist_ok=True)
        # appendonly: queued tasks survive a restart of `make up` (the legacy system lost jobs in memory).
        options = ["--port", str(point.port), "--bind", "127.0.0.1", "--daemonize", "yes", "--dir", str(data)]
        options += ["--appendonly", "yes", "--save", "", "--logfile", str(data / "redis.log")]
        # Binary from PATH, arguments ours: no user input reaches the command line.
        result = subprocess.run([server, *options], capture_output=True, text=True, timeout=30)  # noqa: S603
        if result.returncode:
            raise LocalServiceError(f"Redis did not start: {(result.stdout + result.stderr).strip()[-300:]}")
        for _ in range(50):
            if answers(point, timeout=0.2):
                break
            time.sleep(0.1)
        else:
            raise LocalServiceError(f"Redis did not answer on port {point.port} (see {data / 'redis.log'})")
        return {"kind": "redis", "port": point.port, "cli": cli}
