"""Sending drafts over SMTP: the MIME message, the SMTP conversation, and what happens after.

The one module that speaks SMTP (as mail/imap.py is for IMAP). A service: no request, no Celery.
Its connections are made by core/outbound.py (a checked address; TLS verifies the host name).

* ``queue_send(draft)`` moves a draft (or a failed one) to "sending" under a row lock; only the
  call that made that move may start the sending, so a double click queues one send.
* ``send_draft(draft_id)`` does the sending, holding the draft's advisory lock. It marks the attempt
  as started before talking to the server; an attempt found started but unfinished with the lock
  free (its worker died mid-send) is failed with a message asking the user to check their Sent
  folder, never repeated blindly: sending twice is worse than asking.
* On success the exact bytes sent are kept (encrypted) and the outbox gets the \\Answered flag for
  the original and an APPEND to the Sent folder (mail/actions.py), so an unreachable IMAP server
  delays them instead of losing them. On failure the draft keeps everything and gets an error
  written for the user: it names the server and what went wrong, never a password or mail content.
"""

from __future__ import annotations

import logging
import smtplib
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, make_msgid

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from accounts.keyring import KeyringLocked
from core import outbound
from core.db.locks import lock_key, try_advisory_lock
from core.stored_text import Text, dump, message_of

from . import actions, oauth
from .connecting import describe_connect_error, tls_context
from .models import Draft, MailAccount
from .replies import AddressListError, parse_address_list

log = logging.getLogger(__name__)

Status = Draft.Status
INTERRUPTED = gettext_noop(
    "Sending was interrupted and may or may not have gone out: check your Sent folder "
    "(or ask the recipient) before trying again."
)


class SendError(Exception):
    """Sending failed. `str(exc)` is for the user; `kind` says why (for logs and tests)."""

    def __init__(self, kind: str, message: Text | str):
        super().__init__(message)
        self.kind = kind  # config | policy | dns | refused | tls | timeout | network | auth | sender | recipients | ...


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: str  # "ssl" | "starttls" | "plain"
    username: str
    password: str = field(repr=False)
    timeout: float = 30.0
    oauth_token: str = field(default="", repr=False)  # set: AUTH XOAUTH2 (or OAUTHBEARER) instead of the password


def smtp_config(account: MailAccount) -> SmtpConfig:
    """The account's SMTP settings; an empty SMTP user name or password means "the IMAP one".

    An OAuth2 account signs in to SMTP with the same token as to IMAP, refreshed first if due.
    """
    if not account.smtp_host:
        raise SendError(
            "config", Text(gettext_noop("This account has no SMTP server: add one in the account's settings."))
        )
    token = ""
    if account.uses_oauth:
        try:
            token = oauth.access_token(account)
        except oauth.SignInAgain as exc:
            raise SendError("auth", message_of(exc)) from None
        except oauth.ProviderUnavailable as exc:
            raise SendError("network", message_of(exc)) from None
    return SmtpConfig(
        host=account.smtp_host,
        port=account.smtp_port,
        security=account.smtp_security,
        username=account.smtp_username or account.imap_username,
        password=account.smtp_password or account.imap_password,
        timeout=settings.MAILHELPER_SMTP_TIMEOUT,
        oauth_token=token,
    )


# --------------------------------------------------------------------------------------------------
# The message
# --------------------------------------------------------------------------------------------------


def _addresses(text: str, label: str) -> list[Address]:
    try:
        pairs = parse_address_list(text)
    except AddressListError as exc:
        raise SendError("address", f"{label}: {exc}") from None
    try:
        return [Address(display_name=name, addr_spec=address) for name, address in pairs]
    except (ValueError, IndexError) as exc:
        problem = type(exc).__name__
        text = gettext_noop("%(field)s: an address cannot be written in a mail header (%(problem)s).")
        raise SendError("address", Text(text, field=label, problem=problem)) from None


