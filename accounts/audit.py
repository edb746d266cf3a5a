"""A user's own audit log: the security-relevant events of one account, shown under Settings → Security.

Contract:
- `record(user, kind, request_meta, **detail)` writes one AuditEvent. It takes no request: a view passes
  `audit_meta(request)` (accounts/views/common.py), a dict of the client's IP and user agent, read the
  same way as the rate limiter reads them. Services without a request pass nothing.
- A row holds the time, the kind, the IP (None if it is not a valid address), the user agent cut to
  255 characters and `detail`: a few short labels (which login step failed, a mail account's name),
  each a str of at most 100 characters, an int, a bool or None; anything else is refused, so a
  password, code, key or message cannot slip in by passing an object. Callers never pass a secret.
- Failed sign-ins are recorded against the user whose username was typed only if that user exists:
  an unknown username leaves no row and the typed name is stored nowhere.
- A locked account's refusals are recorded once per lock (`record_once`): anyone who knows a username
  can keep it locked, and a row per refused attempt would let them grow the table by the login rate
  limit (10 a minute) for the whole retention time. The failures that led to the lock are each kept.
- Account deletion: the events are the user's personal data and go with the user (ON DELETE CASCADE);
  for the operator, accounts/deletion.py writes one application log line (user id and row counts).
- "Download my data" includes the log (`export_rows`, written by mailhelper/data_export.py).
- Retention: `purge()` removes events older than MAILHELPER_AUDIT_DAYS (0 keeps them forever); the
  daily beat row "accounts: purge old audit events" (accounts/migrations/0003) runs it.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy, ngettext

from .models import AuditEvent, User

Kind = AuditEvent.Kind

MAX_USER_AGENT = AuditEvent._meta.get_field("user_agent").max_length
MAX_DETAIL_TEXT = 100


def _valid_ip(value: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address((value or "").strip()))
    except ValueError:
        return None


def _plain(key: str, value):
    if isinstance(value, str):
        return value[:MAX_DETAIL_TEXT]
    if value is None or isinstance(value, bool | int):
        return value
    raise TypeError(f"audit detail {key!r} must be a short label, not {type(value).__name__}")


def record(user: User, kind: str, request_meta: dict | None = None, **detail) -> AuditEvent:
    """Write one event for `user`; `request_meta` is {"ip": ..., "user_agent": ...} or None."""
    meta = request_meta or {}
    return AuditEvent.objects.create(
        user=user,
        kind=Kind(kind),
        ip=_valid_ip(meta.get("ip")),
        user_agent=(meta.get("user_agent") or "")[:MAX_USER_AGENT],
        detail={key: _plain(key, value) for key, value in detail.items()},
    )


def record_once(
    user: User, kind: str, request_meta: dict | None = None, *, since: datetime, **detail
) -> AuditEvent | None:
    """`record`, unless the user already has an event of this kind since `since`; the event or None."""
    if AuditEvent.objects.filter(user=user, kind=Kind(kind), at__gte=since).exists():
        return None
    return record(user, kind, request_meta, **detail)


def events_of(user: User) -> QuerySet[AuditEvent]:
    """The user's events, newest first (the settings page pages through these)."""
    return AuditEvent.objects.filter(user=user).order_by("-at", "-pk")


def export_rows(user: User) -> list[dict]:
    """The user's events for "download my data", oldest first: the log is their personal data too."""
    return [
        {
            "at": event.at,
            "kind": event.kind,
            "event": event.get_kind_display(),
            "ip": event.ip,
            "user_agent": event.user_agent,
            "detail": event.detail,
        }
        for event in events_of(user).reverse()
    ]


def purge(now: datetime | None = None) -> int:
    """Delete events older than the retention period; return how many. 0 days keeps everything."""
    days = settings.MAILHELPER_AUDIT_DAYS
    if days <= 0:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    deleted, _ = AuditEvent.objects.filter(at__lt=cutoff).delete()
    return deleted


STEP_LABELS = {
    "password": gettext_lazy("wrong password"),
    "totp": gettext_lazy("wrong authenticator code (the password was right)"),
    "recovery_code": gettext_lazy("wrong recovery code (the password was right)"),
    "password_reset": gettext_lazy("wrong recovery code for a password reset"),
}

INVITATION_LABELS = {
    "link": gettext_lazy("with an invitation link"),
    "address": gettext_lazy("with an invited address"),
}


def describe(event: AuditEvent) -> str:
    """The detail of an event as a short phrase for the page ("wrong password", "account “Work”")."""
    parts = []
    if "step" in event.detail:
        parts.append(STEP_LABELS.get(event.detail["step"], event.detail["step"]))
    if "account" in event.detail:
        parts.append(gettext("account “%(name)s”") % {"name": event.detail["account"]})
    if "how" in event.detail:
        parts.append(INVITATION_LABELS.get(event.detail["how"], event.detail["how"]))
    if "codes_left" in event.detail:
        left = event.detail["codes_left"]
        parts.append(ngettext("%(left)s code left", "%(left)s codes left", left) % {"left": left})
    return "; ".join(str(part) for part in parts)
