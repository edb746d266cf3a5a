"""The rule document: its JSON format, its JSON Schema, its validation and its human descriptions.

A rule's conditions and actions are stored as one JSON document (``Rule.definition``)::

    {
      "match": "all" | "any",
      "conditions": [{"field": "subject", "op": "contains", "value": "invoice", "negate": false}, ...],
      "actions": [{"type": "add_tag", "value": 7}, {"type": "mark_read", "value": null}, ...]
    }

Everything about fields, operators and actions lives in the tables below (:data:`FIELDS`,
:data:`ACTIONS`); the JSON Schema (:data:`RULE_SCHEMA`), the form choices and the descriptions are
all derived from them, so adding a field is one table entry plus one evaluator in ``engine.py``.
Pure Python: no Django, no database, so it can be used by forms, views, tasks and tests alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema

from rules import safe_regex

# Value kinds: how a value is stored in JSON and which widget a form shows for it.
TEXT = "text"
INT = "int"
BOOL = "bool"
CHOICE = "choice"
NONE = "none"

# Where a form takes an int/text value's choices from, when it is an object of the user's.
SOURCE_TAG = "tag"  # tag id (int)
SOURCE_FOLDER = "folder"  # folder id (int), for the "move" action
SOURCE_FOLDER_NAME = "folder_name"  # folder name (text), for the "folder" condition
SOURCE_ACCOUNT = "account"  # account id as text

MAX_TEXT_LENGTH = 1000
MAX_CONDITIONS = 50
MAX_ACTIONS = 20

CATEGORY_CHOICES: list[tuple[str, str]] = [
    ("action_required", "Action required"),
    ("reply_expected", "Reply expected"),
    ("information", "Information"),
    ("newsletter", "Newsletter"),
    ("notification", "Notification"),
    ("spam", "Spam"),
]
LEVEL_CHOICES: list[tuple[int, str]] = [(1, "low"), (2, "medium"), (3, "high")]
MATCH_CHOICES: list[tuple[str, str]] = [("all", "All conditions match"), ("any", "Any condition matches")]


@dataclass(frozen=True)
class ValueSpec:
    """What a condition's or action's value must be; drives the schema, the form widget and the error text."""

    kind: str
    choices: tuple[tuple[Any, str], ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    source: str = ""  # one of the SOURCE_* constants when the value names one of the user's objects
    is_regex: bool = False

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of the value."""
        if self.kind == TEXT:
            limit = safe_regex.MAX_PATTERN_LENGTH if self.is_regex else MAX_TEXT_LENGTH
            return {"type": "string", "minLength": 1, "maxLength": limit, "pattern": r"\S"}
        if self.kind == INT:
            bounds = {"minimum": self.minimum, "maximum": self.maximum}
            return {"type": "integer", **{k: v for k, v in bounds.items() if v is not None}}
        if self.kind == BOOL:
            return {"type": "boolean"}
        if self.kind == CHOICE:
            return {"type": "string", "enum": [value for value, _ in self.choices]}
        return {"type": "null"}

    def requirement(self) -> str:
        """What the value must be, in words, for error messages ("a whole number from 1 to 3")."""
        if self.kind == TEXT:
            if self.is_regex:
                return "a regular expression"
            return "a folder name" if self.source == SOURCE_FOLDER_NAME else "some text"
        if self.kind == INT:
            if self.source in (SOURCE_TAG, SOURCE_FOLDER):
                return f"a {self.source} id"
            if self.maximum is not None:
                return f"a whole number from {self.minimum} to {self.maximum}"
            return f"a whole number of at least {self.minimum}"
        if self.kind == BOOL:
            return "true or false"
        if self.kind == CHOICE:
            return "one of " + ", ".join(str(value) for value, _ in self.choices)
        return "no value"


@dataclass(frozen=True)
class OpSpec:
    """One operator of a field: its form label, its value, and how a condition using it reads."""

    label: str
    value: ValueSpec
    phrase: str  # "{field} contains {value}"; bool fields use BOOL_PHRASES instead


@dataclass(frozen=True)
class FieldSpec:
    label: str
    ops: Mapping[str, OpSpec]


@dataclass(frozen=True)
class ActionSpec:
    label: str
    value: ValueSpec
    repeatable: bool = False  # add_tag/remove_tag may appear several times (with different tags)


