"""A user's language and time zone: what they chose, checked, and how a request applies it.

Empty means "not chosen": the language then comes from the browser (LocaleMiddleware) and times are
shown in the server's TIME_ZONE. Both are plain columns on the user (no secret, needed before any key is
unwrapped). The time zone also sets what "tomorrow at 8:00" means for a snooze.
"""

from __future__ import annotations

import zoneinfo
from functools import cache

from django.conf import settings

from .models import User


@cache
def time_zones() -> list[str]:
    """The IANA names this machine knows (tzdata), sorted; read once per process."""
    return sorted(zoneinfo.available_timezones())


def zone(name: str) -> zoneinfo.ZoneInfo | None:
    if not name:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def save(user: User, *, language: str, time_zone: str) -> None:
    """Store both; ValueError names the one that is not allowed (forms check first)."""
    if language and language not in dict(settings.LANGUAGES):
        raise ValueError(f"unknown language {language!r}")
    if time_zone and zone(time_zone) is None:
        raise ValueError(f"unknown time zone {time_zone!r}")
    user.language, user.time_zone = language, time_zone
    user.save(update_fields=["language", "time_zone"])
