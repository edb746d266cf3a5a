"""Conversations: messages grouped by Message-ID/In-Reply-To/References or subject, across folders."""

import pytest
from django.urls import reverse

from analysis import queries as inbox_queries
from analysis import tasks as analysis_tasks
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


# --- subject fallback: replies from clients that send no In-Reply-To/References ---------------------


def sync_and_analyse(account):

    run_sync(account)
    analysis_tasks.analyse_account(str(account.pk))  # subject hashes and links are made with the analysis


def test_headerless_reply_joins_the_conversation_of_its_subject(alice_client, alice, dovecot, imap_user):
    account = create_account(alice.user, imap_user, dovecot)
    dovecot.deliver(imap_user, mail("budget@x", "Budget", date="Mon, 2 Mar 2026 09:00:00 +0000"))
    dovecot.deliver(imap_user, mail("r1@me", "Re: Budget", in_reply_to="budget@x", references="<budget@x>",
                                    date="Mon, 2 Mar 2026 10:00:00 +0000"))  # fmt: skip
    dovecot.deliver(imap_user, mail("broken@client", "AW: Re: budget", date="Tue, 3 Mar 2026 12:00:00 +0000"))
    dovecot.deliver(imap_user, mail("new@x", "Budget", date="Wed, 4 Nov 2026 12:00:00 +0000"))  # not a reply
    sync_and_analyse(account)
    root, broken = Message.objects.get(message_id="budget@x"), Message.objects.get(message_id="broken@client")
    assert broken.thread_key == root.thread_key == "budget@x"
    assert Message.objects.get(message_id="new@x").thread_key == "new@x"  # same subject, but not a reply
    page = alice_client.get(reverse("mail:conversation", args=[broken.pk])).content.decode()
    assert "body of budget@x" in page and "body of r1@me" in page and "body of broken@client" in page
    assert "body of new@x" not in page
    assert "3 messages" in alice_client.get(reverse("mail:message", args=[root.pk])).content.decode()
    stored = set(Message.objects.filter(account=account).values_list("subject_hash", flat=True))
    assert len(stored) == 1 and isinstance(stored.pop(), int)  # one keyed number for all four; no words


def test_a_reply_that_arrives_before_its_root_is_joined_when_the_root_comes(alice, dovecot, imap_user):
    account = create_account(alice.user, imap_user, dovecot)
    dovecot.deliver(imap_user, mail("broken@client", "Re: Budget", date="Tue, 3 Mar 2026 12:00:00 +0000"))
    sync_and_analyse(account)
    assert Message.objects.get(message_id="broken@client").thread_key == "broken@client"
    dovecot.deliver(imap_user, mail("budget@x", "Budget", date="Mon, 2 Mar 2026 09:00:00 +0000"))
    sync_and_analyse(account)
    assert Message.objects.get(message_id="broken@client").thread_key == "budget@x"


def test_a_late_reply_far_outside_the_window_starts_its_own_conversation(alice, dovecot, imap_user):
    account = create_account(alice.user, imap_user, dovecot)
    dovecot.deliver(imap_user, mail("budget@x", "Budget", date="Mon, 2 Mar 2026 09:00:00 +0000"))
    dovecot.deliver(imap_user, mail("late@client", "Re: Budget", date="Mon, 2 Nov 2026 09:00:00 +0000"))
    sync_and_analyse(account)
    assert Message.objects.get(message_id="late@client").thread_key == "late@client"


def test_the_same_subject_of_two_users_never_joins(alice, bob, dovecot, imap_user):
    alice_account = create_account(alice.user, imap_user, dovecot)
    dovecot.deliver(imap_user, mail("budget@x", "Budget", date="Mon, 2 Mar 2026 09:00:00 +0000"))
    bob_imap = dovecot.add_user()
    bob_account = create_account(bob.user, bob_imap, dovecot)
    dovecot.deliver(bob_imap, mail("broken@client", "Re: Budget", date="Tue, 3 Mar 2026 12:00:00 +0000"))
    sync_and_analyse(alice_account)
    sync_and_analyse(bob_account)
    root = Message.objects.get(message_id="budget@x")
    broken = Message.objects.get(message_id="broken@client")
    assert broken.thread_key == "broken@client"
    assert root.subject_hash != broken.subject_hash  # per-user keys: equal subjects, unrelated hashes
    assert verified_client(bob).get(reverse("mail:conversation", args=[root.pk])).status_code == 404


