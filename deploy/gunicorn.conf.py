"""Gunicorn configuration for Mailhelper.

    gunicorn -c deploy/gunicorn.conf.py mailhelper.wsgi:application

Every knob reads an environment variable so that the systemd unit (EnvironmentFile=/etc/mailhelper/env)
and compose (env_file: .env) share this one file; deploy/env.example documents them. Gunicorn sits behind
nginx (deploy/nginx.conf), which terminates TLS and buffers request bodies, so slow clients never hold a
gunicorn thread.
"""

from __future__ import annotations

import os


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def _cpu_count() -> int:
    # CPUs this process may run on (respects taskset/cpuset), not every CPU of the host.
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# --- Application and socket ----------------------------------------------------------------------
wsgi_app = "mailhelper.wsgi:application"  # lets `gunicorn -c deploy/gunicorn.conf.py` run on its own
proc_name = "mailhelper-web"
# Loopback only by default: nginx is the sole client, and the app trusts nginx's X-Real-IP header for
# rate limiting (RATELIMIT_IP_META_KEY), so the port must not be reachable from anywhere else.
# GUNICORN_BIND wins; else PORT (as `make up PORT=...` and the Procfile use it), still on loopback.
_default_bind = f"127.0.0.1:{os.environ.get('PORT', '').strip() or '8000'}"
bind = [b.strip() for b in (os.environ.get("GUNICORN_BIND", "").strip() or _default_bind).split(",") if b.strip()]

# --- Workers ---------------------------------------------------------------------------------------
# gthread: a few threads per process cover requests that wait on IMAP/SMTP or the AI backend without
# multiplying memory. The cap keeps big hosts from spawning dozens of workers: every thread can hold a
# PostgreSQL connection (CONN_MAX_AGE=60), so workers x threads must fit PostgreSQL's max_connections
# next to the Celery workers, and every concurrent login runs Argon2id with MAILHELPER_KDF_MEMORY_KIB.
workers = _env_int("WEB_CONCURRENCY", min(2 * _cpu_count() + 1, 8))
worker_class = "gthread"
threads = _env_int("GUNICORN_THREADS", 4)
# Not preloaded: each worker imports the app itself, so `systemctl reload` (HUP) picks up new code and
# no connection opened during import is shared across forks. A bad config (e.g. a missing sync key)
# still stops gunicorn at start: a worker that fails to boot makes the arbiter exit.
preload_app = False

# --- Timeouts --------------------------------------------------------------------------------------
timeout = _env_int("GUNICORN_TIMEOUT", 60)  # a request running longer gets its worker killed
graceful_timeout = _env_int("GUNICORN_GRACEFUL_TIMEOUT", 30)  # stop/restart: time to finish requests
keepalive = 5  # nginx opens one connection per request (no upstream keepalive), so this rarely matters

# Recycle workers now and then to bound slow memory growth; jitter avoids all of them restarting at once.
max_requests = _env_int("GUNICORN_MAX_REQUESTS", 1000)
max_requests_jitter = max_requests // 10

# Worker heartbeat files on tmpfs: a disk-backed /tmp can stall heartbeats and get workers killed.
# (Only gunicorn's own mkstemp() heartbeat files go there, hence the noqa.)
_SHM = "/dev/shm"  # noqa: S108
worker_tmp_dir = _SHM if os.path.isdir(_SHM) else None

# --- Proxy -----------------------------------------------------------------------------------------
# Trust X-Forwarded-Proto only from these peers (gunicorn also reads FORWARDED_ALLOW_IPS by default;
# it is spelled out here for the reader). CIDRs are accepted, e.g. for a Docker bridge network.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# Only the header nginx sets; gunicorn's default also honours X-Forwarded-Protocol and X-Forwarded-Ssl.
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}

# --- Logging ---------------------------------------------------------------------------------------
# Both logs go to stdout/stderr: journald under systemd, `docker compose logs` under compose.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").strip().lower() or "info"
# Path only (%(U)s), never the query string (%(r)s would include it): search terms and other query
# parameters can carry mail content. No referer or user agent either (the referer holds a full URL).
# %(h)s is nginx's address; nginx's own access log has the client address.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s" %(s)s %(b)s %(L)s'

# --- Misc ------------------------------------------------------------------------------------------
# Gunicorn >= 25 opens a runtime control socket under $XDG_RUNTIME_DIR or $HOME; the service user has
# neither a writable home nor a need for it (systemctl reload/restart do the job).
control_socket_disable = True