_TEXT = ValueSpec(TEXT)
_REGEX = ValueSpec(TEXT, is_regex=True)
_BOOL = ValueSpec(BOOL)
_LEVEL = ValueSpec(INT, choices=tuple(LEVEL_CHOICES), minimum=1, maximum=3)
_CATEGORY = ValueSpec(CHOICE, choices=tuple(CATEGORY_CHOICES))
_TAG = ValueSpec(INT, minimum=1, source=SOURCE_TAG)
_NONE = ValueSpec(NONE)


def _is() -> dict[str, OpSpec]:
    """The single operator of a yes/no field (its phrases are in BOOL_PHRASES)."""
    return {"is": OpSpec("is", _BOOL, "")}


FIELDS: dict[str, FieldSpec] = {
    "from": FieldSpec(
        "From address",
        {
            "equals": OpSpec("is", _TEXT, "from is {value}"),
            "contains": OpSpec("contains", _TEXT, "from contains {value}"),
            "domain": OpSpec("domain is", _TEXT, "from domain {value}"),
        },
    ),
    "to_cc": FieldSpec("To or Cc", {"contains": OpSpec("contains", _TEXT, "to/cc contains {value}")}),
    "subject": FieldSpec(
        "Subject",
        {
            "contains": OpSpec("contains", _TEXT, "subject contains {value}"),
            "matches": OpSpec("matches regular expression", _REGEX, "subject matches {value}"),
        },
    ),
    "body": FieldSpec(
        "Body",
        {
            "contains": OpSpec("contains", _TEXT, "body contains {value}"),
            "matches": OpSpec("matches regular expression", _REGEX, "body matches {value}"),
        },
    ),
    "has_attachment": FieldSpec("Has an attachment", _is()),
    "attachment_type": FieldSpec(
        "Attachment type", {"contains": OpSpec("contains", _TEXT, "attachment type contains {value}")}
    ),
    "folder": FieldSpec(
        "Folder", {"equals": OpSpec("is", ValueSpec(TEXT, source=SOURCE_FOLDER_NAME), "in folder {value}")}
    ),
    "account": FieldSpec(
        "Account", {"equals": OpSpec("is", ValueSpec(TEXT, source=SOURCE_ACCOUNT), "account is {value}")}
    ),
    "is_list": FieldSpec("Mailing list / newsletter", _is()),
    "size": FieldSpec(
        "Size (bytes)",
        {
            "above": OpSpec("above", ValueSpec(INT, minimum=0), "size above {value}"),
            "below": OpSpec("below", ValueSpec(INT, minimum=1), "size below {value}"),
        },
    ),
    "age_days": FieldSpec(
        "Age (days)", {"above": OpSpec("above", ValueSpec(INT, minimum=0, maximum=36500), "older than {value} days")}
    ),
    "category": FieldSpec("Category", {"equals": OpSpec("is", _CATEGORY, "category is {value}")}),
    "urgency": FieldSpec("Urgency", {"at_least": OpSpec("at least", _LEVEL, "urgency at least {value}")}),
    "importance": FieldSpec("Importance", {"at_least": OpSpec("at least", _LEVEL, "importance at least {value}")}),
    "is_spam": FieldSpec("Spam", _is()),
    "has_tag": FieldSpec("Tag", {"equals": OpSpec("is", _TAG, "has tag {value}")}),
    "sender_trusted": FieldSpec("Sender is trusted / VIP", _is()),
}

# How a bool condition reads when it holds / does not hold (negation is folded in, "NOT has no attachment"
# would be hard to read).
BOOL_PHRASES: dict[str, tuple[str, str]] = {
    "has_attachment": ("has an attachment", "has no attachment"),
    "is_list": ("is a mailing list / newsletter", "is not a mailing list / newsletter"),
    "is_spam": ("is spam", "is not spam"),
    "sender_trusted": ("sender is trusted / VIP", "sender is not trusted / VIP"),
}

ACTIONS: dict[str, ActionSpec] = {
    "add_tag": ActionSpec("Add tag", _TAG, repeatable=True),
    "remove_tag": ActionSpec("Remove tag", _TAG, repeatable=True),
    "mark_read": ActionSpec("Mark as read", _NONE),
    "mark_unread": ActionSpec("Mark as unread", _NONE),
    "flag": ActionSpec("Flag", _NONE),
    "unflag": ActionSpec("Remove flag", _NONE),
    "move": ActionSpec("Move to folder", ValueSpec(INT, minimum=1, source=SOURCE_FOLDER)),
    "trash": ActionSpec("Move to Trash", _NONE),
    "archive": ActionSpec("Archive", _NONE),
    "set_category": ActionSpec("Set category", _CATEGORY),
    "set_urgency": ActionSpec("Set urgency", _LEVEL),
    "set_importance": ActionSpec("Set importance", _LEVEL),
    "mark_done": ActionSpec("Mark as done", _NONE),
    "stop": ActionSpec("Stop processing further rules", _NONE),
}

