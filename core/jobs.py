"""The life of a Job, the same for every kind: start it, run it, fail it when its task died.

A job goes queued -> running -> success | failed, and a finished job never changes again.

1. `start(owner, kind, params, task)` first fails the owner's stale jobs of that kind (3.), then
   refuses with `JobAlreadyActive` if one is still queued or running. Otherwise it creates the row
   and queues `task.delay(job_id=...)` once the transaction commits (the worker must see the row).
   Refusing is an exception, not a quiet return of the old job, so no caller can take an old job for
   the one it asked for; the exception carries the active job so the page can show its progress.
   Two clicks at once start one job: the check and the insert run under a transaction-level
   advisory lock per owner and kind. A broker that refuses the message fails the job on the spot
   ("not queued: <class>") instead of leaving it queued until the sweep.
2. `run(job_id, work)` claims the row (queued or running -> running, setting started_at and
   heartbeat_at), calls `work(job, progress)` and, in a `finally`, marks success with the one-line text
   `work` returned (a core.stored_text dump, shown in the viewer's language), or failed with the
   exception's class name (never its message: it may quote mail), and re-raises so Celery records the
   failure too. `progress(done, total)` is one UPDATE and doubles as the heartbeat. A finished job is
   not run again (a redelivered message, or a task that arrives after the sweep failed its job). A job
   found "running" is run again: with acks_late and reject_on_worker_lost a message comes back only
   when the worker holding it died, and the work functions are written to be repeatable.
3. `fail_stale(now)` fails the jobs whose last sign of life (heartbeat_at, created_at while queued)
   is older than the hard task time limit plus a grace period. A task killed by the time limit, or
   a worker that died (kill -9, out of memory, power loss), never reaches run's `finally`. No live
   task can be silent that long: run sets heartbeat_at when it starts and Celery kills it
   CELERY_TASK_TIME_LIMIT later (kinds must not raise their task's own limit above that). A job
   still queued after that long is presumed lost too; if the queue really was that long, its late
   task finds the job failed and does nothing, and the user starts it again. Beat runs the sweep
   every 5 minutes (task core.fail_stale_jobs), and `start` runs it for its owner and kind, so a dead
   job never blocks a new request even before beat gets to it.

Services only: no request, no Celery import. Tasks stay thin (`return jobs.run(job_id, work)`) and
views catch `JobAlreadyActive`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_noop

from .db.locks import advisory_xact_lock, lock_key
from .models import Job
from .stored_text import Text, dump

logger = logging.getLogger(__name__)

ACTIVE = (Job.Status.QUEUED, Job.Status.RUNNING)
#: Beyond the hard time limit: clocks of web, worker and database hosts that differ a little.
STALE_GRACE = timedelta(minutes=2)
#: Silence allowed when no hard time limit is configured (then nothing bounds a live task's silence).
NO_LIMIT_STALE_AFTER = timedelta(hours=6)

Progress = Callable[[int, int], None]
#: Does the job's work; returns one line for the page ("6 analysed"), counts only, never content.
Work = Callable[[Job, Progress], str]


class Queueable(Protocol):
    """What `start` needs of a task: a Celery task's `delay`."""

    def delay(self, *args: Any, **kwargs: Any) -> Any: ...


