"""Each mail account's django-celery-beat row, kept in step with the account.

One PeriodicTask per account (visible and pausable in the admin), carrying only the account id.
"""

from __future__ import annotations

import json

from django.db import transaction
from django.db.models import Q
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from .models import MailAccount

SYNC_TASK = "mail.sync_account"


def task_name(account: MailAccount) -> str:
    return f"mail sync {account.pk}"


@transaction.atomic
def ensure_schedule(account: MailAccount) -> PeriodicTask:
    """Create or update the beat row: interval from the account, enabled with the account."""
    interval, _ = IntervalSchedule.objects.get_or_create(
        every=max(1, account.sync_interval_minutes), period=IntervalSchedule.MINUTES
    )
    defaults = {
        "task": SYNC_TASK,
        "interval": interval,
        "kwargs": json.dumps({"account_id": str(account.pk)}),
        "enabled": account.enabled,
        "description": "Incremental IMAP sync of one mail account (managed by Mailhelper).",
    }
    task = PeriodicTask.objects.filter(pk=account.periodic_task_id).first() if account.periodic_task_id else None
    if task is None:
        task, _ = PeriodicTask.objects.update_or_create(name=task_name(account), defaults=defaults)
    else:
        changed = [k for k, v in defaults.items() if getattr(task, k) != v]
        if changed:
            for k in changed:
                setattr(task, k, defaults[k])
            task.save()
    if account.periodic_task_id != task.pk:
        MailAccount.objects.filter(pk=account.pk).update(periodic_task=task)
        account.periodic_task = task
    return task


def remove_schedule(periodic_task_id: int | None, account_pk) -> None:
    PeriodicTask.objects.filter(Q(name=f"mail sync {account_pk}") | Q(pk=periodic_task_id or -1)).delete()
