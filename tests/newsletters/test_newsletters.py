"""The Newsletters page and unsubscribe on real parts: Dovecot-synced mail, the SMTP sink for mailto,
a loopback HTTPS server for RFC 8058 one-click, and the outbound policy in between."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.models import Job
from core.stored_text import render
from newsletters.models import Unsubscription
from rules.models import Rule
from tests.plugins.accounts import verified_client
from tests.plugins.mail import create_account, run_sync

pytestmark = pytest.mark.django_db

TOKEN = "recipient-token-7f3a9c"
LIST = "news@letters.example"


def newsletter(n: int, *, sender: str = LIST, unsubscribe: str = "", post: bool = False) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Weekly Letters <{sender}>"
    msg["To"] = "me@example.test"
    msg["Subject"] = f"Issue {n}"
    msg["Message-ID"] = f"<issue-{n}-{sender}>"
    msg["List-Id"] = f"<{sender.replace('@', '.')}>"
    if unsubscribe:
        msg["List-Unsubscribe"] = unsubscribe
    if post:
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(f"This week's articles, number {n}.")
    return msg.as_bytes()


def personal(n: int) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "Anna <anna@example.test>", "me@example.test", f"Lunch {n}?"
    msg["Message-ID"] = f"<lunch-{n}@example.test>"
    msg.set_content("Lunch tomorrow?")
    return msg.as_bytes()


@pytest.fixture
def account(alice, dovecot, imap_user, smtp_sink):
    return create_account(
        alice.user, imap_user, dovecot, smtp_host=smtp_sink.host, smtp_port=smtp_sink.port, smtp_security="plain"
    )


def deliver(dovecot, imap_user, account, *raws: bytes) -> None:
    for raw in raws:
        dovecot.deliver(imap_user, raw)
    run_sync(account)


def unsubscribe(client, sender: str = LIST, **data):
    return client.post(reverse("newsletters:unsubscribe"), {"sender": sender, **data})


def test_the_page_groups_list_senders_by_volume_and_read_rate(alice_client, account, dovecot, imap_user):
    assert "No newsletters" in alice_client.get(reverse("newsletters:list")).content.decode()
    other = "digest@shop.example"
    deliver(
        dovecot, imap_user, account,
        *(newsletter(n, unsubscribe=f"<mailto:{LIST}>") for n in range(3)),
        newsletter(9, sender=other), personal(1),
    )  # fmt: skip
    account.messages.filter(message_id__contains="issue-0-").update(seen=True)

    with CaptureQueriesContext(connection) as few:
        page = alice_client.get(reverse("newsletters:list")).content.decode()
    assert page.index(LIST) < page.index(other)  # the busier sender first
    assert "anna@example.test" not in page  # not list mail
    assert "33%" in page and "2 unread" in page
    assert "offers no unsubscribe address" in page  # the other sender's mail has no header
    listing = alice_client.get(reverse("mail:list"), {"from": LIST}).content.decode()  # the count's link
    assert "Issue 2" in listing and "Lunch 1?" not in listing and f"from {LIST}" in listing

    deliver(dovecot, imap_user, account, *(newsletter(n, sender=f"list{n}@many.example") for n in range(10)))
    with CaptureQueriesContext(connection) as many:
        alice_client.get(reverse("newsletters:list"))
    assert len(many) == len(few)  # no query per sender


def test_one_click_posts_exactly_rfc_8058_and_keeps_no_link(
    alice_client, account, dovecot, imap_user, https_recorder, caplog
):
    url = https_recorder.url(f"/unsubscribe?t={TOKEN}")
    deliver(dovecot, imap_user, account, newsletter(1, unsubscribe=f"<{url}>, <mailto:{LIST}>", post=True))
    caplog.set_level(logging.DEBUG)

    response = unsubscribe(alice_client)
    assert response.status_code == 302
    [request] = https_recorder.requests
    assert (request.method, request.path) == ("POST", f"/unsubscribe?t={TOKEN}")
    assert request.body == b"List-Unsubscribe=One-Click"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert "cookie" not in request.headers and "authorization" not in request.headers
    record = Unsubscription.objects.get()
    assert (record.method, record.state) == ("one_click", "done")
    assert TOKEN not in caplog.text and TOKEN not in record.detail
    page = alice_client.get(reverse("newsletters:list")).content.decode()
    assert "unsubscribed" in page and "Unsubscribe again" in page


def test_a_refused_one_click_falls_back_to_mailto_through_the_accounts_smtp(
    alice_client, account, dovecot, imap_user, https_recorder, smtp_sink
):
    https_recorder.status = 500
    offer = f"<{https_recorder.url('/u')}>, <mailto:leave@letters.example?subject=remove%20me>"
    deliver(dovecot, imap_user, account, newsletter(1, unsubscribe=offer, post=True))

    unsubscribe(alice_client)
    [sent] = smtp_sink.messages
    assert sent.rcpt_tos == ["leave@letters.example"] and sent.mail_from == "me@example.test"
    mail = BytesParser(policy=default_policy).parsebytes(sent.data)
    assert mail["Subject"] == "remove me" and mail["Auto-Submitted"] == "auto-generated"
    record = Unsubscription.objects.get()
    assert (record.method, record.state) == ("mailto", "done")
    assert "HTTP 500" in render(record.detail)


def test_a_redirect_is_not_followed_and_the_link_is_left_to_the_user(
    alice_client, account, dovecot, imap_user, https_recorder
):
    https_recorder.status, https_recorder.location = 302, "https://127.0.0.1:1/elsewhere"
    url = https_recorder.url(f"/confirm?t={TOKEN}")
    deliver(dovecot, imap_user, account, newsletter(1, unsubscribe=f"<{url}>", post=True))

    response = unsubscribe(alice_client)
    assert len(https_recorder.requests) == 1  # the redirect was not followed
    page = response.content.decode()
    assert response.status_code == 200 and "Finish on the sender" in page
    assert f'href="{url}"' in page.replace("&amp;", "&") and 'rel="noopener noreferrer"' in page
    record = Unsubscription.objects.get()
    assert (record.method, record.state) == ("link", "manual") and "redirect (302)" in render(record.detail)


def test_a_plain_link_is_shown_not_fetched(alice_client, account, dovecot, imap_user, https_recorder):
    url = https_recorder.url("/page")  # no List-Unsubscribe-Post: a page for a person, not one click
    deliver(dovecot, imap_user, account, newsletter(1, unsubscribe=f"<{url}>"))
    page = unsubscribe(alice_client).content.decode()
    assert https_recorder.requests == []
    assert url in page and Unsubscription.objects.get().state == "manual"


def test_the_outbound_policy_applies_to_one_click(alice_client, account, dovecot, imap_user, https_recorder, settings):
    deliver(dovecot, imap_user, account, newsletter(1, unsubscribe=f"<{https_recorder.url('/u')}>", post=True))
    settings.MAILHELPER_OUTBOUND_ALLOW = []  # loopback is then refused, as in production
    unsubscribe(alice_client)
    assert https_recorder.requests == []
    record = Unsubscription.objects.get()
    assert record.state == "manual" and "may not contact" in render(record.detail)


def test_mail_without_an_offer_fails_clearly(alice_client, account, dovecot, imap_user):
    deliver(dovecot, imap_user, account, newsletter(1))
    response = unsubscribe(alice_client)
    assert response.status_code == 302
    page = alice_client.get(response.url).content.decode()
    assert "offers no way to unsubscribe" in page
    assert Unsubscription.objects.get().state == "failed"


def test_archive_adds_one_rule_and_runs_it_over_the_existing_mail(alice_client, alice, account, dovecot, imap_user):
    deliver(dovecot, imap_user, account, newsletter(1, unsubscribe=f"<mailto:{LIST}>"))
    unsubscribe(alice_client, archive="1")
    [rule] = Rule.objects.filter(owner=alice.user)
    assert rule.enabled and rule.definition["conditions"][0] == {
        "field": "from", "op": "equals", "value": LIST, "negate": False,
    }  # fmt: skip
    assert rule.definition["actions"] == [{"type": "archive", "value": None}]
    job = Job.objects.get(owner=alice.user, kind=Job.Kind.RULES)
    assert job.params == {"rule_ids": [rule.pk]}
    assert Unsubscription.objects.get().archive_rule == rule

    unsubscribe(alice_client, archive="1")
    assert Rule.objects.filter(owner=alice.user).count() == 1  # the same rule, not a second one


def test_another_users_sender_is_not_found(alice_client, bob, account, dovecot, imap_user, smtp_sink):
    deliver(dovecot, imap_user, account, newsletter(1, unsubscribe=f"<mailto:{LIST}>"))
    bob_client = verified_client(bob)
    assert LIST not in bob_client.get(reverse("newsletters:list")).content.decode()
    assert unsubscribe(bob_client).status_code == 404
    assert smtp_sink.messages == [] and not Unsubscription.objects.exists()


def test_unsubscribing_is_rate_limited_per_user(alice_client, account, dovecot, imap_user, settings):
    settings.MAILHELPER_RATE_UNSUBSCRIBE = "2/h"
    deliver(dovecot, imap_user, account, newsletter(1))
    assert [unsubscribe(alice_client).status_code for _ in range(3)] == [302, 302, 429]
