"""The busiest pages (list, message, dashboard, search) run a fixed number of queries, whatever the
mailbox holds: the figures of #15 (CPU per request) depend on them, so a change shows here first.

Every page: the session's user and the OTP device (middleware), then the page's own queries."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from analysis import pipeline
from mail.models import Message
from tags.models import Tag, TagAssignment
from tests.plugins.accounts import verified_client
from tests.plugins.mail import create_account, make_raw, run_sync

pytestmark = pytest.mark.django_db

# page -> its own queries, after the middleware's two
EXPECTED = {
    # count (capped), folders (sidebar and "move to"), rows as values, their tags, unread per folder, tags
    "list": 6,
    # message with account, folder and analysis (and the conversation's size and whether it is from one of
    # the user's addresses), attachments, "move to" folders, tags (on it, suggested, to choose: one query)
    "message": 4,
    # matrix and pending analyses, accounts (filter and own addresses), to reply + awaiting reply + snoozed
    "dashboard": 3,
    # accounts, the words' matches, rows as values, their tags, folders, tags
    "search": 6,
}


def queries_of(client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return [q["sql"] for q in captured.captured_queries]


@pytest.fixture
def mailbox(dovecot, imap_user, alice):
    for i in range(12):
        dovecot.deliver(imap_user, make_raw(i, attachment=b"x" if i % 3 else None), flags="S" if i % 2 else "")
    account = create_account(alice.user, imap_user, dovecot)
    run_sync(account)
    pipeline.analyse_pending(account.pk)
    tag = Tag.objects.create(owner=alice.user, name="Work", color="#0055aa")
    for message in Message.objects.filter(account=account)[:5]:
        TagAssignment.objects.create(owner=alice.user, tag=tag, message=message)
    return account


def test_each_page_runs_its_fixed_number_of_queries(alice, mailbox):
    client = verified_client(alice)
    message = Message.objects.filter(account=mailbox).order_by("-sort_date").first()
    urls = {
        "list": reverse("mail:list"),
        "message": reverse("mail:message", args=[message.pk]),
        "dashboard": reverse("mail:dashboard"),
        "search": reverse("mail:search") + "?q=message",
    }
    for page, url in urls.items():
        client.get(url)  # first view: what a page does once (mark read) is not the steady figure
        sql = queries_of(client, url)
        assert len(sql) == 2 + EXPECTED[page], (page, sql)
        assert "accounts_user" in sql[0] and "otp_totp_totpdevice" in sql[1]


def test_the_list_reads_rows_as_values_and_decrypts_only_what_it_shows(alice, mailbox):
    sql = " ".join(queries_of(verified_client(alice), reverse("mail:list")))
    assert '"mail_message"."text_body"' not in sql and '"mail_message"."raw"' not in sql
    assert '"mail_mailaccount"."imap_password"' not in sql  # the row's account: its name only


def test_the_message_page_reads_no_account_secrets(alice, mailbox):
    message = Message.objects.filter(account=mailbox).order_by("-sort_date").first()
    sql = " ".join(queries_of(verified_client(alice), reverse("mail:message", args=[message.pk])))
    assert '"mail_mailaccount"."name"' in sql  # the account is read, its secrets are not
    for column in ("imap_password", "smtp_password", "oauth_access_token", "oauth_refresh_token"):
        assert f'"mail_mailaccount"."{column}"' not in sql, column
