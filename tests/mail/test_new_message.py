"""Writing a new message (#18): choose the account, write To/Cc/Bcc, send through the real SMTP sink,
the Sent copy APPENDed to the real Dovecot; owner scoping on the new URL; the sync's NOT IN subquery
survives outbox rows without a message."""

from __future__ import annotations

import email
from email.policy import default as default_policy

import pytest
from django.urls import reverse

from mail import actions, replies, sending
from mail.models import AccountSignature, Draft, Message, PendingAction
from tests.mail.factories import raw_message
from tests.plugins import imap_helpers as srv
from tests.plugins.accounts import verified_client
from tests.plugins.mail import create_account, run_sync, select_folders

pytestmark = pytest.mark.django_db


def use_smtp(account, sink) -> None:
    account.smtp_host, account.smtp_port, account.smtp_security = sink.host, sink.port, "plain"
    account.save()


def start(client, account) -> Draft:
    response = client.post(reverse("mail:new-message"), {"account": str(account.pk)})
    draft = Draft.objects.get(account=account, kind="new")
    assert response.status_code == 302 and response.url == reverse("mail:draft", args=[draft.pk])
    return draft


def test_the_nav_and_the_drafts_page_offer_a_new_message(alice_client, mail_account):
    assert f'href="{reverse("mail:new-message")}"' in alice_client.get(reverse("mail:drafts")).content.decode()
    html = alice_client.get(reverse("mail:new-message")).content.decode()
    assert "<h1>New message</h1>" in html and f'value="{mail_account.pk}"' in html and "Write</button>" in html


def test_several_accounts_are_offered_to_choose_from(alice, alice_client, mail_account, imap_user, dovecot):
    other = create_account(alice.user, imap_user, dovecot, name="Private", email_address="me@private.test")
    html = alice_client.get(reverse("mail:new-message")).content.decode()
    assert "<legend>Send from</legend>" in html and "me@private.test" in html
    draft = start(alice_client, other)
    assert draft.account == other


def test_without_an_account_the_page_says_what_to_do_first(alice_client):
    html = alice_client.get(reverse("mail:new-message")).content.decode()
    assert "add an account</a> first" in html and "<form" not in html.split("<main", 1)[-1].split("New message")[1]


def test_a_new_draft_carries_the_signature_and_no_reply_tools(alice_client, mail_account):
    AccountSignature.objects.create(account=mail_account, owner=mail_account.owner, text="Alice\nACME")
    draft = start(alice_client, mail_account)
    assert draft.original is None and draft.body == "\n\nAlice\nACME" and draft.subject == ""
    html = alice_client.get(reverse("mail:draft", args=[draft.pk])).content.decode()
    assert "<h1>New message</h1>" in html and 'name="bcc"' in html
    assert "answering" not in html and 'name="style"' not in html and "Alice\nACME" in html


def test_another_users_account_is_refused(alice_client, bob, imap_user, dovecot):
    bobs = create_account(bob.user, imap_user, dovecot)
    response = alice_client.post(reverse("mail:new-message"), {"account": str(bobs.pk)})
    assert response.status_code == 302 and response.url == reverse("mail:new-message")
    assert not Draft.objects.exists()
    assert alice_client.post(reverse("mail:new-message"), {"account": "not-a-uuid"}).status_code == 302
    assert not Draft.objects.exists()


def test_another_users_new_draft_is_a_404(alice_client, bob, imap_user, dovecot):
    draft = replies.create_new_draft(create_account(bob.user, imap_user, dovecot))
    assert alice_client.get(reverse("mail:draft", args=[draft.pk])).status_code == 404
    data = {"to": "x@example.test", "action": "send"}
    assert alice_client.post(reverse("mail:draft", args=[draft.pk]), data).status_code == 404
    assert Draft.objects.get(pk=draft.pk).status == "draft"


def test_send_needs_a_recipient_and_bcc_alone_is_one(alice_client, mail_account):
    draft = start(alice_client, mail_account)
    url = reverse("mail:draft", args=[draft.pk])
    response = alice_client.post(url, {"subject": "Hi", "body": "text", "action": "send"})
    assert response.status_code == 200 and "Add at least one recipient." in response.content.decode()
    response = alice_client.post(url, {"bcc": "nonsense", "body": "text", "action": "send"})
    assert "is not an e-mail address" in response.content.decode()
    assert Draft.objects.get(pk=draft.pk).status == "draft"


