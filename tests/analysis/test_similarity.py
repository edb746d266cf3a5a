"""Similar messages and "find messages about ...": per-user topic vectors, encrypted, scoped to their owner."""

from __future__ import annotations

import io
import random
import re
from email.message import EmailMessage

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts import crypto, keyring
from accounts.fields import value_aad
from analysis import similarity
from analysis import tasks as analysis_tasks
from analysis.models import MessageVector, TopicModel
from mail.models import Message
from tests.plugins.accounts import verified_client
from tests.plugins.mail import create_account, run_sync

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}

TOPICS = {
    "invoice": (
        [
            "Invoice {n} for your order",
            "Payment reminder: invoice {n}",
            "Your bill for March ({n})",
            "Overdue payment, reference {n}",
            "Receipt for your transfer {n}",
        ],
        "invoice invoices payment paid amount due overdue bill billing receipt transfer bank account vat total "
        "euro accounting remittance balance reminder",
    ),
    "travel": (
        [
            "Your flight booking {n}",
            "Hotel reservation confirmed ({n})",
            "Boarding pass for trip {n}",
            "Itinerary change for your journey {n}",
            "Train tickets booked, ref {n}",
        ],
        "flight flights booking booked hotel reservation airport boarding gate departure arrival itinerary "
        "luggage baggage trip journey train ticket seat check terminal passport",
    ),
    "football": (
        [
            "Match report: derby {n}",
            "Training moved, game {n}",
            "League table after round {n}",
            "Tickets for the cup final {n}",
            "Team news before matchday {n}",
        ],
        "football match goal goals team league striker coach stadium score season penalty referee fans "
        "derby cup midfield keeper training squad",
    ),
    "code": (
        [
            "Review requested: pull request {n}",
            "CI failed on branch {n}",
            "Please review my patch {n}",
            "Merge conflict in PR {n}",
            "Refactoring the parser, change {n}",
        ],
        "review pull request merge branch commit commits tests diff refactor bug function pipeline ci patch "
        "conflict rebase approve lint build repository",
    ),
}
FILLER = ["hello", "thanks", "please", "regards", "best", "tomorrow", "week", "let", "me", "know", "about", "this",
          "the", "and", "for", "with"]  # fmt: skip


def topic_mail(n: int, topic: str, date_day: int, text_of: int | None = None) -> bytes:
    """Message n of a topic; ``text_of`` takes the subject and text of another message of the topic."""
    subjects, words = TOPICS[topic]
    rnd = random.Random(f"{topic}-{n if text_of is None else text_of}")
    vocabulary = words.split()
    body = " ".join(rnd.choice(vocabulary) if rnd.random() < 0.6 else rnd.choice(FILLER) for _ in range(45))
    msg = EmailMessage()
    msg["From"] = f"{topic}-{(n if text_of is None else text_of) % 3}@{topic}.example"
    msg["To"] = "me@example.test"
    msg["Subject"] = (
        subjects[n % len(subjects)].format(n=n)
        if text_of is None
        else (subjects[text_of % len(subjects)].format(n=text_of))
    )
    msg["Message-ID"] = f"<{topic}-{n}@example.test>"
    msg["Date"] = f"Mon, {1 + date_day % 28} Feb 2026 {8 + n % 10}:00:00 +0000"
    msg.set_content(f"Hello,\n\n{body}.\n\nBest regards\n")
    return bytes(msg)


def deliver_topics(dovecot, imap_user, per_topic: int = 12, topics=tuple(TOPICS)) -> None:
    for topic in topics:
        for n in range(per_topic):
            dovecot.deliver(imap_user, topic_mail(n, topic, n))


def sync_and_analyse(account) -> None:
    run_sync(account)
    analysis_tasks.analyse_account(str(account.pk))  # vectors come with the analysis; a small mailbox is fitted there


def topic_of(message: Message) -> str:
    return message.message_id.split("-")[0]


def listed_ids(html: str) -> list[str]:
    return re.findall(r'data-message="([0-9a-f-]+)"', html)


@pytest.fixture
def topic_account(dovecot, imap_user, alice):
    similarity.forget_cache()
    account = create_account(alice.user, imap_user, dovecot)
    deliver_topics(dovecot, imap_user)
    sync_and_analyse(account)
    yield account
    similarity.forget_cache()


def test_similar_messages_of_a_travel_mail_are_travel_mails(alice_client, topic_account):
    model = TopicModel.objects.get(owner=topic_account.owner)
    assert model.version >= 1 and model.n_messages == 48
    assert MessageVector.objects.filter(owner=topic_account.owner, version=model.version).count() == 48
    for topic in TOPICS:
        message = Message.objects.get(message_id=f"{topic}-4@example.test")
        html = alice_client.get(reverse("mail:similar", args=[message.pk]), **HTMX).content.decode()
        ids = listed_ids(html)
        assert len(ids) == 5, html
        assert str(message.pk) not in ids
        assert {topic_of(m) for m in Message.objects.filter(pk__in=ids)} == {topic}


