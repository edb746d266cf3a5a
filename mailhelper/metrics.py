"""Prometheus metrics without a client library.

Counters live in a Redis hash so that every gunicorn worker process adds to the same numbers;
gauges are read from PostgreSQL when scraped. Recording never breaks a request: if Redis is down
the increment is dropped (and /healthz says why).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django_redis import get_redis_connection

log = logging.getLogger(__name__)

HTTP_COUNTER_KEY = "mailhelper:metrics:http_requests"
_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}


def _redis():
    return get_redis_connection("default")


def count_request(method: str, status: int) -> None:
    method = method if method in _METHODS else "OTHER"
    try:
        _redis().hincrby(HTTP_COUNTER_KEY, f"{method}|{status}", 1)
    except Exception:  # noqa: BLE001 - metrics must never fail a request
        log.debug("metrics increment dropped", exc_info=True)


class RequestMetricsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        count_request(request.method or "OTHER", response.status_code)
        return response


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _family(name: str, kind: str, help_text: str, samples: Iterable[tuple[dict[str, str], float]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
        lines.append(f"{name}{{{label_text}}} {value:g}" if label_text else f"{name} {value:g}")
    return lines


def _operations() -> list[str]:
    """Queue lengths and the sync lag of every enabled account, from mailhelper.operations."""
    from . import operations

    lengths = [({"queue": name}, float(n)) for name, n in operations.queue_lengths().items() if n is not None]
    lines = _family("mailhelper_queue_length", "gauge", "Tasks waiting in each Celery queue.", lengths)
    buckets, count, lag_sum = operations.lag_buckets()
    name = "mailhelper_sync_lag_seconds"
    lines += _family(
        name,
        "histogram",
        "Seconds since each enabled account's last successful sync (accounts never synced are left out).",
        [],
    )
    for bound, n in buckets.items():
        le = "+Inf" if bound == float("inf") else f"{bound:g}"
        lines.append(f'{name}_bucket{{le="{le}"}} {n}')
    lines += [f"{name}_sum {lag_sum:g}", f"{name}_count {count}"]
    return lines


def render_metrics() -> str:
    from django_celery_results.models import TaskResult

    from accounts.models import User

    lines: list[str] = []
    try:
        raw = _redis().hgetall(HTTP_COUNTER_KEY)
    except Exception:  # noqa: BLE001
        raw = {}
    http = []
    for field, value in sorted(raw.items()):
        method, _, status = field.decode().partition("|")
        http.append(({"method": method, "status": status}, float(value)))
    lines += _family("mailhelper_http_requests_total", "counter", "HTTP requests served, by method and status.", http)
    tasks = TaskResult.objects.values("status").annotate(n=Count("id")).order_by("status")
    lines += _family(
        "mailhelper_celery_tasks",
        "gauge",
        "Celery task results stored in the database, by state.",
        [({"state": row["status"]}, float(row["n"])) for row in tasks],
    )
    lines += _family("mailhelper_users", "gauge", "Registered users.", [({}, float(User.objects.count()))])
    lines += _operations()
    for provider in getattr(settings, "MAILHELPER_METRICS_PROVIDERS", []):
        lines += provider()
    return "\n".join(lines) + "\n"
