"""Sending drafts (mail/sending.py) through the real aiosmtpd sink, with the Sent copy and the
\\Answered flag written to the real Dovecot by the outbox. No mocks."""

from __future__ import annotations

import email
from datetime import timedelta
from email.policy import default as default_policy

import pytest
from django.utils import timezone

from core.stored_text import render
from mail import actions, imap, replies, sending
from mail.models import Draft, Message, PendingAction
from tests.mail.factories import raw_message
from tests.plugins import imap_helpers as srv
from tests.plugins.mail import run_sync, select_folders
from tests.plugins.mailservers import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def original(mail_account, imap_user, dovecot) -> Message:
    dovecot.deliver(imap_user, raw_message(attachment=b"%PDF-1.4 the report"))
    select_folders(mail_account, "INBOX", "Sent")
    assert run_sync(mail_account).status == "success"
    return Message.objects.get(account=mail_account, folder__name="INBOX")


def use_smtp(account, sink, security: str = "plain", **fields) -> None:
    account.smtp_host, account.smtp_port, account.smtp_security = sink.host, sink.port, security
    for name, value in fields.items():
        setattr(account, name, value)
    account.save()


def send(draft: Draft) -> Draft:
    assert sending.queue_send(draft)
    sending.send_draft(draft.pk)
    return Draft.objects.get(pk=draft.pk)


def parsed(sink_message) -> email.message.EmailMessage:
    return email.message_from_bytes(sink_message.data, policy=default_policy)


def test_a_reply_is_delivered_threaded_copied_to_sent_and_the_original_answered(
    original, mail_account, smtp_sink, imap_user, dovecot
):
    use_smtp(mail_account, smtp_sink)
    draft = replies.create_draft(original, "reply_all", style="brief")
    replies.update_draft(draft, to=draft.to, cc=draft.cc, subject=draft.subject, body="Thanks, Anna – on its way.")
    draft = send(draft)

    assert draft.status == "sent" and draft.error == "" and draft.sent_at is not None
    [delivered] = smtp_sink.messages
    assert delivered.mail_from == "me@example.test"
    assert sorted(delivered.rcpt_tos) == ["anna@example.test", "bob@example.test", "carol@example.test"]
    msg = parsed(delivered)
    assert msg["From"] == "me@example.test"
    assert msg["To"] == '"Schmidt, Anna" <anna@example.test>, Bob Builder <bob@example.test>'
    assert msg["Cc"] == "carol@example.test"
    assert msg["Subject"] == "Re: Quarterly report"
    assert msg["In-Reply-To"] == f"<{original.message_id}>"
    assert msg["References"] == f"<root@example.test> <middle@example.test> <{original.message_id}>"
    assert msg["Message-ID"] == f"<{draft.rfc_message_id}>" and draft.rfc_message_id.endswith("@example.test")
    assert msg.get_content().replace("\r\n", "\n") == "Thanks, Anna – on its way.\n"
    assert msg["Date"] is not None and not msg.is_multipart()

    # Locally at once; on the server through the outbox.
    original.refresh_from_db()
    assert original.answered
    assert set(PendingAction.objects.filter(draft=draft).values_list("kind", flat=True)) == {"append_sent"}
    assert actions.write_back(mail_account.pk) == (2, 0)
    uid = original.uid
    assert "\\Answered" in srv.server_flags(dovecot, imap_user)[uid]
    assert srv.subjects(dovecot, imap_user, "Sent") == ["Re: Quarterly report"]
    assert [flags - {"\\Recent"} for flags in srv.server_flags(dovecot, imap_user, "Sent").values()] == [{"\\Seen"}]
    assert Draft.objects.get(pk=draft.pk).sent_raw is None  # the server holds the copy now
    assert actions.write_back(mail_account.pk) == (0, 0)
    assert srv.message_count(dovecot, imap_user, "Sent") == 1


def test_the_sent_copy_is_the_message_that_was_delivered(original, mail_account, smtp_sink, imap_user, dovecot):
    use_smtp(mail_account, smtp_sink)
    draft = send(replies.create_draft(original, "reply"))
    actions.write_back(mail_account.pk)
    conn = srv.connect(dovecot, imap_user)
    try:
        conn.select("Sent", readonly=True)
        _typ, data = conn.uid("FETCH", "1:*", "(BODY.PEEK[])")
        stored = data[0][1]
    finally:
        conn.logout()
    assert stored == smtp_sink.messages[0].data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert f"<{draft.rfc_message_id}>".encode() in stored


