"""A user's daily digest settings and the beat row that sends it."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class DigestSettings(models.Model):
    """Off by default. The digest goes from one of the user's own accounts to that account's address,
    so it needs no mail set-up by the operator and lands where the user reads mail anyway."""

    owner = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    enabled = models.BooleanField(default=False)
    hour = models.PositiveSmallIntegerField(default=7, help_text="Local hour (0-23) in the user's time zone.")
    time_zone = models.CharField(max_length=64, default="UTC")
    account = models.ForeignKey(
        "mail.MailAccount", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text="Sends the digest to its own address through its SMTP server.",
    )  # fmt: skip
    include_summaries = models.BooleanField(
        default=False, help_text="Also the analysis' one-line summaries (mail content) in the digest."
    )
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    last_sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return f"digest settings of user {self.owner_id}"