# Actions that contradict each other: at most one of each group in a rule.
CONFLICTING_ACTIONS: tuple[frozenset[str], ...] = (
    frozenset({"move", "trash", "archive"}),
    frozenset({"mark_read", "mark_unread"}),
    frozenset({"flag", "unflag"}),
)

# Form choices. OP_CHOICES maps each field to the operators it allows.
FIELD_CHOICES: list[tuple[str, str]] = [(name, spec.label) for name, spec in FIELDS.items()]
OP_CHOICES: dict[str, list[tuple[str, str]]] = {
    name: [(op, op_spec.label) for op, op_spec in spec.ops.items()] for name, spec in FIELDS.items()
}
ACTION_CHOICES: list[tuple[str, str]] = [(name, spec.label) for name, spec in ACTIONS.items()]


_NO_OPS = FieldSpec("", {})


def condition_value_spec(field: str, op: str) -> ValueSpec:
    """The value a (field, op) pair needs; KeyError for an unknown pair."""
    return FIELDS[field].ops[op].value


def action_value_spec(action_type: str) -> ValueSpec:
    """The value an action needs (kind NONE: none); KeyError for an unknown action."""
    return ACTIONS[action_type].value


def form_metadata() -> dict[str, Any]:
    """Everything a rule form needs to switch operators and value widgets client-side, as plain JSON."""

    def value(spec: ValueSpec) -> dict[str, Any]:
        return {
            "kind": spec.kind,
            "choices": [list(choice) for choice in spec.choices],
            "min": spec.minimum,
            "max": spec.maximum,
            "source": spec.source,
            "regex": spec.is_regex,
        }

    return {
        "match": [list(choice) for choice in MATCH_CHOICES],
        "fields": {
            name: {
                "label": spec.label,
                "ops": {op: {"label": o.label, "value": value(o.value)} for op, o in spec.ops.items()},
            }
            for name, spec in FIELDS.items()
        },
        "actions": {name: {"label": spec.label, "value": value(spec.value)} for name, spec in ACTIONS.items()},
    }


# ---------------------------------------------------------------------------------------------------
# JSON Schema


def _condition_schema() -> dict[str, Any]:
    per_field = []
    for name, spec in FIELDS.items():
        per_op = [
            {
                "if": {"properties": {"op": {"const": op}}, "required": ["op"]},
                "then": {"properties": {"value": o.value.schema()}},
            }
            for op, o in spec.ops.items()
        ]
        then = {"properties": {"op": {"enum": list(spec.ops)}}, "allOf": per_op}
        per_field.append({"if": {"properties": {"field": {"const": name}}, "required": ["field"]}, "then": then})
    return {
        "type": "object",
        "required": ["field", "op", "value"],
        "additionalProperties": False,
        "properties": {
            "field": {"enum": list(FIELDS)},
            "op": {"type": "string"},
            "value": {},
            "negate": {"type": "boolean"},
        },
        "allOf": per_field,
    }


def _action_schema() -> dict[str, Any]:
    per_type = []
    for name, spec in ACTIONS.items():
        then: dict[str, Any] = {"properties": {"value": spec.value.schema()}}
        if spec.value.kind != NONE:
            then["required"] = ["value"]
        per_type.append({"if": {"properties": {"type": {"const": name}}, "required": ["type"]}, "then": then})
    return {
        "type": "object",
        "required": ["type"],
        "additionalProperties": False,
        "properties": {"type": {"enum": list(ACTIONS)}, "value": {}},
        "allOf": per_type,
    }


RULE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Mailhelper rule",
    "type": "object",
    "required": ["match", "conditions", "actions"],
    "additionalProperties": False,
    "properties": {
        "match": {"enum": [value for value, _ in MATCH_CHOICES]},
        "conditions": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_CONDITIONS,
            "items": {"$ref": "#/$defs/condition"},
        },
        "actions": {"type": "array", "minItems": 1, "maxItems": MAX_ACTIONS, "items": {"$ref": "#/$defs/action"}},
    },
    "$defs": {"condition": _condition_schema(), "action": _action_schema()},
}