def build_message(draft: Draft, when: datetime, *, copy: bool = False) -> EmailMessage:
    """The MIME message for a draft: headers (threading included), text, forwarded attachments.

    `copy` builds the unfinished draft for the server's Drafts folder: no recipient needed.
    """
    account = draft.account
    to, cc = _addresses(draft.to, "To"), _addresses(draft.cc, "Cc")
    if not copy and not to and not cc and not _addresses(draft.bcc or "", "Bcc"):
        raise SendError("address", Text(gettext_noop("Add at least one recipient.")))
    msg = EmailMessage(policy=SMTP_POLICY)
    display = draft.owner.get_full_name() if draft.owner_id else ""
    msg["From"] = Address(display_name=display, addr_spec=account.email_address)
    if to:
        msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = draft.subject
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = f"<{draft.rfc_message_id}>"
    if draft.in_reply_to:
        msg["In-Reply-To"] = f"<{draft.in_reply_to}>"
    if draft.references:
        msg["References"] = " ".join(f"<{r}>" for r in draft.references)
    body = draft.body.replace("\r\n", "\n")
    # 7-bit safe: servers without 8BITMIME (and strict relays) accept quoted-printable everywhere.
    msg.set_content(body, cte="7bit" if body.isascii() and _short_lines(body) else "quoted-printable")
    for upload in draft.uploads.all():
        maintype, _, subtype = upload.content_type.partition("/")
        msg.add_attachment(
            upload.data or b"", maintype=maintype or "application", subtype=subtype or "octet-stream",
            filename=upload.filename or "attachment",
        )  # fmt: skip
    if draft.kind == Draft.Kind.FORWARD and draft.original is not None:
        for attachment in draft.original.attachments.all():
            if attachment.is_inline and attachment.content_id:
                continue  # images of the HTML body: the forward carries the text
            maintype, _, subtype = (attachment.content_type or "application/octet-stream").partition("/")
            msg.add_attachment(
                attachment.data or b"",
                maintype=maintype or "application",
                subtype=subtype or "octet-stream",
                filename=attachment.filename or "attachment",
            )
    return msg


def envelope_recipients(draft: Draft) -> list[str]:
    """Everyone the message goes to: To, Cc and Bcc (which no header names), each address once."""
    seen: dict[str, str] = {}
    for text, label in ((draft.to, "To"), (draft.cc, "Cc"), (draft.bcc or "", "Bcc")):
        for address in _addresses(text, label):
            seen.setdefault(address.addr_spec.lower(), address.addr_spec)
    return list(seen.values())


def _short_lines(text: str) -> bool:
    return all(len(line) <= 900 for line in text.split("\n"))


def new_message_id(account: MailAccount) -> str:
    domain = account.email_address.rpartition("@")[2] or "mailhelper.invalid"
    return make_msgid(domain=domain).strip("<>")


# --------------------------------------------------------------------------------------------------
# SMTP
# --------------------------------------------------------------------------------------------------


def _translate(exc: BaseException, config: SmtpConfig) -> SendError:
    where = f"{config.host}:{config.port}"
    if isinstance(exc, SendError):
        return exc
    known = describe_connect_error(exc, config.host, config.port, "SMTP")
    if known is not None:
        return SendError(*known)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return SendError("auth", Text(gettext_noop("%(where)s rejected the SMTP user name or password."), where=where))
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        text = gettext_noop("%(where)s does not offer what is needed (%(reply)s).")
        return SendError("unsupported", Text(text, where=where, reply=_reply_text(exc)))
    if isinstance(exc, smtplib.SMTPSenderRefused):
        text = gettext_noop("%(where)s refused the sender address (%(code)s %(reply)s).")
        return SendError("sender", Text(text, where=where, code=exc.smtp_code, reply=_reply_text(exc)))
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({str(code) for code, _msg in exc.recipients.values()})
        text = gettext_noop("%(where)s refused every recipient (code %(codes)s).")
        return SendError("recipients", Text(text, where=where, codes=", ".join(codes)))
    if isinstance(exc, smtplib.SMTPDataError):
        text = gettext_noop("%(where)s refused the message (%(code)s %(reply)s).")
        return SendError("data", Text(text, where=where, code=exc.smtp_code, reply=_reply_text(exc)))
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return SendError("network", Text(gettext_noop("%(where)s closed the connection unexpectedly."), where=where))
    if isinstance(exc, smtplib.SMTPResponseException):
        text = gettext_noop("%(where)s answered with an error (%(code)s).")
        return SendError("protocol", Text(text, where=where, code=exc.smtp_code))
    if isinstance(exc, smtplib.SMTPException):
        text = gettext_noop("%(where)s did not speak SMTP as expected (%(error)s).")
        return SendError("protocol", Text(text, where=where, error=type(exc).__name__))
    if isinstance(exc, OSError):
        text = gettext_noop("Network error talking to %(where)s (%(error)s).")
        return SendError("network", Text(text, where=where, error=type(exc).__name__))
    text = gettext_noop("Sending through %(where)s failed (%(error)s).")
    return SendError("protocol", Text(text, where=where, error=type(exc).__name__))