def test_find_messages_about_flight_booking_ranks_travel_first(alice_client, topic_account):
    html = alice_client.get(reverse("mail:search"), {"q": "flight booking", "mode": "about"}).content.decode()
    ids = listed_ids(html)
    assert len(ids) >= 10
    by_id = {str(m.pk): topic_of(m) for m in Message.objects.filter(pk__in=ids)}
    assert [by_id[i] for i in ids[:10]] == ["travel"] * 10
    assert "most related first" in html
    html = alice_client.get(reverse("mail:search"), {"q": "referee penalty", "mode": "about"}).content.decode()
    assert {topic_of(m) for m in Message.objects.filter(pk__in=listed_ids(html)[:8])} == {"football"}
    html = alice_client.get(reverse("mail:search"), {"q": "zyzzyva", "mode": "about"}).content.decode()
    assert listed_ids(html) == [] and "None of these words occurs" in html


def test_about_results_are_paged_and_filtered_like_the_list(alice_client, topic_account):
    from analysis.views import search as search_view

    params = {"q": "flight booking hotel", "mode": "about"}
    first = listed_ids(alice_client.get(reverse("mail:search"), params).content.decode())
    assert len(first) <= search_view.PAGE_SIZE
    html = alice_client.get(reverse("mail:search"), {**params, "since": "2030-01-01"}).content.decode()
    assert listed_ids(html) == [] and "No message is about" in html
    Message.objects.filter(pk=first[0]).update(seen=False)
    Message.objects.exclude(pk=first[0]).update(seen=True)
    html = alice_client.get(reverse("mail:search"), {**params, "unread": "1"}).content.decode()
    assert listed_ids(html) == [first[0]]


def test_vectors_and_topic_model_are_ciphertext_bound_to_their_owner(topic_account, bob):
    owner_id = topic_account.owner_id
    message = Message.objects.get(message_id="travel-1@example.test")
    row = MessageVector.objects.get(message=message)
    plain = row.vector  # decrypts
    assert len(plain) == TopicModel.objects.get(owner_id=owner_id).dims * 2 > 0  # float16s
    with connection.cursor() as cursor:
        cursor.execute("SELECT vector FROM mail_messagevector WHERE id = %s", [row.pk])
        stored = bytes(cursor.fetchone()[0])
        cursor.execute("SELECT state FROM mail_topicmodel WHERE owner_id = %s", [owner_id])
        state = bytes(cursor.fetchone()[0])
    assert plain not in stored and plain[:8] not in stored  # no float of the vector is readable
    for marker in (b"MHTP", b"buckets", b"components", b"idf", b"flight", b"travel"):
        assert marker not in state
    aad = value_aad(owner_id, "mail.messagevector", "vector", row.pk)
    assert crypto.open_sealed(keyring.dek_for(owner_id), stored, aad) == plain
    with pytest.raises(crypto.DecryptionError):
        crypto.open_sealed(keyring.dek_for(bob.user.pk), stored, aad)  # another user's key
    other = MessageVector.objects.exclude(pk=row.pk).filter(owner_id=owner_id).first()
    with pytest.raises(crypto.DecryptionError):  # moved to another row of the same user
        crypto.open_sealed(keyring.dek_for(owner_id), stored, value_aad(owner_id, "mail.messagevector", "vector",
                                                                         other.pk))  # fmt: skip


def test_another_users_mail_is_never_similar_nor_found(topic_account, bob, dovecot):
    bob_imap = dovecot.add_user()
    bob_account = create_account(bob.user, bob_imap, dovecot)
    deliver_topics(dovecot, bob_imap, per_topic=8, topics=("travel", "invoice", "code"))
    sync_and_analyse(bob_account)
    bob_client = verified_client(bob)
    alice_ids = {str(pk) for pk in Message.objects.filter(owner=topic_account.owner).values_list("pk", flat=True)}
    alice_travel = Message.objects.get(owner=topic_account.owner, message_id="travel-2@example.test")
    assert bob_client.get(reverse("mail:similar", args=[alice_travel.pk]), **HTMX).status_code == 404
    assert bob_client.get(reverse("mail:similar", args=[alice_travel.pk])).status_code == 404
    bob_travel = Message.objects.get(owner=bob.user, message_id="travel-2@example.test")
    similar = listed_ids(bob_client.get(reverse("mail:similar", args=[bob_travel.pk]), **HTMX).content.decode())
    assert similar and not set(similar) & alice_ids
    found = listed_ids(
        bob_client.get(reverse("mail:search"), {"q": "flight booking", "mode": "about"}).content.decode()
    )
    assert found and not set(found) & alice_ids
    with pytest.raises(ValueError):  # the service refuses a message of another user outright
        similarity.similar_to(bob.user, alice_travel)


