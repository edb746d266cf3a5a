"""The rule editor: rows of selects and inputs turned into a validated rule document (no JSON typing)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.http import QueryDict

from analysis.models import CATEGORY_CHOICES
from mail.models import Folder, MailAccount
from tags.models import Tag

from . import spec

ALL_OPS = sorted({op for ops in spec.OP_CHOICES.values() for op, _ in ops})
OP_LABELS = {op: label for ops in spec.OP_CHOICES.values() for op, label in ops}
BLANK_ROWS = 2


@dataclass
class RuleEditor:
    """What the rule form shows and what it read back."""

    name: str = ""
    enabled: bool = True
    match: str = "all"
    conditions: list[dict] = field(default_factory=list)
    actions: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_rule(cls, rule) -> RuleEditor:
        doc = rule.definition
        return cls(rule.name, rule.enabled, doc.get("match", "all"), list(doc["conditions"]), list(doc["actions"]))

    def document(self) -> dict:
        return {"match": self.match, "conditions": self.conditions, "actions": self.actions}

    def condition_rows(self) -> list[dict]:
        return self.conditions + [{} for _ in range(BLANK_ROWS)]

    def action_rows(self) -> list[dict]:
        return self.actions + [{} for _ in range(BLANK_ROWS)]


def value_choices(owner) -> list[tuple[str, list[tuple[str, str]]]]:
    """The typed values a row can pick instead of typing: the user's own tags, folders, accounts."""
    folders = Folder.objects.filter(account__owner=owner, exists_on_server=True).select_related("account")
    # A POP3 account's inbox is no destination: nothing can be moved there or away (imap_only_reason).
    movable = [f for f in folders if not f.account.is_pop3]
    return [
        ("Yes / no", [("true", "yes"), ("false", "no")]),
        ("Level", [("1", "1 (low)"), ("2", "2 (medium)"), ("3", "3 (high)")]),
        ("Category", list(CATEGORY_CHOICES)),
        ("Tag", [(str(t.pk), t.name) for t in Tag.objects.filter(owner=owner)]),
        ("Folder (to move to)", [(str(f.pk), f"{f.account.name} / {f.display_name}") for f in movable]),
        ("Folder name (to test)", sorted({(f.name, f.display_name) for f in folders})),
        ("Account", [(str(a.pk), a.name) for a in MailAccount.objects.filter(owner=owner)]),
    ]


def read_editor(data: QueryDict) -> RuleEditor:
    """Build the rule from the posted rows; problems go to editor.errors, nothing is raised."""
    editor = RuleEditor(
        name=data.get("name", "").strip()[:120],
        enabled=data.get("enabled") == "on",
        match=data.get("match", "all"),
    )
    if not editor.name:
        editor.errors.append("Give the rule a name.")
    for i in range(int(data.get("condition_rows", 0) or 0)):
        name = data.get(f"c-{i}-field", "")
        if not name:
            continue
        op = data.get(f"c-{i}-op", "")
        raw = data.get(f"c-{i}-choice") or data.get(f"c-{i}-value", "")
        condition = {"field": name, "op": op, "value": raw, "negate": data.get(f"c-{i}-negate") == "on"}
        try:
            condition["value"] = spec.parse_condition_value(name, op, raw)
        except KeyError:
            allowed = ", ".join(label for _, label in spec.OP_CHOICES.get(name, []))
            editor.errors.append(
                f"Condition {len(editor.conditions) + 1}: this field does not support “{OP_LABELS.get(op, op)}”"
                + (f" (use: {allowed})" if allowed else "")
            )
        except ValueError as exc:
            editor.errors.append(f"Condition {len(editor.conditions) + 1}: {exc}")
        editor.conditions.append(condition)
    for i in range(int(data.get("action_rows", 0) or 0)):
        kind = data.get(f"a-{i}-type", "")
        if not kind:
            continue
        raw = data.get(f"a-{i}-choice") or data.get(f"a-{i}-value", "")
        action = {"type": kind, "value": raw or None}
        try:
            action["value"] = spec.parse_action_value(kind, raw)
        except KeyError:
            editor.errors.append(f"Action {len(editor.actions) + 1}: unknown action")
        except ValueError as exc:
            editor.errors.append(f"Action {len(editor.actions) + 1}: {exc}")
        editor.actions.append(action)
    if not editor.errors:
        editor.errors.extend(spec.validate_rule(editor.document()))
    return editor
