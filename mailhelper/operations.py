"""What an operator needs to see of the whole installation: every account's health, the queues,
the workers, the analysis backlog, failed jobs and the beat, and the alerts they add up to.

Read by the staff-only operator page, `manage.py check_deploy` and `/metrics`. Nothing here shows
mail content: account names, owners, times, counts and error kinds only. It lives in the project
package because it reads every app (mail, analysis, core, the beat's tables and the broker).

Every figure is one query (or one Redis round trip) whatever the number of accounts: an account's
consecutive failures and its last error kind are subqueries of the account list, not a query per row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import (
    Case,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from analysis.models import MessageAnalysis
from core.models import Job
from mail.models import MailAccount, SyncRun

log = logging.getLogger(__name__)

#: An account whose last successful sync is older than this, and which failed since, is alerted on.
FAILING_FOR = timedelta(days=1)
#: An analysis still pending after this long means the analysis workers do not keep up (or run at all).
BACKLOG_OLDER_THAN = timedelta(hours=1)
#: Beat sends the sweeps every few minutes: no row sent for this long means beat is not running.
BEAT_SILENT_FOR = timedelta(minutes=15)
#: Failed jobs and task results counted on the page.
RECENT = timedelta(days=1)

#: The operator page's sort orders: key -> (label, ordering). Ties go by id so pages are stable.
SORTS: dict[str, tuple[str, tuple]] = {
    "lag": (_("longest without a successful sync"), (F("last_sync_at").asc(nulls_first=True), "pk")),
    "attention": (
        _("needs attention first"),
        ("-attention", "-failures", F("last_sync_at").asc(nulls_first=True), "pk"),
    ),
    "owner": (_("owner"), ("owner__username", "name", "pk")),
    "newest": (_("newest accounts"), ("-created_at", "pk")),
}
DEFAULT_SORT = "attention"

_FAILURE_STATES = [SyncRun.Status.FAILED, SyncRun.Status.INTERRUPTED]
_ATTENTION_STATES = [MailAccount.Status.NEEDS_ATTENTION, MailAccount.Status.LOCKED]


def accounts(sort: str = DEFAULT_SORT) -> QuerySet[MailAccount]:
    """Every account with `failures` (runs failed since its last successful sync), `last_error_kind`
    and `last_failure_at` annotated, sorted by one of SORTS (an unknown key sorts by the default)."""
    since_success = Q(finished_at__gt=OuterRef("last_sync_at")) | Q(account__last_sync_at__isnull=True)
    failed_since = (
        SyncRun.objects.filter(since_success, account=OuterRef("pk"), status__in=_FAILURE_STATES)
        .order_by()
        .values("account")
        .annotate(n=Count("pk"))
        .values("n")
    )
    last_failure = SyncRun.objects.filter(account=OuterRef("pk"), status__in=_FAILURE_STATES).order_by(
        "-finished_at", "-pk"
    )
    _label, ordering = SORTS.get(sort, SORTS[DEFAULT_SORT])
    return (
        MailAccount.objects.select_related("owner")
        .only(
            "pk",
            "name",
            "protocol",
            "enabled",
            "status",
            "last_sync_at",
            "created_at",
            "owner__username",
            "sync_interval_minutes",
        )  # fmt: skip
        .annotate(
            failures=Coalesce(Subquery(failed_since, output_field=IntegerField()), Value(0)),
            last_error_kind=Subquery(last_failure.values("error_kind")[:1]),
            last_failure_at=Subquery(last_failure.values("finished_at")[:1]),
            attention=Case(When(status__in=_ATTENTION_STATES, then=Value(1)), default=Value(0)),
        )
        .order_by(*ordering)
    )


def lag(account: MailAccount, now: datetime | None = None) -> timedelta | None:
    """How long the account has gone without a successful sync (None: never synced)."""
    if account.last_sync_at is None:
        return None
    return (now or timezone.now()) - account.last_sync_at


def error_kind_label(kind: str | None) -> str:
    return SyncRun.ErrorKind(kind).label if kind else ""


def failing_accounts(now: datetime | None = None) -> QuerySet[MailAccount]:
    """Enabled accounts without a successful sync for FAILING_FOR that failed at least once since:
    a user's mailbox that has quietly stopped arriving."""
    cutoff = (now or timezone.now()) - FAILING_FOR
    never = Q(last_sync_at__isnull=True, created_at__lt=cutoff)
    return accounts().filter(Q(last_sync_at__lt=cutoff) | never, enabled=True, failures__gt=0)


# --- queues, workers, backlog ---------------------------------------------------------------------


def queue_names() -> list[str]:
    return [queue.name for queue in settings.CELERY_TASK_QUEUES]


def queue_lengths() -> dict[str, int | None]:
    """Messages waiting per Celery queue (Redis list lengths); None for every queue when the broker
    does not answer. Tasks a worker has taken (unacked) are not waiting and are not counted."""
    import redis

    names = queue_names()
    try:
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=1, socket_timeout=1)
        try:
            with client.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.llen(name)
                lengths = pipe.execute()
        finally:
            client.close()
    except redis.RedisError as exc:
        log.warning("queue lengths unavailable (%s)", type(exc).__name__)
        return dict.fromkeys(names)
    return dict(zip(names, (int(n) for n in lengths), strict=True))


