"""What one row of a message list shows, computed in Python once per row.

The list page is the busiest page of the product. Rendering its 50 rows from model instances cost
~11 ms per page in Django's template engine (every `{{ m.analysis.summary }}` walks the lookup
fallbacks, raising and catching an exception per step; `url`, `date` and `truncatechars` add up);
the same rows as MessageRow values render in ~3 ms. The template keeps the markup; this module
holds the few decisions a row makes (sender fallback, summary length, local date).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext

from core import placeholders
from mail.models import Message

from .models import MessageAnalysis
from .types import CATEGORY_LABELS

SUMMARY_CHARS = 160


@dataclass(frozen=True, slots=True)
class MessageRow:
    pk: str
    url: str
    seen: bool
    flagged: bool
    sender: str
    location: str  # "account / folder", shown where the list spans accounts
    subject: str
    has_attachments: bool
    is_invitation: bool  # carries a calendar invitation, update or answer (text/calendar)
    moving: bool  # moved here, the server's new UID not learned yet
    tags: tuple[tuple[str, str], ...]  # (name, colour)
    analysis_state: str
    summary: str
    category: str
    category_label: str
    urgency: int | None
    importance: int | None
    confidence: str
    date_iso: str
    date_text: str
    select_label: str  # the checkbox's accessible name
    score_title: str  # the score badge's tooltip

    def __getitem__(self, name: str):
        # Django templates try `row[name]` before `row.name`; answering it saves an exception per variable.
        try:
            return getattr(self, name)
        except AttributeError:
            raise KeyError(name) from None


@dataclass(frozen=True, slots=True)
class _PageTexts:
    """What every row of a page words alike, translated once per page instead of once per row (a
    `{% blocktranslate %}` in the row loop and get_FOO_display() were a fifth of the list's CPU)."""

    url_pattern: str
    categories: dict[str, str]
    select: str
    score: str

    @classmethod
    def current(cls) -> _PageTexts:
        placeholder = str(uuid.UUID(int=0))
        return cls(
            url_pattern=reverse("mail:message", args=[placeholder]).replace(placeholder, "{}"),
            categories={str(key): str(label) for key, label in CATEGORY_LABELS.items()},
            select=gettext("Select message from %(sender)s"),
            score=gettext("urgency %(u)s, importance %(i)s, confidence %(c)s"),
        )


def message_rows(messages: Iterable[Message]) -> list[MessageRow]:
    """Rows of messages fetched with mail.queries.message_list (its only() and tag_list prefetch)."""
    texts = _PageTexts.current()
    return [_row(m, texts) for m in messages]


def _row(m: Message, texts: _PageTexts) -> MessageRow:
    analysis: MessageAnalysis | None = getattr(m, "analysis", None)
    done = analysis is not None and analysis.state == MessageAnalysis.State.DONE
    local: datetime = timezone.localtime(m.sort_date)
    sender = m.from_name or m.from_address or gettext("(unknown sender)")
    confidence = f"{analysis.confidence:.2f}" if done else ""
    return MessageRow(
        pk=str(m.pk),
        url=texts.url_pattern.format(m.pk),
        seen=m.seen,
        flagged=m.flagged,
        sender=sender,
        location=f"{m.account.name} / {m.folder.display_name}",
        subject=m.subject or gettext("(no subject)"),
        has_attachments=m.has_attachments,
        is_invitation=bool(m.calendar_method),
        moving=m.uid is None,
        tags=tuple((a.tag.name, a.tag.color) for a in getattr(m, "tag_list", ())),
        analysis_state=analysis.state if analysis is not None else "",
        summary=_shorten(analysis.summary, SUMMARY_CHARS) if done else "",
        category=analysis.final_category if done else "",
        category_label=texts.categories.get(analysis.final_category, analysis.final_category) if done else "",
        urgency=analysis.final_urgency if done else None,
        importance=analysis.final_importance if done else None,
        confidence=confidence,
        date_iso=local.isoformat(),
        date_text=local.strftime("%Y-%m-%d %H:%M"),
        select_label=texts.select % {"sender": sender},
        score_title=texts.score % {"u": analysis.final_urgency, "i": analysis.final_importance, "c": confidence}
        if done
        else "",
    )


def _shorten(text: str, limit: int) -> str:
    # Plain slicing: django's Truncator (which also counts combining characters) was a quarter of the rows' cost.
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def mark_waiting_rows(request: HttpRequest, rows: list[MessageRow]) -> list[MessageRow]:
    """Rows whose content has not arrived yet (core.placeholders) show so instead of an empty subject.

    Providers answer without a query for users who have no such rows."""
    pending = placeholders.waiting(request, "mail.message", [row.pk for row in rows])
    if not pending:
        return rows
    return [
        dataclasses.replace(row, subject=placeholders.WAITING_SUBJECT) if row.pk in pending else row for row in rows
    ]
