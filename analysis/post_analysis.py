"""The post-analysis pipeline: what runs on mail once its analysis is committed, and how it recovers.

The contract:
1. The stages are `settings.MAILHELPER_POST_ANALYSIS_STAGES`, dotted paths resolved once, run in
   that order: topics -> tag suggestions -> rules. The setting names them because rules sit on a
   floor above analysis, which therefore cannot import them (like MIDDLEWARE names middleware).
2. A stage is a plain function `(owner_id, messages) -> None` and is idempotent: it may run again
   for the same messages (a redelivered task, a re-analysis, a retry after a crash).
3. The marker: the transaction that stores an analysis result also sets the row's `stages_pending`
   to every stage's name (pipeline.analyse). A worker killed between that commit and the stages
   loses nothing: the rows still say what is left to do.
4. `run(owner_id, messages)` runs each stage for one owner in a transaction of its own, together
   with removing the stage's name from those rows: the work and the marker commit together or not
   at all.
5. Isolation: a stage that raises is rolled back, logged with its name and the exception class
   only (an exception's text may quote mail), and recorded on the rows (`stage_attempts` + 1 per
   failed run, `stage_error` = "stage: ExceptionClass"). The other stages of that owner and every
   other owner still run. A stage does not wait for an earlier one that failed: rules still run,
   they just do not see the tags that were not suggested.
6. `sweep()` (from the periodic `mail.analyse_stragglers` task) reruns, per message, only the
   stages still pending: on rows that failed before, while `stage_attempts` < MAX_ATTEMPTS, and on
   rows whose analysis is older than GRACE (longer than a task may live, so a run still in progress
   is never raced). After MAX_ATTEMPTS failed runs a row keeps its error for operators and is not
   tried again until its message is analysed again. Users locked in strict mode are skipped (the
   stages read mail content); their rows wait. One sweep at a time (advisory lock).
"""

from __future__ import annotations

import functools
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.signals import setting_changed
from django.db import models, transaction
from django.db.models import F, Q, QuerySet
from django.dispatch import receiver
from django.utils import timezone
from django.utils.module_loading import import_string

from accounts import keyring
from core.db.locks import lock_key, try_advisory_lock
from mail.models import Message

from .models import MessageAnalysis

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
GRACE = timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT) + timedelta(minutes=5)
SWEEP_LIMIT = 2000


@dataclass(frozen=True)
class Stage:
    name: str  # the dotted path; also what `stages_pending` holds
    function: Callable[[int, list[Message]], None]


@functools.cache
def stages() -> tuple[Stage, ...]:
    """The configured stages, in order (imported on first use, not at every call)."""
    return tuple(Stage(path, import_string(path)) for path in settings.MAILHELPER_POST_ANALYSIS_STAGES)


def stage_names() -> list[str]:
    return [stage.name for stage in stages()]


@receiver(setting_changed, dispatch_uid="analysis.post_analysis.stages")
def _forget_stages(setting: str, **kwargs) -> None:
    if setting == "MAILHELPER_POST_ANALYSIS_STAGES":  # override_settings in tests
        stages.cache_clear()


def run(owner_id: int, messages: list[Message]) -> list[str]:
    """Run every stage on one owner's newly analysed messages. Returns the names of the stages that failed."""
    return _run(owner_id, [(stage, messages) for stage in stages()])


def _run(owner_id: int, work: Iterable[tuple[Stage, list[Message]]]) -> list[str]:
    failed_stages: list[str] = []
    reasons: dict[UUID, list[str]] = defaultdict(list)  # message id -> this run's failures
    seen: set[UUID] = set()
    for stage, messages in work:
        if not messages:
            continue
        ids = [m.pk for m in messages]
        seen.update(ids)
        try:
            with transaction.atomic():
                stage.function(owner_id, messages)
                MessageAnalysis.objects.filter(message_id__in=ids).update(
                    stages_pending=_array_remove("stages_pending", stage.name)
                )
        except Exception as exc:  # noqa: BLE001 - recorded on the rows; the other stages and owners go on
            log.warning(
                "post-analysis stage %s failed for user %s (%d messages): %s",
                stage.name, owner_id, len(ids), type(exc).__name__,
            )  # fmt: skip
            failed_stages.append(stage.name)
            for message_id in ids:
                reasons[message_id].append(f"{stage.name}: {type(exc).__name__}")
    _record(seen, reasons)
    return failed_stages


