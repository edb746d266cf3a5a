"""Legacy rule JSON -> Mailhelper rule document (rules/spec.py), with what could not be converted.

The legacy stored `conditions_json` = {"match_mode": "all"|"any", <condition key>: value, ...} and
`actions_json` = {<action key>: value, ...}. Each known key maps to one or more spec conditions or
actions; a list value means one condition per element (only with match_mode "any", where that
keeps the meaning). Everything else - unknown keys, values that do not fit, a tag or folder that was
not imported - is returned in `unconverted` so the importer reports it and keeps it with the rule
(which is then imported *disabled*: without the unknown part it could match more or do less).
A rule with no convertible condition or action cannot be stored as a rule at all and is kept as a
legacy record instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rules import spec

# legacy key -> (field, op, value kind)
CONDITIONS: dict[str, tuple[str, str, str]] = {
    "sender_equals": ("from", "equals", "text"),
    "sender_contains": ("from", "contains", "text"),
    "sender_domain": ("from", "domain", "domain"),
    "to_contains": ("to_cc", "contains", "text"),
    "recipient_contains": ("to_cc", "contains", "text"),
    "subject_contains": ("subject", "contains", "text"),
    "subject_regex": ("subject", "matches", "regex"),
    "body_contains": ("body", "contains", "text"),
    "body_regex": ("body", "matches", "regex"),
    "has_attachment": ("has_attachment", "is", "bool"),
    "folder_equals": ("folder", "equals", "text"),
    "ai_category": ("category", "equals", "category"),
    "ai_priority": ("urgency", "at_least", "level"),
    "ai_urgency": ("urgency", "at_least", "level"),
    "ai_importance": ("importance", "at_least", "level"),
    "ai_is_spam": ("is_spam", "is", "bool"),
    "is_newsletter": ("is_list", "is", "bool"),
    # The legacy matched the tag its AI suggested; Mailhelper matches assigned tags (suggestions
    # become assignments when accepted or auto-applied), the closest equivalent.
    "ai_suggested_tag": ("has_tag", "equals", "tag"),
}
NEGATED_CONDITIONS = {
    "sender_not_contains": "sender_contains",
    "subject_not_contains": "subject_contains",
    "body_not_contains": "body_contains",
}

# legacy key -> (action type, value kind)
ACTIONS: dict[str, tuple[str, str]] = {
    "move_to_folder": ("move", "folder"),
    "mark_as_read": ("mark_read", "flag"),
    "mark_as_unread": ("mark_unread", "flag"),
    "mark_as_flagged": ("flag", "flag"),
    "apply_tag": ("add_tag", "tag"),
    "remove_tag": ("remove_tag", "tag"),
    "set_priority": ("set_urgency", "level"),  # and set_importance, see _actions
    "set_category": ("set_category", "category"),
    "delete": ("trash", "flag"),
    "archive": ("archive", "flag"),
    "mark_done": ("mark_done", "flag"),
    "stop_processing": ("stop", "flag"),
}

# Legacy categories (kategorie_aktion) -> spec categories.
CATEGORIES = {
    "aktion_erforderlich": "action_required",
    "dringend": "action_required",
    "action_required": "action_required",
    "antwort_erwartet": "reply_expected",
    "reply_expected": "reply_expected",
    "nur_information": "information",
    "information": "information",
    "info": "information",
    "newsletter": "newsletter",
    "benachrichtigung": "notification",
    "notification": "notification",
    "spam": "spam",
}
LEVELS = {"low": 1, "niedrig": 1, "medium": 2, "mittel": 2, "normal": 2, "high": 3, "hoch": 3, "urgent": 3}


def category(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return CATEGORIES.get(value.strip().lower())


def level(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and 1 <= int(value) <= 3:
        return int(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text.isdigit() and 1 <= int(text) <= 3:
            return int(text)
        return LEVELS.get(text)
    return None


@dataclass
class Resolver:
    """How legacy references in rules become Mailhelper ids (tags by legacy id or name, folders by name)."""

    tag: Callable[[Any], int | None]
    folder: Callable[[Any], int | None]


@dataclass
class RuleConversion:
    definition: dict[str, Any] | None
    unconverted: dict[str, Any] = field(default_factory=dict)  # "conditions.<key>" / "actions.<key>" -> legacy value
    problems: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.definition is not None and not self.unconverted and not self.problems


def _load(text: Any) -> tuple[dict[str, Any], str | None]:
    if text is None or text == "":
        return {}, None
    if isinstance(text, dict):
        return text, None
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}, "not valid JSON"
    if not isinstance(value, dict):
        return {}, "not a JSON object"
    return value, None


def _value(kind: str, raw: Any, resolver: Resolver) -> Any:
    """The spec value for one legacy value, or None when it does not fit."""
    if kind == "text":
        return raw.strip() if isinstance(raw, str) and raw.strip() else None
    if kind == "regex":
        return raw if isinstance(raw, str) and raw.strip() else None
    if kind == "domain":
        return raw.strip().lstrip("@").lower() if isinstance(raw, str) and raw.strip().lstrip("@") else None
    if kind == "bool":
        return raw if isinstance(raw, bool) else ({0: False, 1: True}.get(raw) if isinstance(raw, int) else None)
    if kind == "category":
        return category(raw)
    if kind == "level":
        return level(raw)
    if kind == "tag":
        return resolver.tag(raw)
    if kind == "folder":
        return resolver.folder(raw)
    return None


def convert_rule(conditions_json: Any, actions_json: Any, resolver: Resolver) -> RuleConversion:
    conditions_doc, c_err = _load(conditions_json)
    actions_doc, a_err = _load(actions_json)
    result = RuleConversion(definition=None)
    if c_err:
        result.problems.append(f"conditions: {c_err}")
        result.unconverted["conditions"] = str(conditions_json)[:500]
    if a_err:
        result.problems.append(f"actions: {a_err}")
        result.unconverted["actions"] = str(actions_json)[:500]
    match = conditions_doc.pop("match_mode", "all")
    if match not in ("all", "any"):
        result.problems.append("match_mode is neither 'all' nor 'any'; 'all' used")
        result.unconverted["conditions.match_mode"] = match
        match = "all"
    conditions = _conditions(conditions_doc, match, resolver, result)
    actions = _actions(actions_doc, resolver, result)
    if not conditions or not actions:
        result.problems.append("no convertible " + ("condition" if not conditions else "action"))
        return result
    doc = {"match": match, "conditions": conditions, "actions": actions}
    errors = spec.validate_rule(doc)
    if errors:
        result.problems.extend(errors)
        return result
    result.definition = spec.normalize_rule(doc)
    return result


def _conditions(doc: dict[str, Any], match: str, resolver: Resolver, result: RuleConversion) -> list[dict]:
    out = []
    for key, raw in doc.items():
        negate = key in NEGATED_CONDITIONS
        target = CONDITIONS.get(NEGATED_CONDITIONS.get(key, key))
        if target is None:
            result.unconverted[f"conditions.{key}"] = raw
            continue
        field_name, op, kind = target
        values = raw if isinstance(raw, list) else [raw]
        # Several values under "all": every needle must match (kept for text); for other kinds the
        # values exclude each other, which only makes sense under "any".
        if len(values) > 1 and match == "all" and kind not in ("text", "regex"):
            result.unconverted[f"conditions.{key}"] = raw
            continue
        converted = [_value(kind, v, resolver) for v in values]
        if not values or any(v is None for v in converted):
            result.unconverted[f"conditions.{key}"] = raw
            continue
        out += [{"field": field_name, "op": op, "value": v, "negate": negate} for v in converted]
    return out


def _actions(doc: dict[str, Any], resolver: Resolver, result: RuleConversion) -> list[dict]:
    out = []
    for key, raw in doc.items():
        target = ACTIONS.get(key)
        if target is None:
            result.unconverted[f"actions.{key}"] = raw
            continue
        action_type, kind = target
        if kind == "flag":
            if raw is False or raw is None or raw == 0:
                continue  # the legacy's way of saying "not this action"
            if raw is True or raw == 1:
                out.append({"type": action_type, "value": None})
            else:
                result.unconverted[f"actions.{key}"] = raw
            continue
        values = raw if isinstance(raw, list) and kind == "tag" else [raw]
        converted = [_value(kind, v, resolver) for v in values]
        if any(v is None for v in converted):
            result.unconverted[f"actions.{key}"] = raw
            continue
        for v in converted:
            out.append({"type": action_type, "value": v})
            if key == "set_priority":  # the legacy's priority was the matrix position: both axes
                out.append({"type": "set_importance", "value": v})
    return out