def test_the_similar_block_costs_a_constant_number_of_queries(alice_client, topic_account):
    messages = list(Message.objects.filter(owner=topic_account.owner).order_by("message_id")[:3])
    url = lambda m: reverse("mail:similar", args=[m.pk])  # noqa: E731
    alice_client.get(url(messages[0]), **HTMX)  # warms the process cache of decrypted vectors
    counts = []
    for message in messages:
        with CaptureQueriesContext(connection) as ctx:
            response = alice_client.get(url(message), **HTMX)
        assert len(listed_ids(response.content.decode())) == 5
        counts.append(len(ctx.captured_queries))
    assert len(set(counts)) == 1 and counts[0] <= 12, counts
    similarity.forget_cache()  # a cold cache adds the two loading queries, not one per message
    with CaptureQueriesContext(connection) as ctx:
        alice_client.get(url(messages[0]), **HTMX)
    assert len(ctx.captured_queries) == counts[0] + 2


def test_expunged_mail_is_left_out_and_new_mail_gets_a_vector(alice_client, topic_account, dovecot, imap_user):
    travel = Message.objects.get(message_id="travel-3@example.test")
    before = listed_ids(alice_client.get(reverse("mail:similar", args=[travel.pk]), **HTMX).content.decode())
    from django.utils import timezone

    Message.objects.filter(pk=before[0]).update(expunged_at=timezone.now())
    after = listed_ids(alice_client.get(reverse("mail:similar", args=[travel.pk]), **HTMX).content.decode())
    assert before[0] not in after and len(after) == 5
    version = TopicModel.objects.get(owner=topic_account.owner).version
    loaded_at = similarity._CACHE[topic_account.owner_id].loaded_at
    dovecot.deliver(imap_user, topic_mail(99, "travel", 3))
    sync_and_analyse(topic_account)  # 49 messages: no refit, the pipeline projects the new one
    new = Message.objects.get(message_id="travel-99@example.test")
    assert MessageVector.objects.get(message=new).version == version
    similar = listed_ids(alice_client.get(reverse("mail:similar", args=[new.pk]), **HTMX).content.decode())
    assert {topic_of(m) for m in Message.objects.filter(pk__in=similar)} == {"travel"}
    cached = similarity._CACHE[topic_account.owner_id]
    assert cached.loaded_at == loaded_at and len(cached.ids) == 49  # the new vector was added, not all reloaded
    Message.objects.filter(pk=new.pk).delete()  # its vector goes with it; the cached copy is never shown
    after = listed_ids(alice_client.get(reverse("mail:similar", args=[travel.pk]), **HTMX).content.decode())
    assert len(after) == 5 and str(new.pk) not in after
    similarity.forget_cache()
    alice_client.get(reverse("mail:similar", args=[travel.pk]), **HTMX)
    assert len(similarity._CACHE[topic_account.owner_id].ids) == 48


def test_the_detail_page_loads_the_block_with_htmx_and_empty_states_explain(alice, dovecot, imap_user):
    similarity.forget_cache()
    account = create_account(alice.user, imap_user, dovecot)
    for n in range(3):
        dovecot.deliver(imap_user, topic_mail(n, "travel", n))
    sync_and_analyse(account)
    client = verified_client(alice)
    message = Message.objects.filter(owner=alice.user).first()
    detail = client.get(reverse("mail:message", args=[message.pk])).content.decode()
    assert f'hx-get="{reverse("mail:similar", args=[message.pk])}"' in detail
    block = client.get(reverse("mail:similar", args=[message.pk]), **HTMX).content.decode()
    assert "Not enough mail yet to learn topics" in block and "<html" not in block
    page = client.get(reverse("mail:similar", args=[message.pk])).content.decode()
    assert "<title>" in page and page.count("<h1") == 1  # opened without htmx: a page of its own
    html = client.get(reverse("mail:search"), {"q": "flight", "mode": "about"}).content.decode()
    assert "Not enough mail yet to learn topics" in html


