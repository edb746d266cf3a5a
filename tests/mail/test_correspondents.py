"""Address completion on the compose page (mail/correspondents.py): the user's correspondents from real
synced mail, most frequent first, nobody else's, no lists or robots, never the user themselves."""

from __future__ import annotations

import pytest
from django.urls import reverse

from mail import correspondents
from tests.plugins.mail import create_account, make_raw, run_sync, select_folders

pytestmark = pytest.mark.django_db


def deliver(dovecot, imap_user, n, sender, name="", folder="INBOX", to="me@example.test", **headers):
    raw = make_raw(n, sender=sender, to=to)
    raw = raw.replace(f"From: Sender {n} <{sender}>".encode(), f"From: {name} <{sender}>".encode())
    extra = "".join(f"{k}: {v}\n" for k, v in headers.items()).encode()
    dovecot.deliver(imap_user, extra + raw, folder=folder)


@pytest.fixture
def mailbox(alice, imap_user, dovecot):
    deliver(dovecot, imap_user, 1, "anna@example.test", "Anna Schmidt")
    deliver(dovecot, imap_user, 2, "anna@example.test", "Anna Schmidt")
    deliver(dovecot, imap_user, 3, "andreas@example.test", "Andreas Berg")
    deliver(dovecot, imap_user, 4, "news@example.test", "News", **{"List-Id": "<news.example.test>"})
    deliver(dovecot, imap_user, 5, "noreply@example.test", "Robot", **{"Auto-Submitted": "auto-generated"})
    deliver(dovecot, imap_user, 6, "me@example.test", "Me", folder="Sent", to="Anders Lund <anders@example.test>")
    account = create_account(alice.user, imap_user, dovecot)
    select_folders(account, "INBOX", "Sent")
    assert run_sync(account).status == "success"
    return account


def test_senders_and_people_written_to_most_frequent_first(alice, mailbox):
    assert correspondents.suggest(alice.user.pk, "an") == [
        ("Anna Schmidt", "anna@example.test"),
        ("", "anders@example.test"),
        ("Andreas Berg", "andreas@example.test"),
    ]
    assert correspondents.suggest(alice.user.pk, "berg") == [("Andreas Berg", "andreas@example.test")]


def test_lists_robots_and_the_user_are_not_suggested(alice, mailbox):
    for query in ("news", "noreply", "me@"):
        assert correspondents.suggest(alice.user.pk, query) == []


def test_one_character_and_like_wildcards_match_nothing(alice, mailbox):
    assert correspondents.suggest(alice.user.pk, "a") == []
    assert correspondents.suggest(alice.user.pk, "%%") == []
    assert correspondents.suggest(alice.user.pk, "__") == []


def test_another_users_correspondents_are_never_suggested(bob, mailbox):
    assert correspondents.suggest(bob.user.pk, "anna") == []


def test_completing_keeps_the_addresses_already_typed(alice, mailbox):
    assert correspondents.completions(alice.user.pk, "bob@example.test, ann") == [
        ("bob@example.test, Anna Schmidt <anna@example.test>", "Anna Schmidt <anna@example.test>")
    ]


def test_the_compose_page_asks_for_completions_as_the_user_types(alice_client, mailbox):
    response = alice_client.post(reverse("mail:new-message"), {"account": str(mailbox.pk)})
    html = alice_client.get(response.url).content.decode()
    url = reverse("mail:address-completions")
    for name in ("to", "cc", "bcc"):
        assert f'list="{name}-suggestions"' in html and f'<datalist id="{name}-suggestions">' in html
    assert f'hx-get="{url}"' in html

    options = alice_client.get(url, {"cc": "x@example.test, schm"}).content.decode()
    suggestion = "Anna Schmidt &lt;anna@example.test&gt;"
    assert options.strip() == f'<option value="x@example.test, {suggestion}">{suggestion}</option>'


def test_completions_need_a_logged_in_user(client, mailbox):
    response = client.get(reverse("mail:address-completions"), {"to": "anna"})
    assert response.status_code == 302 and "/accounts/login/" in response.url
