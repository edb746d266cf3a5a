"""Legacy rule JSON -> rules/spec.py documents (pure: no database)."""

from __future__ import annotations

import json

import pytest

from legacy.rules import Resolver, convert_rule
from rules import spec

TAGS = {7: 70, "Work": 71}
FOLDERS = {"Archive": 5}
RESOLVER = Resolver(tag=lambda v: TAGS.get(v), folder=lambda v: FOLDERS.get(v))


def convert(conditions, actions):
    return convert_rule(json.dumps(conditions), json.dumps(actions), RESOLVER)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("sender_equals", "a@b.test", ("from", "equals", "a@b.test", False)),
        ("sender_contains", "bob", ("from", "contains", "bob", False)),
        ("sender_domain", "@Example.TEST", ("from", "domain", "example.test", False)),
        ("subject_contains", "invoice", ("subject", "contains", "invoice", False)),
        ("subject_regex", r"^\[ticket \d+\]", ("subject", "matches", r"^\[ticket \d+\]", False)),
        ("body_contains", "unsubscribe", ("body", "contains", "unsubscribe", False)),
        ("body_regex", "order [0-9]+", ("body", "matches", "order [0-9]+", False)),
        ("has_attachment", True, ("has_attachment", "is", True, False)),
        ("folder_equals", "INBOX", ("folder", "equals", "INBOX", False)),
        ("ai_category", "aktion_erforderlich", ("category", "equals", "action_required", False)),
        ("ai_priority", "hoch", ("urgency", "at_least", 3, False)),
        ("ai_suggested_tag", "Work", ("has_tag", "equals", 71, False)),
        ("sender_not_contains", "noreply", ("from", "contains", "noreply", True)),
    ],
)
def test_each_known_condition_key(key, value, expected):
    result = convert({"match_mode": "all", key: value}, {"mark_as_read": True})
    assert result.complete, (result.unconverted, result.problems)
    c = result.definition["conditions"][0]
    assert (c["field"], c["op"], c["value"], c["negate"]) == expected
    assert spec.is_valid(result.definition)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("move_to_folder", "Archive", [("move", 5)]),
        ("mark_as_read", True, [("mark_read", None)]),
        ("mark_as_flagged", 1, [("flag", None)]),
        ("apply_tag", 7, [("add_tag", 70)]),
        ("apply_tag", ["Work", 7], [("add_tag", 71), ("add_tag", 70)]),
        ("set_priority", 2, [("set_urgency", 2), ("set_importance", 2)]),
        ("delete", True, [("trash", None)]),
        ("stop_processing", True, [("stop", None)]),
    ],
)
def test_each_known_action_key(key, value, expected):
    result = convert({"subject_contains": "x"}, {key: value})
    assert result.complete, (result.unconverted, result.problems)
    assert [(a["type"], a["value"]) for a in result.definition["actions"]] == expected


def test_unknown_keys_and_unresolvable_values_are_returned_not_dropped():
    result = convert(
        {"match_mode": "any", "subject_contains": "x", "sender_in_contacts": True, "ai_category": "quatsch"},
        {"mark_as_read": True, "forward_to": "x@y.test", "move_to_folder": "No such folder", "apply_tag": 99},
    )
    assert result.definition is not None and not result.complete
    assert result.unconverted == {
        "conditions.sender_in_contacts": True,
        "conditions.ai_category": "quatsch",
        "actions.forward_to": "x@y.test",
        "actions.move_to_folder": "No such folder",
        "actions.apply_tag": 99,
    }


def test_false_actions_mean_no_action_and_several_values_need_match_any_for_choices():
    result = convert(
        {"match_mode": "all", "ai_category": ["newsletter", "spam"]}, {"delete": False, "stop_processing": True}
    )
    assert result.unconverted == {"conditions.ai_category": ["newsletter", "spam"]}
    assert result.definition is None  # no condition left
    result = convert(
        {"match_mode": "any", "ai_category": ["newsletter", "spam"]}, {"delete": False, "mark_as_read": True}
    )
    assert [c["value"] for c in result.definition["conditions"]] == ["newsletter", "spam"]
    assert [a["type"] for a in result.definition["actions"]] == ["mark_read"]


def test_broken_json_and_unsafe_regex_are_problems():
    assert convert_rule("{not json", "{}", RESOLVER).problems[0] == "conditions: not valid JSON"
    result = convert({"subject_regex": "([unclosed"}, {"mark_as_read": True})
    assert result.definition is None and any("regular expression" in p for p in result.problems)
