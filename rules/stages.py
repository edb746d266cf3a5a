"""Rules' stage of the post-analysis pipeline (analysis/post_analysis.py runs it, after tag suggestions,
so a rule can test a tag that was just applied automatically)."""

from __future__ import annotations

from mail.models import Message

from . import service


def run_rules(owner_id: int, messages: list[Message]) -> None:
    """Run the owner's enabled rules on newly analysed messages.

    Idempotent: a rule runs once per message (its RuleLog row), so a second call applies nothing.
    """
    service.run_on_messages(owner_id, messages)
