"""Batch re-analysis of existing mail, with progress on a Job row (UI, via core.jobs) or a callback (command)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from django.db.models import QuerySet

from core.models import Job

from . import pipeline
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
    return f"{done} analysed" + (f", {failed} failed" if failed else "")
