"""mail's retention policies (core/retention.py runs them): sync runs and the settled outbox.

- Sync runs older than MAILHELPER_RETENTION_SYNC_RUNS_DAYS go, except the newest run of each account
  (whatever its age: the account list links it as the last sync), runs still queued or running (the
  sweep in sync.py settles those first), and failed or interrupted runs of the last
  KEEP_FAILED_DAYS days, which are what an operator reads when a mailbox stops syncing.
- Outbox rows (PendingAction) that are done, written back or given up, for longer than
  MAILHELPER_RETENTION_OUTBOX_DAYS. A pending row is the outbox's work still to do and never goes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef, Q, QuerySet

from core import retention

from .models import PendingAction, SyncRun

KEEP_FAILED_DAYS = 30
_FAILED = [SyncRun.Status.FAILED, SyncRun.Status.INTERRUPTED]
_ACTIVE = [SyncRun.Status.QUEUED, SyncRun.Status.RUNNING]


def old_sync_runs(cutoff: datetime, now: datetime) -> QuerySet[SyncRun]:
    # A later run of the same account (by queued_at, then id): only runs that have one may go.
    later = SyncRun.objects.filter(account_id=OuterRef("account_id")).filter(
        Q(queued_at__gt=OuterRef("queued_at")) | Q(queued_at=OuterRef("queued_at"), pk__gt=OuterRef("pk"))
    )
    recent_failure = Q(status__in=_FAILED, queued_at__gte=now - timedelta(days=KEEP_FAILED_DAYS))
    return (
        SyncRun.objects.filter(queued_at__lt=cutoff)
        .exclude(status__in=_ACTIVE)
        .exclude(recent_failure)
        .filter(Exists(later))
    )


def settled_outbox(cutoff: datetime, now: datetime) -> QuerySet[PendingAction]:
    return PendingAction.objects.filter(done_at__isnull=False, done_at__lt=cutoff)


def register() -> None:
    retention.register("sync runs", "MAILHELPER_RETENTION_SYNC_RUNS_DAYS", old_sync_runs)
    retention.register("outbox", "MAILHELPER_RETENTION_OUTBOX_DAYS", settled_outbox)
