"""Keyword search through the blind index: folding, AND, filters, backfill, no plaintext, scoping."""

import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from analysis import tasks as analysis_tasks
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
    analysis_tasks.analyse_account(str(account.pk))  # the index is built with the analysis, right after sync
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
    analysis_tasks.analyse_account(str(bob_account.pk))
    assert subjects(bob_client, q="muller") == ["Müller again"]
    alice_ids = set(Message.objects.get(account=account, uid=1).search_ids)
    bob_ids = set(Message.objects.get(account=bob_account).search_ids)
    assert not alice_ids & bob_ids


# The search service finds matches in steps (analysis.search.SearchResults): the newest messages first,
# then the GIN index, then one ordered query for a page beyond what those found. Small windows and
# cap make 60 messages take every path; each must give what one ordered query over all the
# messages gives (the plan the search page had before), page by page, in the same order.

WORDS_OF = {
    "common": lambda i: i % 5 != 0,  # 80%
    "mid": lambda i: i % 4 < 2,  # 50%, runs of two: ties
    "rare": lambda i: i in (6, 7, 8, 30, 31),  # 6-8 share a date
    "old": lambda i: i < 15,  # none among the newest messages
}


@pytest.fixture
def stored(alice):
    """60 messages stored directly (no IMAP): ties in sort_date, two folders, flags, one expunged, a tag."""
    from datetime import UTC, datetime, timedelta

    from mail.models import Folder, MailAccount
    from mail.search_tokens import search_key_for
    from tags.models import Tag, TagAssignment

    user = alice.user
    account = MailAccount.objects.create(
        owner=user, name="a", email_address="me@example.test", imap_host="127.0.0.1", imap_username="u"
    )
    inbox = Folder.objects.create(account=account, name="INBOX", special_use="inbox")
    archive = Folder.objects.create(account=account, name="Archive")
    key = search_key_for(user.pk)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    messages = Message.objects.bulk_create(
        Message(
            owner=user,
            account=account,
            folder=archive if i % 4 == 0 else inbox,
            uidvalidity=1,
            uid=i + 1,
            sort_date=start + timedelta(hours=5 * (i // 3)),  # 3 share each date (id breaks the tie), 4 days
            seen=i % 2 == 0,
            has_attachments=i % 7 == 0,
            expunged_at=start if i == 58 else None,
            search_ids=key.token_ids(["filler"] + [word for word, has in WORDS_OF.items() if has(i)]),
            subject=f"m{i}",
        )  # fmt: skip
        for i in range(60)
    )
    tag = Tag.objects.create(owner=user, name="work")
    TagAssignment.objects.bulk_create(
        TagAssignment(owner=user, tag=tag, message=m) for i, m in enumerate(messages) if i % 6 == 0
    )
    return {"user": user, "account": account, "archive": archive, "tag": tag, "start": start}


def _one_query(user, query, filters):
    """Reference: every match in one ordered query, as the search page ran it before the steps
    (with the date filters as they were too: on ``sort_date__date`` in the current time zone)."""
    from django.db.models import BooleanField
    from django.db.models.expressions import RawSQL

    from analysis import queries as inbox_queries
    from mail.search_tokens import search_key_for

    ids = search_key_for(user.pk).query_ids(query)
    contains = RawSQL('"mail_message"."search_ids" @> %s::bigint[]', (ids,), output_field=BooleanField())
    qs = inbox_queries.message_list(user, tag_ids=[filters.tag_id] if filters.tag_id else None)
    qs = qs.alias(has_words=contains).filter(has_words=True)
    if filters.account_id:
        qs = qs.filter(account_id=filters.account_id)
    if filters.folder_id:
        qs = qs.filter(folder_id=filters.folder_id)
    if filters.unread:
        qs = qs.filter(seen=False)
    if filters.has_attachment:
        qs = qs.filter(has_attachments=True)
    if filters.since:
        qs = qs.filter(sort_date__date__gte=filters.since)
    if filters.until:
        qs = qs.filter(sort_date__date__lte=filters.until)
    return [m.pk for m in qs]


def _filter_sets(stored):
    from datetime import timedelta

    from analysis.search import SearchFilters

    day = (stored["start"] + timedelta(days=1)).date()
    return [
        SearchFilters(),
        SearchFilters(folder_id=stored["archive"].pk),
        SearchFilters(account_id=str(stored["account"].pk), unread=True),
        SearchFilters(tag_id=stored["tag"].pk),
        SearchFilters(has_attachment=True),
        SearchFilters(since=day),
        SearchFilters(until=day),
        SearchFilters(since=day, until=day + timedelta(days=1), unread=True),
    ]


def test_every_path_gives_the_one_query_results_in_its_order(stored):
    from analysis.search import SearchResults
    from mail.paging import CappedPaginator
    from mail.search_tokens import search_key_for

    user, cap, per_page = stored["user"], 10, 3
    paths = set()
    for query in ["common", "mid", "rare", "old", "common mid", "mid rare", "common old", "nowhere"]:
        ids = search_key_for(user.pk).query_ids(query)
        for filters in _filter_sets(stored):
            expected = _one_query(user, query, filters)
            for sample, walk in [(8, 20), (3, 6), (100, 200)]:
                results = SearchResults(user, ids, filters, sample=sample, walk=walk)
                paginator = CappedPaginator(results, per_page, cap=cap)
                label = (query, filters, sample, walk, results.path)
                assert paginator.count == min(len(expected), cap + 1), label
                shown = [m.pk for n in paginator.page_range for m in paginator.page(n).object_list]
                assert shown == expected[: paginator.count], label
                paths.add(results.path)
    assert paths == {"recent", "index", "index+query"}
    old = SearchResults(user, search_key_for(user.pk).query_ids("old"), _filter_sets(stored)[0], sample=8, walk=20)
    assert old.capped_count(cap) == cap + 1 and old.path == "index+query"  # none recent: pages by one query
    assert [m.pk for m in old[0:3]] == _one_query(user, "old", _filter_sets(stored)[0])[:3]


def test_the_default_steps_give_the_one_query_results(stored):
    from analysis.search import search
    from mail.paging import CappedPaginator

    user = stored["user"]
    for query in ["common", "mid", "rare", "old common"]:
        for filters in _filter_sets(stored):
            results = search(user, query, filters)
            page = CappedPaginator(results, 50, cap=1000).get_page(1)
            assert [m.pk for m in page.object_list] == _one_query(user, query, filters)
            assert results.path == "recent"  # 60 messages: the first sample is the whole mailbox


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_date_filters_keep_the_days_of_the_current_time_zone(stored, zone):
    from datetime import date, timedelta

    from django.utils import timezone

    from analysis.search import SearchFilters, search
    from mail.paging import CappedPaginator

    first = stored["start"].date()
    with timezone.override(zone):
        for offset in range(-1, 5):
            day = first + timedelta(days=offset)
            for filters in [SearchFilters(since=day), SearchFilters(until=day), SearchFilters(since=day, until=day)]:
                page = CappedPaginator(search(stored["user"], "filler", filters), 100, cap=1000).get_page(1)
                expected = _one_query(stored["user"], "filler", filters)
                assert [m.pk for m in page.object_list] == expected, (zone, filters)
        assert len(CappedPaginator(search(stored["user"], "filler", SearchFilters(until=date.max)), 100).page(1)) == 59


@pytest.mark.parametrize(
    "in_transaction",
    [
        pytest.param(True, marks=pytest.mark.django_db),
        pytest.param(False, marks=pytest.mark.django_db(transaction=True)),
    ],
)
def test_planner_settings_of_the_index_step_do_not_outlive_it(stored, in_transaction):
    from analysis.search import SearchFilters, SearchResults
    from mail.search_tokens import search_key_for

    def settings():
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('enable_seqscan'), current_setting('enable_indexscan')")
            return cursor.fetchone()

    assert connection.in_atomic_block is in_transaction  # a test's transaction, or autocommit as in a request
    before = settings()
    results = SearchResults(stored["user"], search_key_for(stored["user"].pk).query_ids("rare"), SearchFilters(), 8, 20)
    assert results.capped_count(10) == 5 and results.path == "index"
    assert settings() == before == ("on", "on")
