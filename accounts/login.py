"""The password step of login as one service: lockout, authentication, keyring, and whoever listens.

The view only turns the outcome into a page. Order matters and is the same for every caller:
1. A locked account is refused before the password is even checked (no free guesses while locked).
2. A wrong password counts towards the lockout; the attempt that reaches the threshold says so.
3. A right password opens the keyring (adding a password wrap for imported users, caching the key
   for strict mode); a wrap that no longer matches is a warning, not a refusal (recovery codes help).
4. `signals.password_verified` lets higher floors act on the verified password (legacy conversion)
   and hand back notices; their work is committed with the login or not at all.
Steps 1 and 2 write the user's audit log (a wrong password, the lock, the first refusal while locked)
with the `ip` and `user_agent` the view passes; an unknown username writes nothing. The completed login is
recorded by the second step, where it completes (accounts/views/twofactor.py).
The lockout counter is reset only when the second factor is passed (see lockout.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth import authenticate
from django.db import transaction
from django.utils.translation import gettext_lazy, ngettext

from . import audit, keyring, lockout
from .models import User
from .signals import password_verified


@dataclass(frozen=True)
class Notice:
    """A message for the page after login, and session values a listener wants set (e.g. a flag)."""

    level: str  # "info" | "warning" | "error"
    text: str
    session: dict = field(default_factory=dict)


@dataclass
class LoginOutcome:
    user: User | None = None
    error: str = ""
    locked: bool = False
    notices: list[Notice] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.user is not None


WRONG_PASSWORD = gettext_lazy("Wrong username or password.")


def locked_message(user: User) -> str:
    minutes = lockout.minutes_left(user)
    return ngettext(
        "This account is locked after too many failed attempts. "
        "Try again in %(minutes)s minute, or reset your password with a recovery code.",
        "This account is locked after too many failed attempts. "
        "Try again in %(minutes)s minutes, or reset your password with a recovery code.",
        minutes,
    ) % {"minutes": minutes}


@transaction.atomic
def check_password(username: str, password: str, ip: str | None = None, user_agent: str = "") -> LoginOutcome:
    """Steps 1-4 above; the second factor comes next (accounts/views/twofactor.py)."""
    meta = {"ip": ip, "user_agent": user_agent}
    candidate = User.objects.filter(username=username).first()
    if candidate is not None and candidate.is_locked():
        audit.record_once(candidate, audit.Kind.LOGIN_REFUSED_LOCKED, meta, since=lockout.locked_since(candidate))
        return LoginOutcome(error=locked_message(candidate), locked=True)
    user = authenticate(None, username=username, password=password)
    if user is None:
        if candidate is not None and lockout.register_failure(candidate):
            audit.record(candidate, audit.Kind.LOCKED_OUT, meta, step="password")
            return LoginOutcome(error=locked_message(candidate), locked=True)
        if candidate is not None:
            audit.record(candidate, audit.Kind.LOGIN_FAILED, meta, step="password")
        return LoginOutcome(error=WRONG_PASSWORD)
    outcome = LoginOutcome(user=user)
    try:
        keyring.on_password_verified(user, password)
    except keyring.KeyringLocked:
        outcome.notices.append(
            Notice(
                "warning", gettext_lazy("Your stored mail cannot be opened with this password: use a recovery code.")
            )
        )
    for _receiver, notices in password_verified.send(sender=User, user=user, password=password):
        outcome.notices.extend(notices or [])
    return outcome
