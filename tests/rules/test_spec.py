"""rules.spec: the rule document's schema, its validation messages, form metadata and descriptions.

Pure: no database. The JSON Schema is the single source of truth for validity; these tests check that
every field/op and action is accepted with a good value and refused with a bad one, and that the
errors name the condition or action and say what it needs.
"""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest

from rules import spec, templates
from rules.spec import (
    ACTION_CHOICES,
    FIELD_CHOICES,
    OP_CHOICES,
    RULE_SCHEMA,
    describe_action,
    describe_condition,
    describe_rule,
    validate_rule,
)

# One good value per (field, op), and one of the wrong type.
GOOD_CONDITIONS = {
    ("from", "equals"): "alice@example.com",
    ("from", "contains"): "alice",
    ("from", "domain"): "example.com",
    ("to_cc", "contains"): "team@",
    ("subject", "contains"): "invoice",
    ("subject", "matches"): r"invoice\s+\d+",
    ("body", "contains"): "unsubscribe",
    ("body", "matches"): r"order #?\d{5}",
    ("has_attachment", "is"): True,
    ("attachment_type", "contains"): "pdf",
    ("folder", "equals"): "INBOX",
    ("account", "equals"): "3",
    ("is_list", "is"): False,
    ("size", "above"): 1_000_000,
    ("size", "below"): 5000,
    ("age_days", "above"): 30,
    ("category", "equals"): "newsletter",
    ("urgency", "at_least"): 2,
    ("importance", "at_least"): 3,
    ("is_spam", "is"): True,
    ("has_tag", "equals"): 7,
    ("sender_trusted", "is"): True,
}
BAD_CONDITION_VALUES = {
    ("from", "equals"): 5,
    ("from", "contains"): "",
    ("from", "domain"): "   ",
    ("to_cc", "contains"): None,
    ("subject", "contains"): ["invoice"],
    ("subject", "matches"): 12,
    ("body", "contains"): True,
    ("body", "matches"): "",
    ("has_attachment", "is"): "yes",
    ("attachment_type", "contains"): 1,
    ("folder", "equals"): 4,
    ("account", "equals"): 3,
    ("is_list", "is"): 1,
    ("size", "above"): "1MB",
    ("size", "below"): 0,
    ("age_days", "above"): -1,
    ("category", "equals"): "bills",
    ("urgency", "at_least"): 4,
    ("importance", "at_least"): True,
    ("is_spam", "is"): None,
    ("has_tag", "equals"): "work",
    ("sender_trusted", "is"): "true",
}
GOOD_ACTIONS = {
    "add_tag": 7,
    "remove_tag": 8,
    "mark_read": None,
    "mark_unread": None,
    "flag": None,
    "unflag": None,
    "move": 12,
    "trash": None,
    "archive": None,
    "set_category": "action_required",
    "set_urgency": 3,
    "set_importance": 1,
    "mark_done": None,
    "stop": None,
}
BAD_ACTION_VALUES = {
    "add_tag": "work",
    "remove_tag": 0,
    "mark_read": True,
    "mark_unread": 1,
    "flag": "x",
    "unflag": [],
    "move": "Archive",
    "trash": 3,
    "archive": "yes",
    "set_category": "bills",
    "set_urgency": 0,
    "set_importance": "3",
    "mark_done": False,
    "stop": 1,
}


def rule(*conditions: dict, actions: list[dict] | None = None, match: str = "all") -> dict:
    return {
        "match": match,
        "conditions": list(conditions),
        "actions": actions or [{"type": "mark_read", "value": None}],
    }


def cond(field: str, op: str, value, negate: bool = False) -> dict:
    return {"field": field, "op": op, "value": value, "negate": negate}


def schema_valid(doc) -> bool:
    return jsonschema.Draft202012Validator(RULE_SCHEMA).is_valid(doc)


def test_tables_cover_every_field_op_and_action() -> None:
    pairs = {(field, op) for field, ops in OP_CHOICES.items() for op, _ in ops}
    assert pairs == set(GOOD_CONDITIONS) == set(BAD_CONDITION_VALUES)
    assert {name for name, _ in ACTION_CHOICES} == set(GOOD_ACTIONS) == set(BAD_ACTION_VALUES)
    assert [name for name, _ in FIELD_CHOICES] == list(OP_CHOICES)


