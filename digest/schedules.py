"""One django-celery-beat row per user who wants a digest: a crontab at their hour in their zone.

Beat evaluates the crontab in the row's own time zone, so "7:00 Europe/Berlin" stays 7:00 across
summer time. The row carries only the user id. A user who turns the digest off keeps a disabled
row (visible and pausable in the admin like the sync rows), deleted with the user.
"""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

from django.db import transaction
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from .models import DigestSettings

DIGEST_TASK = "digest.send_digest"


def task_name(owner_id: int) -> str:
    return f"digest {owner_id}"


@transaction.atomic
def ensure_schedule(prefs: DigestSettings) -> PeriodicTask:
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="0", hour=str(prefs.hour), day_of_week="*", day_of_month="*", month_of_year="*",
        timezone=ZoneInfo(prefs.time_zone),
    )  # fmt: skip
    task, _ = PeriodicTask.objects.update_or_create(
        name=task_name(prefs.owner_id),
        defaults={
            "task": DIGEST_TASK,
            "crontab": crontab,
            "interval": None,
            "kwargs": json.dumps({"owner_id": prefs.owner_id}),
            "enabled": prefs.enabled,
            "description": "A user's daily digest (managed by Mailhelper).",
        },
    )
    if prefs.periodic_task_id != task.pk:
        DigestSettings.objects.filter(pk=prefs.pk).update(periodic_task=task)
        prefs.periodic_task = task
    return task
