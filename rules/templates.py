"""Ready-made rules a user can add with one click and then edit like any other.

Each template is a function returning ``(name, doc)``; it takes the ids it needs (a tag to add) so the
integrator can create the tag first. Every returned document passes ``spec.validate_rule``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

SPAM_KEYWORDS: tuple[str, ...] = (
    "viagra",
    "lottery winner",
    "you have won",
    "casino bonus",
    "claim your prize",
    "crypto giveaway",
)

RuleTemplate = tuple[str, dict[str, Any]]


def _condition(field: str, op: str, value: Any, negate: bool = False) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value, "negate": negate}


def _action(action_type: str, value: Any = None) -> dict[str, Any]:
    return {"type": action_type, "value": value}


def newsletter_archive() -> RuleTemplate:
    """Newsletters and mailing lists go to the archive, out of the inbox."""
    doc = {
        "match": "any",
        "conditions": [_condition("is_list", "is", True), _condition("category", "equals", "newsletter")],
        "actions": [_action("archive")],
    }
    return gettext("Archive newsletters"), doc


def keyword_spam_trash(keywords: Sequence[str] = SPAM_KEYWORDS) -> RuleTemplate:
    """Mail whose subject or body contains a typical spam phrase goes to the Trash, and no later rule runs.

    Plain "contains" conditions, not a regex: cheaper, and nothing for the user to get wrong when editing.
    """
    conditions = [_condition(field, "contains", keyword) for keyword in keywords for field in ("subject", "body")]
    doc = {"match": "any", "conditions": conditions, "actions": [_action("trash"), _action("stop")]}
    return gettext("Trash obvious spam"), doc


def vip_flag_urgent() -> RuleTemplate:
    """Mail from a trusted sender / VIP is flagged and marked most urgent."""
    doc = {
        "match": "all",
        "conditions": [_condition("sender_trusted", "is", True)],
        "actions": [_action("flag"), _action("set_urgency", 3)],
    }
    return gettext("Flag VIP senders"), doc


def attachments_tag(tag_id: int) -> RuleTemplate:
    """Mail with an attachment gets the given tag."""
    doc = {
        "match": "all",
        "conditions": [_condition("has_attachment", "is", True)],
        "actions": [_action("add_tag", tag_id)],
    }
    return gettext("Tag mail with attachments"), doc


@dataclass(frozen=True)
class TemplateInfo:
    key: str
    label: str
    build: Callable[..., RuleTemplate]
    needs_tag: bool = False  # the integrator passes tag_id=<a tag of the user's>


TEMPLATES: dict[str, TemplateInfo] = {
    info.key: info
    for info in (
        TemplateInfo("newsletter_archive", _("Archive newsletters and mailing lists"), newsletter_archive),
        TemplateInfo("keyword_spam_trash", _("Move obvious spam (typical phrases) to the Trash"), keyword_spam_trash),
        TemplateInfo("vip_flag_urgent", _("Flag VIP senders and mark them urgent"), vip_flag_urgent),
        TemplateInfo("attachments_tag", _("Tag mail with attachments"), attachments_tag, needs_tag=True),
    )
}
