"""Due accounts' syncs found by one query, for beat to send (issue #15: 10,000 accounts).

Every account keeps its own PeriodicTask row (mail/schedules.py): operators see it in the admin,
pause it, change its interval, read its last run. What changes is who reads the rows. Celery beat's
DatabaseScheduler keeps an entry per row in memory, saves each sent entry with a SELECT and an
UPDATE, and re-reads every row whenever any row changes; at 10,000 rows that took 82 % of a core and
sent 5 % of the syncs 7-8 s late (docs/notes/push-and-beat.md). Here the database answers "which rows
are due" with one scan of a small table, and marks them sent in the same transaction.

Rows are locked with SKIP LOCKED, so two beat processes (a stand-by started by mistake, or on purpose
during a rolling deploy) split the due rows between them instead of sending each sync twice. A sync
is sent before its row's new last run commits: a crash in between sends it again at the next pass,
which the sync's advisory lock and idempotence make harmless (at least once, never lost).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Case, DateTimeField, DurationField, ExpressionWrapper, F, Min, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from .schedules import SYNC_TASK

#: Rows marked per transaction: short locks, bounded memory, however many are due at once.
BATCH = 500

#: Send one due sync: (task kwargs, PeriodicTask name) -> None. Beat passes Celery's send_task.
Sender = Callable[[dict, str], None]

_UNIT = Case(
    *(When(interval__period=p, then=Value(timedelta(**{p: 1}))) for p, _ in IntervalSchedule.PERIOD_CHOICES),
    output_field=DurationField(),
)
_INTERVAL = ExpressionWrapper(F("interval__every") * _UNIT, output_field=DurationField())
_DUE_AT = ExpressionWrapper(
    # A row never run counts from its last change, as beat's ModelEntry does: first sync one interval later.
    Coalesce("last_run_at", "date_changed") + _INTERVAL,
    output_field=DateTimeField(),
)


def dispatched_rows() -> QuerySet[PeriodicTask]:
    """The rows this module sends and beat's own scheduler leaves alone: account syncs on a plain
    interval. A row an operator gave a crontab, solar or clocked schedule stays beat's."""
    return PeriodicTask.objects.filter(
        task=SYNC_TASK,
        interval__isnull=False,
        crontab__isnull=True,
        solar__isnull=True,
        clocked__isnull=True,
        one_off=False,
    )


def _runnable(now: datetime) -> QuerySet[PeriodicTask]:
    return (
        dispatched_rows()
        .filter(enabled=True)
        .filter(Q(start_time__isnull=True) | Q(start_time__lte=now))
        .filter(Q(expires__isnull=True) | Q(expires__gt=now))
    )


def send_due(send: Sender, now: datetime | None = None) -> int:
    """Send every due account sync once and record it on its row; returns how many were sent."""
    now = now or timezone.now()
    sent = 0
    while True:
        with transaction.atomic():
            rows = list(
                _runnable(now)
                .alias(due_at=_DUE_AT)
                .filter(due_at__lte=now)
                .order_by("due_at")
                .select_for_update(skip_locked=True, of=("self",))
                .values_list("pk", "name", "kwargs")[:BATCH]
            )
            for _pk, name, kwargs in rows:
                send(json.loads(kwargs or "{}"), name)
            PeriodicTask.objects.filter(pk__in=[pk for pk, _, _ in rows]).update(
                last_run_at=now, total_run_count=F("total_run_count") + 1
            )
        sent += len(rows)
        if len(rows) < BATCH:
            return sent


def next_due_at(now: datetime | None = None) -> datetime | None:
    """When the earliest enabled account sync falls due (None: there is none), so that beat sleeps
    until then instead of polling."""
    now = now or timezone.now()
    return _runnable(now).aggregate(first=Min(_DUE_AT))["first"]