def test_backfill_threads_computes_subject_hashes_and_joins_replies(alice, dovecot, imap_user):
    import io

    from django.core.management import call_command

    account = create_account(alice.user, imap_user, dovecot)
    dovecot.deliver(imap_user, mail("budget@x", "Budget", date="Mon, 2 Mar 2026 09:00:00 +0000"))
    dovecot.deliver(imap_user, mail("broken@client", "Re: Budget", date="Tue, 3 Mar 2026 12:00:00 +0000"))
    run_sync(account)  # stored before the analysis ran: no hashes yet, as for mail stored before this feature
    assert Message.objects.get(message_id="broken@client").thread_key == "broken@client"
    assert not Message.objects.filter(account=account, subject_hash__isnull=False).exists()
    out = io.StringIO()
    call_command("backfill_threads", "--user", "alice", stdout=out)
    assert "Updated the thread key of 2 message(s)" in out.getvalue()
    assert Message.objects.get(message_id="broken@client").thread_key == "budget@x"
    out = io.StringIO()
    call_command("backfill_threads", stdout=out)  # resumable: nothing left
    assert "Updated the thread key of 0 message(s)" in out.getvalue()


# --- generic subjects ("", "Re:", "(no subject)") link nothing: strangers share them ------------------------


def test_headerless_mail_with_a_generic_subject_stays_alone_while_re_budget_joins_budget(
    alice_client, alice, dovecot, imap_user
):
    account = create_account(alice.user, imap_user, dovecot)
    dovecot.deliver(imap_user, mail("budget@x", "Budget", date="Mon, 2 Mar 2026 09:00:00 +0000"))
    dovecot.deliver(imap_user, mail("rb@y", "Re: Budget", date="Mon, 2 Mar 2026 11:00:00 +0000", sender="b@y.test"))
    generic = [  # (message id, subject, sender): each header-less, each from someone else
        ("ns1@a", "(no subject)", "a@a.test"),
        ("ns2@b", "Re: (no subject)", "b@b.test"),
        ("re1@c", "Re:", "c@c.test"),
        ("re2@d", "RE: ", "d@d.test"),
        ("kb1@e", "(kein Betreff)", "e@e.test"),
        ("kb2@f", "AW: (Kein Betreff)", "f@f.test"),
        ("un@g", "Fwd: untitled", "g@g.test"),
    ]
    for hour, (msg_id, subject, sender) in enumerate(generic, start=12):
        dovecot.deliver(imap_user, mail(msg_id, subject, date=f"Mon, 2 Mar 2026 {hour}:00:00 +0000", sender=sender))
    sync_and_analyse(account)
    assert Message.objects.get(message_id="rb@y").thread_key == "budget@x"
    for msg_id, _, _ in generic:
        message = Message.objects.get(message_id=msg_id)
        assert (message.thread_key, message.subject_hash) == (msg_id, 0)  # its own id; a hash that joins nothing
    page = alice_client.get(reverse("mail:conversation", args=[Message.objects.get(message_id="ns2@b").pk]))
    assert "body of ns2@b" in page.content.decode() and "body of ns1@a" not in page.content.decode()


def test_mail_without_ids_and_with_a_generic_subject_is_a_conversation_of_its_own(alice, dovecot, imap_user):
    account = create_account(alice.user, imap_user, dovecot)
    subjects = ["Subject: ", None, "Subject: Re:", "Subject: (no subject)", "Subject: (No Subject)", "Subject: Fwd:"]
    for n, subject in enumerate(subjects):
        headers = [f"From: s{n}@x{n}.test", "To: me@example.test", "Date: Mon, 2 Mar 2026 10:00:00 +0000"]
        headers += [subject] if subject is not None else []  # None: no Subject header at all
        dovecot.deliver(imap_user, ("\r\n".join(headers) + f"\r\n\r\nno ids {n}\r\n").encode())
    for n in range(2):  # a real subject still groups id-less mail (by its keyed hash)
        raw = f"From: t{n}@y.test\r\nTo: me@example.test\r\nSubject: Re: Budget\r\n\r\nbudget, no ids {n}\r\n"
        dovecot.deliver(imap_user, raw.encode())
    sync_and_analyse(account)
    generic = Message.objects.filter(account=account, from_address__startswith="s")
    assert sorted(generic.values_list("thread_key", "subject_hash")) == [("", 0)] * len(subjects)
    for message in generic:
        assert list(inbox_queries.thread_of(alice.user, message)) == [message]
    budget = Message.objects.filter(account=account, from_address__startswith="t")
    assert len(set(budget.values_list("thread_key", flat=True))) == 1
    assert budget.first().thread_key.startswith("subject:")
