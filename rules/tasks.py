"""Celery wrappers for rules run on demand (rules on new mail run in the analysis task)."""

from celery import shared_task
from django.utils import timezone

from core.models import Job

from . import service


@shared_task(name="rules.run_rules_job")
def run_rules_job(job_id: int) -> dict:
    job = Job.objects.get(pk=job_id)
    job.status = Job.Status.RUNNING
    job.save(update_fields=["status"])

    def progress(done: int, total: int) -> None:
        Job.objects.filter(pk=job.pk).update(done=done, total=total)

    applied = service.run_on_existing(job.params.get("rule_ids", []), job.owner_id, progress)
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.SUCCESS, result=f"{applied} rule application(s)", finished_at=timezone.now()
    )
    return {"applied": applied}
