"""Mail accounts pointed at the session's Dovecot, and generated messages to seed it with."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pytest

from mail.models import MailAccount
from mail.sync import sync_account


def make_raw(
    n: int,
    *,
    subject: str | None = None,
    body_kb: int = 1,
    sender: str = "sender@example.test",
    to: str = "me@example.test",
    attachment: bytes | None = None,
    html: bool = False,
    message_id: str | None = None,
    date: datetime | None = None,
) -> bytes:
    """A well-formed message; `n` makes subject, Message-ID and date unique and ordered."""
    msg = EmailMessage()
    msg["From"] = f"Sender {n} <{sender}>"
    msg["To"] = to
    msg["Subject"] = subject if subject is not None else f"Message number {n}"
    msg["Message-ID"] = message_id or make_msgid(idstring=f"m{n}", domain="example.test")
    msg["Date"] = format_datetime(date or datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=n))
    rnd = random.Random(n)
    words = ["alpha", "beta", "gamma", "delta", "meeting", "invoice", "report", "tomorrow", "please", "thanks"]
    text = " ".join(rnd.choice(words) for _ in range(max(1, body_kb * 1024 // 7)))
    msg.set_content(f"Hello,\n\nbody of message {n}.\n{text}\n")
    if html:
        msg.add_alternative(f"<p>Hello <b>{n}</b></p><p>{text}</p>", subtype="html")
    if attachment is not None:
        msg.add_attachment(attachment, maintype="application", subtype="octet-stream", filename=f"file-{n}.bin")
    return bytes(msg)


def create_account(owner, imap_user, dovecot, **overrides) -> MailAccount:
    fields = {
        "owner": owner,
        "name": overrides.pop("name", f"Test {imap_user.username}"),
        "email_address": "me@example.test",
        "imap_host": dovecot.host,
        "imap_port": dovecot.port,
        "imap_security": "plain",
        "imap_username": imap_user.username,
        "imap_password": imap_user.password,
    }
    fields.update(overrides)
    return MailAccount.objects.create(**fields)


def create_pop3_account(owner, imap_user, dovecot, **overrides) -> MailAccount:
    """A POP3 account on the session Dovecot's plain POP3 port (STLS offered there)."""
    fields = {"protocol": "pop3", "imap_port": dovecot.pop3_port, "imap_security": "plain"}
    fields.update(overrides)
    return create_account(owner, imap_user, dovecot, **fields)


def select_folders(account: MailAccount, *names: str) -> None:
    """Run the folder discovery a first sync does, then choose folders like the folder page."""
    from mail import imap
    from mail.sync import refresh_folders, server_config

    with imap.ImapSession(server_config(account)) as session:
        refresh_folders(account, session.list_folders())
    account.folders.update(sync_enabled=False)
    account.folders.filter(name__in=names).update(sync_enabled=True)


@pytest.fixture
def mail_account(alice, imap_user, dovecot) -> MailAccount:
    return create_account(alice.user, imap_user, dovecot)


def run_sync(account: MailAccount):
    """A sync in the foreground, as the task would run it; returns the finished SyncRun."""
    outcome = sync_account(account.pk)
    return outcome.run


@pytest.fixture
def five_synced(alice, dovecot, imap_user) -> MailAccount:
    """Alice's account with five messages synced (their analyses still pending)."""
    for n in range(5):
        dovecot.deliver(imap_user, make_raw(n))
    account = create_account(alice.user, imap_user, dovecot)
    assert run_sync(account).status == "success"
    return account
