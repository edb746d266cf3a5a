"""Message list, detail, attachments and actions (read, flag, move, delete)."""

from __future__ import annotations

import html
import re
from urllib.parse import quote

from django.contrib import messages as flash
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from core import placeholders
from tags.models import Tag

from .. import actions, queries, tasks
from ..analysis.types import Category
from ..forms import CorrectionForm, MessageActionForm
from ..models import Folder, Message
from ..paging import CappedPaginator
from ..parsing import original_html, sanitize_html
from ..rows import mark_waiting_rows, message_rows

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
    messages = queries.message_list(request.user, account, folder, **filters)
    page = CappedPaginator(messages, PAGE_SIZE).get_page(request.GET.get("page"))
    folders = queries.server_folders(request.user)  # for the sidebar and the "move to" choice alike
    context = {
        "filters": filters,
        "filter_query": "&".join(f"{k}={v}" for k, v in request.GET.items() if k != "page"),
        "page": page,
        "rows": mark_waiting_rows(request, message_rows(page.object_list)),
        "account": account,
        "folder": folder,
        "sidebar": queries.sidebar_folders(request.user, folders),
        # Only the empty state asks; the template calls it then, so a full page skips the query.
        "has_accounts": True if account is not None else queries.accounts_of(request.user).exists,
        "move_targets": [f for f in folders if account is None or f.account_id == account.pk],
        "tags": list(Tag.objects.filter(owner=request.user)),
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
    }


def _message(request: HttpRequest, message_id, defer: tuple[str, ...] = ()) -> Message:
    qs = queries.messages_of(request.user).select_related("account", "folder").defer(*defer)
    return get_object_or_404(qs, pk=message_id)


# Not read for the page itself: the raw source (tens of KB to 25 MB, fetched only to show remote
# images) and the keyword index.
_DETAIL_DEFERRED = ("raw", "search_ids")


def message_detail(request: HttpRequest, message_id) -> HttpResponse:
    message = _message(request, message_id, defer=_DETAIL_DEFERRED)
    if not message.seen:
        _apply(message, "mark_read")
    show_images = request.GET.get("images") == "1"
    body_html = message.html_body
    if show_images and message.has_remote_images and message.raw:
        body_html, _ = sanitize_html(original_html(message.raw), allow_remote_images=True)
    body_html = _CID_SRC.sub(lambda m: f'src="{_cid_url(message, m.group(1))}"', body_html)
    context = {
        "message": message,
        "legacy_waiting": bool(placeholders.waiting(request, "mail.message", [message.pk])),
        "analysis": getattr(message, "analysis", None),
        "correction_form": CorrectionForm(),
        "body_html": body_html,
        "show_images": show_images,
        # The list needs names and sizes, not the (possibly large) data.
        "attachments": [a for a in message.attachments.defer("data") if not a.is_inline or not a.content_id],
        "move_targets": list(message.account.folders.filter(exists_on_server=True).exclude(pk=message.folder_id)),
        "assignments": list(message.tag_assignments.select_related("tag")),
        "suggestions": list(message.tag_suggestions.filter(state="open").select_related("tag")),
        "tags": list(Tag.objects.filter(owner=request.user)),
        "thread_size": queries.thread_of(request.user, message).count() if message.thread_key else 1,
    }
    return render(request, "mail/message_detail.html", context)


def _cid_url(message: Message, cid: str) -> str:
    return reverse("mail:message-cid", args=[message.pk, quote(html.unescape(cid), safe="")])


def attachment_download(request: HttpRequest, attachment_id) -> FileResponse:
    from ..models import Attachment

    attachment = get_object_or_404(Attachment.objects.filter(owner=request.user), pk=attachment_id)
    return _file_response(attachment, as_attachment=True)


def message_cid(request: HttpRequest, message_id, cid: str) -> FileResponse:
    message = _message(request, message_id)
    attachment = message.attachments.filter(content_id=cid).first()
    if attachment is None or not attachment.content_type.startswith("image/"):
        raise Http404("No such inline image.")
    return _file_response(attachment, as_attachment=False)


def _file_response(attachment, as_attachment: bool) -> FileResponse:
    import io

    response = FileResponse(
        io.BytesIO(attachment.data or b""),
        as_attachment=as_attachment,
        filename=attachment.filename or "attachment",
        content_type=attachment.content_type if not as_attachment else "application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def _apply(message: Message, kind: str, target: Folder | None = None) -> int:
    changed = actions.apply([message], kind, target)
    if changed:
        account_id = str(message.account_id)
        transaction.on_commit(lambda: tasks.queue_write_back(account_id))
    return changed


def _resolve(action: str, form_target: int | None, message: Message, user) -> tuple[str, Folder | None]:
    if action == "delete":
        return "move", actions.trash_folder(message.account)
    if action == "archive":
        return "move", actions.archive_folder(message.account)
    if action == "move":
        target = queries.folders_of(user).filter(pk=form_target, account=message.account_id).first()
        if target is None:
            raise actions.ActionError("Choose a folder of the same account.")
        return "move", target
    return action, None


def _back(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return default


@require_POST
def message_action(request: HttpRequest, message_id) -> HttpResponse:
    message = _message(request, message_id)
    form = MessageActionForm(request.POST)
    if not form.is_valid():
        flash.error(request, "Unknown action.")
        return redirect(_back(request, reverse("mail:message", args=[message.pk])))
    try:
        kind, target = _resolve(form.cleaned_data["action"], form.cleaned_data["target_folder"], message, request.user)
        _apply(message, kind, target)
    except actions.ActionError as exc:
        flash.error(request, str(exc))
    else:
        if kind == "move":
            flash.success(request, f"Moved to {target.display_name}.")
            return redirect(_back(request, reverse("mail:list")))
    return redirect(_back(request, reverse("mail:message", args=[message.pk])))


@require_POST
def bulk_action(request: HttpRequest) -> HttpResponse:
    form = MessageActionForm(request.POST)
    ids = request.POST.getlist("ids")
    back = _back(request, reverse("mail:list"))
    if not form.is_valid() or not ids:
        flash.error(request, "Select messages and an action.")
        return redirect(back)
    selected = list(queries.messages_of(request.user).filter(pk__in=ids).select_related("account", "folder"))
    done = 0
    try:
        with transaction.atomic():
            for message in selected:
                kind, target = _resolve(
                    form.cleaned_data["action"], form.cleaned_data["target_folder"], message, request.user
                )
                done += _apply(message, kind, target)
    except actions.ActionError as exc:
        flash.error(request, str(exc))
        return redirect(back)
    flash.success(request, f"{done} message(s) updated.")
    return redirect(back)
