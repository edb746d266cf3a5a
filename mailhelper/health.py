"""Liveness of the services the product needs: PostgreSQL, Redis and at least one Celery worker.

Each check uses short timeouts and its own connection, so /healthz answers quickly even when a
service is down. Error details are reduced to the exception type: connection strings can hold
passwords and must not leak into a public endpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connection


def check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {}


def check_redis() -> dict:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    finally:
        client.close()
    return {}


def ping_workers(timeout: float = 0.5) -> list[str]:
    """Host names of the Celery workers that answer within `timeout`; raises when the broker does not."""
    from mailhelper.celery import app

    with app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=1)
        replies = app.control.ping(timeout=timeout, connection=conn)
    return sorted(name for reply in replies for name in reply)


def check_celery() -> dict:
    workers = ping_workers()
    if not workers:
        raise RuntimeError("no worker answered")
    return {"workers": len(workers)}


CHECKS: dict[str, Callable[[], dict]] = {
    "database": check_database,
    "redis": check_redis,
    "celery": check_celery,
}


def run_checks() -> tuple[bool, dict[str, dict]]:
    results: dict[str, dict] = {}
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            detail = {"ok": True, **check()}
        except Exception as exc:  # noqa: BLE001 - a failed check is a result, not a crash
            detail = {"ok": False, "error": type(exc).__name__}
        detail["ms"] = round((time.monotonic() - started) * 1000, 1)
        results[name] = detail
    return all(r["ok"] for r in results.values()), results