def test_backfill_embeddings_fits_and_is_resumable(alice_client, topic_account):
    owner = topic_account.owner
    TopicModel.objects.filter(owner=owner).delete()
    MessageVector.objects.filter(owner=owner).delete()
    similarity.forget_cache()
    message = Message.objects.get(message_id="code-5@example.test")
    block = alice_client.get(reverse("mail:similar", args=[message.pk]), **HTMX).content.decode()
    assert "being learned" in block
    assert not similarity.claim_fit(owner.pk)  # the page queued the fit (mail imported or a task lost)
    out = io.StringIO()
    call_command("backfill_embeddings", "--user", "alice", stdout=out)
    assert "48 vector(s)" in out.getvalue()
    assert MessageVector.objects.filter(owner=owner).count() == 48
    MessageVector.objects.filter(owner=owner, message__message_id__startswith="code").delete()
    out = io.StringIO()
    call_command("backfill_embeddings", stdout=out)  # no refit needed: only the missing vectors
    assert "12 vector(s)" in out.getvalue() and "refitted 0" in out.getvalue()
    out = io.StringIO()
    call_command("backfill_embeddings", stdout=out)
    assert "0 vector(s)" in out.getvalue()
    ids = listed_ids(alice_client.get(reverse("mail:similar", args=[message.pk]), **HTMX).content.decode())
    assert {topic_of(m) for m in Message.objects.filter(pk__in=ids)} == {"code"}


def test_the_fit_task_refits_and_replaces_every_vector(topic_account):
    owner = topic_account.owner
    version = TopicModel.objects.get(owner=owner).version
    assert similarity.claim_fit(owner.pk) and not similarity.claim_fit(owner.pk)  # queued once
    result = analysis_tasks.fit_topics(owner.pk)
    assert result["status"] == "fitted" and result["messages"] == 48
    assert similarity.claim_fit(owner.pk)  # the task released its claim
    assert set(MessageVector.objects.filter(owner=owner).values_list("version", flat=True)) == {version + 1}
    assert analysis_tasks.fit_topics(10**9) == {"status": "gone"}


def test_equal_scores_list_the_newest_first_and_about_pages_cost_constant_queries(
    alice_client, topic_account, dovecot, imap_user
):
    for n, day in ((50, 1), (51, 9)):  # the text of football-7 twice, a week apart: equal vectors and scores
        dovecot.deliver(imap_user, topic_mail(n, "football", day, text_of=7))
    sync_and_analyse(topic_account)
    older, newer = (Message.objects.get(message_id=f"football-{n}@example.test") for n in (50, 51))
    assert newer.sort_date > older.sort_date
    original = Message.objects.get(message_id="football-7@example.test")
    ids = listed_ids(alice_client.get(reverse("mail:similar", args=[original.pk]), **HTMX).content.decode())
    assert ids[:2] == [str(newer.pk), str(older.pk)]
    counts = []
    for query in ("referee", "flight booking hotel airport", "invoice"):
        with CaptureQueriesContext(connection) as ctx:
            html = alice_client.get(reverse("mail:search"), {"q": query, "mode": "about"}).content.decode()
        assert listed_ids(html)
        counts.append(len(ctx.captured_queries))
    assert len(set(counts)) == 1, counts


def test_a_damaged_topic_model_is_refitted_not_fatal(alice_client, topic_account):
    owner = topic_account.owner
    row = TopicModel.objects.get(owner=owner)
    row.state = b"not a topic model"
    row.save()
    similarity.forget_cache()
    message = Message.objects.get(message_id="invoice-2@example.test")
    block = alice_client.get(reverse("mail:similar", args=[message.pk]), **HTMX).content.decode()
    assert "being learned" in block  # and the fit is queued once
    assert not similarity.claim_fit(owner.pk)
    assert analysis_tasks.fit_topics(owner.pk)["status"] == "fitted"
    ids = listed_ids(alice_client.get(reverse("mail:similar", args=[message.pk]), **HTMX).content.decode())
    assert {topic_of(m) for m in Message.objects.filter(pk__in=ids)} == {"invoice"}
    assert TopicModel.objects.get(owner=owner).version == row.version + 1


def test_mail_sharing_too_few_words_is_not_fitted_again_until_it_doubles(alice):
    from datetime import UTC, datetime

    from mail.models import MailAccount
    from mail.search_tokens import search_key_for

    user = alice.user
    account = MailAccount.objects.create(
        owner=user, name="stored", email_address="me@example.test", imap_host="127.0.0.1", imap_username="u"
    )
    folder = account.folders.create(name="INBOX")
    key = search_key_for(user.pk)
    for n in range(25):  # every message its own words: nothing shared by two of them
        words = f"unique{n}a unique{n}b unique{n}c"
        Message.objects.create(
            owner=user, account=account, folder=folder, uidvalidity=1, uid=n + 1, subject=words,
            sort_date=datetime(2026, 1, 1 + n, tzinfo=UTC), search_ids=key.message_ids(words, words, []),
        )  # fmt: skip
    assert similarity.needs_fit(user.pk)
    assert similarity.fit(user.pk).status == "not_enough"
    assert not similarity.needs_fit(user.pk)  # remembered: no new try on every analysed batch
    assert similarity.similar_to(user, Message.objects.filter(owner=user).first()).status == "not_enough"
