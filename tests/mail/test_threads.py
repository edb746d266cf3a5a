"""Conversations: messages grouped by Message-ID/In-Reply-To/References or subject, across folders."""

import pytest
from django.urls import reverse

from mail.models import Message
from tests.plugins.accounts import verified_client
from tests.plugins.mail import create_account, run_sync, select_folders

pytestmark = pytest.mark.django_db


def mail(msg_id, subject, *, in_reply_to="", references="", date="Mon, 2 Mar 2026 10:00:00 +0000", sender="a@x.test"):
    headers = [
        f"From: {sender}",
        "To: me@example.test",
        f"Subject: {subject}",
        f"Message-ID: <{msg_id}>",
        f"Date: {date}",
    ]
    if in_reply_to:
        headers.append(f"In-Reply-To: <{in_reply_to}>")
    if references:
        headers.append(f"References: {references}")
    return ("\r\n".join(headers) + "\r\n\r\nbody of " + msg_id + "\r\n").encode()


def test_conversation_groups_replies_across_folders_oldest_first(alice_client, alice, dovecot, imap_user):
    account = create_account(alice.user, imap_user, dovecot)
    dovecot.deliver(imap_user, mail("root@x", "Plan", date="Mon, 2 Mar 2026 09:00:00 +0000"))
    reply = mail(
        "r1@me", "Re: Plan", in_reply_to="root@x", references="<root@x>",
        date="Mon, 2 Mar 2026 10:00:00 +0000", sender="me@example.test",
    )  # fmt: skip
    dovecot.deliver(imap_user, reply, folder="Sent")
    second = mail(
        "r2@x", "Re: Plan", in_reply_to="r1@me", references="<root@x> <r1@me>", date="Mon, 2 Mar 2026 11:00:00 +0000"
    )
    dovecot.deliver(imap_user, second)
    dovecot.deliver(imap_user, mail("broken@client", "RE: Plan", date="Mon, 2 Mar 2026 12:00:00 +0000"))  # no headers
    dovecot.deliver(imap_user, mail("other@x", "Something else"))
    select_folders(account, "INBOX", "Sent")
    run_sync(account)
    root = Message.objects.get(message_id="root@x")
    detail = alice_client.get(reverse("mail:message", args=[root.pk])).content.decode()
    assert "3 messages" in detail
    page = alice_client.get(reverse("mail:conversation", args=[root.pk])).content.decode()
    order = [m for m in ("body of root@x", "body of r1@me", "body of r2@x") if m in page]
    assert order == ["body of root@x", "body of r1@me", "body of r2@x"]
    assert page.index("body of root@x") < page.index("body of r1@me") < page.index("body of r2@x")
    assert "Sent" in page and "body of other@x" not in page
    broken = Message.objects.get(message_id="broken@client")
    assert verified_client(alice).get(reverse("mail:conversation", args=[broken.pk])).status_code == 200


def test_mail_without_ids_is_grouped_by_a_hash_of_its_subject_never_the_subject(alice, dovecot, imap_user):
    account = create_account(alice.user, imap_user, dovecot)
    for n in range(2):
        raw = f"From: a@x.test\r\nTo: me@example.test\r\nSubject: Re: Budget 2027\r\n\r\nno ids {n}\r\n"
        dovecot.deliver(imap_user, raw.encode())
    run_sync(account)
    keys = set(Message.objects.filter(account=account).values_list("thread_key", flat=True))
    assert len(keys) == 1
    key = keys.pop()
    assert key.startswith("subject:") and "budget" not in key.lower()


def test_another_users_conversation_is_not_found(alice, bob, dovecot, imap_user):
    account = create_account(alice.user, imap_user, dovecot)
    dovecot.deliver(imap_user, mail("root@x", "Plan"))
    run_sync(account)
    root = Message.objects.get(message_id="root@x")
    assert verified_client(bob).get(reverse("mail:conversation", args=[root.pk])).status_code == 404