def _record(seen: set[UUID], reasons: dict[UUID, list[str]]) -> None:
    """One failed run counts one attempt, however many of its stages failed; a row whose stages have
    all succeeded now loses the error of an earlier run."""
    by_reason: dict[str, list[UUID]] = defaultdict(list)
    for message_id, failures in reasons.items():
        by_reason["; ".join(failures)[:300]].append(message_id)
    for reason, ids in by_reason.items():
        MessageAnalysis.objects.filter(message_id__in=ids).update(
            stage_attempts=F("stage_attempts") + 1, stage_error=reason
        )
    succeeded = seen - reasons.keys()
    if succeeded:
        MessageAnalysis.objects.filter(message_id__in=succeeded, stages_pending=[]).exclude(stage_error="").update(
            stage_error=""
        )


def _array_remove(field: str, value: str) -> models.Func:
    return models.Func(
        F(field),
        models.Value(value, output_field=models.CharField()),
        function="array_remove",
        output_field=ArrayField(models.CharField(max_length=100)),
    )


# --- the sweep ----------------------------------------------------------------------------------------------


def due(grace: timedelta = GRACE) -> QuerySet[MessageAnalysis]:
    """Rows with stages still to run that are worth a try now (served by the partial index)."""
    cutoff = timezone.now() - grace
    return (
        MessageAnalysis.objects.exclude(stages_pending=[])
        .filter(Q(stage_attempts__gt=0) | Q(analysed_at__lt=cutoff), stage_attempts__lt=MAX_ATTEMPTS)
        .select_related("message")
        .defer("message__raw", "message__html_body")  # no stage reads them; a sweep may load 2,000 messages
        .order_by("analysed_at")
    )


@dataclass
class SweepResult:
    messages: int = 0  # rows whose pending stages were run
    failed: int = 0  # (owner, stage) runs that failed again
    busy: bool = False  # another sweep holds the lock


def sweep(grace: timedelta = GRACE, limit: int = SWEEP_LIMIT) -> SweepResult:
    """Run the stages still pending on due rows, each row's own stages only, owner by owner."""
    result = SweepResult()
    with try_advisory_lock(lock_key("analysis/post-analysis-sweep")) as acquired:
        if not acquired:  # another worker is sweeping: it would pick the same rows
            result.busy = True
            return result
        by_owner: dict[int, list[MessageAnalysis]] = defaultdict(list)
        for row in due(grace)[:limit]:
            by_owner[row.owner_id].append(row)
        configured = set(stage_names())
        for owner_id, rows in by_owner.items():
            if keyring.is_locked(owner_id):
                continue  # strict mode, logged out: the rows wait for the user
            _drop_unconfigured(rows, configured)
            work = [(stage, [r.message for r in rows if stage.name in r.stages_pending]) for stage in stages()]
            result.messages += len(rows)
            result.failed += len(_run(owner_id, work))
    return result


def _drop_unconfigured(rows: list[MessageAnalysis], configured: set[str]) -> None:
    """A stage that was removed from the setting can no longer run: forget it on these rows."""
    for name in {n for r in rows for n in r.stages_pending} - configured:
        log.warning("post-analysis stage %s is no longer configured; dropped from pending rows", name)
        MessageAnalysis.objects.filter(pk__in=[r.pk for r in rows]).update(
            stages_pending=_array_remove("stages_pending", name)
        )
