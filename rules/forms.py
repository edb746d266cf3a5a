"""The rule editor: rows of selects and inputs turned into a validated rule document (no JSON typing)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.http import QueryDict
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

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
        (_("Yes / no"), [("true", _("yes")), ("false", _("no"))]),
        (_("Level"), [("1", _("1 (low)")), ("2", _("2 (medium)")), ("3", _("3 (high)"))]),
        (_("Category"), list(CATEGORY_CHOICES)),
        (_("Tag"), [(str(t.pk), t.name) for t in Tag.objects.filter(owner=owner)]),
        (_("Folder (to move to)"), [(str(f.pk), f"{f.account.name} / {f.display_name}") for f in movable]),
        (_("Folder name (to test)"), sorted({(f.name, f.display_name) for f in folders})),
        (_("Account"), [(str(a.pk), a.name) for a in MailAccount.objects.filter(owner=owner)]),
    ]


def read_editor(data: QueryDict) -> RuleEditor:
    """Build the rule from the posted rows; problems go to editor.errors, nothing is raised."""
    editor = RuleEditor(
        name=data.get("name", "").strip()[:120],
        enabled=data.get("enabled") == "on",
        match=data.get("match", "all"),
    )
    if not editor.name:
        editor.errors.append(gettext("Give the rule a name."))
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
            allowed = ", ".join(str(label) for _op, label in spec.OP_CHOICES.get(name, []))
            number, test = len(editor.conditions) + 1, OP_LABELS.get(op, op)
            if allowed:
                editor.errors.append(
                    gettext("Condition %(number)s: this field does not support “%(test)s” (use: %(allowed)s)")
                    % {"number": number, "test": test, "allowed": allowed}
                )
            else:
                editor.errors.append(
                    gettext("Condition %(number)s: this field does not support “%(test)s”")
                    % {"number": number, "test": test}
                )
        except ValueError as exc:
            editor.errors.append(
                gettext("Condition %(number)s: %(problem)s") % {"number": len(editor.conditions) + 1, "problem": exc}
            )
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
            editor.errors.append(gettext("Action %(number)s: unknown action") % {"number": len(editor.actions) + 1})
        except ValueError as exc:
            editor.errors.append(
                gettext("Action %(number)s: %(problem)s") % {"number": len(editor.actions) + 1, "problem": exc}
            )
        editor.actions.append(action)
    if not editor.errors:
        editor.errors.extend(spec.validate_rule(editor.document()))
    return editor
