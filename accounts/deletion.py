"""Removing a user and everything they stored (the "delete my account" right).

One transaction for the database: the user row is deleted and PostgreSQL-side cascades are done by
Django's collector, which also sends post_delete for each MailAccount, so mail/signals.py removes the
account's django-celery-beat row in the same transaction. What the cascade cannot reach is removed
explicitly: Celery result rows that name the user's account or job ids (they are not linked by a key).

Sessions: the cache session backend cannot list a user's sessions without a per-user index, and we
store nothing new for that. They need no removal: Django's auth middleware loads the user of each
session by id on every request; the row is gone, so every session of the deleted user is anonymous
from its next request on (the 2FA middleware then redirects to the login page). The session data
itself expires with its idle timeout. The strict-mode key cache entry is deleted here.

The user's audit log (AuditEvent) is personal data and goes with the user in the cascade. What stays
is one application log line for the operator: the user's id and the row counts, no name, no content.
"""

from __future__ import annotations

import logging
import re

from django.db import transaction
from django.db.models import Q
from django_celery_results.models import TaskResult

from core.models import Job

from . import keyring
from .models import User

log = logging.getLogger(__name__)


def _task_results(account_ids: list[str], job_ids: list[int]):
    """TaskResult rows whose arguments name one of the ids (kwargs repr, possibly JSON-quoted)."""
    query = Q(pk__in=[])
    for account_id in account_ids:
        query |= Q(task_kwargs__contains=account_id) | Q(task_args__contains=account_id)
    for job_id in job_ids:
        # 'job_id': 5 — anchored on the key name and not followed by a digit, so job 5 never matches 50.
        pattern = r"job_id[\\'\"]*:\s*[\\'\"]*" + re.escape(str(job_id)) + r"([^0-9]|$)"
        query |= Q(task_kwargs__regex=pattern)
    return TaskResult.objects.filter(query)


def delete_user(user: User) -> dict[str, int]:
    """Delete the user and all their rows; return how many rows of each model were removed.

    Keys are model labels ("mail.Message"); counts are rows, never content.
    """
    user_pk = user.pk  # Model.delete() clears it
    with transaction.atomic():
        account_ids = [str(pk) for pk in user.mail_accounts.values_list("pk", flat=True)]
        job_ids = list(Job.objects.filter(owner=user).values_list("pk", flat=True))
        results_removed, _ = _task_results(account_ids, job_ids).delete()
        from django_celery_beat.models import PeriodicTask

        beat_before = PeriodicTask.objects.count()
        _, per_model = user.delete()
        beat_removed = beat_before - PeriodicTask.objects.count()
    removed = {label: count for label, count in per_model.items() if count}
    if results_removed:
        removed["django_celery_results.TaskResult"] = results_removed
    if beat_removed:
        removed["django_celery_beat.PeriodicTask"] = beat_removed
    # After the commit: the cached strict-mode key and this process's unwrapped copy of the DEK.
    keyring.drop_session_key(User(pk=user_pk))
    log.info("user %s deleted with all their data: %s rows removed", user_pk, sum(removed.values()))
    return removed