class JobAlreadyActive(Exception):
    """The owner already has a live job of this kind; `job` is that one."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"{job.kind} job {job.pk} is still {job.status}")
        self.job = job


def stale_after() -> timedelta:
    """How long a job may go without a sign of life before it counts as dead."""
    limit = getattr(settings, "CELERY_TASK_TIME_LIMIT", None)
    return timedelta(seconds=limit) + STALE_GRACE if limit else NO_LIMIT_STALE_AFTER


def start(owner: AbstractBaseUser, kind: str, params: dict, task: Queueable) -> Job:
    """Create the job and queue its task on commit; raises JobAlreadyActive when one is live."""
    kind = Job.Kind(kind)  # a misspelt kind fails here, not on the page
    with transaction.atomic():
        advisory_xact_lock(lock_key(f"job-start/{owner.pk}/{kind}"))
        fail_stale(owner=owner, kind=kind)
        active = Job.objects.filter(owner=owner, kind=kind, status__in=ACTIVE).order_by("created_at").first()
        if active is None:
            job = Job.objects.create(owner=owner, kind=kind, params=params)
            transaction.on_commit(lambda: _queue(task, job.pk))
    # Raised outside the block, so that the stale jobs failed above stay failed.
    if active is not None:
        raise JobAlreadyActive(active)
    return job


def _queue(task: Queueable, job_id: int) -> None:
    try:
        task.delay(job_id=job_id)
    except Exception as exc:
        logger.exception("job %s: its task could not be queued", job_id)
        _close(
            job_id,
            Job.Status.QUEUED,
            Job.Status.FAILED,
            error=dump(Text(gettext_noop("not queued: %(error)s"), error=type(exc).__name__)),
        )


def run(job_id: int, work: Work) -> dict:
    """Run `work` for the job and record how it ended; the body of every job task."""
    now = timezone.now()
    claimed = Job.objects.filter(pk=job_id, status__in=ACTIVE).update(
        status=Job.Status.RUNNING, started_at=now, heartbeat_at=now, done=0, error=""
    )
    if claimed != 1:
        # Finished already (a redelivered message, or the sweep gave up on it), or deleted with its owner.
        status = Job.objects.filter(pk=job_id).values_list("status", flat=True).first()
        return {"job_id": job_id, "status": status or "gone", "skipped": True}
    job = Job.objects.get(pk=job_id)

    def progress(done: int, total: int) -> None:
        Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(
            done=done, total=total, heartbeat_at=timezone.now()
        )

    summary, error = "", ""
    try:
        summary = work(job, progress)
    except BaseException as exc:  # SoftTimeLimitExceeded and the like too; re-raised below
        error = type(exc).__name__
        raise
    finally:
        if error:
            _close(job_id, Job.Status.RUNNING, Job.Status.FAILED, error=error[:200])
        else:
            _close(job_id, Job.Status.RUNNING, Job.Status.SUCCESS, result=(summary or "")[:500])
    return {"job_id": job_id, "status": Job.Status.SUCCESS.value, "result": summary}


def _close(job_id: int, from_status: str, to_status: str, **fields: str) -> None:
    # Only from the state this caller saw: if the sweep failed the job meanwhile (clocks far apart),
    # its verdict stands, because a finished job never changes again.
    Job.objects.filter(pk=job_id, status=from_status).update(status=to_status, finished_at=timezone.now(), **fields)


def fail_stale(now: datetime | None = None, *, owner: AbstractBaseUser | None = None, kind: str | None = None) -> int:
    """Fail the jobs (all, or one owner's of one kind) whose task died without a word; returns how many."""
    now = now or timezone.now()
    silence = stale_after()
    limit, minutes = now - silence, round(silence.total_seconds() / 60)
    jobs = Job.objects.all()
    if owner is not None:
        jobs = jobs.filter(owner=owner)
    if kind is not None:
        jobs = jobs.filter(kind=kind)
    # Each UPDATE re-checks its condition on rows a worker claims at the same moment (PostgreSQL
    # re-reads a row it had to wait for), so a job that just started running is never failed here.
    never_started = jobs.filter(status=Job.Status.QUEUED, created_at__lt=limit).update(
        status=Job.Status.FAILED,
        finished_at=now,
        error=dump(Text(gettext_noop("lost: not started within %(minutes)s min"), minutes=minutes)),
    )
    went_silent_text = gettext_noop("lost: no sign of life for %(minutes)s min (killed?)")
    went_silent = (
        jobs.filter(status=Job.Status.RUNNING)
        # Rows from before heartbeats existed have none: their age is all there is to go by.
        .filter(Q(heartbeat_at__lt=limit) | Q(heartbeat_at__isnull=True, created_at__lt=limit))
        .update(status=Job.Status.FAILED, finished_at=now, error=dump(Text(went_silent_text, minutes=minutes)))
    )
    if never_started or went_silent:
        logger.warning("stale jobs failed: %s never started, %s went silent", never_started, went_silent)
    return never_started + went_silent
