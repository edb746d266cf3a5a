"""What one row of a message list shows, computed and written out in Python once per row.

The list page is the busiest page of the product. Rendering its 50 rows from model instances cost
~11 ms per page in Django's template engine (every `{{ m.analysis.summary }}` walks the lookup
fallbacks, raising and catching an exception per step; `url`, `date` and `truncatechars` add up);
the same rows as MessageRow values rendered in ~3 ms, and written out here with one f-string per
row (list_rows_html, result_rows_html) in well under 1 ms. The rows are read as values, not model
instances (message_rows). tests/analysis/test_row_markup.py holds the template markup these
functions replaced and checks that they write the same, escaped alike, in both languages.
"""

from __future__ import annotations

import dataclasses
import html
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext

from accounts.fields import open_value
from core import placeholders
from core.templatetags.icons import icon
from mail.models import Folder, Message
from tags.models import TagAssignment

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
    flagged_icon: str
    invitation_icon: str
    attachment_icon: str
    moving: str
    not_analysed: str

    @classmethod
    def current(cls) -> _PageTexts:
        placeholder = str(uuid.UUID(int=0))
        return cls(
            url_pattern=reverse("mail:message", args=[placeholder]).replace(placeholder, "{}"),
            categories={str(key): str(label) for key, label in CATEGORY_LABELS.items()},
            select=gettext("Select message from %(sender)s"),
            score=gettext("urgency %(u)s, importance %(i)s, confidence %(c)s"),
            flagged_icon=" " + icon("flag", gettext("Flagged")),
            invitation_icon=" " + icon("invite", gettext("Calendar invitation")),
            attachment_icon=" " + icon("attachment", gettext("Has attachments")),
            # gettext() outside the f-strings: xgettext (makemessages) does not look inside them.
            moving=format_html(' <small class="muted">({})</small>', gettext("moving…")),
            not_analysed=format_html('<small class="muted">{}</small>', gettext("not analysed")),
        )


# What a row reads of a message, its account, folder and analysis (as values(): no model instances).
ROW_VALUES = (
    "id", "owner_id", "uid", "sort_date", "from_name", "from_address", "subject", "seen", "flagged",
    "has_attachments", "calendar_method", "account__name", "folder__name", "folder__delimiter",
    "analysis__id", "analysis__owner_id", "analysis__state", "analysis__summary", "analysis__confidence",
    "analysis__final_category", "analysis__final_urgency", "analysis__final_importance",
)  # fmt: skip


def message_rows(messages: QuerySet[Message] | Iterable[Message]) -> list[MessageRow]:
    """Rows of messages from analysis.queries.message_list: two queries for a queryset (the rows as
    values, then their tags), none for messages already loaded with its only() and tag_list prefetch.

    A page of 50 rows as instances was ~200 model instances (message, account, folder, analysis)
    built and thrown away; as values the list page's CPU per request dropped by a fifth.
    """
    texts = _PageTexts.current()
    folders: dict[tuple[str, str], str] = {}
    if not isinstance(messages, QuerySet):
        return [_row(_values_of(m), _tags_of(m), texts, folders) for m in messages]
    values = list(messages.prefetch_related(None).values(*ROW_VALUES))
    tags: dict[uuid.UUID, list[tuple[str, str]]] = {}
    if values:
        assigned = TagAssignment.objects.filter(message_id__in=[v["id"] for v in values])
        for message_id, name, color in assigned.values_list("message_id", "tag__name", "tag__color"):
            tags.setdefault(message_id, []).append((name, color))
    for v in values:
        v["subject"] = open_value(Message, "subject", v["owner_id"], v["id"], v["subject"])
        if v["analysis__state"] == MessageAnalysis.State.DONE:
            v["analysis__summary"] = open_value(
                MessageAnalysis, "summary", v["analysis__owner_id"], v["analysis__id"], v["analysis__summary"]
            )
    return [_row(v, tuple(tags.get(v["id"], ())), texts, folders) for v in values]


def _values_of(m: Message) -> dict:
    """A loaded message as the values ROW_VALUES reads (search and similarity load instances)."""
    analysis: MessageAnalysis | None = getattr(m, "analysis", None)
    done = analysis is not None and analysis.state == MessageAnalysis.State.DONE
    return {
        "id": m.pk, "uid": m.uid, "sort_date": m.sort_date, "from_name": m.from_name,
        "from_address": m.from_address, "subject": m.subject, "seen": m.seen, "flagged": m.flagged,
        "has_attachments": m.has_attachments, "calendar_method": m.calendar_method,
        "account__name": m.account.name, "folder__name": m.folder.name, "folder__delimiter": m.folder.delimiter,
        "analysis__state": analysis.state if analysis is not None else None,
        "analysis__summary": analysis.summary if done else None,
        "analysis__confidence": analysis.confidence if analysis is not None else None,
        "analysis__final_category": analysis.final_category if analysis is not None else None,
        "analysis__final_urgency": analysis.final_urgency if analysis is not None else None,
        "analysis__final_importance": analysis.final_importance if analysis is not None else None,
    }  # fmt: skip


def _tags_of(m: Message) -> tuple[tuple[str, str], ...]:
    return tuple((a.tag.name, a.tag.color) for a in getattr(m, "tag_list", ()))