def test_a_forward_carries_the_attachment_and_marks_the_original_forwarded(
    original, mail_account, smtp_sink, imap_user, dovecot
):
    use_smtp(mail_account, smtp_sink)
    draft = replies.create_draft(original, "forward")
    replies.update_draft(draft, to="Dave <dave@example.test>", cc="", subject=draft.subject, body=draft.body)
    draft = send(draft)
    msg = parsed(smtp_sink.messages[0])
    assert msg["Subject"] == "Fwd: Quarterly report" and msg["In-Reply-To"] is None
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == "report.pdf" and attachment.get_content() == b"%PDF-1.4 the report"
    assert "---------- Forwarded message ----------" in msg.get_body(("plain",)).get_content()
    actions.write_back(mail_account.pk)
    assert "$Forwarded" in srv.server_flags(dovecot, imap_user)[original.uid]
    assert "\\Answered" not in srv.server_flags(dovecot, imap_user)[original.uid]


def test_starttls_with_auth(original, mail_account, smtp_sink_tls, settings):
    settings.MAILHELPER_EXTRA_CA_FILE = str(smtp_sink_tls.cert_path)
    use_smtp(
        mail_account, smtp_sink_tls, "starttls", smtp_username=smtp_sink_tls.username,
        smtp_password=smtp_sink_tls.password,
    )  # fmt: skip
    draft = send(replies.create_draft(original, "reply"))
    assert draft.status == "sent"
    [delivered] = smtp_sink_tls.messages
    assert delivered.tls and delivered.auth_login == smtp_sink_tls.username


def test_a_wrong_smtp_password_keeps_the_draft_with_the_error_and_try_again_works(
    original, mail_account, smtp_sink_tls, settings
):
    settings.MAILHELPER_EXTRA_CA_FILE = str(smtp_sink_tls.cert_path)
    use_smtp(
        mail_account, smtp_sink_tls, "starttls", smtp_username=smtp_sink_tls.username, smtp_password="wrong-pass-123"
    )
    draft = replies.create_draft(original, "reply")
    replies.update_draft(draft, to=draft.to, cc="", subject="Re: mine", body="My carefully written answer.")
    draft = send(draft)
    assert draft.status == "failed"
    assert render(draft.error) == f"{smtp_sink_tls.host}:{smtp_sink_tls.port} rejected the SMTP user name or password."
    assert draft.body == "My carefully written answer." and draft.subject == "Re: mine"
    assert smtp_sink_tls.messages == [] and not PendingAction.objects.filter(draft=draft).exists()
    original.refresh_from_db()
    assert not original.answered

    mail_account.smtp_password = smtp_sink_tls.password
    mail_account.save()
    draft = send(draft)  # "try again"
    assert draft.status == "sent" and draft.error == ""
    assert len(smtp_sink_tls.messages) == 1


def test_an_untrusted_certificate_is_reported(original, mail_account, smtp_sink_tls):
    use_smtp(mail_account, smtp_sink_tls, "starttls", smtp_username="x", smtp_password="y")
    draft = send(replies.create_draft(original, "reply"))
    assert draft.status == "failed" and "is not trusted" in render(draft.error)


def test_smtp_down_keeps_the_draft(original, mail_account):
    mail_account.smtp_host, mail_account.smtp_port, mail_account.smtp_security = "127.0.0.1", free_port(), "plain"
    mail_account.save()
    draft = send(replies.create_draft(original, "reply"))
    assert draft.status == "failed" and "refused the connection" in render(draft.error)
    assert draft.body.startswith("Hi Anna Schmidt,") and draft.sent_raw is None


@pytest.mark.parametrize(
    ("security", "host", "expected"),
    [
        ("ssl", None, "TLS with"),  # SSL/TLS chosen for a plain-text port
        ("starttls", None, "does not offer STARTTLS"),
        ("plain", "no-such-host.invalid", "could not be found"),
    ],
)
def test_precise_errors(original, mail_account, smtp_sink, security, host, expected):
    use_smtp(mail_account, smtp_sink, security)
    if host:
        mail_account.smtp_host = host
        mail_account.save()
    draft = send(replies.create_draft(original, "reply"))
    assert draft.status == "failed" and expected in render(draft.error), draft.error
    assert smtp_sink.messages == []


def test_no_smtp_server_and_no_recipients(original, mail_account, smtp_sink):
    draft = send(replies.create_draft(original, "reply"))
    assert draft.status == "failed" and "no SMTP server" in render(draft.error)
    use_smtp(mail_account, smtp_sink)
    replies.update_draft(draft, to="", cc="", subject="x", body="y")
    draft = send(draft)
    assert draft.status == "failed" and render(draft.error) == "Add at least one recipient."


