"""Drafts on the server (#18): a saved draft is APPENDed to the real Dovecot's Drafts folder so other
clients see it, replaced when saved again, removed once sent or deleted; nothing for POP3 accounts."""

from __future__ import annotations

import pytest
from django.urls import reverse

from mail import actions, replies, sending
from mail.models import Draft, PendingAction
from tests.plugins import imap_helpers as srv
from tests.plugins.mail import create_pop3_account, select_folders

pytestmark = pytest.mark.django_db


@pytest.fixture
def account(mail_account):
    select_folders(mail_account, "INBOX", "Sent")
    return mail_account


def save(client, draft, **fields):
    data = {"to": "anna@example.test", "cc": "", "bcc": "", "subject": "Plan", "body": "Draft text\n"}
    data.update(fields, action=fields.pop("action", "save"))
    return client.post(reverse("mail:draft", args=[draft.pk]), data)


def new_draft(client, account) -> Draft:
    client.post(reverse("mail:new-message"), {"account": str(account.pk)})
    return Draft.objects.get(account=account, kind="new")


def test_a_saved_draft_is_in_the_servers_drafts_folder(alice_client, account, dovecot, imap_user):
    draft = new_draft(alice_client, account)
    save(alice_client, draft, to="", subject="Half-written")  # no recipient yet: still a draft worth keeping

    assert actions.write_back(account.pk) == (1, 0)
    assert srv.subjects(dovecot, imap_user, "Drafts") == ["Half-written"]
    [flags] = srv.server_flags(dovecot, imap_user, "Drafts").values()
    assert {"\\Draft", "\\Seen"} <= flags
    draft.refresh_from_db()
    conn = srv.connect(dovecot, imap_user)
    try:
        conn.select("Drafts", readonly=True)
        _typ, [found] = conn.uid("SEARCH", None, "HEADER", "Message-ID", f"<{draft.rfc_message_id}>")
    finally:
        conn.logout()
    assert found.split() == [b"1"]


def test_saving_again_replaces_the_copy_and_saves_during_an_outage_cost_one_append(
    alice_client, account, dovecot, imap_user
):
    draft = new_draft(alice_client, account)
    save(alice_client, draft, subject="First")
    assert actions.write_back(account.pk) == (1, 0)
    for subject in ("Second", "Third", "Fourth"):
        save(alice_client, draft, subject=subject)

    assert PendingAction.objects.filter(draft=draft, kind="append_draft", done_at__isnull=True).count() == 1
    assert actions.write_back(account.pk) == (1, 0)
    assert srv.subjects(dovecot, imap_user, "Drafts") == ["Fourth"]


def test_a_sent_draft_leaves_drafts_and_lands_in_sent(alice_client, account, dovecot, imap_user, smtp_sink):
    account.smtp_host, account.smtp_port, account.smtp_security = smtp_sink.host, smtp_sink.port, "plain"
    account.save()
    draft = new_draft(alice_client, account)
    save(alice_client, draft, subject="Going out")
    assert actions.write_back(account.pk) == (1, 0)
    assert srv.message_count(dovecot, imap_user, "Drafts") == 1

    draft.refresh_from_db()
    assert sending.queue_send(draft) and sending.send_draft(draft.pk) == "sent"
    assert actions.write_back(account.pk) == (2, 0)  # the removal from Drafts, the copy in Sent
    assert srv.message_count(dovecot, imap_user, "Drafts") == 0
    assert srv.subjects(dovecot, imap_user, "Sent") == ["Going out"]


def test_a_deleted_draft_leaves_the_server_too(alice_client, account, dovecot, imap_user):
    draft = new_draft(alice_client, account)
    save(alice_client, draft, subject="Never mind")
    assert actions.write_back(account.pk) == (1, 0)

    response = alice_client.post(reverse("mail:draft-delete", args=[draft.pk]))

    assert response.status_code == 302 and not Draft.objects.filter(pk=draft.pk).exists()
    [removal] = PendingAction.objects.filter(kind="remove_draft")
    assert removal.draft_id is None and removal.draft_message_id
    assert actions.write_back(account.pk) == (1, 0)
    assert srv.message_count(dovecot, imap_user, "Drafts") == 0


def test_a_draft_never_saved_queues_no_removal(account, smtp_sink):
    account.smtp_host, account.smtp_port, account.smtp_security = smtp_sink.host, smtp_sink.port, "plain"
    account.save()
    draft = replies.create_new_draft(account)
    replies.update_draft(draft, to="anna@example.test", cc="", subject="Quick", body="b")
    assert sending.queue_send(draft) and sending.send_draft(draft.pk) == "sent"
    assert list(PendingAction.objects.values_list("kind", flat=True)) == ["append_sent"]


def test_the_servers_drafts_folder_is_found_when_not_synced(alice_client, mail_account, dovecot, imap_user):
    draft = new_draft(alice_client, mail_account)  # no folder list known yet
    save(alice_client, draft, subject="Found it")
    assert PendingAction.objects.get(kind="append_draft").target_folder == ""
    assert actions.write_back(mail_account.pk) == (1, 0)
    assert srv.subjects(dovecot, imap_user, "Drafts") == ["Found it"]


def test_pop3_accounts_keep_drafts_here_only(alice, alice_client, imap_user, dovecot):
    pop3 = create_pop3_account(alice.user, imap_user, dovecot)
    draft = new_draft(alice_client, pop3)
    save(alice_client, draft)
    assert not PendingAction.objects.exists()
