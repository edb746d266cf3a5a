"""Changing rules without a page (rules/editing.py), and the list page's buttons calling it."""

import pytest
from django.urls import reverse

from rules import editing
from rules.models import Rule
from tags.models import Tag

pytestmark = pytest.mark.django_db

DOC = {
    "match": "all",
    "conditions": [{"field": "from", "op": "domain", "value": "x.example"}],
    "actions": [{"type": "flag"}],
}


def make(owner, name, order):
    return Rule.objects.create(owner=owner, name=name, order=order, definition=DOC)


def names(owner):
    return list(Rule.objects.filter(owner=owner).order_by("order", "id").values_list("name", "order"))


def test_a_saved_new_rule_goes_last_normalised_and_an_edit_keeps_its_place(alice, bob):
    make(alice.user, "a", 4)
    make(bob.user, "bobs", 9)  # another user's rules do not move alice's "last"
    rule = editing.save(alice.user.pk, None, name="new", enabled=False, document=DOC)
    assert (rule.order, rule.enabled) == (5, False)
    assert rule.definition["conditions"][0]["negate"] is False and rule.definition["actions"][0]["value"] is None
    edited = editing.save(alice.user.pk, rule, name="renamed", enabled=True, document=DOC)
    assert Rule.objects.get(pk=edited.pk).name == "renamed" and edited.order == 5


def test_move_swaps_neighbours_renumbers_and_stops_at_the_ends(alice, bob):
    a, b, c = make(alice.user, "a", 1), make(alice.user, "b", 2), make(alice.user, "c", 3)
    other = make(bob.user, "bobs", 1)
    assert editing.move(c, "up") is True
    assert names(alice.user) == [("a", 1), ("c", 2), ("b", 3)]
    assert editing.move(a, "up") is False and editing.move(b, "down") is False
    assert names(alice.user) == [("a", 1), ("c", 2), ("b", 3)]
    assert Rule.objects.get(pk=other.pk).order == 1


def test_move_heals_gaps_and_duplicate_places(alice):
    # Two rules created at the same moment can share the "last" place; older data has gaps.
    make(alice.user, "a", 7)
    b = make(alice.user, "b", 7)
    make(alice.user, "c", 20)
    assert editing.move(b, "down") is True
    assert names(alice.user) == [("a", 1), ("c", 2), ("b", 3)]
    assert editing.move(b, "up") is True  # one press is one place, even after the gap was there
    assert names(alice.user) == [("a", 1), ("b", 2), ("c", 3)]


def test_templates_are_added_switched_off_and_need_one_of_the_users_own_tags(alice, bob):
    make(alice.user, "first", 1)
    outcome = editing.add_from_template(alice.user.pk, "newsletter_archive")
    assert outcome.problem == "" and outcome.rule.order == 2 and outcome.rule.enabled is False
    assert editing.add_from_template(alice.user.pk, "no_such_template") == editing.TemplateOutcome(
        None, "Unknown template."
    )
    bobs_tag = Tag.objects.create(owner=bob.user, name="bobs")
    for tag_id in (None, "", "x", bobs_tag.pk):
        refused = editing.add_from_template(alice.user.pk, "attachments_tag", tag_id)
        assert refused.rule is None and "Choose a tag" in refused.problem, tag_id
    tag = Tag.objects.create(owner=alice.user, name="attachments")
    tagged = editing.add_from_template(alice.user.pk, "attachments_tag", str(tag.pk))
    assert {"type": "add_tag", "value": tag.pk} in tagged.rule.definition["actions"]
    assert Rule.objects.filter(owner=alice.user).count() == 3


def test_toggle_and_delete(alice):
    a, b = make(alice.user, "a", 1), make(alice.user, "b", 2)
    assert editing.toggle(a) is False and Rule.objects.get(pk=a.pk).enabled is False
    assert editing.toggle(a) is True and Rule.objects.get(pk=a.pk).enabled is True
    editing.delete(a)
    assert names(alice.user) == [("b", 2)]
    assert editing.move(b, "up") is False


def test_the_list_page_buttons_move_and_toggle(alice_client, alice):
    a, b = make(alice.user, "a", 1), make(alice.user, "b", 2)
    response = alice_client.post(reverse("rules:move", args=[b.pk]), {"direction": "up"})
    assert response.url == reverse("rules:list")
    assert names(alice.user) == [("b", 1), ("a", 2)]
    alice_client.post(reverse("rules:move", args=[b.pk]), {"direction": "down"})
    assert names(alice.user) == [("a", 1), ("b", 2)]
    alice_client.post(reverse("rules:toggle", args=[a.pk]))
    assert Rule.objects.get(pk=a.pk).enabled is False
    refused = alice_client.post(reverse("rules:from-template"), {"template": "attachments_tag"}, follow=True)
    assert "Choose a tag" in refused.content.decode()
