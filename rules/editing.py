"""Changing a user's rules: save from the editor, add from a template, move, switch on or off, delete.

The rules pages read the form and render what these functions return; every write to a Rule row
happens here (rules/service.py is about running rules on mail, and the engine stays pure).

Order is the contract with the engine: a user's rules run by ``order`` (then id), and the list
shows them so. A new rule goes last. A move swaps two neighbours and then renumbers all the user's
rules 1..n, so gaps and duplicates left by older data (or by two rules created at the same moment,
which can both get the same "last" number) heal on the first move instead of making "up" do nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext

from tags.models import Tag

from . import spec, templates
from .models import Rule

Direction = Literal["up", "down"]


def next_order(owner_id: int) -> int:
    """The place after the user's last rule."""
    return (Rule.objects.filter(owner_id=owner_id).aggregate(m=Max("order"))["m"] or 0) + 1


def save(owner_id: int, rule: Rule | None, *, name: str, enabled: bool, document: dict[str, Any]) -> Rule:
    """Store what the editor read (already validated by rules.forms): a new rule goes last.

    The document is stored normalised (spec.normalize_rule), so every stored rule has the same keys
    whether it came from the editor, a template or an import.
    """
    if rule is None:
        rule = Rule(owner_id=owner_id, order=next_order(owner_id))
    rule.name, rule.enabled, rule.definition = name, enabled, spec.normalize_rule(document)
    rule.save()
    return rule


@dataclass(frozen=True)
class TemplateOutcome:
    """The rule added from a template, or why none was (a sentence for the user)."""

    rule: Rule | None
    problem: str = ""


def add_from_template(owner_id: int, key: str, tag_id: int | str | None = None) -> TemplateOutcome:
    """Add the template's rule, switched off: the user tests and adjusts it before it touches mail.

    A template that tags needs one of the user's own tags; an id of someone else's tag is treated
    like no tag at all.
    """
    info = templates.TEMPLATES.get(key)
    if info is None:
        return TemplateOutcome(None, gettext("Unknown template."))
    if info.needs_tag:
        tag = Tag.objects.filter(owner_id=owner_id, pk=_int_or_zero(tag_id)).first()
        if tag is None:
            return TemplateOutcome(None, gettext("Choose a tag for this template (create one on the Tags page first)."))
        name, doc = info.build(tag.pk)
    else:
        name, doc = info.build()
    rule = Rule.objects.create(
        owner_id=owner_id, name=name, order=next_order(owner_id), definition=spec.normalize_rule(doc), enabled=False
    )
    return TemplateOutcome(rule)


def _int_or_zero(value: int | str | None) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


@transaction.atomic
def move(rule: Rule, direction: Direction) -> bool:
    """Move the rule one place up or down among its owner's rules; False when it is already at that end.

    The owner's rules are locked first: two moves at once (two tabs, a double click) then run one
    after the other, each on the order the other left, instead of both renumbering from the same
    stale list and losing one of the moves.
    """
    ordered = list(Rule.objects.select_for_update().filter(owner_id=rule.owner_id).order_by("order", "id"))
    index = next(i for i, item in enumerate(ordered) if item.pk == rule.pk)
    swap = index - 1 if direction == "up" else index + 1
    if not 0 <= swap < len(ordered):
        return False
    ordered[index], ordered[swap] = ordered[swap], ordered[index]
    _renumber(ordered)
    return True


def _renumber(ordered: list[Rule]) -> None:
    """Give the rules the places 1..n in list order, writing only the rows whose place changed."""
    for position, item in enumerate(ordered, start=1):
        if item.order != position:
            Rule.objects.filter(pk=item.pk).update(order=position)
            item.order = position


def toggle(rule: Rule) -> bool:
    """Switch the rule on or off; returns whether it is on now."""
    rule.enabled = not rule.enabled
    rule.save(update_fields=["enabled"])
    return rule.enabled


def delete(rule: Rule) -> None:
    """Delete the rule and its log. What it did to mail stays as it is; the others keep their order."""
    rule.delete()