def test_sending_twice_sends_once(original, mail_account, smtp_sink):
    use_smtp(mail_account, smtp_sink)
    draft = replies.create_draft(original, "reply")
    assert sending.queue_send(draft) is True
    assert sending.queue_send(draft) is False  # the double click
    assert sending.send_draft(draft.pk) == "sent"
    assert sending.send_draft(draft.pk) == "sent"  # a redelivered task
    assert sending.queue_send(draft) is False
    assert len(smtp_sink.messages) == 1
    assert PendingAction.objects.filter(draft=draft).count() == 1


def test_an_interrupted_send_is_not_repeated_blindly(original, mail_account, smtp_sink):
    use_smtp(mail_account, smtp_sink)
    draft = replies.create_draft(original, "reply")
    sending.queue_send(draft)
    Draft.objects.filter(pk=draft.pk).update(send_started_at=timezone.now())  # a worker died mid-send
    assert sending.send_draft(draft.pk) == "failed"
    draft.refresh_from_db()
    assert "check your Sent folder" in draft.error and smtp_sink.messages == []


def test_imap_down_after_sending_is_retried_not_lost(original, mail_account, smtp_sink, imap_user, dovecot):
    use_smtp(mail_account, smtp_sink)
    draft = send(replies.create_draft(original, "reply"))
    assert draft.status == "sent"
    dovecot.stop()
    try:
        with pytest.raises(imap.ImapConnectError):
            actions.write_back(mail_account.pk)
    finally:
        dovecot.start()
    assert PendingAction.objects.filter(account=mail_account, done_at__isnull=True).count() == 2
    assert actions.write_back(mail_account.pk) == (2, 0)
    assert srv.subjects(dovecot, imap_user, "Sent") == ["Re: Quarterly report"]


def test_an_append_that_already_happened_is_not_repeated(original, mail_account, smtp_sink, imap_user, dovecot):
    use_smtp(mail_account, smtp_sink)
    draft = send(replies.create_draft(original, "reply"))
    raw = Draft.objects.get(pk=draft.pk).sent_raw
    actions.write_back(mail_account.pk)
    # As if the answer to the first APPEND was lost: the copy and the pending row are still here.
    draft = Draft.objects.get(pk=draft.pk)
    draft.sent_raw = raw
    draft.save()
    PendingAction.objects.filter(draft=draft).update(done_at=None)
    assert actions.write_back(mail_account.pk) == (1, 0)
    assert srv.message_count(dovecot, imap_user, "Sent") == 1


def test_without_a_known_sent_folder_the_servers_is_found(original, mail_account, smtp_sink, imap_user, dovecot):
    mail_account.folders.filter(name="Sent").update(special_use="")
    use_smtp(mail_account, smtp_sink)
    send(replies.create_draft(original, "reply"))
    assert actions.write_back(mail_account.pk) == (2, 0)
    assert srv.subjects(dovecot, imap_user, "Sent") == ["Re: Quarterly report"]


def test_a_send_whose_task_was_lost_can_be_queued_again_and_still_goes_out_once(original, mail_account, smtp_sink):
    use_smtp(mail_account, smtp_sink)
    draft = replies.create_draft(original, "reply")
    assert sending.queue_send(draft)
    assert not sending.is_stuck(Draft.objects.get(pk=draft.pk))
    Draft.objects.filter(pk=draft.pk).update(updated_at=timezone.now() - timedelta(minutes=3))  # no task came
    assert sending.is_stuck(Draft.objects.get(pk=draft.pk))
    assert sending.queue_send(draft) is True  # "check again" queues it again
    assert sending.send_draft(draft.pk) == "sent"
    assert sending.send_draft(draft.pk) == "sent"  # the lost task turning up after all
    assert len(smtp_sink.messages) == 1


def test_a_send_started_long_ago_is_failed_for_the_user_to_check(original, mail_account, smtp_sink):
    use_smtp(mail_account, smtp_sink)
    draft = replies.create_draft(original, "reply")
    sending.queue_send(draft)
    long_ago = timezone.now() - timedelta(minutes=40)
    Draft.objects.filter(pk=draft.pk).update(send_started_at=long_ago, updated_at=long_ago)
    assert sending.queue_send(draft) is False
    draft.refresh_from_db()
    assert draft.status == "failed" and draft.error == sending.INTERRUPTED and smtp_sink.messages == []


