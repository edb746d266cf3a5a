"""What a user's digest says: the top cells of the matrix, deadlines found, invitations to answer.

Subjects and senders only, unless the user opted in to summaries: the digest travels through mail
servers like any mail, and it should not carry more of the mail than the notification a phone shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from analysis.models import MessageAnalysis
from events.models import Event
from mail.models import Message

from .models import DigestSettings

# The cells that need the user, most pressing first: (urgency, importance) -> heading.
TOP_CELLS = {(3, 3): _("Urgent and important"), (3, 2): _("Urgent"), (2, 3): _("Important")}
PER_SECTION = 10
DEADLINE_REASON = "deadline in text"  # analysis/heuristics.py's label
DEADLINE_DAYS = 7


@dataclass
class Item:
    subject: str
    sender: str
    message_id: str
    summary: str = ""
    when: datetime | None = None


@dataclass
class Section:
    heading: str
    total: int
    items: list[Item] = field(default_factory=list)


@dataclass
class Digest:
    sections: list[Section]
    open_total: int

    @property
    def empty(self) -> bool:
        return not any(s.total for s in self.sections)


def _open(owner_id: int):
    return MessageAnalysis.objects.filter(
        owner_id=owner_id, state=MessageAnalysis.State.DONE, done_at__isnull=True, final_spam=False,
        message__expunged_at__isnull=True,
    )  # fmt: skip


def _item(message: Message, analysis: MessageAnalysis | None, summaries: bool) -> Item:
    return Item(
        subject=message.subject or gettext("(no subject)"),
        sender=message.from_name or message.from_address,
        message_id=str(message.pk),
        summary=(analysis.summary if analysis is not None and summaries else ""),
    )


def _analysed_section(heading: str, qs, summaries: bool) -> Section:
    total = qs.count()
    rows = qs.select_related("message").order_by("-message__sort_date")[:PER_SECTION]
    return Section(heading, total, [_item(a.message, a, summaries) for a in rows])


def build(prefs: DigestSettings, now: datetime) -> Digest:
    owner_id, summaries = prefs.owner_id, prefs.include_summaries
    sections = [
        _analysed_section(heading, _open(owner_id).filter(final_urgency=u, final_importance=i), summaries)
        for (u, i), heading in TOP_CELLS.items()
    ]
    recent = _open(owner_id).filter(
        reasons__contains=[DEADLINE_REASON], message__sort_date__gte=now - timedelta(days=DEADLINE_DAYS)
    )
    sections.append(_analysed_section(gettext("Deadlines mentioned this week"), recent, summaries))
    invitations = Event.objects.filter(
        owner_id=owner_id, method="REQUEST", answer="", cancelled=False, superseded=False, starts_at__gte=now,
        parse_error="",
    ).select_related("message")  # fmt: skip
    invitation_items = [
        Item(subject=e.summary or gettext("(no title)"), sender=e.organizer_name or e.organizer_email,
             message_id=str(e.message_id), when=e.starts_at)
        for e in invitations.order_by("starts_at")[:PER_SECTION]
    ]  # fmt: skip
    sections.append(Section(gettext("Invitations to answer"), invitations.count(), invitation_items))
    return Digest(sections, _open(owner_id).count())