@pytest.mark.parametrize(("pair", "value"), GOOD_CONDITIONS.items(), ids=lambda x: str(x))
@pytest.mark.parametrize("negate", [False, True])
def test_every_field_op_accepted(pair: tuple[str, str], value, negate: bool) -> None:
    doc = rule(cond(*pair, value, negate=negate))
    assert validate_rule(doc) == []
    assert schema_valid(doc)


@pytest.mark.parametrize(("pair", "value"), BAD_CONDITION_VALUES.items(), ids=lambda x: str(x))
def test_every_field_op_refuses_a_bad_value(pair: tuple[str, str], value) -> None:
    field, op = pair
    doc = rule(cond("subject", "contains", "ok"), cond(field, op, value))
    errors = validate_rule(doc)
    assert len(errors) == 1 and errors[0].startswith(f"condition 2: '{field} {op}' needs ")
    assert not schema_valid(doc)


@pytest.mark.parametrize(("action_type", "value"), GOOD_ACTIONS.items())
def test_every_action_accepted(action_type: str, value) -> None:
    doc = rule(cond("is_spam", "is", True), actions=[{"type": action_type, "value": value}])
    assert validate_rule(doc) == [] and schema_valid(doc)


@pytest.mark.parametrize(("action_type", "value"), BAD_ACTION_VALUES.items())
def test_every_action_refuses_a_bad_value(action_type: str, value) -> None:
    doc = rule(cond("is_spam", "is", True), actions=[{"type": action_type, "value": value}])
    assert validate_rule(doc) == [f"action 1: '{action_type}' {_needs(spec.action_value_spec(action_type))}"]


def _needs(value_spec: spec.ValueSpec) -> str:
    return f"needs {value_spec.requirement()}"


def test_actions_without_value_may_omit_it_but_others_may_not() -> None:
    assert validate_rule(rule(cond("is_spam", "is", True), actions=[{"type": "trash"}])) == []
    assert validate_rule(rule(cond("is_spam", "is", True), actions=[{"type": "move"}])) == [
        "action 1: 'move' needs a folder id"
    ]


def test_negate_is_optional_but_must_be_boolean() -> None:
    assert validate_rule(rule({"field": "is_spam", "op": "is", "value": True})) == []
    assert validate_rule(rule({"field": "is_spam", "op": "is", "value": True, "negate": "no"})) == [
        "condition 1: negate must be true or false"
    ]


def test_unknown_field() -> None:
    errors = validate_rule(rule(cond("subject", "contains", "x"), cond("colour", "equals", "red")))
    assert len(errors) == 1 and errors[0].startswith("condition 2: unknown field 'colour' (known: from, to_cc,")


def test_wrong_op_for_field() -> None:
    assert validate_rule(rule(cond("from", "matches", "x"))) == [
        "condition 1: 'from' does not support 'matches' (use: equals, contains, domain)"
    ]
    assert validate_rule(rule(cond("size", "equals", 5))) == [
        "condition 1: 'size' does not support 'equals' (use: above, below)"
    ]


def test_invalid_regex() -> None:
    errors = validate_rule(rule(cond("subject", "contains", "ok"), cond("subject", "matches", "(unclosed")))
    assert len(errors) == 1
    assert errors[0].startswith("condition 2: 'subject matches' needs a valid regular expression: missing )")


def test_unsafe_regex_is_a_validation_error() -> None:
    errors = validate_rule(rule(cond("body", "matches", r"(?:a{1000}){1000}")))
    assert errors == [
        "condition 1: 'body matches' needs a valid regular expression: "
        "the repeat counts are too large (the pattern would be too expensive to compile)"
    ]
    assert validate_rule(rule(cond("body", "matches", "a" * 501))) == [
        "condition 1: 'body matches' needs a regular expression"
    ]