def workers(timeout: float = 0.5) -> list[str] | None:
    """Host names of the workers that answer a ping; None when the broker cannot be reached."""
    from .health import ping_workers

    try:
        return ping_workers(timeout)
    except Exception as exc:  # noqa: BLE001 - the page shows "unknown", the type goes to the log
        log.warning("worker ping failed (%s)", type(exc).__name__)
        return None


@dataclass(frozen=True)
class Backlog:
    pending: int
    oldest_queued_at: datetime | None
    failed: int

    def age(self, now: datetime | None = None) -> timedelta | None:
        return (now or timezone.now()) - self.oldest_queued_at if self.oldest_queued_at else None


def analysis_backlog() -> Backlog:
    """Messages waiting for their analysis, the oldest of them, and analyses that gave up.

    Mail of accounts locked until their owner logs in (strict mode) waits by design and is left out.
    """
    from django.db.models import Min

    row = MessageAnalysis.objects.exclude(message__account__status=MailAccount.Status.LOCKED).aggregate(
        pending=Count("pk", filter=Q(state=MessageAnalysis.State.PENDING)),
        oldest=Min("queued_at", filter=Q(state=MessageAnalysis.State.PENDING)),
        failed=Count("pk", filter=Q(state=MessageAnalysis.State.FAILED)),
    )
    return Backlog(row["pending"], row["oldest"], row["failed"])


def failed_jobs(now: datetime | None = None) -> dict[str, int]:
    """Failures of the last RECENT: user jobs (re-analysis, rules) and Celery task results."""
    from django_celery_results.models import TaskResult

    since = (now or timezone.now()) - RECENT
    return {
        "jobs": Job.objects.filter(status=Job.Status.FAILED, finished_at__gte=since).count(),
        "tasks": TaskResult.objects.filter(status="FAILURE", date_done__gte=since).count(),
    }


def beat_last_tick() -> datetime | None:
    """When beat last sent a scheduled task. The sweeps run every few minutes, so on a live
    installation this is minutes old; beat writes `last_run_at` as it sends each task."""
    from django.db.models import Max
    from django_celery_beat.models import PeriodicTask

    return PeriodicTask.objects.filter(enabled=True).aggregate(last=Max("last_run_at"))["last"]


#: Upper bounds (seconds) of the sync lag histogram in /metrics: 5 min (one interval), 15 min, 1 h, 6 h, 1 day.
LAG_BUCKETS = (300, 900, 3600, 6 * 3600, 86400)


def lag_buckets(now: datetime | None = None) -> tuple[dict[float, int], int, float]:
    """Cumulative counts of enabled, synced-once accounts by seconds since their last successful sync
    (Prometheus histogram buckets, +Inf included), their number and the sum of their lags; one query."""
    now = now or timezone.now()
    synced = MailAccount.objects.filter(enabled=True, last_sync_at__isnull=False)
    since_last = ExpressionWrapper(Value(now) - F("last_sync_at"), output_field=DurationField())
    within = {f"le_{b}": Count("pk", filter=Q(last_sync_at__gte=now - timedelta(seconds=b))) for b in LAG_BUCKETS}
    counts = synced.aggregate(total=Count("pk"), lag_sum=Sum(since_last), **within)
    buckets: dict[float, int] = {float(bound): counts[f"le_{bound}"] for bound in LAG_BUCKETS}
    buckets[float("inf")] = counts["total"]
    lag_sum = counts["lag_sum"].total_seconds() if counts["lag_sum"] else 0.0
    return buckets, counts["total"], lag_sum


# --- alerts ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    """Something an operator should act on; the text names what and where, never content or secrets."""

    key: str
    text: str


def alerts(now: datetime | None = None) -> list[Alert]:
    now = now or timezone.now()
    found: list[Alert] = []
    failing = list(failing_accounts(now).values_list("pk", flat=True)[:6])
    if failing:
        total = failing_accounts(now).count() if len(failing) > 5 else len(failing)
        shown = ", ".join(str(pk) for pk in failing[:5]) + (", ..." if total > 5 else "")
        text = gettext("%(total)s account(s) failing for over a day: %(shown)s") % {"total": total, "shown": shown}
        found.append(Alert("failing_accounts", text))
    backlog = analysis_backlog()
    age = backlog.age(now)
    if age is not None and age > BACKLOG_OLDER_THAN:
        found.append(
            Alert(
                "analysis_backlog",
                gettext(
                    "%(pending)s message(s) wait for analysis, the oldest for %(age)s: "
                    "is a worker consuming the 'analysis' queue?"
                )
                % {"pending": backlog.pending, "age": _duration(age)},
            )
        )
    tick = beat_last_tick()
    if tick is None or now - tick > BEAT_SILENT_FOR:
        if tick is None:
            text = gettext("celery beat has never sent a task: is it running?")
        else:
            text = gettext("celery beat has sent nothing for %(age)s: is it running?") % {"age": _duration(now - tick)}
        found.append(Alert("beat_silent", text))
    return found


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 86400:
        return f"{seconds // 86400} d {seconds % 86400 // 3600} h"
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 60} min"
