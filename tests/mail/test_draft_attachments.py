"""Files attached to a message being written (#18): uploaded through the compose page, stored encrypted,
size-limited, sent through the real SMTP sink and kept in the Sent copy on the real Dovecot; downloads
only for their owner and only as downloads."""

from __future__ import annotations

import email
from email.policy import default as default_policy

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse

from mail import actions, draft_attachments, replies, sending
from mail.models import DraftAttachment
from tests.plugins import imap_helpers as srv
from tests.plugins.mail import create_account, select_folders

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4 quarterly figures " + b"x" * 5000


@pytest.fixture
def draft(mail_account):
    draft = replies.create_new_draft(mail_account)
    replies.update_draft(draft, to="anna@example.test", cc="", subject="Figures", body="Attached.\n")
    return draft


def post(client, draft, *files, **fields):
    data = {"to": draft.to, "cc": "", "bcc": "", "subject": draft.subject, "body": draft.body, "action": "save"}
    data.update(fields)
    if files:
        data["attachments"] = list(files)
    return client.post(reverse("mail:draft", args=[draft.pk]), data)


def test_an_uploaded_file_is_stored_encrypted_listed_and_downloadable(alice_client, draft):
    response = post(alice_client, draft, SimpleUploadedFile("report.pdf", PDF, content_type="application/pdf"))
    assert response.status_code == 302

    [attachment] = DraftAttachment.objects.filter(draft=draft)
    assert (attachment.filename, attachment.size, attachment.content_type) == (
        "report.pdf",
        len(PDF),
        "application/pdf",
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT data::text, filename::text FROM mail_draftattachment WHERE id = %s", [attachment.pk])
        stored = " ".join(cursor.fetchone())
    assert "quarterly" not in stored and "report.pdf" not in stored

    html = alice_client.get(reverse("mail:draft", args=[draft.pk])).content.decode()
    url = reverse("mail:draft-attachment", args=[draft.pk, attachment.pk])
    assert f'href="{url}">report.pdf</a>' in html and 'enctype="multipart/form-data"' in html
    download = alice_client.get(url)
    assert download.status_code == 200 and b"".join(download.streaming_content) == PDF
    assert download["Content-Type"] == "application/octet-stream" and "attachment;" in download["Content-Disposition"]
    assert "sandbox" in download["Content-Security-Policy"]


def test_attachments_go_out_with_the_message_and_stay_in_the_sent_copy(
    alice_client, draft, mail_account, smtp_sink, imap_user, dovecot
):
    select_folders(mail_account, "INBOX", "Sent")
    mail_account.smtp_host, mail_account.smtp_port, mail_account.smtp_security = smtp_sink.host, smtp_sink.port, "plain"
    mail_account.save()
    post(
        alice_client,
        draft,
        SimpleUploadedFile("report.pdf", PDF, content_type="application/pdf"),
        SimpleUploadedFile("notes.txt", "Grüße".encode(), content_type="text/plain"),
    )
    assert sending.queue_send(draft) and sending.send_draft(draft.pk) == "sent"

    msg = email.message_from_bytes(smtp_sink.messages[0].data, policy=default_policy)
    parts = {part.get_filename(): part for part in msg.iter_attachments()}
    assert set(parts) == {"report.pdf", "notes.txt"}
    assert parts["report.pdf"].get_content() == PDF and parts["report.pdf"].get_content_type() == "application/pdf"
    assert msg.get_body(("plain",)).get_content().strip() == "Attached."
    assert actions.write_back(mail_account.pk) == (3, 0)  # the draft's copy in Drafts, its removal, Sent
    assert srv.subjects(dovecot, imap_user, "Sent") == ["Figures"]


def test_the_limit_is_for_all_files_together_and_a_refused_file_stops_the_send(alice_client, draft, settings):
    settings.MAILHELPER_ATTACHMENTS_MAX_MB = 1
    half = b"a" * 600_000
    post(alice_client, draft, SimpleUploadedFile("one.bin", half))
    response = post(alice_client, draft, SimpleUploadedFile("two.bin", half), action="send")

    assert response.status_code == 302
    assert [a.filename for a in DraftAttachment.objects.filter(draft=draft)] == ["one.bin"]
    draft.refresh_from_db()
    assert draft.status == "draft"  # not sent: the user sees why first
    page = alice_client.get(reverse("mail:draft", args=[draft.pk])).content.decode()
    assert "two.bin was not attached: attachments can be 1 MB in all." in page


def test_a_request_too_large_to_hold_keeps_the_text_and_says_the_files_were_not_attached(alice_client, draft, settings):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 100_000  # the memory handler declines: the file is never stored
    response = post(alice_client, draft, SimpleUploadedFile("big.bin", b"b" * 200_000), body="New text\n")

    assert response.status_code == 302 and not DraftAttachment.objects.exists()
    draft.refresh_from_db()
    assert draft.body == "New text\n"
    page = alice_client.get(reverse("mail:draft", args=[draft.pk])).content.decode()
    assert "The files were not attached: attachments can be 20 MB in all." in page


def test_uploads_never_touch_the_disk(settings):
    from django.conf import settings as real

    assert real.FILE_UPLOAD_HANDLERS == ["django.core.files.uploadhandler.MemoryFileUploadHandler"]


def test_remove_a_file_and_names_lose_their_paths(alice_client, draft):
    post(alice_client, draft, SimpleUploadedFile("C:\\fakepath\\report.pdf", PDF))
    attachment = DraftAttachment.objects.get(draft=draft)
    assert attachment.filename == "report.pdf"
    response = post(alice_client, draft, remove_attachment=str(attachment.pk))
    assert response.status_code == 302 and not DraftAttachment.objects.exists()
    assert post(alice_client, draft, remove_attachment="not-an-id").status_code == 302


def test_another_users_attachments_are_404(alice_client, bob, imap_user, dovecot, draft):
    post(alice_client, draft, SimpleUploadedFile("mine.pdf", PDF))
    mine = DraftAttachment.objects.get(draft=draft)
    bobs_draft = replies.create_new_draft(create_account(bob.user, imap_user, dovecot))
    upload = SimpleUploadedFile("bobs.pdf", PDF)
    theirs = draft_attachments.add(bobs_draft, upload)

    assert alice_client.get(reverse("mail:draft-attachment", args=[bobs_draft.pk, theirs.pk])).status_code == 404
    assert alice_client.get(reverse("mail:draft-attachment", args=[draft.pk, theirs.pk])).status_code == 404
    assert alice_client.get(reverse("mail:draft-attachment", args=[draft.pk, mine.pk])).status_code == 200
    post(alice_client, draft, remove_attachment=str(theirs.pk))
    assert DraftAttachment.objects.filter(pk=theirs.pk).exists()


def test_a_sent_draft_takes_no_more_files(draft, mail_account, smtp_sink):
    mail_account.smtp_host, mail_account.smtp_port, mail_account.smtp_security = smtp_sink.host, smtp_sink.port, "plain"
    mail_account.save()
    assert sending.queue_send(draft) and sending.send_draft(draft.pk) == "sent"
    with pytest.raises(draft_attachments.AttachmentRefused, match="can no longer be changed"):
        draft_attachments.add(draft, SimpleUploadedFile("late.pdf", PDF))
