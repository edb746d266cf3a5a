"""Tags' stage of the post-analysis pipeline (analysis/post_analysis.py runs it, after topics)."""

from __future__ import annotations

from mail.models import Message

from . import service


def suggest_tags(owner_id: int, messages: list[Message]) -> None:
    """Suggest tags for newly analysed messages and auto-apply confident ones (the user's setting).

    Idempotent: a message keeps at most one suggestion per tag, and a tag it has is not suggested.
    """
    service.suggest_for(owner_id, messages)
