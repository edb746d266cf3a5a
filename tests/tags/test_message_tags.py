"""A message page's tags in one query (tags/queries.py) and its facts as columns (analysis.queries.message_page):
the same as the queries they replaced (#15)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analysis import queries as inbox_queries
from mail.models import Message
from mail.replies import own_addresses
from tags.models import Tag, TagAssignment, TagSuggestion
from tags.queries import message_tags

pytestmark = pytest.mark.django_db


def test_the_message_tags_suggestions_and_choices_in_one_query(alice, bob, five_synced):
    first, second = Message.objects.filter(account=five_synced).order_by("sort_date")[:2]
    work = Tag.objects.create(owner=alice.user, name="work", color="#112233")
    money = Tag.objects.create(owner=alice.user, name="Money", color="#445566")
    travel = Tag.objects.create(owner=alice.user, name="travel")
    spare = Tag.objects.create(owner=alice.user, name="zebra")
    bobs = Tag.objects.create(owner=bob.user, name="bob's")
    TagAssignment.objects.create(owner=alice.user, tag=work, message=first, source="rule")
    TagAssignment.objects.create(owner=alice.user, tag=money, message=first)
    TagAssignment.objects.create(owner=alice.user, tag=spare, message=second)  # another message
    TagAssignment.objects.create(owner=bob.user, tag=bobs, message=first)  # never shown to alice
    TagSuggestion.objects.create(owner=alice.user, tag=travel, message=first, score=0.4)
    TagSuggestion.objects.create(owner=alice.user, tag=spare, message=first, score=0.9)
    TagSuggestion.objects.create(owner=alice.user, tag=money, message=first, score=0.8, state="rejected")
    TagSuggestion.objects.create(owner=alice.user, tag=work, message=second, score=0.7)

    with CaptureQueriesContext(connection) as captured:
        shown = message_tags(alice.user.pk, first.pk)
    assert len(captured) == 1

    old_assignments = list(first.tag_assignments.filter(tag__owner=alice.user).select_related("tag").order_by("id"))
    old_suggestions = list(first.tag_suggestions.filter(state="open").select_related("tag"))
    assert [(a.pk, a.tag_id, a.tag.name, a.tag.color, a.source) for a in shown.assignments] == [
        (a.pk, a.tag_id, a.tag.name, a.tag.color, a.source) for a in old_assignments
    ]
    assert [(s.pk, s.tag.pk, s.tag.name, s.tag.color, s.score) for s in shown.suggestions] == [
        (s.pk, s.tag_id, s.tag.name, s.tag.color, s.score) for s in old_suggestions
    ]
    assert [s.tag.name for s in shown.suggestions] == ["zebra", "travel"]  # best first
    assert [(t.pk, t.name) for t in shown.choices] == [(t.pk, t.name) for t in Tag.objects.filter(owner=alice.user)]
    assert bobs.pk not in {t.pk for t in shown.choices}
    assert message_tags(bob.user.pk, first.pk).assignments[0].tag.name == "bob's"


def test_the_page_facts_are_what_the_queries_they_replaced_said(alice, five_synced):
    messages = list(Message.objects.filter(account=five_synced).order_by("sort_date"))
    Message.objects.filter(pk__in=[m.pk for m in messages[:3]]).update(thread_key="conversation")
    Message.objects.filter(pk=messages[2].pk).update(expunged_at=timezone.now())  # not counted any more
    Message.objects.filter(pk=messages[3].pk).update(thread_key="", from_address="ME@Example.test")
    user = alice.user
    facts = {m.pk: m for m in inbox_queries.message_page(user)}
    assert len(facts) == 5
    for old in Message.objects.filter(account=five_synced):
        size = inbox_queries.thread_of(user, old).count() if old.thread_key else 1
        own = old.from_address.lower() in own_addresses(user.pk)
        assert (facts[old.pk].thread_size, facts[old.pk].own_message) == (size, own), old.pk
    assert facts[messages[0].pk].thread_size == 2 and facts[messages[3].pk].own_message


def test_another_users_message_is_not_a_page_of_theirs(alice, bob, five_synced):
    assert not inbox_queries.message_page(bob.user).filter(account=five_synced).exists()
