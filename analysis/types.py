"""What the analysers read and what they return: plain data, no Django, no database.

The pipeline (analysis/pipeline.py) builds these from stored messages; the built-in
analyser, the per-user classifier and the LLM providers all speak only these types, so each can
be tested and benchmarked on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from django.utils.translation import gettext_lazy as _


class Category(StrEnum):
    ACTION_REQUIRED = "action_required"
    REPLY_EXPECTED = "reply_expected"
    INFORMATION = "information"
    NEWSLETTER = "newsletter"
    NOTIFICATION = "notification"
    SPAM = "spam"


CATEGORY_LABELS = {
    Category.ACTION_REQUIRED: _("Action required"),
    Category.REPLY_EXPECTED: _("Reply expected"),
    Category.INFORMATION: _("Information"),
    Category.NEWSLETTER: _("Newsletter"),
    Category.NOTIFICATION: _("Notification"),
    Category.SPAM: _("Spam"),
}


@dataclass
class MessageInput:
    """One message as the analysers see it (already decrypted, in memory only)."""

    subject: str
    text: str
    from_address: str = ""
    from_name: str = ""
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    reply_to: list[str] = field(default_factory=list)
    list_id: str = ""
    has_list_unsubscribe: bool = False
    precedence: str = ""
    auto_submitted: str = ""
    has_attachments: bool = False
    date: datetime | None = None
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)


@dataclass
class UserContext:
    """What the analysers may know about the recipient, beyond the message itself."""

    addresses: set[str] = field(default_factory=set)  # the user's own addresses, lower-case
    vip_senders: list[str] = field(default_factory=list)  # "a@b.c", "@b.c" / "b.c", "*@b.c", "boss*@b.c"
    sent_to_sender_count: int = 0  # messages the user sent to this sender
    received_from_sender_count: int = 0
    thread_has_user_message: bool = False  # the user wrote in this conversation
    now: datetime | None = None
    language_hint: str = ""


@dataclass
class AnalysisResult:
    urgency: int  # 1 (low) .. 3 (high)
    importance: int  # 1 (low) .. 3 (high)
    category: str  # a Category value
    is_spam: bool
    is_newsletter: bool
    confidence: float  # 0..1
    summary: str
    method: str  # "builtin", "builtin+learned", "llm:<kind>:<model>"
    reasons: list[str] = field(default_factory=list)  # short, content-free explanations ("VIP sender")

    def __post_init__(self) -> None:
        self.urgency = min(3, max(1, int(self.urgency)))
        self.importance = min(3, max(1, int(self.importance)))
        self.confidence = min(1.0, max(0.0, float(self.confidence)))
        if self.category not in {c.value for c in Category}:
            raise ValueError(f"unknown category {self.category!r}")
