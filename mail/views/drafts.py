"""New message, reply, reply all and forward: start a draft, edit it, rewrite it in a style, send it; drafts list;
reply style and signature settings.

Thin: the work is in mail/replies.py (composing) and mail/sending.py (sending, run by a task).
Every query starts from the request user's own rows, so another user's ids are a 404.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib import messages as flash
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods, require_POST

from .. import correspondents, draft_attachments, draft_copies, queries, replies, sending, tasks
from ..forms import DraftForm, ReplySettingsForm
from ..models import Draft, DraftAttachment, PendingAction
from .messages import download_response

PAGE_SIZE = 25
KIND_TITLES = {
    Draft.Kind.NEW: _("New message"),
    Draft.Kind.REPLY: _("Reply"),
    Draft.Kind.REPLY_ALL: _("Reply all"),
    Draft.Kind.FORWARD: _("Forward"),
}


def _drafts(request: HttpRequest):
    return Draft.objects.filter(owner=request.user)


def _draft(request: HttpRequest, draft_id) -> Draft:
    return get_object_or_404(_drafts(request).select_related("account", "original__folder"), pk=draft_id)


@require_POST
def start(request: HttpRequest, message_id) -> HttpResponse:
    """Reply / Reply all / Forward on a message's page: write the draft and open it."""
    message = get_object_or_404(queries.messages_of(request.user).select_related("account", "folder"), pk=message_id)
    kind = request.POST.get("kind", "")
    style = request.POST.get("style") or Draft.Style.FRIENDLY
    if kind not in Draft.Kind.values or style not in Draft.Style.values:
        flash.error(request, _("Choose reply, reply all or forward."))
        return redirect("mail:message", message_id=message.pk)
    draft = replies.create_draft(message, kind, style)
    return redirect("mail:draft", draft_id=draft.pk)


@require_http_methods(["GET", "POST"])
def new_message(request: HttpRequest) -> HttpResponse:
    """Write a new message: choose the account it goes out from (GET), then the draft opens (POST)."""
    accounts = list(queries.accounts_of(request.user).order_by("name"))
    if request.method == "POST":
        account = next((a for a in accounts if str(a.pk) == request.POST.get("account", "")), None)
        if account is None:
            flash.error(request, _("Choose the account to write from."))
            return redirect("mail:new-message")
        draft = replies.create_new_draft(account)
        return redirect("mail:draft", draft_id=draft.pk)
    return render(request, "mail/new_message.html", {"accounts": accounts})


def address_completions(request: HttpRequest) -> HttpResponse:
    """<option>s for the recipients field being typed in (htmx fills the field's <datalist>)."""
    field = next((name for name in ("to", "cc", "bcc") if name in request.GET), "to")
    options = correspondents.completions(request.user.pk, request.GET.get(field, "")[:2000])
    return render(request, "mail/_address_options.html", {"options": options})


@require_http_methods(["GET", "POST"])
def compose(request: HttpRequest, draft_id) -> HttpResponse:
    draft = _draft(request, draft_id)
    if request.method == "GET":
        form = DraftForm(initial={f: getattr(draft, f) for f in ("to", "cc", "bcc", "subject", "body", "style")})
        return _render(request, draft, form)
    if not draft.editable:
        if request.POST.get("action") == "send" and sending.queue_send(draft):  # a stuck send, queued again
            _start_sending(draft)
        elif draft.status == Draft.Status.SENDING:
            flash.info(request, _("This message is being sent; it can no longer be changed."))
        return redirect("mail:draft", draft_id=draft.pk)

    form = DraftForm(request.POST)
    action = request.POST.get("action", "save")
    if action == "regenerate" and request.headers.get("HX-Request"):
        # Only the text is rewritten; the fields in the browser keep what the user typed meanwhile.
        style = request.POST.get("style") or draft.style
        if style in Draft.Style.values and draft.original_id:
            replies.rewrite(draft, style)
        return render(request, "mail/_draft_body.html", {"draft": draft, "form": _body_form(draft)})
    valid = form.require_recipient() if action == "send" else form.is_valid()
    if not valid:
        return _render(request, draft, form, status=200)
    data = form.cleaned_data
    fields = {f: data[f] for f in ("to", "cc", "bcc", "subject", "body")}
    if not replies.update_draft(draft, **fields):
        return redirect("mail:draft", draft_id=draft.pk)  # a second click while the first one sends
    attached = _attachments_changed(request, draft)
    if action != "send":
        draft_copies.record_saved(draft)  # the phone shows it in Drafts
    if not attached and action == "send":
        return redirect("mail:draft", draft_id=draft.pk)  # a file was refused: the user sees why first
    if request.POST.get("remove_attachment"):
        return redirect("mail:draft", draft_id=draft.pk)
    if action == "regenerate" and data["style"] and draft.original_id:
        replies.rewrite(draft, data["style"])
    elif action == "send":
        if sending.queue_send(draft):
            _start_sending(draft)
    else:
        flash.success(request, _("Draft saved."))
    return redirect("mail:draft", draft_id=draft.pk)


