"""Compose and send one user's digest (the task and the "send a test digest" button call this)."""

from __future__ import annotations

import logging
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.dateformat import format as format_date
from django.utils.translation import gettext, gettext_noop

from accounts import keyring
from accounts.models import User
from core.stored_text import Text, dump, message_of
from mail.models import MailAccount
from mail.sending import SendError, deliver, new_message_id, smtp_config

from . import content
from .models import DigestSettings

log = logging.getLogger(__name__)


class Outcome:
    SENT = "sent"
    NOTHING = "nothing to report"
    ALREADY = "already sent today"
    OFF = "off"
    LOCKED = "locked"
    FAILED = "failed"


def account_for(prefs: DigestSettings) -> MailAccount | None:
    """The chosen account if it still is the user's and can send, else their first one that can."""
    accounts = MailAccount.objects.filter(owner_id=prefs.owner_id).exclude(smtp_host="").order_by("created_at")
    chosen = accounts.filter(pk=prefs.account_id).first() if prefs.account_id else None
    return chosen or accounts.first()


def send(owner_id: int, now: datetime | None = None, *, test: bool = False) -> str:
    """Send today's digest unless it went out already today (beat may fire twice; a retry must not
    mail twice) or there is nothing to report. `test` (the button) sends even then.

    Written in the language the user chose for the interface (the server's when they left it to
    their browser: a task has no browser), and so are the errors kept for the settings page."""
    language = User.objects.filter(pk=owner_id).values_list("language", flat=True).first()
    with translation.override(language or settings.LANGUAGE_CODE):
        return _send(owner_id, now, test=test)


def _send(owner_id: int, now: datetime | None, *, test: bool) -> str:
    now = now or timezone.now()
    prefs = DigestSettings.objects.filter(owner_id=owner_id).first()
    if prefs is None or not (prefs.enabled or test):
        return Outcome.OFF
    zone = ZoneInfo(prefs.time_zone)
    if not test and prefs.last_sent_at and prefs.last_sent_at.astimezone(zone).date() == now.astimezone(zone).date():
        return Outcome.ALREADY
    if keyring.is_locked(owner_id):  # strict mode, logged out: subjects cannot be read
        _record(prefs, error=Text(gettext_noop("Not sent: in strict mode the digest needs you to be logged in.")))
        return Outcome.LOCKED
    digest = content.build(prefs, now)
    if digest.empty and not test:
        return Outcome.NOTHING
    account = account_for(prefs)
    if account is None:
        _record(prefs, error=Text(gettext_noop("Not sent: none of your accounts has an SMTP server.")))
        return Outcome.FAILED
    message = compose(digest, account, now.astimezone(zone))
    try:
        deliver(smtp_config(account), account.email_address, [account.email_address], message.as_bytes())
    except SendError as exc:
        _record(prefs, error=Text(gettext_noop("Not sent: %(error)s"), error=message_of(exc)))
        log.warning("digest of user %s not sent: %s", owner_id, exc.kind)
        return Outcome.FAILED
    _record(prefs, sent_at=now)
    log.info("digest of user %s sent (%d open)", owner_id, digest.open_total)
    return Outcome.SENT


def _record(prefs: DigestSettings, *, sent_at: datetime | None = None, error: Text | str = "") -> None:
    """The error is a core.stored_text: the settings page shows it in the language of whoever reads it."""
    fields = {"last_error": dump(error, 300)}
    if sent_at is not None:
        fields["last_sent_at"] = sent_at
    DigestSettings.objects.filter(pk=prefs.pk).update(**fields)


def absolute(path: str) -> str:
    return settings.MAILHELPER_BASE_URL.rstrip("/") + path


def compose(digest: content.Digest, account: MailAccount, local_now: datetime) -> EmailMessage:
    context = {
        "digest": digest,
        "date": local_now,
        "dashboard_url": absolute(reverse("mail:dashboard")),
        "settings_url": absolute(reverse("digest:settings")),
        "sections": [
            (s, [(item, absolute(reverse("mail:message", args=[item.message_id]))) for item in s.items])
            for s in digest.sections
            if s.total
        ],
    }
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = Address(display_name="Mailhelper", addr_spec=account.email_address)
    msg["To"] = account.email_address
    msg["Subject"] = gettext("Mailhelper: %(count)s open, %(date)s") % {
        "count": digest.open_total,
        "date": format_date(local_now, "l d F"),
    }
    msg["Date"] = format_datetime(local_now)
    msg["Message-ID"] = f"<{new_message_id(account)}>"
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to it
    msg.set_content(render_to_string("digest/digest.txt", context))
    msg.add_alternative(render_to_string("digest/digest.html", context), subtype="html")
    return msg
