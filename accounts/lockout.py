"""Account lockout after repeated failed logins (password or second factor).

The counter lives on the user row, not in the cache, so a Redis restart cannot reset it. A
successful password alone does not reset it: only a completed login (second factor passed) does,
so that knowing the password gives no extra guesses at the TOTP code.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import User


def minutes_left(user: User) -> int:
    if not user.is_locked():
        return 0
    return max(1, math.ceil((user.locked_until - timezone.now()).total_seconds() / 60))


def locked_since(user: User) -> datetime:
    """When the current lock began (its end less the lock time): one refusal is logged per lock."""
    return user.locked_until - timedelta(minutes=settings.MAILHELPER_LOCKOUT_MINUTES)


@transaction.atomic
def register_failure(user: User) -> bool:
    """Count one failed attempt; lock the account when the threshold is reached. True if now locked."""
    locked = User.objects.select_for_update().get(pk=user.pk)
    if locked.locked_until and locked.locked_until <= timezone.now():
        locked.locked_until = None  # an expired lock starts a fresh count
        locked.failed_login_count = 0
    locked.failed_login_count += 1
    if locked.failed_login_count >= settings.MAILHELPER_LOCKOUT_THRESHOLD:
        locked.locked_until = timezone.now() + timedelta(minutes=settings.MAILHELPER_LOCKOUT_MINUTES)
        locked.failed_login_count = 0
    locked.save(update_fields=["failed_login_count", "locked_until"])
    user.failed_login_count, user.locked_until = locked.failed_login_count, locked.locked_until
    return locked.is_locked()


def clear_failures(user: User) -> None:
    if user.failed_login_count or user.locked_until:
        User.objects.filter(pk=user.pk).update(failed_login_count=0, locked_until=None)
        user.failed_login_count, user.locked_until = 0, None