def _attachments_changed(request: HttpRequest, draft: Draft) -> bool:
    """Attach the uploaded files and remove the one asked for; False if a file could not be attached."""
    ok = True
    declared = int(request.META.get("CONTENT_LENGTH") or 0)
    if declared > settings.FILE_UPLOAD_MAX_MEMORY_SIZE and not request.FILES:
        flash.error(
            request,
            _("The files were not attached: attachments can be %(mb)s MB in all.")
            % {"mb": settings.MAILHELPER_ATTACHMENTS_MAX_MB},
        )
        ok = False
    for upload in request.FILES.getlist("attachments"):
        try:
            draft_attachments.add(draft, upload)
        except draft_attachments.AttachmentRefused as exc:
            flash.error(request, str(exc))
            ok = False
    try:
        removed = uuid.UUID(request.POST.get("remove_attachment", ""))
    except ValueError:
        removed = None  # nothing to remove (or not an id)
    if removed is not None:
        draft_attachments.remove(draft, removed)
    return ok


def attachment_download(request: HttpRequest, draft_id, upload_id) -> HttpResponse:
    draft = _draft(request, draft_id)
    attachment = get_object_or_404(DraftAttachment.objects.filter(owner=request.user, draft=draft), pk=upload_id)
    return download_response(attachment)


def _start_sending(draft: Draft) -> None:
    draft_pk = str(draft.pk)
    transaction.on_commit(lambda: tasks.send_draft.delay(draft_id=draft_pk))


def _body_form(draft: Draft) -> DraftForm:
    return DraftForm(initial={"body": draft.body, "style": draft.style})


def _render(request: HttpRequest, draft: Draft, form: DraftForm, status: int = 200) -> HttpResponse:
    sent_copy = None
    if draft.status == Draft.Status.SENT:
        sent_copy = PendingAction.objects.filter(owner=request.user, draft=draft, kind="append_sent").first()
    context = {
        "draft": draft,
        "stuck": sending.is_stuck(draft),
        "sent_copy": sent_copy,
        "form": form,
        "title": KIND_TITLES.get(draft.kind, _("Reply")),
        "uploads": list(draft.uploads.defer("data")),
        "attachments_max_mb": settings.MAILHELPER_ATTACHMENTS_MAX_MB,
        "attachments": (
            [a for a in draft.original.attachments.all() if not (a.is_inline and a.content_id)]
            if draft.kind == Draft.Kind.FORWARD and draft.original_id
            else []
        ),
    }
    return render(request, "mail/compose.html", context, status=status)


def draft_status(request: HttpRequest, draft_id) -> HttpResponse:
    """The sending progress (htmx polls it); once sending is over the page reloads to show the result."""
    draft = _draft(request, draft_id)
    response = render(request, "mail/_draft_status.html", {"draft": draft, "stuck": sending.is_stuck(draft)})
    if request.headers.get("HX-Request") and draft.status != Draft.Status.SENDING:
        response["HX-Refresh"] = "true"
    return response


@require_POST
def draft_delete(request: HttpRequest, draft_id) -> HttpResponse:
    draft = _draft(request, draft_id)
    with transaction.atomic():
        locked = Draft.objects.select_for_update().get(pk=draft.pk)
        if locked.status == Draft.Status.SENDING:
            flash.error(request, _("This message is being sent right now."))
            return redirect("mail:draft", draft_id=draft.pk)
        if locked.status == Draft.Status.SENT and locked.sent_raw is not None:
            flash.error(request, _("The copy for your Sent folder is not saved on the server yet; try again later."))
            return redirect("mail:draft", draft_id=draft.pk)
        draft_copies.record_gone(locked)
        locked.delete()
    flash.success(request, _("Draft deleted.") if draft.status != Draft.Status.SENT else _("Removed from this list."))
    return redirect("mail:drafts")


def draft_list(request: HttpRequest) -> HttpResponse:
    drafts = _drafts(request).select_related("account").defer("body", "sent_raw").order_by("-updated_at", "-id")
    page = Paginator(drafts, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "mail/draft_list.html", {"page": page})


@require_http_methods(["GET", "POST"])
def reply_settings(request: HttpRequest) -> HttpResponse:
    accounts = list(queries.accounts_of(request.user).select_related("signature"))
    current = replies.reply_settings(request.user.pk)
    initial = {
        "greeting": current.greeting,
        "closing": current.closing,
        "address_form": current.address_form,
        "instructions": current.instructions,
    }
    for account in accounts:
        signature = getattr(account, "signature", None)
        initial[ReplySettingsForm.signature_field(account)] = signature.text if signature else ""
    form = ReplySettingsForm(request.POST or None, initial=initial, accounts=accounts)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        with transaction.atomic():
            replies.save_settings(
                request.user.pk,
                greeting=data["greeting"],
                closing=data["closing"],
                address_form=data["address_form"],
                instructions=data["instructions"],
            )
            for account in accounts:
                replies.save_signature(account, data[ReplySettingsForm.signature_field(account)])
        flash.success(request, _("Reply settings saved."))
        return redirect("mail:reply-settings")
    return render(request, "mail/reply_settings.html", {"form": form, "accounts": accounts})