def _reply_text(exc: Exception) -> str:
    """The server's short reason ("5.7.1 Relaying denied"), printable and bounded, or the error type."""
    raw = getattr(exc, "smtp_error", b"") or (exc.args[0] if exc.args and isinstance(exc.args[0], str) else b"")
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    text = " ".join("".join(c for c in text if c.isprintable()).split())
    return text[:120] or type(exc).__name__


class _CheckedSMTP(smtplib.SMTP):
    """smtplib.SMTP whose socket comes from core.outbound (a checked IP); `_host` stays the name for STARTTLS."""

    def _get_socket(self, host: str, port: int, timeout: float | None) -> socket.socket:
        return outbound.connect(host, port, timeout)


class _CheckedSMTPSSL(smtplib.SMTP_SSL, _CheckedSMTP):
    """Implicit TLS over the checked socket: SMTP_SSL's `_get_socket` wraps what `super()` gives it,
    which in this order (SMTP_SSL, _CheckedSMTP, SMTP) is the checked connection; SNI is the name."""


def _oauth_login(client: smtplib.SMTP, config: SmtpConfig) -> None:
    """AUTH XOAUTH2 (what Gmail and Microsoft 365 take), else OAUTHBEARER (RFC 7628)."""
    offered = set(client.esmtp_features.get("auth", "").upper().split())
    mechanism = next((m for m in ("XOAUTH2", "OAUTHBEARER") if m in offered), None)
    where = f"{config.host}:{config.port}"
    if mechanism is None:
        raise SendError("auth", f"{where} does not offer sign-in with OAuth2 (AUTH XOAUTH2 or OAUTHBEARER).")
    if mechanism == "XOAUTH2":
        first = f"user={config.username}\x01auth=Bearer {config.oauth_token}\x01\x01"
    else:
        identity = config.username.replace("=", "=3D").replace(",", "=2C")
        first = f"n,a={identity},\x01auth=Bearer {config.oauth_token}\x01\x01"

    def respond(challenge: bytes | None = None) -> str:
        # The first call gives the initial response; a challenge after it is the server's JSON refusal,
        # answered with the dummy response both mechanisms expect before the final 535.
        if challenge is None:
            return first
        return "\x01" if mechanism == "OAUTHBEARER" else ""

    try:
        client.auth(mechanism, respond, initial_response_ok=True)
    except smtplib.SMTPAuthenticationError:
        message = f"{where} refused the sign-in token (expired, revoked or without mail access): sign in again."
        raise SendError("auth", message) from None


def deliver(config: SmtpConfig, sender: str, recipients: list[str], raw: bytes) -> dict[str, tuple[int, bytes]]:
    """One SMTP conversation: connect (SSL, STARTTLS or plain), log in if offered, send.

    Returns the recipients the server refused (when it accepted others). Raises SendError.
    """
    try:
        if config.security == "ssl":
            client: smtplib.SMTP = _CheckedSMTPSSL(
                config.host, config.port, timeout=config.timeout, context=tls_context()
            )
        else:
            client = _CheckedSMTP(config.host, config.port, timeout=config.timeout)
    except Exception as exc:  # noqa: BLE001 - translated into SendError
        raise _translate(exc, config) from None
    try:
        client.ehlo()
        if config.security == "starttls":
            if not client.has_extn("starttls"):
                text = gettext_noop("%(where)s does not offer STARTTLS: choose SSL/TLS or another port.")
                raise SendError("tls", Text(text, where=f"{config.host}:{config.port}"))
            client.starttls(context=tls_context())
            client.ehlo()
        if config.oauth_token:
            _oauth_login(client, config)
        elif client.has_extn("auth") and config.username:
            client.login(config.username, config.password)
        return client.sendmail(sender, recipients, raw)
    except Exception as exc:  # noqa: BLE001
        raise _translate(exc, config) from None
    finally:
        try:
            client.quit()
        except Exception:  # noqa: BLE001 - the connection may already be gone
            client.close()


# --------------------------------------------------------------------------------------------------
# The draft's life cycle
# --------------------------------------------------------------------------------------------------


# A send still "sending" after this long probably lost its task (broker restarted, queue purged) or its
# worker: the page offers "check again", and queue_send() then finds out which (see there).
STUCK_AFTER = timedelta(minutes=2)


