"""Prove the mail-server fixtures (tests/plugins/mailservers.py) with real protocol traffic.

Only the standard library talks to the servers here (imaplib, smtplib, ssl), so a failure points at
the fixture, not at product code. None of these tests needs the Django database.
"""

from __future__ import annotations

import email
import imaplib
import re
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from tests.plugins.mailservers import DovecotServer, ImapUser, SmtpSink, client_ssl_context


def make_message(subject: str, body: str = "Hello.\r\n", sender: str = "alice@example.test") -> bytes:
    """A minimal RFC 5322 message with CRLF line endings, as a server would store it."""
    return (
        f"From: {sender}\r\n"
        f"To: bob@example.test\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: <{abs(hash(subject))}@example.test>\r\n"
        f"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
        f"\r\n"
        f"{body}"
    ).encode()


@contextmanager
def imap_session(server: DovecotServer, user: ImapUser) -> Iterator[imaplib.IMAP4]:
    """A logged-in plain-IMAP connection, logged out afterwards (if the server is still there)."""
    conn = imaplib.IMAP4(server.host, server.port, timeout=10)
    try:
        conn.login(user.username, user.password)
        yield conn
    finally:
        with suppress(imaplib.IMAP4.abort, OSError):
            conn.logout()


def fetch_summaries(conn: imaplib.IMAP4) -> list[tuple[int, set[str], str]]:
    """(uid, flags, subject) of every message in the selected mailbox, in sequence order."""
    typ, data = conn.fetch("1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK"
    summaries = []
    for item in data:
        if not isinstance(item, tuple):
            continue
        meta = item[0].decode()
        uid = int(re.search(r"UID (\d+)", meta).group(1))
        flags = set(re.search(r"FLAGS \(([^)]*)\)", meta).group(1).split())
        subject = email.message_from_bytes(item[1])["Subject"]
        summaries.append((uid, flags, subject))
    return summaries


# ---------------------------------------------------------------------------------------------------
# Dovecot: login
# ---------------------------------------------------------------------------------------------------


def test_plain_imap_login(dovecot: DovecotServer, imap_user: ImapUser) -> None:
    conn = imaplib.IMAP4(dovecot.host, dovecot.port, timeout=10)
    typ, data = conn.login(imap_user.username, imap_user.password)
    assert typ == "OK"
    assert conn.state == "AUTH"
    typ, data = conn.select("INBOX")
    assert typ == "OK"
    assert data == [b"0"]  # a fresh user's INBOX is empty
    conn.logout()


def test_imaps_login_with_verified_self_signed_cert(dovecot: DovecotServer, imap_user: ImapUser) -> None:
    # Full verification: the fixture's certificate is the only trusted CA, hostname checked via SAN.
    context = client_ssl_context(dovecot.cert_path)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    conn = imaplib.IMAP4_SSL("localhost", dovecot.ssl_port, ssl_context=context, timeout=10)
    try:
        assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
        typ, _ = conn.login(imap_user.username, imap_user.password)
        assert typ == "OK"
    finally:
        conn.logout()


def test_imaps_rejects_untrusted_cert_by_default(dovecot: DovecotServer) -> None:
    # Proves the IMAPS port really speaks TLS with our own (not a system-trusted) certificate.
    with pytest.raises(ssl.SSLCertVerificationError):
        imaplib.IMAP4_SSL(dovecot.host, dovecot.ssl_port, ssl_context=ssl.create_default_context(), timeout=10)


def test_wrong_password_is_rejected(dovecot: DovecotServer, imap_user: ImapUser) -> None:
    conn = imaplib.IMAP4(dovecot.host, dovecot.port, timeout=10)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED|Authentication failed"):
        conn.login(imap_user.username, imap_user.password + "x")
    with pytest.raises(imaplib.IMAP4.error):
        conn.login("nobody-" + imap_user.username, imap_user.password)
    conn.logout()


def test_users_added_back_to_back_can_log_in_at_once(dovecot: DovecotServer) -> None:
    # Dovecot rereads the passwd-file when it changes; no reload needed, even within one second.
    users = [dovecot.add_user() for _ in range(3)]
    for user in users:
        with imap_session(dovecot, user) as conn:
            assert conn.state == "AUTH"
    chosen = dovecot.add_user("chosen-name-" + users[0].username, "s3cret pass")
    with imap_session(dovecot, chosen) as conn:
        assert conn.state == "AUTH"
    assert chosen.maildir == chosen.home / "Maildir"
    assert chosen.home.stat().st_uid == dovecot.mail_uid != 0


# ---------------------------------------------------------------------------------------------------
# Dovecot: capabilities and folders
# ---------------------------------------------------------------------------------------------------


def test_capability_includes_condstore_and_qresync(dovecot: DovecotServer, imap_user: ImapUser) -> None:
    with imap_session(dovecot, imap_user) as conn:
        typ, data = conn.capability()
        assert typ == "OK"
        capabilities = set(data[0].decode().upper().split())
        assert {"CONDSTORE", "QRESYNC", "IDLE", "MOVE", "UIDPLUS", "SPECIAL-USE"} <= capabilities
        # And they really work: after ENABLE QRESYNC, SELECT reports HIGHESTMODSEQ.
        typ, data = conn._simple_command("ENABLE", "QRESYNC")
        assert typ == "OK"
        assert conn.untagged_responses.get("ENABLED") == [b"QRESYNC"]
        typ, _ = conn.select("INBOX")
        assert typ == "OK"
        assert "HIGHESTMODSEQ" in conn.untagged_responses


def test_list_shows_special_use_folders(dovecot: DovecotServer, imap_user: ImapUser) -> None:
    with imap_session(dovecot, imap_user) as conn:
        typ, data = conn.list()
        assert typ == "OK"
        folders = {}
        for line in data:
            match = re.match(rb'\(([^)]*)\) "(.)" (.+)', line)
            assert match, line
            folders[match.group(3).decode().strip('"')] = set(match.group(1).decode().split())
        assert "INBOX" in folders
        for name, attribute in {
            "Sent": "\\Sent",
            "Trash": "\\Trash",
            "Archive": "\\Archive",
            "Drafts": "\\Drafts",
            "Junk": "\\Junk",
        }.items():
            assert attribute in folders[name], (name, folders)
        typ, data = conn.lsub()
        assert typ == "OK"
        subscribed = b" ".join(data)
        assert all(name in subscribed for name in (b"Sent", b"Trash", b"Archive", b"Drafts", b"Junk"))


# ---------------------------------------------------------------------------------------------------
# Dovecot: deliver()
# ---------------------------------------------------------------------------------------------------


def test_delivered_message_is_visible_with_subject_and_body(dovecot: DovecotServer, imap_user: ImapUser) -> None:
    raw = make_message("Quarterly report", body="Numbers attached.\r\n")
    path = dovecot.deliver(imap_user, raw)
    assert path.parent == imap_user.maildir / "new"
    assert path.stat().st_uid == dovecot.mail_uid
    with imap_session(dovecot, imap_user) as conn:
        typ, data = conn.select("INBOX")
        assert data == [b"1"]
        [(uid, flags, subject)] = fetch_summaries(conn)
        assert subject == "Quarterly report"
        assert "\\Seen" not in flags
        typ, data = conn.fetch("1", "(BODY.PEEK[])")
        assert typ == "OK"
        assert data[0][1] == raw  # byte-for-byte what was delivered


def test_delivered_with_seen_flag_shows_seen(dovecot: DovecotServer, imap_user: ImapUser) -> None:
    dovecot.deliver(imap_user, make_message("unread one"))
    seen_path = dovecot.deliver(imap_user, make_message("read one"), flags="S")
    dovecot.deliver(imap_user, make_message("flagged and answered"), flags="RF")
    assert seen_path.parent == imap_user.maildir / "cur"
    assert seen_path.name.endswith(":2,S")
    with imap_session(dovecot, imap_user) as conn:
        conn.select("INBOX")
        summaries = {subject: flags for _, flags, subject in fetch_summaries(conn)}
        assert "\\Seen" not in summaries["unread one"]
        assert "\\Seen" in summaries["read one"]
        assert {"\\Flagged", "\\Answered"} <= summaries["flagged and answered"]
        typ, data = conn.search(None, "UNSEEN")
        assert data == [b"1 3"]


def test_deliver_into_sent_folder_and_internaldate(dovecot: DovecotServer, imap_user: ImapUser) -> None:
    when = datetime(2023, 5, 17, 8, 30, tzinfo=UTC)
    path = dovecot.deliver(imap_user, make_message("sent by me"), folder="Sent", flags="S", internaldate=when)
    assert path.parent == imap_user.maildir / ".Sent" / "cur"
    with imap_session(dovecot, imap_user) as conn:
        typ, data = conn.select("INBOX")
        assert data == [b"0"]
        typ, data = conn.select("Sent")
        assert data == [b"1"]
        [(_, flags, subject)] = fetch_summaries(conn)
        assert subject == "sent by me" and "\\Seen" in flags
        typ, data = conn.fetch("1", "(INTERNALDATE)")
        assert b'"17-May-2023 08:30:00 +0000"' in data[0]


def test_deliver_hundreds_fast_in_uid_order(dovecot: DovecotServer, imap_user: ImapUser) -> None:
    count = 300
    started = time.monotonic()
    for number in range(count):
        dovecot.deliver(imap_user, make_message(f"bulk {number:03d}"), flags="S" if number % 2 else "")
    assert time.monotonic() - started < 5
    with imap_session(dovecot, imap_user) as conn:
        typ, data = conn.select("INBOX")
        assert data == [str(count).encode()]
        summaries = fetch_summaries(conn)
    assert [uid for uid, _, _ in summaries] == list(range(1, count + 1))
    assert [subject for _, _, subject in summaries] == [f"bulk {n:03d}" for n in range(count)]
    assert all(("\\Seen" in flags) == bool(uid % 2 == 0) for uid, flags, _ in summaries)


def test_users_do_not_see_each_others_mail(dovecot: DovecotServer, imap_user: ImapUser) -> None:
    other = dovecot.add_user()
    dovecot.deliver(imap_user, make_message("for the first user"))
    dovecot.deliver(other, make_message("for the other user"))
    dovecot.deliver(other, make_message("also for the other user"))
    with imap_session(dovecot, imap_user) as conn:
        conn.select("INBOX")
        assert [s for _, _, s in fetch_summaries(conn)] == ["for the first user"]
    with imap_session(dovecot, other) as conn:
        conn.select("INBOX")
        assert [s for _, _, s in fetch_summaries(conn)] == ["for the other user", "also for the other user"]


def test_deliver_is_seen_by_an_idling_client(dovecot: DovecotServer, imap_user: ImapUser) -> None:
    # Sync code relies on IDLE noticing new mail; Dovecot watches the Maildir (inotify), so a
    # deliver() during IDLE must produce an untagged EXISTS quickly.
    with imap_session(dovecot, imap_user) as conn:
        conn.select("INBOX")
        conn.send(b"I1 IDLE\r\n")
        assert conn.readline().startswith(b"+ ")
        started = time.monotonic()
        dovecot.deliver(imap_user, make_message("pushed"))
        assert conn.readline().strip() == b"* 1 EXISTS"
        assert time.monotonic() - started < 5
        conn.send(b"DONE\r\n")
        while not (line := conn.readline()).startswith(b"I1 "):
            pass
        assert line.startswith(b"I1 OK")


def test_imap_user_starts_empty(dovecot: DovecotServer, imap_user: ImapUser) -> None:
    # Runs after the tests above delivered mail: a new imap_user must not inherit any of it.
    assert list((imap_user.maildir / "new").iterdir()) == []
    with imap_session(dovecot, imap_user) as conn:
        typ, data = conn.select("INBOX")
        assert data == [b"0"]


# ---------------------------------------------------------------------------------------------------
# Dovecot: stop() / start()
# ---------------------------------------------------------------------------------------------------


def test_stop_refuses_connections_and_start_restores_service(dovecot: DovecotServer, imap_user: ImapUser) -> None:
    dovecot.deliver(imap_user, make_message("survives restart"))
    port, ssl_port = dovecot.port, dovecot.ssl_port
    existing = imaplib.IMAP4(dovecot.host, dovecot.port, timeout=10)
    existing.login(imap_user.username, imap_user.password)
    existing.select("INBOX")
    try:
        dovecot.stop()
        assert not dovecot.running
        for p in (port, ssl_port):
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((dovecot.host, p), timeout=2)
        # An already logged-in connection is cut too, like on a real server restart.
        with pytest.raises((imaplib.IMAP4.abort, OSError)):
            existing.noop()
    finally:
        dovecot.start()
    assert dovecot.running
    assert (dovecot.port, dovecot.ssl_port) == (port, ssl_port)
    with imap_session(dovecot, imap_user) as conn:
        typ, data = conn.select("INBOX")
        assert data == [b"1"]
        assert [s for _, _, s in fetch_summaries(conn)] == ["survives restart"]


# ---------------------------------------------------------------------------------------------------
# SMTP sink
# ---------------------------------------------------------------------------------------------------


def build_email(subject: str, sender: str, to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message.set_content("Body line one.\nBody line two.\n")
    return message


def test_smtp_sink_receives_envelope_and_body(smtp_sink: SmtpSink) -> None:
    assert smtp_sink.messages == []
    message = build_email("Hello sink", "alice@example.test", "bob@example.test")
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=10) as client:
        refused = client.send_message(
            message, from_addr="bounce@example.test", to_addrs=["bob@example.test", "carol@example.test"]
        )
    assert refused == {}
    [received] = smtp_sink.messages
    assert received.mail_from == "bounce@example.test"
    assert received.rcpt_tos == ["bob@example.test", "carol@example.test"]
    parsed = email.message_from_bytes(received.data)
    assert parsed["Subject"] == "Hello sink"
    assert parsed["From"] == "alice@example.test"
    assert "Body line two." in parsed.get_payload()
    assert received.auth_login is None and received.tls is False


def test_smtp_sink_is_empty_again_and_clear_works(smtp_sink: SmtpSink) -> None:
    # The previous test's message must not leak into this one.
    assert smtp_sink.messages == []
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=10) as client:
        client.sendmail("a@example.test", ["b@example.test"], b"Subject: one\r\n\r\nx\r\n")
        client.sendmail("a@example.test", ["c@example.test"], b"Subject: two\r\n\r\ny\r\n")
    assert [m.rcpt_tos for m in smtp_sink.messages] == [["b@example.test"], ["c@example.test"]]
    smtp_sink.clear()
    assert smtp_sink.messages == []


