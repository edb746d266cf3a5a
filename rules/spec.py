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
No database, so it can be used by forms, views, tasks and tests alike; of Django only its translation
functions: labels are lazy, messages are made in the language active when they are asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from core.stored_text import Text, lazy_text
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
    ("action_required", _("Action required")),
    ("reply_expected", _("Reply expected")),
    ("information", _("Information")),
    ("newsletter", _("Newsletter")),
    ("notification", _("Notification")),
    ("spam", _("Spam")),
]
LEVEL_CHOICES: list[tuple[int, str]] = [(1, _("low")), (2, _("medium")), (3, _("high"))]
MATCH_CHOICES: list[tuple[str, str]] = [("all", _("All conditions match")), ("any", _("Any condition matches"))]


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
                return gettext("a regular expression")
            return gettext("a folder name") if self.source == SOURCE_FOLDER_NAME else gettext("some text")
        if self.kind == INT:
            if self.source == SOURCE_TAG:
                return gettext("a tag id")
            if self.source == SOURCE_FOLDER:
                return gettext("a folder id")
            if self.maximum is not None:
                return gettext("a whole number from %(minimum)s to %(maximum)s") % {
                    "minimum": self.minimum,
                    "maximum": self.maximum,
                }
            return gettext("a whole number of at least %(minimum)s") % {"minimum": self.minimum}
        if self.kind == BOOL:
            return gettext("true or false")
        if self.kind == CHOICE:
            return gettext("one of %(values)s") % {"values": ", ".join(str(value) for value, _label in self.choices)}
        return gettext("no value")


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
    return {"is": OpSpec(_("is"), _BOOL, "")}


FIELDS: dict[str, FieldSpec] = {
    "from": FieldSpec(
        _("From address"),
        {
            "equals": OpSpec(_("is"), _TEXT, _("from is {value}")),
            "contains": OpSpec(_("contains"), _TEXT, _("from contains {value}")),
            "domain": OpSpec(_("domain is"), _TEXT, _("from domain {value}")),
        },
    ),
    "to_cc": FieldSpec(_("To or Cc"), {"contains": OpSpec(_("contains"), _TEXT, _("to/cc contains {value}"))}),
    "subject": FieldSpec(
        _("Subject"),
        {
            "contains": OpSpec(_("contains"), _TEXT, _("subject contains {value}")),
            "matches": OpSpec(_("matches regular expression"), _REGEX, _("subject matches {value}")),
        },
    ),
    "body": FieldSpec(
        _("Body"),
        {
            "contains": OpSpec(_("contains"), _TEXT, _("body contains {value}")),
            "matches": OpSpec(_("matches regular expression"), _REGEX, _("body matches {value}")),
        },
    ),
    "has_attachment": FieldSpec(_("Has an attachment"), _is()),
    "attachment_type": FieldSpec(
        _("Attachment type"), {"contains": OpSpec(_("contains"), _TEXT, _("attachment type contains {value}"))}
    ),
    "folder": FieldSpec(
        _("Folder"), {"equals": OpSpec(_("is"), ValueSpec(TEXT, source=SOURCE_FOLDER_NAME), _("in folder {value}"))}
    ),
    "account": FieldSpec(
        _("Account"), {"equals": OpSpec(_("is"), ValueSpec(TEXT, source=SOURCE_ACCOUNT), _("account is {value}"))}
    ),
    "is_list": FieldSpec(_("Mailing list / newsletter"), _is()),
    "size": FieldSpec(
        _("Size (bytes)"),
        {
            "above": OpSpec(_("above"), ValueSpec(INT, minimum=0), _("size above {value}")),
            "below": OpSpec(_("below"), ValueSpec(INT, minimum=1), _("size below {value}")),
        },
    ),
    "age_days": FieldSpec(
        _("Age (days)"),
        {"above": OpSpec(_("above"), ValueSpec(INT, minimum=0, maximum=36500), _("older than {value} days"))},
    ),
    "category": FieldSpec(_("Category"), {"equals": OpSpec(_("is"), _CATEGORY, _("category is {value}"))}),
    "urgency": FieldSpec(_("Urgency"), {"at_least": OpSpec(_("at least"), _LEVEL, _("urgency at least {value}"))}),
    "importance": FieldSpec(
        _("Importance"), {"at_least": OpSpec(_("at least"), _LEVEL, _("importance at least {value}"))}
    ),
    "is_spam": FieldSpec(_("Spam"), _is()),
    "has_tag": FieldSpec(_("Tag"), {"equals": OpSpec(_("is"), _TAG, _("has tag {value}"))}),
    "sender_trusted": FieldSpec(_("Sender is trusted / VIP"), _is()),
}

