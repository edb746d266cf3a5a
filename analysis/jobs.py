"""Batch re-analysis of existing mail, with progress on a Job row (UI, via core.jobs) or a callback (command)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from django.db.models import QuerySet
from django.utils.translation import gettext_noop

from accounts import keyring
from core import stored_text
from core.models import Job
from core.stored_text import Text

from . import language, pipeline
from .models import MessageAnalysis

CHUNK = 100


def selection(
    owner_id: int | None = None, account_id=None, since: date | None = None, until: date | None = None
) -> QuerySet[MessageAnalysis]:
    qs = MessageAnalysis.objects.filter(message__expunged_at__isnull=True)
    if owner_id is not None:
        qs = qs.filter(owner_id=owner_id)
    if account_id:
        qs = qs.filter(message__account_id=account_id)
    if since:
        qs = qs.filter(message__sort_date__date__gte=since)
    if until:
        qs = qs.filter(message__sort_date__date__lte=until)
    return qs.select_related("message").order_by("pk")


def reanalyse(qs: QuerySet[MessageAnalysis], progress: Callable[[int, int], None] | None = None) -> tuple[int, int]:
    """Analyse again, keeping the user's corrections (they win over any new result)."""
    total = qs.count()
    done = failed = processed = 0
    last_pk = None
    while True:
        chunk_qs = qs if last_pk is None else qs.filter(pk__gt=last_pk)
        chunk = list(chunk_qs[:CHUNK])
        if not chunk:
            break
        d, f = pipeline.analyse_many(chunk)
        done, failed, processed = done + d, failed + f, processed + len(chunk)
        last_pk = chunk[-1].pk
        if progress:
            progress(processed, total)
    return done, failed


def run_reanalyse(job: Job, progress: Callable[[int, int], None]) -> str:
    """The work of a "reanalyse" job (core.jobs.run calls it): params are account_id and since."""
    params = job.params
    qs = selection(
        owner_id=job.owner_id,
        account_id=params.get("account_id"),
        since=date.fromisoformat(params["since"]) if params.get("since") else None,
    )
    progress(0, qs.count())
    done, failed = reanalyse(qs, progress)
    if failed:
        return stored_text.dump(Text(gettext_noop("Analysed: %(done)s, failed: %(failed)s"), done=done, failed=failed))
    return stored_text.dump(Text(gettext_noop("Analysed: %(done)s"), done=done))


def detect_languages(
    owner_id: int | None = None,
    since: date | None = None,
    rebuild: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[int, int]:
    """Give analysed mail stored before language detection its language, without analysing it again
    (a re-analysis would call the user's language model for every message). Returns (checked, found).
    Rows whose language cannot be told stay empty and are checked again by the next run: detection is
    cheap, and a marker column for "checked" would cost more than it saves."""
    qs = selection(owner_id=owner_id, since=since).filter(state=MessageAnalysis.State.DONE)
    if not rebuild:
        qs = qs.filter(language="")
    total, checked, found, last_pk = qs.count(), 0, 0, None
    locked: dict[int, bool] = {}
    while True:
        chunk_qs = qs.only("id", "owner_id", "language", "message__subject", "message__text_body", "message__owner_id")
        chunk = list((chunk_qs if last_pk is None else chunk_qs.filter(pk__gt=last_pk))[:CHUNK])
        if not chunk:
            break
        changed = []
        for analysis in chunk:
            if analysis.owner_id not in locked:
                locked[analysis.owner_id] = keyring.is_locked(analysis.owner_id)
            if locked[analysis.owner_id]:
                continue  # strict mode, logged out: a later run gets it
            detected = language.detect(analysis.message.text_body[: pipeline.TEXT_LIMIT], analysis.message.subject)
            if detected != analysis.language:
                analysis.language = detected
                changed.append(analysis)
            found += bool(detected)
        MessageAnalysis.objects.bulk_update(changed, ["language"])
        checked, last_pk = checked + len(chunk), chunk[-1].pk
        if progress:
            progress(checked, total)
    return checked, found