def test_smtp_sink_wait_for_messages_sent_from_another_thread(smtp_sink: SmtpSink) -> None:
    def send_later() -> None:
        time.sleep(0.3)
        with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=10) as client:
            client.sendmail("late@example.test", ["b@example.test"], b"Subject: late\r\n\r\nx\r\n")

    sender = threading.Thread(target=send_later)
    sender.start()
    [received] = smtp_sink.wait_for_messages(1, timeout=10)
    sender.join()
    assert received.mail_from == "late@example.test"
    with pytest.raises(AssertionError, match="expected 2 message"):
        smtp_sink.wait_for_messages(2, timeout=0.2)


def test_smtp_sink_tls_requires_starttls_and_auth(smtp_sink_tls: SmtpSink) -> None:
    assert smtp_sink_tls.cert_path is not None and smtp_sink_tls.username and smtp_sink_tls.password
    message = build_email("Over TLS", smtp_sink_tls.username, "bob@example.test")
    with smtplib.SMTP(smtp_sink_tls.host, smtp_sink_tls.port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        assert not client.has_extn("auth")  # AUTH is only offered after STARTTLS
        with pytest.raises(smtplib.SMTPSenderRefused):
            client.sendmail("x@example.test", ["bob@example.test"], b"Subject: no auth\r\n\r\nx\r\n")
    with smtplib.SMTP(smtp_sink_tls.host, smtp_sink_tls.port, timeout=10) as client:
        client.starttls(context=client_ssl_context(smtp_sink_tls.cert_path))
        client.ehlo()
        assert {"PLAIN", "LOGIN"} <= set(client.esmtp_features["auth"].upper().split())
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login(smtp_sink_tls.username, smtp_sink_tls.password + "wrong")
    for mechanism in ("PLAIN", "LOGIN"):
        with smtplib.SMTP(smtp_sink_tls.host, smtp_sink_tls.port, timeout=10) as client:
            client.starttls(context=client_ssl_context(smtp_sink_tls.cert_path))
            client.ehlo()
            client.user, client.password = smtp_sink_tls.username, smtp_sink_tls.password
            code, _ = client.auth(mechanism, getattr(client, f"auth_{mechanism.lower()}"))
            assert code == 235
            client.send_message(message)
    assert len(smtp_sink_tls.messages) == 2
    for received in smtp_sink_tls.messages:
        assert received.tls is True
        assert received.auth_login == smtp_sink_tls.username
        assert received.rcpt_tos == ["bob@example.test"]
        assert email.message_from_bytes(received.data)["Subject"] == "Over TLS"
