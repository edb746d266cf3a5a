"""Celery tasks of the ground floor: the sweep of jobs whose task died (core/jobs.py), the daily prune."""

from celery import shared_task

from . import jobs, retention


@shared_task(name="core.fail_stale_jobs")
def fail_stale_jobs() -> dict:
    """Periodic (beat row from core/migrations/0003): fail queued/running jobs that went silent."""
    return {"failed": jobs.fail_stale()}


@shared_task(name="core.prune")
def prune() -> dict:
    """Periodic (beat row from core/migrations/0004): delete history past its age (core/retention.py)."""
    return retention.prune()