@contextmanager
def attempt_lock(draft_id) -> Iterator[bool]:
    """Held while one attempt talks to the SMTP server; PostgreSQL drops it if that worker dies.

    So "started but not finished" can be told apart precisely: lock held, the attempt is alive;
    lock free, it died halfway and must not be repeated blindly.
    """
    with try_advisory_lock(lock_key(f"draft/{draft_id}")) as acquired:
        yield acquired


def is_stuck(draft: Draft) -> bool:
    """Has this draft been "sending" for unusually long? (The page then offers "check again".)"""
    if draft.status != Status.SENDING or draft.updated_at is None:
        return False
    return timezone.now() - draft.updated_at > STUCK_AFTER


@transaction.atomic
def queue_send(draft: Draft) -> bool:
    """Mark the draft for sending. True only for the call that did so (the caller then starts it).

    A draft already "sending" is left alone (a double click), unless it is stuck: one whose task
    never started is queued again (True: a second task is harmless, see send_draft); one whose
    attempt died halfway is failed for the user to check (False); one still being sent stays so.
    """
    locked = Draft.objects.select_for_update().get(pk=draft.pk)
    if locked.status == Status.SENDING and is_stuck(locked):
        if locked.send_started_at is None:
            locked.save(update_fields=["updated_at"])
            draft.status = locked.status
            return True
        with attempt_lock(locked.pk) as free:
            if free:
                _fail(locked.pk, INTERRUPTED)
                draft.status = Status.FAILED
        return False
    if locked.status not in (Status.DRAFT, Status.FAILED):
        draft.status = locked.status
        return False
    locked.status, locked.error, locked.send_started_at = Status.SENDING, "", None
    locked.save(update_fields=["status", "error", "send_started_at", "updated_at"])
    draft.status, draft.error = locked.status, ""
    return True


def _fail(draft_id, message: Text | str) -> str:
    """The error is stored as a core.stored_text: the draft page shows it in the reader's language."""
    Draft.objects.filter(pk=draft_id, status=Status.SENDING).update(
        status=Status.FAILED, error=dump(message, 300), send_started_at=None, updated_at=timezone.now()
    )
    return Status.FAILED


def send_draft(draft_id) -> str:
    """Send a draft that queue_send() marked; returns the resulting status. Safe to call twice,
    also at the same time: only the holder of the draft's attempt lock talks to the server."""
    with attempt_lock(draft_id) as acquired:
        if not acquired:
            return Status.SENDING  # another attempt is sending it right now
        return _send_locked(draft_id)


def _send_locked(draft_id) -> str:
    with transaction.atomic():
        draft = (
            Draft.objects.select_for_update(of=("self",))
            .select_related("account", "owner", "original__folder")
            .filter(pk=draft_id)
            .first()
        )
        if draft is None or draft.status != Status.SENDING:
            return draft.status if draft else "gone"
        if draft.send_started_at is not None:
            log.warning("send of draft %s was interrupted; not repeating it", draft_id)
            return _fail(draft_id, INTERRUPTED)
        draft.send_started_at = timezone.now()
        if not draft.rfc_message_id:
            draft.rfc_message_id = new_message_id(draft.account)
        draft.save(update_fields=["send_started_at", "rfc_message_id", "updated_at"])
    try:
        when = timezone.now()
        config = smtp_config(draft.account)
        try:
            message = build_message(draft, when)
            raw = message.as_bytes(policy=SMTP_POLICY)
        except (SendError, KeyringLocked):
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. a header the email package cannot write
            text = gettext_noop("The message could not be put together (%(error)s).")
            raise SendError("build", Text(text, error=type(exc).__name__)) from None
        envelope = envelope_recipients(draft)
        refused = deliver(config, draft.account.email_address, envelope, raw)
    except SendError as exc:
        log.info("send of draft %s failed: %s", draft_id, exc.kind)
        return _fail(draft_id, message_of(exc))
    except KeyringLocked:
        return _fail(draft_id, gettext_noop("locked: log in to resume, then send again."))
    with transaction.atomic():
        draft.status, draft.sent_at, draft.sent_raw, draft.send_started_at = Status.SENT, when, raw, None
        partly = gettext_noop("Sent, but the server refused %(refused)s of %(total)s recipients.")
        draft.error = dump(Text(partly, refused=len(refused), total=len(envelope))) if refused else ""
        draft.save(update_fields=["status", "sent_at", "sent_raw", "send_started_at", "error", "updated_at"])
        actions.record_sent(draft)
    log.info("draft %s sent (%d recipients, %d bytes)", draft_id, len(envelope), len(raw))
    return Status.SENT