def _row(v: dict, tags: tuple[tuple[str, str], ...], texts: _PageTexts, folders: dict) -> MessageRow:
    state = v["analysis__state"]
    done = state == MessageAnalysis.State.DONE
    local: datetime = timezone.localtime(v["sort_date"])
    sender = v["from_name"] or v["from_address"] or gettext("(unknown sender)")
    confidence = f"{v['analysis__confidence']:.2f}" if done else ""
    folder_key = (v["folder__name"], v["folder__delimiter"])
    if folder_key not in folders:
        folders[folder_key] = Folder.name_shown(*folder_key)
    category = v["analysis__final_category"] if done else ""
    return MessageRow(
        pk=str(v["id"]),
        url=texts.url_pattern.format(v["id"]),
        seen=v["seen"],
        flagged=v["flagged"],
        sender=sender,
        location=f"{v['account__name']} / {folders[folder_key]}",
        subject=v["subject"] or gettext("(no subject)"),
        has_attachments=v["has_attachments"],
        is_invitation=bool(v["calendar_method"]),
        moving=v["uid"] is None,
        tags=tags,
        analysis_state=state or "",
        summary=_shorten(v["analysis__summary"], SUMMARY_CHARS) if done else "",
        category=category,
        category_label=texts.categories.get(category, category) if done else "",
        urgency=v["analysis__final_urgency"] if done else None,
        importance=v["analysis__final_importance"] if done else None,
        confidence=confidence,
        date_iso=local.isoformat(),
        date_text=local.strftime("%Y-%m-%d %H:%M"),
        select_label=texts.select % {"sender": sender},
        score_title=texts.score
        % {"u": v["analysis__final_urgency"], "i": v["analysis__final_importance"], "c": confidence}
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


# The row markup of mail/message_list.html and mail/_result_rows.html, written out in Python: the
# template engine resolved ~25 variables per row (a lookup, conditional_escape and localize each),
# half of the list page's CPU. Every value below is escaped with _e; the texts of _PageTexts are
# markup already (icons, escaped translations).
def _e(value: object) -> str:
    # conditional_escape without its lazy-string wrapper (a third of its cost): markup stays as it is.
    if hasattr(value, "__html__"):
        return value.__html__()
    return html.escape(str(value))


def _tags(row: MessageRow) -> str:
    if not row.tags:
        return ""
    inner = "".join(f'<span class="tag" style="--tag: {_e(color)}">{_e(name)}</span>' for name, color in row.tags)
    return f'<span class="tags-inline">{inner}</span>'


def list_rows_html(rows: Iterable[MessageRow], *, show_location: bool) -> SafeString:
    """The <tr> elements of the message list (mail/message_list.html), one per row.

    show_location adds "account / folder" under the sender, for lists that span accounts.
    """
    texts = _PageTexts.current()
    parts = []
    for m in rows:
        css = ("" if m.seen else "unread") + (" flagged" if m.flagged else "")
        location = f'<br><small class="muted">{_e(m.location)}</small>' if show_location else ""
        marks = (
            (texts.flagged_icon if m.flagged else "")
            + (texts.invitation_icon if m.is_invitation else "")
            + (texts.attachment_icon if m.has_attachments else "")
            + (texts.moving if m.moving else "")
        )
        summary = f'<br><small class="muted summary">{_e(m.summary)}</small>' if m.summary else ""
        if m.analysis_state == "done":
            priority = (
                f'<span class="badge cat-{_e(m.category)}">{_e(m.category_label)}</span>\n'
                f'            <span class="score u{_e(m.urgency)} i{_e(m.importance)}" title="{_e(m.score_title)}">'
                f"U{_e(m.urgency)}·I{_e(m.importance)}</span>"
            )
        elif m.analysis_state == "failed":
            priority = texts.not_analysed
        else:
            priority = '<small class="muted">…</small>'
        pk = _e(m.pk)
        parts.append(
            f'        <tr class="{css}" data-message="{pk}">\n'
            f'          <td><input type="checkbox" name="ids" value="{pk}" aria-label="{_e(m.select_label)}"></td>\n'
            f'          <td class="from">{_e(m.sender)}{location}</td>\n'
            f'          <td class="subject"><a href="{_e(m.url)}">{_e(m.subject)}</a>{marks}\n'
            f"            {_tags(m)}\n"
            f"            {summary}</td>\n"
            f'          <td class="priority">{priority}</td>\n'
            f'          <td class="date"><time datetime="{_e(m.date_iso)}">{_e(m.date_text)}</time></td>\n'
            "        </tr>\n"
        )
    return mark_safe("".join(parts))  # noqa: S308 - every value above went through _e


def result_rows_html(rows: Iterable[MessageRow]) -> SafeString:
    """The <tr> elements of search results and similar messages (mail/_result_rows.html)."""
    texts = _PageTexts.current()
    parts = []
    for m in rows:
        attachment = texts.attachment_icon if m.has_attachments else ""
        parts.append(
            f'<tr class="{"" if m.seen else "unread"}" data-message="{_e(m.pk)}"><td class="from">{_e(m.sender)}'
            f'<br><small class="muted">{_e(m.location)}</small></td>\n'
            f'  <td class="subject"><a href="{_e(m.url)}">{_e(m.subject)}</a>{attachment}\n'
            f"    {_tags(m)}</td>\n"
            f'  <td class="date"><time datetime="{_e(m.date_iso)}">{_e(m.date_text)}</time></td></tr>'
        )
    return mark_safe("".join(parts))  # noqa: S308 - every value above went through _e