def test_a_strict_mode_user_who_logged_out_is_told_to_log_in(db, imap_user, dovecot, smtp_sink):
    from accounts import keyring
    from tests.plugins.accounts import create_test_user
    from tests.plugins.mail import create_account

    strict = create_test_user("stella", strict=True)
    account = create_account(strict.user, imap_user, dovecot, smtp_host="127.0.0.1", smtp_port=smtp_sink.port)
    account.smtp_security = "plain"
    account.save()
    dovecot.deliver(imap_user, raw_message())
    run_sync(account)
    draft = replies.create_draft(Message.objects.get(account=account), "reply")
    assert sending.queue_send(draft)
    keyring.drop_session_key(strict.user)  # logged out: the data key is gone from the server
    keyring.forget_all()
    assert sending.send_draft(draft.pk) == "failed"
    assert Draft.objects.get(pk=draft.pk).error == "locked: log in to resume, then send again."
    assert smtp_sink.messages == []


def test_while_an_attempt_is_sending_no_other_one_starts_or_fails_it(original, mail_account, smtp_sink):
    import threading

    from django.db import connection

    use_smtp(mail_account, smtp_sink)
    draft = replies.create_draft(original, "reply")
    sending.queue_send(draft)
    held, release = threading.Event(), threading.Event()

    def other_worker():  # another process in the middle of sending this draft (its own DB session)
        try:
            with sending.attempt_lock(draft.pk) as acquired:
                assert acquired
                held.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    try:
        assert held.wait(5)
        assert sending.send_draft(draft.pk) == "sending"  # a duplicate task steps back
        long_ago = timezone.now() - timedelta(minutes=10)
        Draft.objects.filter(pk=draft.pk).update(send_started_at=long_ago, updated_at=long_ago)
        assert sending.queue_send(draft) is False  # "check again" while it is still being sent
        assert Draft.objects.get(pk=draft.pk).status == "sending"
    finally:
        release.set()
        thread.join()
    assert sending.queue_send(draft) is False  # now its attempt is gone: failed for the user to check
    assert Draft.objects.get(pk=draft.pk).error == sending.INTERRUPTED
    assert smtp_sink.messages == []


def test_implicit_tls_ssl_port(original, mail_account, settings, tmp_path):
    """SMTP over SSL/TLS from the first byte (port 465 style), against aiosmtpd with an SSL context."""
    import ssl

    from aiosmtpd.controller import Controller

    from tests.plugins.mailservers import SmtpSink, make_self_signed_cert

    cert, key = make_self_signed_cert(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    sink = SmtpSink()  # only for its message-keeping handler
    controller = Controller(
        sink._handler, hostname="127.0.0.1", port=free_port(), server_hostname="localhost", ssl_context=context
    )
    controller.start()
    try:
        settings.MAILHELPER_EXTRA_CA_FILE = str(cert)
        mail_account.smtp_host, mail_account.smtp_port = "127.0.0.1", controller.port
        mail_account.smtp_security = "ssl"
        mail_account.save()
        draft = send(replies.create_draft(original, "reply"))
        assert draft.status == "sent", draft.error
        [delivered] = sink.messages
        assert delivered.rcpt_tos == ["anna@example.test"] and b"Subject: Re: Quarterly report" in delivered.data
    finally:
        controller.stop()


def test_non_ascii_names_subjects_and_text_survive_the_trip(mail_account, imap_user, dovecot, smtp_sink):
    dovecot.deliver(
        imap_user,
        raw_message(sender="Jürgen Müller <juergen@example.test>", subject="Grüße aus Köln", body="Schöne Grüße!"),
    )
    run_sync(mail_account)
    original = Message.objects.get(account=mail_account)
    use_smtp(mail_account, smtp_sink)
    draft = replies.create_draft(original, "reply")
    replies.update_draft(draft, to=draft.to, cc="", subject=draft.subject, body="Danke, Jürgen — bis bald! 👋")
    assert send(draft).status == "sent"
    msg = parsed(smtp_sink.messages[0])
    assert msg["To"] == "Jürgen Müller <juergen@example.test>" and msg["Subject"] == "Re: Grüße aus Köln"
    assert msg.get_content().strip() == "Danke, Jürgen — bis bald! 👋"
    assert smtp_sink.messages[0].data.isascii()  # encoded for any SMTP server (no SMTPUTF8 needed)


def test_long_lines_are_sent_quoted_printable(original, mail_account, smtp_sink):
    use_smtp(mail_account, smtp_sink)
    draft = replies.create_draft(original, "reply")
    replies.update_draft(draft, to=draft.to, cc="", subject="s", body="word " * 400)
    send(draft)
    data = smtp_sink.messages[0].data
    assert b"Content-Transfer-Encoding: quoted-printable" in data
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    assert parsed(smtp_sink.messages[0]).get_content().strip() == ("word " * 400).strip()