def test_structure_errors() -> None:
    assert validate_rule(None) == ["rule: must be an object with match, conditions and actions"]
    assert set(validate_rule({"conditions": [], "actions": [], "extra": 1})) == {
        "rule: unexpected key 'extra'",
        "rule: 'match' is missing",
        "rule: needs at least one condition",
        "rule: needs at least one action",
    }
    assert validate_rule({"match": "most", "conditions": "x", "actions": [{}]}) == [
        "rule: match must be 'all' or 'any'",
        "rule: conditions must be a list",
        "action 1: 'type' is missing",
    ]
    assert validate_rule(
        rule("subject contains x", {"field": "subject"}, {"field": "subject", "op": "contains", "value": "x", "x": 1})
    ) == [
        "condition 1: must be an object",
        "condition 2: 'op' and 'value' are missing",
        "condition 3: unexpected key 'x'",
    ]


def test_unknown_action_and_conflicts() -> None:
    actions = [
        {"type": "explode", "value": None},
        {"type": "move", "value": 3},
        {"type": "archive", "value": None},
        {"type": "mark_read", "value": None},
        {"type": "mark_read", "value": None},
        {"type": "add_tag", "value": 4},
        {"type": "remove_tag", "value": 4},
        {"type": "add_tag", "value": 5},
    ]
    errors = validate_rule(rule(cond("is_spam", "is", True), actions=actions))
    assert errors[0].startswith("action 1: unknown action 'explode' (known: add_tag, remove_tag,")
    assert errors[1:] == [
        "actions: 'mark_read' appears more than once",
        "actions: 'move' and 'archive' contradict each other; keep one",
        "actions: tag 4 is both added and removed",
    ]


def test_errors_listed_in_form_order() -> None:
    doc = rule(*[cond("size", "above", "big") for _ in range(11)])
    errors = validate_rule(doc)
    assert [e.split(":")[0] for e in errors] == [f"condition {i}" for i in range(1, 12)]


def test_limits_on_counts_and_lengths() -> None:
    assert validate_rule(rule(*[cond("is_spam", "is", True)] * 51)) == ["rule: has more than 50 conditions"]
    assert validate_rule(rule(cond("body", "contains", "x" * 1001))) == ["condition 1: 'body contains' needs some text"]


def test_schema_is_json_and_agrees_with_validate_rule() -> None:
    assert json.loads(json.dumps(RULE_SCHEMA)) == RULE_SCHEMA
    jsonschema.Draft202012Validator.check_schema(RULE_SCHEMA)
    base = rule(cond("subject", "contains", "x"))
    variants = [base, copy.deepcopy(base)]
    variants[1]["conditions"][0]["op"] = "matches"
    for doc in variants:
        assert schema_valid(doc) == (validate_rule(doc) == [])


def test_normalize_rule_fills_optional_keys() -> None:
    doc = {
        "match": "any",
        "conditions": [{"field": "is_spam", "op": "is", "value": True}],
        "actions": [{"type": "trash"}],
    }
    assert spec.normalize_rule(doc) == {
        "match": "any",
        "conditions": [{"field": "is_spam", "op": "is", "value": True, "negate": False}],
        "actions": [{"type": "trash", "value": None}],
    }


# --- form support ---------------------------------------------------------------------------------


def test_value_specs_tell_the_form_what_to_show() -> None:
    assert spec.condition_value_spec("size", "above").kind == spec.INT
    assert spec.condition_value_spec("subject", "matches").is_regex
    assert spec.condition_value_spec("has_tag", "equals").source == spec.SOURCE_TAG
    assert spec.condition_value_spec("category", "equals").kind == spec.CHOICE
    assert spec.condition_value_spec("is_spam", "is").kind == spec.BOOL
    assert spec.action_value_spec("move").source == spec.SOURCE_FOLDER
    assert spec.action_value_spec("stop").kind == spec.NONE
    metadata = spec.form_metadata()
    assert json.loads(json.dumps(metadata)) == metadata
    assert metadata["fields"]["urgency"]["ops"]["at_least"]["value"]["choices"] == [
        [1, "low"],
        [2, "medium"],
        [3, "high"],
    ]


