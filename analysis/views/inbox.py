"""The inbox pages: the message list (matrix cell, category and tag filters) and one message's page.

They live in analysis because they show what it concluded (scores, summaries, corrections) beside the
mail and its tags: a page goes in the lowest app that holds everything it shows (ARCHITECTURE.md).
Actions on messages (read, move, delete) are mail's (mail/views/messages.py).
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from core import placeholders, security_headers
from events import cards as event_cards
from mail import queries, snooze
from mail.paging import CappedPaginator
from mail.parsing import original_html, sanitize_html
from mail.views.messages import apply_action, cid_url
from tags import queries as tag_queries
from tags.models import Tag

from .. import language as languages
from .. import queries as inbox_queries
from .. import translation
from ..forms import CorrectionForm
from ..rows import list_rows_html, mark_waiting_rows, message_rows
from ..types import Category
from .translation import reader_language

PAGE_SIZE = 50
CATEGORY_VALUES = {c.value for c in Category}
_CID_SRC = re.compile(r'src="cid:([^"]+)"')


def message_list(request: HttpRequest, account_id=None, folder_id=None) -> HttpResponse:
    account = folder = None
    if account_id is not None:
        account = get_object_or_404(queries.accounts_of(request.user), pk=account_id)
    if folder_id is not None:
        folder = get_object_or_404(queries.folders_of(request.user), pk=folder_id, account=account)
    filters = _list_filters(request)
    messages = inbox_queries.message_list(request.user, account, folder, **filters)
    page = CappedPaginator(messages, PAGE_SIZE).get_page(request.GET.get("page"))
    folders = queries.server_folders(request.user)  # for the sidebar and the "move to" choice alike
    rows = mark_waiting_rows(request, message_rows(page.object_list))
    context = {
        "filters": filters,
        "filter_query": urlencode([(k, v) for k, v in request.GET.items() if k != "page"]),
        "page": page,
        "rows": rows,
        "rows_html": list_rows_html(rows, show_location=account is None),
        "account": account,
        "folder": folder,
        "sidebar": queries.sidebar_folders(request.user, folders),
        # Only the empty state asks; the template calls it then, so a full page skips the query.
        "has_accounts": True if account is not None else queries.accounts_of(request.user).exists,
        "move_targets": [f for f in folders if account is None or f.account_id == account.pk],
        "tags": list(Tag.objects.filter(owner=request.user)),
        "views": inbox_queries.VIEWS,
        "awaiting_days": settings.MAILHELPER_AWAITING_REPLY_DAYS,
        "view_title": inbox_queries.VIEWS.get(filters["view"], ""),
    }
    return render(request, "mail/message_list.html", context)


def _list_filters(request: HttpRequest) -> dict:
    """Matrix cell and category filters from the query string; anything malformed is ignored."""

    def level(name: str) -> int | None:
        value = request.GET.get(name, "")
        return int(value) if value in {"1", "2", "3"} else None

    category = request.GET.get("category", "")
    tag_ids = [int(t) for t in request.GET.getlist("tag") if t.isdigit()][:5]
    return {
        "tag_ids": tag_ids,
        "urgency": level("u"),
        "importance": level("i"),
        "category": category if category in CATEGORY_VALUES else "",
        "open_only": request.GET.get("open") == "1",
        "sender": request.GET.get("from", "").strip()[:320],
        "view": request.GET.get("view", "") if request.GET.get("view", "") in inbox_queries.VIEWS else "",
    }


def _translation_context(request: HttpRequest, message) -> dict:
    reader = reader_language(request)
    analysis = getattr(message, "analysis", None)
    language = analysis.language if analysis else ""
    if language == reader:
        return {"translation": None, "translate_into": ""}
    # One in the reader's language, else any other (the legacy application kept German ones).
    shown = translation.translation_of(message, reader) or message.translations.exclude(language=language).first()
    return {"translation": shown, "translate_into": languages.language_name(reader)}


def message_detail(request: HttpRequest, message_id) -> HttpResponse:
    message = get_object_or_404(inbox_queries.message_page(request.user), pk=message_id)
    if not message.seen:
        apply_action(message, "mark_read")
    show_images = request.GET.get("images") == "1"
    body_html = message.html_body
    if show_images and message.has_remote_images and message.raw:
        body_html, _ = sanitize_html(original_html(message.raw), allow_remote_images=True)
    body_html = _CID_SRC.sub(lambda m: f'src="{cid_url(message, m.group(1))}"', body_html)
    tags = tag_queries.message_tags(request.user.pk, message.pk)
    context = {
        "message": message,
        "legacy_waiting": bool(placeholders.waiting(request, "mail.message", [message.pk])),
        "analysis": getattr(message, "analysis", None),
        "correction_form": CorrectionForm(),
        "body_html": body_html,
        "show_images": show_images,
        # The list needs names and sizes, not the (possibly large) data.
        "attachments": [a for a in message.attachments.defer("data") if not a.is_inline or not a.content_id],
        "move_targets": queries.move_targets(message),
        "assignments": tags.assignments,
        "suggestions": tags.suggestions,
        "tags": tags.choices,
        "thread_size": message.thread_size,
        "snooze_presets": snooze.PRESETS,
        "own_message": message.own_message,
        "event_card": event_cards.card_for(message),
        **_translation_context(request, message),
    }
    response = render(request, "mail/message_detail.html", context)
    return security_headers.allow_remote_images(response) if show_images else response
