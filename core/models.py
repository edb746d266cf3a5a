"""Models of the ground floor: every app may use them, they use no app."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Job(models.Model):
    """A long piece of work started by a user (re-analyse, run rules on existing mail).

    The lifecycle lives in core/jobs.py: `start` creates the row and queues its task, `run` moves it
    queued -> running -> success | failed and keeps `heartbeat_at` fresh, and `fail_stale` fails the
    rows whose task died without saying so. The page (core/views.py) shows what the row holds, and the
    row stays afterwards as a record of what ran. Arguments live here, not in the Celery message,
    which then carries only the job id.
    """

    class Kind(models.TextChoices):
        # The stored values are the ones rows already hold; add a kind here and a back link in core/views.py.
        REANALYSE = "reanalyse", _("Re-analysis")
        RULES = "rules", _("Rules on existing mail")

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        RUNNING = "running", _("running")
        SUCCESS = "success", _("finished")
        FAILED = "failed", _("failed")

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=40, choices=Kind.choices)
    params = models.JSONField(default=dict, blank=True, help_text="Ids and options only; never content.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    result = models.CharField(max_length=500, blank=True)
    error = models.CharField(
        max_length=200, blank=True, help_text="Why it failed: an exception class or the sweep's reason; never content."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last sign of life from the task (start and every progress report)."
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "mailhelper_job"  # the table it had in the project package
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} job {self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else (100 if not self.is_active else 0)
