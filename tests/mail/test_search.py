"""Keyword search through the blind index: folding, AND, filters, backfill, no plaintext, scoping."""

import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from mail import tasks
from mail.models import Message
from tests.plugins.accounts import verified_client
from tests.plugins.mail import create_account, run_sync

pytestmark = pytest.mark.django_db


def raw(n, subject, body, sender="anna.meier@example.com"):
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, "me@example.test", subject
    msg["Message-ID"] = f"<search-{n}@example.test>"
    msg["Date"] = f"Mon, {n} Mar 2026 10:00:00 +0000"
    msg.set_content(body)
    return bytes(msg)


@pytest.fixture
def account(dovecot, imap_user, alice):
    account = create_account(alice.user, imap_user, dovecot)
    dovecot.deliver(imap_user, raw(1, "Rechnung für März", "Die Rechnung von Müller liegt bei."))
    dovecot.deliver(imap_user, raw(2, "Café meeting", "See you at the café tomorrow.", sender="bob@cafe.example"))
    dovecot.deliver(imap_user, raw(3, "Project Müller", "Status update for the Müller project."), flags="S")
    run_sync(account)
    tasks.analyse_account(str(account.pk))  # the index is built with the analysis, right after sync
    return account


def subjects(client, **params):
    import re

    html = client.get(reverse("mail:search"), params).content.decode()
    return sorted(re.findall(r'<td class="subject"><a href="[^"]+">([^<]+)</a>', html))


def test_words_are_case_and_accent_folded_and_combined_with_and(alice_client, account):
    assert subjects(alice_client, q="muller") == ["Project Müller", "Rechnung für März"]
    assert subjects(alice_client, q="MÜLLER rechnung") == ["Rechnung für März"]
    assert subjects(alice_client, q="cafe") == ["Café meeting"]
    assert subjects(alice_client, q="anna.meier@example.com") == ["Project Müller", "Rechnung für März"]
    assert subjects(alice_client, q="nothing-like-this") == []
    page = alice_client.get(reverse("mail:search"), {"q": "a"}).content.decode()
    assert "at least one word" in page


def test_filters_combine_with_the_words(alice_client, account):
    assert subjects(alice_client, q="muller", unread="1") == ["Rechnung für März"]
    folder = account.folders.get(name="INBOX")
    assert len(subjects(alice_client, q="muller", folder=folder.pk, account=str(account.pk))) == 2
    assert subjects(alice_client, q="muller", since="2030-01-01") == []


def test_the_index_holds_no_words(account):
    with connection.cursor() as cursor:
        cursor.execute("SELECT search_ids::text FROM mail_message WHERE account_id = %s", [account.pk])
        stored = " ".join(row[0] for row in cursor.fetchall())
    assert "muller" not in stored.lower() and "rechnung" not in stored.lower()
    assert all(Message.objects.filter(account=account).values_list("search_ids", flat=True))


def test_backfill_indexes_messages_stored_without_an_index(alice_client, account):
    Message.objects.filter(account=account).update(search_ids=[])
    assert subjects(alice_client, q="muller") == []
    out = io.StringIO()
    call_command("backfill_search_index", "--user", "alice", stdout=out)
    assert "Indexed 3 message(s)" in out.getvalue()
    assert subjects(alice_client, q="muller") == ["Project Müller", "Rechnung für März"]
    out = io.StringIO()
    call_command("backfill_search_index", stdout=out)  # resumable: nothing left to do
    assert "Indexed 0 message(s)" in out.getvalue()


def test_another_user_cannot_find_these_messages(account, bob, dovecot, imap_user):
    bob_client = verified_client(bob)
    assert subjects(bob_client, q="muller") == []
    # Even with bob's own mail holding the same word, his key gives other ids.
    other_user = dovecot.add_user()
    bob_account = create_account(bob.user, other_user, dovecot)
    dovecot.deliver(other_user, raw(9, "Müller again", "hello"))
    run_sync(bob_account)
    tasks.analyse_account(str(bob_account.pk))
    assert subjects(bob_client, q="muller") == ["Müller again"]
    alice_ids = set(Message.objects.get(account=account, uid=1).search_ids)
    bob_ids = set(Message.objects.get(account=bob_account).search_ids)
    assert not alice_ids & bob_ids
