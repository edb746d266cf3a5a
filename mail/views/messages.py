"""A message's attachments and inline images, and actions on messages (read, flag, move, delete).

The list and the message page are analysis/views/inbox.py (they show scores and tags too)."""

from __future__ import annotations

import html
from datetime import datetime
from urllib.parse import quote

from django.contrib import messages as flash
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from core.ids import clean_ids

from .. import actions, queries, snooze
from ..forms import MessageActionForm
from ..models import Folder, Message


def message_of(request: HttpRequest, message_id, defer: tuple[str, ...] = (), related: tuple[str, ...] = ()) -> Message:
    """The user's message (404 for anyone else's) with its account and folder, and the one-to-one
    rows named in related (the message page reads its analysis in the same query)."""
    qs = queries.messages_of(request.user).select_related("account", "folder", *related).defer(*defer)
    return get_object_or_404(qs, pk=message_id)


def cid_url(message: Message, cid: str) -> str:
    return reverse("mail:message-cid", args=[message.pk, quote(html.unescape(cid), safe="")])


def attachment_download(request: HttpRequest, attachment_id) -> FileResponse:
    from ..models import Attachment

    attachment = get_object_or_404(Attachment.objects.filter(owner=request.user), pk=attachment_id)
    return download_response(attachment)


def message_cid(request: HttpRequest, message_id, cid: str) -> FileResponse:
    message = message_of(request, message_id)
    attachment = message.attachments.filter(content_id=cid).first()
    if attachment is None or not attachment.content_type.startswith("image/"):
        raise Http404("No such inline image.")
    return _file_response(attachment, as_attachment=False)


def download_response(attachment) -> FileResponse:
    """A file of the user's mail (or of a draft) as a download: never rendered by the browser."""
    return _file_response(attachment, as_attachment=True)


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


def apply_action(message: Message, kind: str, target: Folder | None = None) -> int:
    """Apply the action here at once; actions.apply announces the change and mail.tasks writes it back."""
    return actions.apply([message], kind, target)


def _resolve(action: str, form_target: int | None, message: Message, user) -> tuple[str, Folder | None]:
    if action == "delete":
        return "move", actions.trash_folder(message.account)
    if action == "archive":
        return "move", actions.archive_folder(message.account)
    if action == "move":
        target = queries.folders_of(user).filter(pk=form_target, account=message.account_id).first()
        if target is None:
            raise actions.ActionError(_("Choose a folder of the same account."))
        return "move", target
    return action, None


def _back(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return default


@require_POST
def message_action(request: HttpRequest, message_id) -> HttpResponse:
    message = message_of(request, message_id)
    form = MessageActionForm(request.POST)
    if not form.is_valid():
        flash.error(request, _("Unknown action."))
        return redirect(_back(request, reverse("mail:message", args=[message.pk])))
    try:
        kind, target = _resolve(form.cleaned_data["action"], form.cleaned_data["target_folder"], message, request.user)
        apply_action(message, kind, target)
    except actions.ActionError as exc:
        flash.error(request, str(exc))
    else:
        if kind == "move":
            flash.success(request, _("Moved to %(folder)s.") % {"folder": target.display_name})
            return redirect(_back(request, reverse("mail:list")))
    return redirect(_back(request, reverse("mail:message", args=[message.pk])))


@require_POST
def snooze_action(request: HttpRequest, message_id) -> HttpResponse:
    """Snooze until a preset or a chosen time, wake now, or set/cancel a follow-up reminder."""
    message = message_of(request, message_id)
    back = reverse("mail:message", args=[message.pk])
    choice = request.POST.get("snooze", "")
    try:
        if choice == "cancel":
            snooze.unsnooze(message)
            flash.success(request, _("No longer snoozed."))
        elif choice in snooze.PRESETS or choice == "custom":
            until = snooze.preset(choice) if choice != "custom" else _local_time(request.POST.get("until", ""))
            snooze.snooze(message, until)
            flash.success(
                request, _("Snoozed until %(until)s.") % {"until": f"{timezone.localtime(until):%Y-%m-%d %H:%M}"}
            )
            return redirect(_back(request, reverse("mail:list")))
        elif "follow_up" in request.POST:
            when = _local_time(request.POST["follow_up"]) if request.POST["follow_up"] else None
            snooze.set_follow_up(message, when)
            flash.success(request, _("Reminder set.") if when else _("Reminder cancelled."))
        else:
            flash.error(request, _("Choose when the message should come back."))
    except snooze.SnoozeError as exc:
        flash.error(request, str(exc))
    return redirect(back)


def _local_time(text: str) -> datetime:
    """A <input type=datetime-local> (or date) value in the current time zone; SnoozeError if unreadable."""
    for fmt in ("%Y-%m-%dT%H:%M", "%Y-%m-%d"):
        try:
            parsed = datetime.strptime(text.strip(), fmt)
        except ValueError:
            continue
        return timezone.make_aware(parsed.replace(hour=8) if fmt == "%Y-%m-%d" else parsed)
    raise snooze.SnoozeError(_("Enter a date and time, e.g. 2026-12-24 09:00."))


@require_POST
def bulk_action(request: HttpRequest) -> HttpResponse:
    form = MessageActionForm(request.POST)
    ids = clean_ids(Message, request.POST.getlist("ids"))
    back = _back(request, reverse("mail:list"))
    if not form.is_valid() or not ids:
        flash.error(request, _("Select messages and an action."))
        return redirect(back)
    selected = list(queries.messages_of(request.user).filter(pk__in=ids).select_related("account", "folder"))
    done = 0
    try:
        with transaction.atomic():
            for message in selected:
                kind, target = _resolve(
                    form.cleaned_data["action"], form.cleaned_data["target_folder"], message, request.user
                )
                done += apply_action(message, kind, target)
    except actions.ActionError as exc:
        flash.error(request, str(exc))
        return redirect(back)
    text = ngettext("%(count)s message updated.", "%(count)s messages updated.", done)
    flash.success(request, text % {"count": done})
    return redirect(back)
