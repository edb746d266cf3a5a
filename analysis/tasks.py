"""Celery wrappers of analysis: ids in, service call. No logic of their own.

The task names are the ones they had as tasks of the mail app: beat rows and queued messages name them.
"""

from __future__ import annotations

from celery import shared_task
from django.core.cache import cache

from accounts import keyring
from accounts.models import User
from core import jobs

from . import pipeline, post_analysis, similarity, translation
from .jobs import run_reanalyse

ANALYSIS_QUEUED = "mailhelper:analysis-queued:{}"


@shared_task(bind=True, name="mail.analyse_account", max_retries=5)
def analyse_account(self, account_id: str) -> dict:
    """Analyse the account's pending messages (queued by the sync that stored them)."""
    cache.delete(ANALYSIS_QUEUED.format(account_id))  # mail stored from now on gets a task of its own
    result = pipeline.analyse_pending(account_id)
    if result is None:  # another analysis of the account runs: look again once it is likely done
        if self.request.retries < self.max_retries:
            raise self.retry(countdown=5)
        return {"status": "busy"}  # the stragglers sweep picks up what it leaves
    done, failed = result
    return {"done": done, "failed": failed}


@shared_task(name="mail.analyse_stragglers")
def analyse_stragglers() -> dict:
    """Periodic: pending analyses nobody picked up, failed ones worth another try, then post-analysis
    stages left pending (failed, or never run because a worker died)."""
    done, failed = pipeline.analyse_many(pipeline.stragglers()[:2000])
    stages = post_analysis.sweep()
    return {"done": done, "failed": failed, "stages_retried": stages.messages, "stages_failed": stages.failed}


@shared_task(name="mail.reanalyse")
def reanalyse(job_id: int) -> dict:
    """A user's "re-analyse" batch: parameters and progress live on the Job row."""
    return jobs.run(job_id, run_reanalyse)


@shared_task(name="mail.fit_topics")
def fit_topics(owner_id: int) -> dict:
    """(Re)learn one user's topics and rewrite their vectors (queued when their mail doubled)."""
    try:
        if not User.objects.filter(pk=owner_id).exists():
            return {"status": "gone"}
        if keyring.is_locked(owner_id):
            return {"status": "locked"}
        result = similarity.fit(owner_id)
    finally:
        similarity.release_fit(owner_id)
    return {"status": result.status, "messages": result.n_messages, "seconds": round(result.seconds, 1)}


@shared_task(name="mail.translate_messages")
def translate_messages(owner_id: int, message_ids: list[str]) -> dict:
    """The automatic translation of a user's newly analysed foreign mail (ids only)."""
    if keyring.is_locked(owner_id):
        return {"status": "locked"}
    made, failed = translation.translate_pending(owner_id, message_ids)
    return {"made": made, "failed": failed}
