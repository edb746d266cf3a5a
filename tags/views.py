"""Tag pages: manage tags, tag messages (one or in bulk), review suggestions."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from core.ids import clean_id, clean_ids
from mail.models import Message

from . import keywords, service, tasks
from .forms import TagForm, TagSettingsForm
from .models import Tag, TagSettings, TagSuggestion


def _back(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return default


@require_http_methods(["GET", "POST"])
def tag_list(request: HttpRequest) -> HttpResponse:
    form = TagForm(request.POST or None, owner=request.user, prefix="tag")
    settings_row, _created = TagSettings.objects.get_or_create(owner=request.user)
    settings_form = TagSettingsForm(instance=settings_row, prefix="settings")
    if request.method == "POST" and form.is_valid():
        tag = form.save()
        messages.success(request, _("Tag “%(name)s” created.") % {"name": tag.name})
        return redirect("tags:list")
    tags = Tag.objects.filter(owner=request.user).annotate(
        used=Count("assignments", distinct=True),
        open_suggestions=Count("suggestions", filter=Q(suggestions__state="open"), distinct=True),
    )
    context = {
        "form": form,
        "tags": tags,
        "settings_form": settings_form,
        "keyword_mapping": keywords.mapping(request.user.pk),
        "category_keywords": keywords.category_mapping(),
    }
    return render(request, "tags/tag_list.html", context)


@require_POST
def tag_settings(request: HttpRequest) -> HttpResponse:
    settings_row, _created = TagSettings.objects.get_or_create(owner=request.user)
    was_on = settings_row.server_keywords
    form = TagSettingsForm(request.POST, instance=settings_row, prefix="settings")
    if form.is_valid():
        form.save()
        if form.instance.server_keywords and not was_on:  # catch up once: ids only, after the commit
            owner_id = request.user.pk
            transaction.on_commit(lambda: tasks.keywords_catch_up.delay(owner_id), robust=True)
        messages.success(request, _("Tag settings saved."))
    else:
        messages.error(request, "; ".join(e for errs in form.errors.values() for e in errs))
    return redirect("tags:list")


@require_http_methods(["GET", "POST"])
def tag_edit(request: HttpRequest, tag_id: int) -> HttpResponse:
    tag = get_object_or_404(Tag.objects.filter(owner=request.user), pk=tag_id)
    old_name = tag.name  # the form's validation writes the new one into `tag`
    form = TagForm(request.POST or None, instance=tag, owner=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        service.rename(request.user.pk, tag, old_name)
        messages.success(request, _("Tag saved."))
        return redirect("tags:list")
    return render(request, "tags/tag_form.html", {"form": form, "tag": tag})


@require_http_methods(["GET", "POST"])
def tag_delete(request: HttpRequest, tag_id: int) -> HttpResponse:
    tag = get_object_or_404(Tag.objects.filter(owner=request.user), pk=tag_id)
    if request.method == "POST":
        service.delete(request.user.pk, tag)
        messages.success(request, _("Tag “%(name)s” deleted (the messages stay).") % {"name": tag.name})
        return redirect("tags:list")
    return render(request, "tags/tag_confirm_delete.html", {"tag": tag, "count": tag.assignments.count()})


@require_POST
def tag_messages(request: HttpRequest) -> HttpResponse:
    """Add or remove a tag on one message (detail page) or many (list page)."""
    back = _back(request, reverse("mail:list"))
    tag = Tag.objects.filter(owner=request.user, pk=clean_id(Tag, request.POST.get("tag")) or 0).first()
    ids = clean_ids(Message, request.POST.getlist("ids"))
    if tag is None or not ids:
        messages.error(request, _("Choose a tag and at least one message."))
        return redirect(back)
    selected = list(Message.objects.filter(owner=request.user, pk__in=ids))
    if request.POST.get("remove") == "1":
        count = service.unassign(request.user.pk, tag, selected)
        messages.success(
            request,
            ngettext("Removed “%(name)s” from %(count)s message.", "Removed “%(name)s” from %(count)s messages.", count)
            % {"name": tag.name, "count": count},
        )
    else:
        count = service.assign(request.user.pk, tag, selected)
        messages.success(
            request,
            ngettext("Tagged %(count)s message “%(name)s”.", "Tagged %(count)s messages “%(name)s”.", count)
            % {"name": tag.name, "count": count},
        )
    return redirect(back)


def suggestion_queue(request: HttpRequest) -> HttpResponse:
    suggestions = (
        TagSuggestion.objects.filter(
            owner=request.user, state=TagSuggestion.State.OPEN, message__expunged_at__isnull=True
        )
        .select_related("tag", "message")
        .order_by("-score", "-created_at")
    )
    page = Paginator(suggestions, 50).get_page(request.GET.get("page"))
    return render(request, "tags/suggestions.html", {"page": page})


@require_POST
def decide(request: HttpRequest) -> HttpResponse:
    accept = request.POST.get("decision") == "accept"
    ids = clean_ids(TagSuggestion, request.POST.getlist("ids"))
    chosen = list(TagSuggestion.objects.filter(owner=request.user, pk__in=ids).select_related("message"))
    count = service.decide(request.user.pk, chosen, accept)
    messages.success(
        request,
        (
            ngettext(
                "%(count)s suggestion accepted; the suggestions learn from it.",
                "%(count)s suggestions accepted; the suggestions learn from it.",
                count,
            )
            if accept
            else ngettext(
                "%(count)s suggestion rejected; the suggestions learn from it.",
                "%(count)s suggestions rejected; the suggestions learn from it.",
                count,
            )
        )
        % {"count": count},
    )
    return redirect(_back(request, reverse("tags:suggestions")))
