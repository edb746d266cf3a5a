"""Celery task of the ground floor: the periodic sweep of jobs whose task died (core/jobs.py)."""

from celery import shared_task

from . import jobs


@shared_task(name="core.fail_stale_jobs")
def fail_stale_jobs() -> dict:
    """Periodic (beat row from core/migrations/0003): fail queued/running jobs that went silent."""
    return {"failed": jobs.fail_stale()}