jsonschema.Draft202012Validator.check_schema(RULE_SCHEMA)
_VALIDATOR = jsonschema.Draft202012Validator(RULE_SCHEMA)


# ---------------------------------------------------------------------------------------------------
# Validation


def validate_rule(doc: Any) -> list[str]:
    """Every problem with a rule document, in words a user can act on; an empty list means valid.

    The JSON Schema decides what is valid; its errors are reworded per condition/action ("condition 2:
    'size above' needs a whole number of at least 0"). Two checks the schema cannot express follow:
    regexes must pass the safe compiler, and an action may not contradict another one in the same rule.
    """
    found = [(_path_order(list(e.absolute_path)), _reword(e, doc)) for e in _VALIDATOR.iter_errors(doc)]
    if isinstance(doc, dict):
        found += _regex_errors(doc.get("conditions"))
        found += _action_conflicts(doc.get("actions"))
    found.sort(key=lambda pair: pair[0])
    return list(dict.fromkeys(message for _, message in found))  # several schema errors can read the same


def is_valid(doc: Any) -> bool:
    return not validate_rule(doc)


def normalize_rule(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A valid document with every optional key filled in ("negate": false, "value": null), for storage."""
    return {
        "match": doc["match"],
        "conditions": [
            {"field": c["field"], "op": c["op"], "value": c["value"], "negate": bool(c.get("negate", False))}
            for c in doc["conditions"]
        ],
        "actions": [{"type": a["type"], "value": a.get("value")} for a in doc["actions"]],
    }


_SECTION_ORDER = {"match": 1, "conditions": 2, "actions": 3}


def _path_order(path: list) -> tuple[int, int]:
    """Errors sorted as the form shows them: the rule, then conditions in order, then actions in order."""
    if not path:
        return (0, 0)
    index = path[1] if len(path) > 1 and isinstance(path[1], int) else -1
    return (_SECTION_ORDER.get(str(path[0]), 0), index)


def _where(path: list) -> tuple[str, Any]:
    """("condition 2", <key inside it>) for an error path, 1-based like the form shows them."""
    if len(path) >= 2 and path[0] in ("conditions", "actions") and isinstance(path[1], int):
        return f"{path[0][:-1]} {path[1] + 1}", (path[2] if len(path) > 2 else None)
    return "rule", (path[0] if path else None)


def _item(doc: Any, path: list) -> Mapping[str, Any]:
    try:
        item = doc[path[0]][path[1]]
    except (KeyError, IndexError, TypeError):
        return {}
    return item if isinstance(item, Mapping) else {}


def _reword(error: jsonschema.ValidationError, doc: Any) -> str:
    path = list(error.absolute_path)
    where, key = _where(path)
    item = (doc if isinstance(doc, Mapping) else {}) if where == "rule" else _item(doc, path)
    if error.validator == "required":
        return f"{where}: {_missing_message(item, path, error)}"
    if error.validator == "additionalProperties":
        extra = sorted(set(item) - set(error.schema.get("properties", {})), key=str)
        return f"{where}: unexpected key {', '.join(repr(e) for e in extra)}"
    if where == "rule":
        return f"rule: {_rule_message(error, key)}"
    if error.validator == "type" and key is None:
        return f"{where}: must be an object"
    if path[0] == "conditions":
        return f"{where}: {_condition_message(item, key, error)}"
    return f"{where}: {_action_message(item, key, error)}"


def _missing_message(item: Mapping[str, Any], path: list, error: jsonschema.ValidationError) -> str:
    missing = [name for name in error.validator_value if name not in item]
    if missing == ["value"] and path and path[0] == "actions" and item.get("type") in ACTIONS:
        return f"'{item['type']}' needs {action_value_spec(item['type']).requirement()}"
    if (
        missing == ["value"]
        and path
        and path[0] == "conditions"
        and item.get("op") in FIELDS.get(item.get("field"), _NO_OPS).ops
    ):
        return f"'{item['field']} {item['op']}' needs {condition_value_spec(item['field'], item['op']).requirement()}"
    names = " and ".join(repr(name) for name in missing) or "a key"
    return f"{names} {'is' if len(missing) < 2 else 'are'} missing"


def _rule_message(error: jsonschema.ValidationError, key: Any) -> str:
    if key is None and error.validator == "type":
        return "must be an object with match, conditions and actions"
    if key == "match":
        return "match must be 'all' or 'any'"
    if key in ("conditions", "actions") and error.validator == "minItems":
        return f"needs at least one {key[:-1]}"
    if key in ("conditions", "actions") and error.validator == "maxItems":
        return f"has more than {error.validator_value} {key}"
    if key in ("conditions", "actions") and error.validator == "type":
        return f"{key} must be a list"
    return error.message


def _condition_message(item: Mapping[str, Any], key: Any, error: jsonschema.ValidationError) -> str:
    field, op = item.get("field"), item.get("op")
    if key == "field":
        return f"unknown field {field!r} (known: {', '.join(FIELDS)})"
    if key == "op":
        if not isinstance(op, str):
            return "the operator must be text"
        return f"'{field}' does not support {op!r} (use: {', '.join(FIELDS[field].ops)})"
    if key == "negate":
        return "negate must be true or false"
    if key == "value" and field in FIELDS and op in FIELDS[field].ops:
        return f"'{field} {op}' needs {condition_value_spec(field, op).requirement()}"
    return error.message


def _action_message(item: Mapping[str, Any], key: Any, error: jsonschema.ValidationError) -> str:
    action_type = item.get("type")
    if key == "type":
        return f"unknown action {action_type!r} (known: {', '.join(ACTIONS)})"
    if key == "value" and action_type in ACTIONS:
        return f"'{action_type}' needs {action_value_spec(action_type).requirement()}"
    return error.message


def _regex_errors(conditions: Any) -> list[tuple[tuple[int, int], str]]:
    """Regexes must compile under the safe compiler's limits (values the schema refuses are left to it)."""
    if not isinstance(conditions, list):
        return []
    errors = []
    for index, condition in enumerate(conditions):
        if not isinstance(condition, Mapping) or condition.get("op") != "matches":
            continue
        field, value = condition.get("field"), condition.get("value")
        if field not in ("subject", "body") or not isinstance(value, str) or not value.strip():
            continue
        if len(value) > safe_regex.MAX_PATTERN_LENGTH:
            continue
        try:
            safe_regex.compile_user_regex(value)
        except safe_regex.UnsafeRegex as exc:
            message = f"condition {index + 1}: '{field} matches' needs a valid regular expression: {exc}"
            errors.append(((2, index), message))
    return errors


def _action_conflicts(actions: Any) -> list[tuple[tuple[int, int], str]]:
    """Actions that repeat or contradict each other: which one wins would depend on their order."""
    if not isinstance(actions, list):
        return []
    items = [a for a in actions if isinstance(a, Mapping) and a.get("type") in ACTIONS]
    types = list(dict.fromkeys(a["type"] for a in items))
    counts = {t: sum(1 for a in items if a["type"] == t) for t in types}
    errors = [f"actions: '{t}' appears more than once" for t in types if counts[t] > 1 and not ACTIONS[t].repeatable]
    for group in CONFLICTING_ACTIONS:
        present = [t for t in types if t in group]
        if len(present) > 1:
            errors.append(f"actions: {' and '.join(repr(t) for t in present)} contradict each other; keep one")
    added = [a.get("value") for a in items if a["type"] == "add_tag"]
    removed = {a.get("value") for a in items if a["type"] == "remove_tag" and isinstance(a.get("value"), int)}
    errors += [f"actions: tag {value} is both added and removed" for value in added if value in removed]
    return [((3, len(actions)), message) for message in errors]


# ---------------------------------------------------------------------------------------------------
# Form values


def parse_condition_value(field: str, op: str, raw: str | bool | None) -> Any:
    """Turn what a form field holds (text, or a checkbox's bool) into the JSON value; ValueError if not possible."""
    return _parse_value(condition_value_spec(field, op), raw)


def parse_action_value(action_type: str, raw: str | None) -> Any:
    """Turn what a form field holds into an action's JSON value (None for actions without one)."""
    return _parse_value(action_value_spec(action_type), raw)


def _parse_value(spec: ValueSpec, raw: str | bool | None) -> Any:
    if spec.kind == NONE:
        return None
    if spec.kind == BOOL:
        if isinstance(raw, bool):
            return raw
        text = (raw or "").strip().lower()
        if text in ("true", "yes", "on", "1"):
            return True
        if text in ("false", "no", "off", "0", ""):
            return False
        raise ValueError(f"needs {spec.requirement()}")
    text = "" if raw is None else str(raw)
    if spec.kind == INT:
        try:
            return int(text.strip())
        except ValueError:
            raise ValueError(f"needs {spec.requirement()}") from None
    if spec.kind == CHOICE:
        return text.strip()
    return text if spec.is_regex else text.strip()


# ---------------------------------------------------------------------------------------------------
# Descriptions


def describe_condition(
    c: Mapping[str, Any],
    tag_names: Mapping[int, str] | None = None,
    account_names: Mapping[str, str] | None = None,
) -> str:
    """One condition as a short sentence: 'subject contains “invoice”', 'NOT from domain example.com'."""
    field, op, value, negate = c["field"], c["op"], c.get("value"), bool(c.get("negate", False))
    if field in BOOL_PHRASES:
        holds, fails = BOOL_PHRASES[field]
        return holds if bool(value) != negate else fails
    phrase = (
        FIELDS[field].ops[op].phrase.format(value=_condition_value_text(field, op, value, tag_names, account_names))
    )
    return f"NOT {phrase}" if negate else phrase


SIMPLE_ACTION_PHRASES: dict[str, str] = {
    "mark_read": "mark as read",
    "mark_unread": "mark as unread",
    "flag": "flag",
    "unflag": "remove the flag",
    "trash": "move to Trash",
    "archive": "archive",
    "mark_done": "mark as done",
    "stop": "stop processing further rules",
}


def describe_action(
    a: Mapping[str, Any] | Any,
    tag_names: Mapping[int, str] | None = None,
    folder_names: Mapping[int, str] | None = None,
) -> str:
    """One action as a short phrase: 'move to Archive', 'add tag “Work”'. Accepts a dict or an engine Action."""
    action_type, value = (a["type"], a.get("value")) if isinstance(a, Mapping) else (a.type, a.value)
    if action_type in ("add_tag", "remove_tag"):
        verb = "add" if action_type == "add_tag" else "remove"
        return f"{verb} tag {_quote(_name(tag_names, value, 'tag'))}"
    if action_type == "move":
        return f"move to {_name(folder_names, value, 'folder')}"
    if action_type == "set_category":
        return f"set category to {_label(CATEGORY_CHOICES, value)}"
    if action_type in ("set_urgency", "set_importance"):
        return f"set {action_type.removeprefix('set_')} to {value} ({_label(LEVEL_CHOICES, value)})"
    return SIMPLE_ACTION_PHRASES[action_type]


def describe_rule(
    doc: Mapping[str, Any],
    tag_names: Mapping[int, str] | None = None,
    folder_names: Mapping[int, str] | None = None,
    account_names: Mapping[str, str] | None = None,
) -> str:
    """A whole rule on one line, for rule lists: 'If any of: … then: …'."""
    conditions = [describe_condition(c, tag_names, account_names) for c in doc["conditions"]]
    actions = [describe_action(a, tag_names, folder_names) for a in doc["actions"]]
    joined = conditions[0] if len(conditions) == 1 else f"{doc['match']} of: " + "; ".join(conditions)
    return f"If {joined}, then: " + "; ".join(actions)


def _condition_value_text(
    field: str, op: str, value: Any, tag_names: Mapping[int, str] | None, account_names: Mapping[str, str] | None
) -> str:
    if field == "has_tag":
        return _quote(_name(tag_names, value, "tag"))
    if field == "account":
        return _quote(_name(account_names, value, "account"))
    if field == "category":
        return _label(CATEGORY_CHOICES, value)
    if field in ("urgency", "importance"):
        return f"{value} ({_label(LEVEL_CHOICES, value)})"
    if field == "size":
        return _size_text(value)
    if field == "age_days" or (field == "from" and op == "domain"):
        return str(value)
    if op == "matches":
        return f"/{value}/"
    return _quote(str(value))


def _quote(text: str) -> str:
    return f"“{text}”"


def _name(names: Mapping[Any, str] | None, value: Any, what: str) -> str:
    if names and value in names:
        return names[value]
    return f"{what} {value}"


def _label(choices: list[tuple[Any, str]], value: Any) -> str:
    return dict(choices).get(value, str(value))


def _size_text(size: Any) -> str:
    if not isinstance(size, int):
        return str(size)
    for unit, factor in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= factor:
            return f"{size / factor:.3g} {unit}"
    return f"{size} bytes"