# How a bool condition reads when it holds / does not hold (negation is folded in, "NOT has no attachment"
# would be hard to read).
BOOL_PHRASES: dict[str, tuple[str, str]] = {
    "has_attachment": (_("has an attachment"), _("has no attachment")),
    "is_list": (_("is a mailing list / newsletter"), _("is not a mailing list / newsletter")),
    "is_spam": (_("is spam"), _("is not spam")),
    "sender_trusted": (_("sender is trusted / VIP"), _("sender is not trusted / VIP")),
}

ACTIONS: dict[str, ActionSpec] = {
    "add_tag": ActionSpec(_("Add tag"), _TAG, repeatable=True),
    "remove_tag": ActionSpec(_("Remove tag"), _TAG, repeatable=True),
    "mark_read": ActionSpec(_("Mark as read"), _NONE),
    "mark_unread": ActionSpec(_("Mark as unread"), _NONE),
    "flag": ActionSpec(_("Flag"), _NONE),
    "unflag": ActionSpec(_("Remove flag"), _NONE),
    "move": ActionSpec(_("Move to folder"), ValueSpec(INT, minimum=1, source=SOURCE_FOLDER)),
    "trash": ActionSpec(_("Move to Trash"), _NONE),
    "archive": ActionSpec(_("Archive"), _NONE),
    "set_category": ActionSpec(_("Set category"), _CATEGORY),
    "set_urgency": ActionSpec(_("Set urgency"), _LEVEL),
    "set_importance": ActionSpec(_("Set importance"), _LEVEL),
    "mark_done": ActionSpec(_("Mark as done"), _NONE),
    "stop": ActionSpec(_("Stop processing further rules"), _NONE),
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
            "choices": [[value, str(label)] for value, label in spec.choices],
            "min": spec.minimum,
            "max": spec.maximum,
            "source": spec.source,
            "regex": spec.is_regex,
        }

    return {
        "match": [[value, str(label)] for value, label in MATCH_CHOICES],
        "fields": {
            name: {
                "label": str(spec.label),
                "ops": {op: {"label": str(o.label), "value": value(o.value)} for op, o in spec.ops.items()},
            }
            for name, spec in FIELDS.items()
        },
        "actions": {name: {"label": str(spec.label), "value": value(spec.value)} for name, spec in ACTIONS.items()},
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
        where = gettext("condition %(number)s") if path[0] == "conditions" else gettext("action %(number)s")
        return where % {"number": path[1] + 1}, (path[2] if len(path) > 2 else None)
    return RULE, (path[0] if path else None)


RULE = "rule"  # an error about the whole rule, not one of its conditions or actions


def _item(doc: Any, path: list) -> Mapping[str, Any]:
    try:
        item = doc[path[0]][path[1]]
    except (KeyError, IndexError, TypeError):
        return {}
    return item if isinstance(item, Mapping) else {}


def _reword(error: jsonschema.ValidationError, doc: Any) -> str:
    path = list(error.absolute_path)
    where, key = _where(path)
    item = (doc if isinstance(doc, Mapping) else {}) if where == RULE else _item(doc, path)
    label = gettext("rule") if where == RULE else where
    if error.validator == "required":
        return _at(label, _missing_message(item, path, error))
    if error.validator == "additionalProperties":
        extra = sorted(set(item) - set(error.schema.get("properties", {})), key=str)
        return _at(label, gettext("unexpected key %(keys)s") % {"keys": ", ".join(repr(e) for e in extra)})
    if where == RULE:
        return _at(label, _rule_message(error, key))
    if error.validator == "type" and key is None:
        return _at(label, gettext("must be an object"))
    if path[0] == "conditions":
        return _at(label, _condition_message(item, key, error))
    return _at(label, _action_message(item, key, error))


def _at(where: str, message: str) -> str:
    """'condition 2: needs …': where the problem is, then what it is."""
    return gettext("%(where)s: %(message)s") % {"where": where, "message": message}


def _needs(what: str, spec: ValueSpec) -> str:
    """What the value of `what` (an action, or a field and its operator) must be, as an error message."""
    return gettext("'%(what)s' needs %(requirement)s") % {"what": what, "requirement": spec.requirement()}


def _missing_message(item: Mapping[str, Any], path: list, error: jsonschema.ValidationError) -> str:
    missing = [name for name in error.validator_value if name not in item]
    if missing == ["value"] and path and path[0] == "actions" and item.get("type") in ACTIONS:
        return _needs(item["type"], action_value_spec(item["type"]))
    if (
        missing == ["value"]
        and path
        and path[0] == "conditions"
        and item.get("op") in FIELDS.get(item.get("field"), _NO_OPS).ops
    ):
        return _needs(f"{item['field']} {item['op']}", condition_value_spec(item["field"], item["op"]))
    if not missing:
        return gettext("a key is missing")
    if len(missing) == 1:
        return gettext("%(name)s is missing") % {"name": repr(missing[0])}
    return gettext("%(names)s are missing") % {"names": gettext(" and ").join(repr(name) for name in missing)}


def _rule_message(error: jsonschema.ValidationError, key: Any) -> str:
    if key is None and error.validator == "type":
        return gettext("must be an object with match, conditions and actions")
    if key == "match":
        return gettext("match must be 'all' or 'any'")
    if key in ("conditions", "actions") and error.validator == "minItems":
        return gettext("needs at least one condition") if key == "conditions" else gettext("needs at least one action")
    if key in ("conditions", "actions") and error.validator == "maxItems":
        if key == "conditions":
            return gettext("has more than %(limit)s conditions") % {"limit": error.validator_value}
        return gettext("has more than %(limit)s actions") % {"limit": error.validator_value}
    if key in ("conditions", "actions") and error.validator == "type":
        return gettext("conditions must be a list") if key == "conditions" else gettext("actions must be a list")
    return error.message


def _condition_message(item: Mapping[str, Any], key: Any, error: jsonschema.ValidationError) -> str:
    field, op = item.get("field"), item.get("op")
    if key == "field":
        return gettext("unknown field %(field)s (known: %(known)s)") % {
            "field": repr(field),
            "known": ", ".join(FIELDS),
        }
    if key == "op":
        if not isinstance(op, str):
            return gettext("the operator must be text")
        return gettext("'%(field)s' does not support %(op)s (use: %(known)s)") % {
            "field": field,
            "op": repr(op),
            "known": ", ".join(FIELDS[field].ops),
        }
    if key == "negate":
        return gettext("negate must be true or false")
    if key == "value" and field in FIELDS and op in FIELDS[field].ops:
        return _needs(f"{field} {op}", condition_value_spec(field, op))
    return error.message


def _action_message(item: Mapping[str, Any], key: Any, error: jsonschema.ValidationError) -> str:
    action_type = item.get("type")
    if key == "type":
        return gettext("unknown action %(action)s (known: %(known)s)") % {
            "action": repr(action_type),
            "known": ", ".join(ACTIONS),
        }
    if key == "value" and action_type in ACTIONS:
        return _needs(action_type, action_value_spec(action_type))
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
            message = gettext(
                "condition %(number)s: '%(field)s matches' needs a valid regular expression: %(error)s"
            ) % {"number": index + 1, "field": field, "error": exc}
            errors.append(((2, index), message))
    return errors


def _action_conflicts(actions: Any) -> list[tuple[tuple[int, int], str]]:
    """Actions that repeat or contradict each other: which one wins would depend on their order."""
    if not isinstance(actions, list):
        return []
    items = [a for a in actions if isinstance(a, Mapping) and a.get("type") in ACTIONS]
    types = list(dict.fromkeys(a["type"] for a in items))
    counts = {t: sum(1 for a in items if a["type"] == t) for t in types}
    errors = [
        gettext("actions: '%(action)s' appears more than once") % {"action": t}
        for t in types
        if counts[t] > 1 and not ACTIONS[t].repeatable
    ]
    for group in CONFLICTING_ACTIONS:
        present = [t for t in types if t in group]
        if len(present) > 1:
            errors.append(
                gettext("actions: %(actions)s contradict each other; keep one")
                % {"actions": gettext(" and ").join(repr(t) for t in present)}
            )
    added = [a.get("value") for a in items if a["type"] == "add_tag"]
    removed = {a.get("value") for a in items if a["type"] == "remove_tag" and isinstance(a.get("value"), int)}
    errors += [
        gettext("actions: tag %(tag)s is both added and removed") % {"tag": value}
        for value in added
        if value in removed
    ]
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
        raise ValueError(gettext("needs %(requirement)s") % {"requirement": spec.requirement()})
    text = "" if raw is None else str(raw)
    if spec.kind == INT:
        try:
            return int(text.strip())
        except ValueError:
            raise ValueError(gettext("needs %(requirement)s") % {"requirement": spec.requirement()}) from None
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
        return str(holds if bool(value) != negate else fails)
    phrase = (
        FIELDS[field].ops[op].phrase.format(value=_condition_value_text(field, op, value, tag_names, account_names))
    )
    return gettext("NOT %(condition)s") % {"condition": phrase} if negate else phrase


SIMPLE_ACTION_PHRASES: dict[str, str] = {
    "mark_read": _("mark as read"),
    "mark_unread": _("mark as unread"),
    "flag": _("flag"),
    "unflag": _("remove the flag"),
    "trash": _("move to Trash"),
    "archive": _("archive"),
    "mark_done": _("mark as done"),
    "stop": _("stop processing further rules"),
}


def describe_action(
    a: Mapping[str, Any] | Any,
    tag_names: Mapping[int, str] | None = None,
    folder_names: Mapping[int, str] | None = None,
) -> str:
    """One action as a short phrase: 'move to Archive', 'add tag “Work”'. Accepts a dict or an engine Action."""
    return str(action_text(a, tag_names, folder_names))


def action_text(
    a: Mapping[str, Any] | Any,
    tag_names: Mapping[int, str] | None = None,
    folder_names: Mapping[int, str] | None = None,
) -> Text:
    """describe_action's phrase as a core.stored_text Text: the rule log stores it (written by a
    worker, in no language) and shows it in the reader's language."""
    action_type, value = (a["type"], a.get("value")) if isinstance(a, Mapping) else (a.type, a.value)
    if action_type in ("add_tag", "remove_tag"):
        tag = Text(gettext_noop("“%(name)s”"), name=_name_text(tag_names, value, "tag"))
        phrase = gettext_noop("add tag %(tag)s") if action_type == "add_tag" else gettext_noop("remove tag %(tag)s")
        return Text(phrase, tag=tag)
    if action_type == "move":
        return Text(gettext_noop("move to %(folder)s"), folder=_name_text(folder_names, value, "folder"))
    if action_type == "set_category":
        return Text(gettext_noop("set category to %(category)s"), category=dict(CATEGORY_CHOICES).get(value, value))
    if action_type in ("set_urgency", "set_importance"):
        phrase = (
            gettext_noop("set urgency to %(level)s")
            if action_type == "set_urgency"
            else gettext_noop("set importance to %(level)s")
        )
        level = Text(gettext_noop("%(value)s (%(label)s)"), value=value, label=dict(LEVEL_CHOICES).get(value, value))
        return Text(phrase, level=level)
    return lazy_text(SIMPLE_ACTION_PHRASES[action_type])


def describe_rule(
    doc: Mapping[str, Any],
    tag_names: Mapping[int, str] | None = None,
    folder_names: Mapping[int, str] | None = None,
    account_names: Mapping[str, str] | None = None,
) -> str:
    """A whole rule on one line, for rule lists: 'If any of: … then: …'."""
    conditions = [describe_condition(c, tag_names, account_names) for c in doc["conditions"]]
    actions = [describe_action(a, tag_names, folder_names) for a in doc["actions"]]
    if len(conditions) == 1:
        joined = conditions[0]
    elif doc["match"] == "all":
        joined = gettext("all of: %(conditions)s") % {"conditions": "; ".join(conditions)}
    else:
        joined = gettext("any of: %(conditions)s") % {"conditions": "; ".join(conditions)}
    return gettext("If %(conditions)s, then: %(actions)s") % {"conditions": joined, "actions": "; ".join(actions)}


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
    """The user's name for a tag, folder or account, else "tag 7" (one deleted since, or not passed)."""
    return str(_name_text(names, value, what))


def _name_text(names: Mapping[Any, str] | None, value: Any, what: str) -> Text | str:
    if names and value in names:
        return names[value]
    unnamed = {
        "tag": gettext_noop("tag %(id)s"),
        "folder": gettext_noop("folder %(id)s"),
        "account": gettext_noop("account %(id)s"),
    }
    return Text(unnamed[what], id=value)


def _label(choices: list[tuple[Any, str]], value: Any) -> str:
    return str(dict(choices).get(value, value))


def _size_text(size: Any) -> str:
    if not isinstance(size, int):
        return str(size)
    for unit, factor in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= factor:
            return f"{size / factor:.3g} {unit}"
    return gettext("%(size)s bytes") % {"size": size}
