"""The IMAP layer's error messages, TLS, and very large messages, against real sockets.

The tests taking `mail_server` run against Dovecot and Cyrus (tests/plugins/imap_servers.py).
"""

import io
import socket
import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from mail import imap
from mail.models import Message
from tests.plugins.imap_servers import ALL_SERVERS
from tests.plugins.mail import create_account, make_raw


def config(dovecot, user, **overrides) -> imap.ServerConfig:
    values = {
        "host": dovecot.host,
        "port": dovecot.port,
        "security": "plain",
        "username": user.username,
        "password": user.password,
        "timeout": 5,
    }
    values.update(overrides)
    return imap.ServerConfig(**values)


@pytest.mark.parametrize("mail_server", ALL_SERVERS, indirect=True)
def test_successful_check_lists_folders_with_counts(mail_server, mail_user):
    mail_server.deliver(mail_user, make_raw(1))
    mail_server.deliver(mail_user, make_raw(2), flags="S")
    mail_server.deliver(mail_user, make_raw(3), folder="Archive")
    report = imap.check_connection(config(mail_server, mail_user))
    assert report.ok and ("CONDSTORE" in report.capabilities) == mail_server.condstore
    inbox = next(f for f in report.folders if f.name == "INBOX")
    assert (inbox.special_use, inbox.messages, inbox.unseen) == ("inbox", 2, 1)
    archive = next(f for f in report.folders if f.name == mail_server.folder("Archive"))
    assert (archive.special_use, archive.delimiter, archive.messages) == ("archive", mail_server.separator, 1)


@pytest.mark.parametrize(
    ("overrides", "kind", "phrase"),
    [
        ({"password": "not-the-password"}, "auth", "rejected the user name or password"),
        ({"host": "no-such-host.invalid"}, "dns", "could not be found"),
        ({"port": 1}, "refused", "refused the connection"),
        ({"security": "ssl"}, "tls", "TLS"),  # TLS spoken to the plain-text port
    ],
)
def test_each_failure_gets_a_precise_message(mail_server, mail_user, overrides, kind, phrase):
    report = imap.check_connection(config(mail_server, mail_user, **overrides))
    assert not report.ok and report.kind == kind and phrase in report.message
    assert mail_user.password not in report.message


def test_a_server_that_never_answers_times_out():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the TCP connection, never sends a greeting
    try:
        cfg = imap.ServerConfig("127.0.0.1", listener.getsockname()[1], "plain", "u", "p", timeout=1)
        report = imap.check_connection(cfg)
    finally:
        listener.close()
    assert not report.ok and report.kind == "timeout" and "did not answer in time" in report.message


def test_imaps_verifies_the_certificate_and_trusts_a_configured_ca(dovecot, imap_user, settings):
    untrusted = imap.check_connection(config(dovecot, imap_user, port=dovecot.ssl_port, security="ssl"))
    assert not untrusted.ok and untrusted.kind == "tls" and "not trusted" in untrusted.message
    settings.MAILHELPER_EXTRA_CA_FILE = str(dovecot.cert_path)
    trusted = imap.check_connection(config(dovecot, imap_user, port=dovecot.ssl_port, security="ssl"))
    assert trusted.ok, trusted.message


def test_starttls_is_refused_when_the_server_offers_no_tls_on_that_port(imap_user):
    # A fake server that greets and answers STARTTLS with BAD: the session must not go on in plain text.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve():
        conn, _ = listener.accept()
        conn.sendall(b"* OK [CAPABILITY IMAP4rev1] fake\r\n")
        data = conn.recv(1024)
        tag = data.split(b" ")[0]
        if b"CAPABILITY" in data:
            conn.sendall(b"* CAPABILITY IMAP4rev1\r\n" + tag + b" OK done\r\n")
            data = conn.recv(1024)
            tag = data.split(b" ")[0]
        conn.sendall(tag + b" BAD no tls here\r\n")
        conn.recv(1024)
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        cfg = imap.ServerConfig("127.0.0.1", listener.getsockname()[1], "starttls", "u", "p", timeout=3)
        report = imap.check_connection(cfg)
    finally:
        listener.close()
    assert not report.ok


@pytest.mark.django_db
@pytest.mark.slow
def test_a_25_mb_message_is_synced_whole(dovecot, imap_user, alice):
    big = bytes(range(256)) * (25 * 1024 * 1024 // 256)
    dovecot.deliver(imap_user, make_raw(1, attachment=big))
    dovecot.deliver(imap_user, make_raw(2))
    account = create_account(alice.user, imap_user, dovecot)
    out = io.StringIO()
    call_command("sync_account", str(account.pk), stdout=out)
    assert "2 new" in out.getvalue()
    message = Message.objects.get(account=account, uid=1)
    attachment = message.attachments.get()
    assert attachment.size == len(big) and attachment.data == big
    assert message.size > len(big)  # base64 on the wire


@pytest.mark.django_db
def test_sync_account_command_reports_errors_clearly(alice, imap_user, dovecot):
    with pytest.raises(CommandError, match="no mail account"):
        call_command("sync_account", "00000000-0000-0000-0000-000000000000")
    account = create_account(alice.user, imap_user, dovecot, imap_password="wrong")
    with pytest.raises(CommandError, match="user name or password"):
        call_command("sync_account", str(account.pk), stdout=io.StringIO())


def test_fetching_leaves_no_copy_of_the_mail_in_imaplib_trace(dovecot, imap_user, caplog):
    """imapclient turns imaplib's trace on (debug level 5), which formats repr() of every fetched
    message before the logger drops it: a fifth of a first sync's CPU, and mail content in a log
    record for whoever enables DEBUG. Our sessions turn that trace off."""
    dovecot.deliver(imap_user, make_raw(1, subject="Quarterly secret figures"))
    caplog.set_level("DEBUG", logger="imapclient")
    with imap.ImapSession(config(dovecot, imap_user)) as session:
        session.select("INBOX", readonly=True)
        fetched = list(session.fetch_messages(session.uids_from(1)))
    assert len(fetched) == 1 and b"Quarterly secret figures" in fetched[0].raw
    assert not any("Quarterly secret figures" in record.getMessage() for record in caplog.records)
