"""Models of the ground floor: every app may use them, they use no app."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Job(models.Model):
    """A long piece of work started by a user (re-analyse, run rules on existing mail, export).

    The task updates `done` as it goes so the page can show progress (htmx polling), and the row
    stays afterwards as a record of what ran. Arguments live here, not in the Celery message,
    which then carries only the job id.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        SUCCESS = "success", "finished"
        FAILED = "failed", "failed"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=40)
    params = models.JSONField(default=dict, blank=True, help_text="Ids and options only; never content.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    result = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
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
