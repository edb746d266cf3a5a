"""Retention: rows that are only history are deleted once they are older than their age setting.

Contract:
- A policy is a name, the setting that holds its age in days (0 keeps everything), and a factory
  `old(cutoff, now) -> QuerySet` of the rows past it (`cutoff` = now - age). The factory says which old
  rows still matter (mail keeps the newest sync run of each account and recent failures): whatever it
  returns is deleted. Apps register their own policies (`register`, from their AppConfig.ready()),
  since core imports no app; core registers its own Job rows and Celery's task results.
- `prune()` deletes in batches of BATCH_SIZE ids: each batch picks the ids (a sliced
  `values_list("pk")` of the factory's queryset, run again for every batch) and deletes `pk__in`
  them in a transaction of its own. No statement holds locks on more than one batch of rows, nothing
  waits for the whole purge, and a purge that is stopped half-way has committed what it did; the next
  one carries on. Deleting goes through the ORM, so cascades to dependent rows happen as elsewhere.
- `prune(dry_run=True)` counts what would go and deletes nothing. Both return {policy name: rows}.
- The daily beat row "core: prune old rows" (core/migrations/0004) runs the task `core.prune`;
  `manage.py prune [--dry-run]` does the same by hand.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.apps import apps
from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

BATCH_SIZE = 5_000

OldRows = Callable[[datetime, datetime], QuerySet]
# Told of each batch deleted: (policy name, rows, seconds); the benchmark measures with it.
BatchObserver = Callable[[str, int, float], None]


@dataclass(frozen=True)
class Policy:
    name: str
    days_setting: str
    old: OldRows

    @property
    def days(self) -> int:
        return getattr(settings, self.days_setting)


_policies: dict[str, Policy] = {}


def register(name: str, days_setting: str, old: OldRows) -> Policy:
    """Add (or, under the same name, replace) a policy; call it from an AppConfig.ready()."""
    policy = Policy(name, days_setting, old)
    _policies[name] = policy
    return policy


def policies() -> list[Policy]:
    """The registered policies in the order they were registered (the order prune() runs them)."""
    return list(_policies.values())


def prune(
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    batch_size: int = BATCH_SIZE,
    on_batch: BatchObserver | None = None,
) -> dict[str, int]:
    """Delete (or with `dry_run` count) every policy's old rows; {policy name: rows}."""
    now = now or timezone.now()
    counts = {}
    for policy in policies():
        if policy.days <= 0:
            counts[policy.name] = 0
            continue
        cutoff = now - timedelta(days=policy.days)
        if dry_run:
            counts[policy.name] = policy.old(cutoff, now).count()
        else:
            counts[policy.name] = _delete_in_batches(policy, cutoff, now, batch_size, on_batch)
    return counts


def _delete_in_batches(
    policy: Policy, cutoff: datetime, now: datetime, batch_size: int, on_batch: BatchObserver | None
) -> int:
    total = 0
    while True:
        started = time.perf_counter()
        with transaction.atomic():
            queryset = policy.old(cutoff, now)
            ids = list(queryset.order_by().values_list("pk", flat=True)[:batch_size])
            if not ids:
                return total
            model = queryset.model
            _, per_model = model._default_manager.filter(pk__in=ids).delete()
        deleted = per_model.get(model._meta.label, 0)
        total += deleted
        if on_batch is not None:
            on_batch(policy.name, deleted, time.perf_counter() - started)


# ---- The ground floor's own policies -----------------------------------------------------------


def _finished_jobs(cutoff: datetime, now: datetime) -> QuerySet:
    from .models import Job

    return Job.objects.filter(status__in=[Job.Status.SUCCESS, Job.Status.FAILED], finished_at__lt=cutoff)


def _task_results(cutoff: datetime, now: datetime) -> QuerySet:
    from celery import states
    from django_celery_results.models import TaskResult

    return TaskResult.objects.filter(status__in=states.READY_STATES, date_done__lt=cutoff)


def register_core_policies() -> None:
    """Jobs that finished, and Celery's results of finished tasks when django-celery-results is installed.

    (Celery's own `celery.backend_cleanup` would delete all results older than a day in one
    transaction; settings.py turns it off with CELERY_RESULT_EXPIRES = None, this policy replaces it.)
    """
    register("jobs", "MAILHELPER_RETENTION_JOBS_DAYS", _finished_jobs)
    if apps.is_installed("django_celery_results"):
        register("task results", "MAILHELPER_RETENTION_TASK_RESULTS_DAYS", _task_results)