def test_a_new_message_goes_out_with_bcc_in_the_envelope_only_and_lands_in_sent(
    alice_client, server_account, smtp_sink, mail_user, mail_server
):
    """On Dovecot and Cyrus (tests/plugins/imap_servers.py), where Sent is "INBOX/Sent"."""
    mail_account, imap_user, dovecot = server_account, mail_user, mail_server
    select_folders(mail_account, "INBOX", mail_server.folder("Sent"))
    use_smtp(mail_account, smtp_sink)
    draft = start(alice_client, mail_account)
    response = alice_client.post(
        reverse("mail:draft", args=[draft.pk]),
        {
            "to": "Anna <anna@example.test>",
            "cc": "carol@example.test",
            "bcc": "boss@example.test, ANNA@example.test",
            "subject": "Plans for Monday",
            "body": "Hello both,\n\nsee you at nine.\n",
            "action": "save",
        },
    )
    assert response.status_code == 302
    draft = Draft.objects.get(pk=draft.pk)
    assert draft.bcc == "boss@example.test, ANNA@example.test"
    assert sending.queue_send(draft)
    assert sending.send_draft(draft.pk) == "sent"

    [delivered] = smtp_sink.messages
    assert sorted(delivered.rcpt_tos) == ["anna@example.test", "boss@example.test", "carol@example.test"]
    msg = email.message_from_bytes(delivered.data, policy=default_policy)
    assert msg["To"] == "Anna <anna@example.test>" and msg["Cc"] == "carol@example.test"
    assert msg["Bcc"] is None and b"boss@example.test" not in delivered.data
    assert msg["In-Reply-To"] is None and msg["References"] is None and msg["Subject"] == "Plans for Monday"

    # No original to mark answered: the saved copy in Drafts is replaced by the copy in Sent.
    [action] = PendingAction.objects.filter(draft=draft, kind="append_sent")
    assert action.message_id is None
    assert actions.write_back(mail_account.pk) == (3, 0)  # copy to Drafts (skipped: sent), its removal, Sent
    assert srv.message_count(dovecot, imap_user, mail_server.folder("Drafts")) == 0
    assert srv.subjects(dovecot, imap_user, mail_server.folder("Sent")) == ["Plans for Monday"]
    html = alice_client.get(reverse("mail:draft", args=[draft.pk])).content.decode()
    assert "<dt>Bcc</dt><dd>boss@example.test, ANNA@example.test</dd>" in html
    assert 'data-testid="sent-copy">Copy in the Sent folder:\n    saved' in html


def test_without_sent_and_drafts_on_the_server_both_are_made_among_the_users_folders(
    alice_client, server_account, smtp_sink, mail_user, mail_server
):
    """Cyrus refuses a top-level "Sent" (Permission denied): a user's folders live below "INBOX/" there
    (its NAMESPACE's personal prefix; "" on Dovecot). The folders are made under that prefix."""
    account, user, server = server_account, mail_user, mail_server
    for name in ("Sent", "Drafts"):
        srv.delete_folder(server, user, server.folder(name))
    use_smtp(account, smtp_sink)
    draft = start(alice_client, account)
    alice_client.post(
        reverse("mail:draft", args=[draft.pk]),
        {"to": "anna@example.test", "subject": "No Sent yet", "body": "Hello.\n", "action": "save"},
    )
    assert actions.write_back(account.pk) == (1, 0)  # the copy in Drafts, which had to be made first
    assert srv.subjects(server, user, server.folder("Drafts")) == ["No Sent yet"]
    assert sending.queue_send(Draft.objects.get(pk=draft.pk))
    assert sending.send_draft(draft.pk) == "sent"
    assert actions.write_back(account.pk) == (2, 0)  # the Drafts copy removed, the Sent copy made
    assert srv.subjects(server, user, server.folder("Sent")) == ["No Sent yet"]
    assert srv.message_count(server, user, server.folder("Drafts")) == 0


def test_an_outbox_row_without_a_message_does_not_stop_flag_changes_from_the_server(
    alice, mail_account, imap_user, dovecot
):
    """NOT IN (subquery) is never true once the subquery holds a NULL: the server's flags would be ignored."""
    dovecot.deliver(imap_user, raw_message())
    assert run_sync(mail_account).status == "success"
    message = Message.objects.get(account=mail_account)
    assert not message.seen
    draft = replies.create_new_draft(mail_account)
    PendingAction.objects.create(
        owner=alice.user, account=mail_account, message=None, draft=draft, kind="append_sent", source_folder=""
    )
    srv.store(dovecot, imap_user, [message.uid], "+FLAGS", "(\\Seen)")

    assert run_sync(mail_account).status == "success"

    message.refresh_from_db()
    assert message.seen


def test_the_drafts_list_names_new_messages(alice, mail_account):
    draft = replies.create_new_draft(mail_account)
    replies.update_draft(draft, to="x@example.test", cc="", subject="Hello there", body="b")
    html = verified_client(alice).get(reverse("mail:drafts")).content.decode()
    assert "Hello there" in html and "new message · " in html
