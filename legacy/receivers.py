"""How legacy hooks into the lower floors without them importing it.

- accounts.signals.password_verified: an imported user's first login opens their legacy key; the
  conversion task is queued when the login commits, and the page tells the user what happens.
- core.placeholders: pages ask which rows still wait for that conversion.
- core.exports: "download my data" includes the user's legacy records (legacy.json), if they have any.
"""

from __future__ import annotations

from django.db import transaction
from django.dispatch import receiver
from django.utils.translation import gettext_lazy as _

from accounts.login import Notice
from accounts.signals import password_verified
from core import exports, placeholders

from . import conversion, ui

_QUEUED = _("Your mail from the previous application is being converted; it appears in a moment.")
_NOT_OPENED = _(
    "Your mail from the previous application could not be unlocked with this password, so it stays "
    "waiting (nothing is lost). Ask your administrator; the reason is shown in the admin."
)
_NEW_CODES = _(
    "Recovery codes of the previous application do not work here: make new ones in Settings "
    "(Security → Recovery codes)."
)


@receiver(password_verified, dispatch_uid="legacy.first_login")
def _first_login(sender, user, password: str, **kwargs) -> list[Notice] | None:
    if conversion.pending_key(user) is None:
        return None  # not an imported user with data waiting
    flag = {ui.SESSION_FLAG: True}
    if conversion.on_password_verified(user, password):
        from .tasks import convert_legacy_user

        user_id = user.pk
        transaction.on_commit(lambda: convert_legacy_user.delay(user_id))
        notices = [Notice("info", _QUEUED, flag)]
    else:
        notices = [Notice("error", _NOT_OPENED, flag)]
    if not user.key_wraps.filter(kind="recovery").exists():
        notices.append(Notice("warning", _NEW_CODES))
    return notices


placeholders.register(ui.waiting)


def _export_section(user) -> dict | None:
    records = ui.export_records(user)
    return {"records": records} if records else None  # only users imported from the legacy application


exports.register("legacy.json", _export_section)