def test_parse_form_values() -> None:
    assert spec.parse_condition_value("size", "above", " 1024 ") == 1024
    assert spec.parse_condition_value("is_spam", "is", "on") is True
    assert spec.parse_condition_value("is_spam", "is", "") is False
    assert spec.parse_condition_value("is_spam", "is", False) is False
    assert spec.parse_condition_value("from", "domain", " example.com ") == "example.com"
    assert spec.parse_condition_value("subject", "matches", r" \d+ ") == r" \d+ "  # a regex keeps its spaces
    assert spec.parse_action_value("set_urgency", "3") == 3
    assert spec.parse_action_value("archive", "") is None
    with pytest.raises(ValueError, match="whole number"):
        spec.parse_condition_value("age_days", "above", "a month")
    with pytest.raises(ValueError, match="true or false"):
        spec.parse_condition_value("has_attachment", "is", "maybe")


def test_category_choices_match_the_analysis_categories() -> None:
    from analysis.types import CATEGORY_LABELS

    assert [(str(key), label) for key, label in CATEGORY_LABELS.items()] == spec.CATEGORY_CHOICES


# --- descriptions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "text"),
    [
        (cond("subject", "contains", "invoice"), "subject contains “invoice”"),
        (cond("from", "domain", "example.com", negate=True), "NOT from domain example.com"),
        (cond("from", "equals", "a@b.c"), "from is “a@b.c”"),
        (cond("to_cc", "contains", "team@"), "to/cc contains “team@”"),
        (cond("body", "matches", r"\d{5}"), r"body matches /\d{5}/"),
        (cond("has_attachment", "is", True), "has an attachment"),
        (cond("has_attachment", "is", False), "has no attachment"),
        (cond("has_attachment", "is", False, negate=True), "has an attachment"),
        (cond("is_list", "is", True, negate=True), "is not a mailing list / newsletter"),
        (cond("sender_trusted", "is", True), "sender is trusted / VIP"),
        (cond("size", "above", 2 * 1024 * 1024), "size above 2 MB"),
        (cond("size", "below", 500), "size below 500 bytes"),
        (cond("age_days", "above", 30), "older than 30 days"),
        (cond("category", "equals", "newsletter"), "category is Newsletter"),
        (cond("urgency", "at_least", 3), "urgency at least 3 (high)"),
        (cond("folder", "equals", "INBOX"), "in folder “INBOX”"),
        (cond("has_tag", "equals", 7), "has tag “Work”"),
        (cond("has_tag", "equals", 99), "has tag “tag 99”"),
    ],
)
def test_describe_condition(condition: dict, text: str) -> None:
    assert describe_condition(condition, tag_names={7: "Work"}) == text


@pytest.mark.parametrize(
    ("action", "text"),
    [
        ({"type": "move", "value": 4}, "move to Archive"),
        ({"type": "move", "value": 5}, "move to folder 5"),
        ({"type": "trash", "value": None}, "move to Trash"),
        ({"type": "add_tag", "value": 7}, "add tag “Work”"),
        ({"type": "remove_tag", "value": 7}, "remove tag “Work”"),
        ({"type": "set_category", "value": "reply_expected"}, "set category to Reply expected"),
        ({"type": "set_importance", "value": 1}, "set importance to 1 (low)"),
        ({"type": "stop"}, "stop processing further rules"),
    ],
)
def test_describe_action(action: dict, text: str) -> None:
    assert describe_action(action, tag_names={7: "Work"}, folder_names={4: "Archive"}) == text


def test_every_condition_and_action_can_be_described() -> None:
    for (field, op), value in GOOD_CONDITIONS.items():
        assert describe_condition(cond(field, op, value))
    for action_type, value in GOOD_ACTIONS.items():
        assert describe_action({"type": action_type, "value": value}, {}, {})


def test_describe_rule() -> None:
    doc = rule(cond("subject", "contains", "invoice"), cond("is_spam", "is", True, negate=True), match="all")
    assert describe_rule(doc) == "If all of: subject contains “invoice”; is not spam, then: mark as read"


# --- templates ------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", list(templates.TEMPLATES))
def test_templates_are_valid(key: str) -> None:
    info = templates.TEMPLATES[key]
    name, doc = info.build(tag_id=5) if info.needs_tag else info.build()
    assert name and validate_rule(doc) == [] and schema_valid(doc)


def test_attachment_template_uses_the_given_tag() -> None:
    _, doc = templates.attachments_tag(42)
    assert doc["actions"] == [{"type": "add_tag", "value": 42}]
