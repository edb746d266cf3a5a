"""`make demo`: a local Dovecot holding the sample mailbox, a demo user with 2FA, their account synced
and analysed, so that the first page a newcomer opens already shows what the product does.

Steps, each safe to repeat (a second `make demo` reuses what the first one made):

1. Start Dovecot from its Debian binaries in ``<directory>/dovecot`` on a loopback port the caller
   chose (the same port goes into MAILHELPER_OUTBOUND_ALLOW for every process, see scripts/demo.sh).
2. Seed the Maildir with mailhelper/demo/mailbox.py once; a marker file says it was done.
3. Create the user ``demo`` with a keyring, a confirmed TOTP device and recovery codes, as the sign-up
   and 2FA pages would. The password is random and kept in ``<directory>/credentials.json`` (0600) so a
   second run can print it again; a demo user whose password no longer matches is made anew.
4. Create their IMAP account (plain IMAP on loopback: the server is ours and listens nowhere else), with
   Sent and Junk selected besides INBOX.
5. Sync and analyse in this process, not through the queue: when the URL is printed, the mail is there.

Plain Python services: the management command `demo` only prints what they return.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.db import transaction
from django_otp.oath import hotp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import keyring
from accounts.models import User
from analysis import pipeline
from analysis.models import MessageAnalysis
from mail.models import MailAccount, Message
from mail.sync import sync_account
from mailhelper.local_dovecot import DovecotServer, ImapUser

from .mailbox import DEMO_ADDRESS, DEMO_NAME, generate

DEMO_USERNAME = "demo"
IMAP_USERNAME = "demo"
ACCOUNT_NAME = "Demo mailbox"
FOLDERS = ("inbox", "sent", "junk")  # special-use names the demo account syncs


@dataclass(frozen=True)
class DemoLogin:
    """What the person at the terminal needs to log in."""

    username: str
    password: str
    totp_secret: str  # base32, as authenticator apps take it
    messages: int
    analysed: int
    seconds: float


class DemoError(Exception):
    """A step of the demo could not be done; the text says what to do."""


def start_dovecot(directory: Path, imap_port: int) -> DovecotServer:
    """Dovecot in ``directory`` with IMAP on ``imap_port`` (the other listeners on free ports)."""
    closed = _closed_parent(directory) if os.geteuid() == 0 else None
    if closed is not None:  # Dovecot would start, and every login would fail on the Maildir
        raise DemoError(
            f"run as root, Dovecot's own users cannot enter {closed} (closed to others): open it "
            "(chmod o+x) or set MAILHELPER_LOCAL_SERVICES_DIR to a directory outside it"
        )
    try:
        server = DovecotServer.create(directory / "dovecot", imap_port=imap_port)
        server.start()
    except RuntimeError as exc:  # binary missing, port taken, config refused: the text says which
        raise DemoError(str(exc)) from None
    return server


def _closed_parent(directory: Path) -> Path | None:
    """The first parent of ``directory`` that other users cannot traverse (e.g. /root), if any."""
    for parent in reversed(directory.resolve().parents):
        if parent.exists() and not parent.stat().st_mode & 0o001:
            return parent
    return None


def seed_mailbox(server: DovecotServer, directory: Path, now: datetime | None = None) -> ImapUser:
    """The demo's IMAP user with the sample mailbox, delivered once."""
    credentials = _credentials(directory)
    user = server.existing_user(IMAP_USERNAME)
    if user is None:
        user = server.add_user(IMAP_USERNAME, credentials["imap_password"])
    marker = user.home / "mailhelper-demo-seeded"  # beside the Maildir: a new Maildir is seeded again
    if not marker.exists():
        for sample in generate(now or datetime.now(UTC)):
            server.deliver(user, sample.raw, folder=sample.folder, flags=sample.flags, internaldate=sample.date)
        marker.write_text(f"{datetime.now(UTC).isoformat()}\n")
    return user


def ensure_demo_user(directory: Path) -> tuple[User, str]:
    """The demo user and their password (made anew if the stored password no longer opens it)."""
    password = _credentials(directory)["password"]
    user = User.objects.filter(username=DEMO_USERNAME).first()
    if user is not None and user.check_password(password) and keyring.has_keyring(user):
        return user, password
    with transaction.atomic():
        if user is not None:
            user.delete()  # a demo user from another set-up: their rows go with them
        user = User.objects.create_user(username=DEMO_USERNAME, email=DEMO_ADDRESS, password=password)
        user.first_name, user.last_name = DEMO_NAME.split(" ", 1)
        user.save(update_fields=["first_name", "last_name"])
        dek = keyring.create_keyring(user, password)
        TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
        keyring.issue_recovery_codes(user, dek)
    return user, password


def ensure_account(user: User, imap_user: ImapUser, server: DovecotServer) -> MailAccount:
    account = MailAccount.objects.filter(owner=user, name=ACCOUNT_NAME).first()
    if account is None:
        account = MailAccount(owner=user, name=ACCOUNT_NAME, email_address=DEMO_ADDRESS)
    account.imap_host, account.imap_port, account.imap_security = server.host, server.port, "plain"
    account.imap_username, account.imap_password = imap_user.username, imap_user.password
    account.enabled = True
    account.save()
    return account


def sync_and_analyse(account: MailAccount) -> tuple[int, int]:
    """First sync (discovers folders), select Sent and Junk, sync again, analyse what is pending.

    Returns (messages stored, messages analysed). Raises DemoError with the sync's own error text.
    """
    for _ in range(2):
        run = sync_account(account.pk).run
        if run.status != "success":
            raise DemoError(f"the demo account did not sync: {run.error or run.status}")
        account.folders.filter(special_use__in=FOLDERS).update(sync_enabled=True)
    _done, failed = pipeline.analyse_many(pipeline.pending_for_account(account.pk).iterator(chunk_size=200))
    if failed:
        raise DemoError(f"{failed} analyses failed; see the log of this command")
    analysed = MessageAnalysis.objects.filter(message__account=account, state=MessageAnalysis.State.DONE).count()
    return Message.objects.filter(account=account).count(), analysed


def prepare(directory: Path, server: DovecotServer) -> DemoLogin:
    """Steps 2-5 of the module docstring against a running server."""
    began = time.monotonic()
    imap_user = seed_mailbox(server, directory)
    user, password = ensure_demo_user(directory)
    account = ensure_account(user, imap_user, server)
    messages, analysed = sync_and_analyse(account)
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    secret = base64.b32encode(device.bin_key).decode("ascii")
    return DemoLogin(DEMO_USERNAME, password, secret, messages, analysed, time.monotonic() - began)


def current_code(username: str = DEMO_USERNAME) -> str:
    """The TOTP code valid now, for the terminal (the demo prints it so nobody needs a phone)."""
    device = TOTPDevice.objects.get(user__username=username, confirmed=True)
    step = int((time.time() - device.t0) // device.step)
    return str(hotp(device.bin_key, step, digits=device.digits)).zfill(device.digits)


def _credentials(directory: Path) -> dict[str, str]:
    """Random passwords made on the first run, kept for the next (a demo on the developer's machine)."""
    path = directory / "credentials.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    directory.mkdir(parents=True, exist_ok=True)
    values = {"password": secrets.token_urlsafe(12), "imap_password": secrets.token_urlsafe(16)}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(values, handle)
    return values
