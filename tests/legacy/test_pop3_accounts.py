"""Legacy POP3 accounts (auth_type "pop3", the pop3_* columns) become working POP3 accounts.

The legacy file is built like the legacy application wrote it (values sealed with the legacy key);
after the first-login conversion the account syncs against Dovecot's real POP3 server.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from accounts.models import User
from legacy import conversion
from legacy.models import LegacyRecord, LegacySealedValue
from mail.models import MailAccount, Pop3Seen
from tests.plugins.mail import make_raw, run_sync

from .legacy_db import LegacyDB

pytestmark = pytest.mark.django_db


def run_import(path) -> str:
    out = io.StringIO()
    call_command("import_legacy", "--sqlite", str(path), stdout=out, stderr=io.StringIO(), no_color=True)
    return out.getvalue()


def test_a_legacy_pop3_account_is_imported_converted_and_syncs(tmp_path, dovecot, imap_user, settings):
    settings.MAILHELPER_EXTRA_CA_FILE = str(dovecot.cert_path)  # the account gets STLS on a non-995 port
    db = LegacyDB(tmp_path / "legacy.sqlite")
    carol = db.add_user("carol_legacy", "carol legacy password 3")
    db.insert(
        "mail_accounts",
        user_id=carol.id,
        name="Provider",
        auth_type="POP3",
        imap_port=993,
        imap_encryption="SSL",
        encrypted_pop3_server=db.enc(carol, dovecot.host),
        pop3_port=dovecot.pop3_port,
        encrypted_pop3_username=db.enc(carol, imap_user.username),
        encrypted_pop3_password=db.enc(carol, imap_user.password),
        encrypted_smtp_server=db.enc(carol, "smtp.example.test"),
        smtp_port=587,
        smtp_encryption="STARTTLS",
        enabled=1,
        created_at="2024-03-02 09:00:00",
    )
    db.insert(  # an IMAP account with a stray POP3 password: its pop3_* columns stay in its record
        "mail_accounts",
        user_id=carol.id,
        name="Work",
        auth_type="password",
        encrypted_imap_server=db.enc(carol, "imap.example.test"),
        imap_port=993,
        encrypted_pop3_password=db.enc(carol, "stray pop3 secret"),
        pop3_port=110,
        enabled=1,
    )
    db.close()

    output = run_import(db.path)
    assert "All checksums match." in output, output
    user = User.objects.get(username="carol_legacy")
    pop, work = MailAccount.objects.get(owner=user, name="Provider"), MailAccount.objects.get(owner=user, name="Work")
    assert (pop.protocol, pop.imap_port, pop.imap_security) == ("pop3", dovecot.pop3_port, "starttls")
    assert (work.protocol, work.imap_port, work.imap_security) == ("imap", 993, "ssl")
    assert not pop.enabled and pop.imap_host == ""  # sealed until the first login
    record = LegacyRecord.objects.get(table="mail_accounts", legacy_id=2)
    assert record.data.get("pop3_port") == 110 and "auth_type" in record.data
    assert LegacySealedValue.objects.filter(target="mail.mailaccount", target_pk=str(pop.pk)).count() == 4

    assert conversion.on_password_verified(user, carol.password)
    assert conversion.convert_user(user.pk).failed == 0
    pop.refresh_from_db()
    assert (pop.imap_host, pop.imap_username, pop.imap_password) == (
        dovecot.host,
        imap_user.username,
        imap_user.password,
    )
    assert pop.enabled and pop.status == MailAccount.Status.NEW and pop.smtp_host == "smtp.example.test"
    work.refresh_from_db()
    assert work.imap_host == "imap.example.test" and work.imap_password == ""  # not the stray POP3 one
    assert "All checksums match." in run_import(db.path)  # a rerun after conversion: still accounted for

    dovecot.deliver(imap_user, make_raw(1))
    dovecot.deliver(imap_user, make_raw(2))
    synced = run_sync(pop)
    assert synced.status == "success" and synced.messages_new == 2, synced.error
    assert Pop3Seen.objects.filter(account=pop).count() == 2
    assert MailAccount.objects.filter(owner=user).count() == 2
