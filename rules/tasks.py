"""Celery wrappers for rules run on demand (rules on new mail run in the analysis task)."""

from celery import shared_task

from core import jobs

from . import service


@shared_task(name="rules.run_rules_job")
def run_rules_job(job_id: int) -> dict:
    """A user's "run on existing mail": the rule ids and the progress live on the Job row."""
    return jobs.run(job_id, service.run_job)
