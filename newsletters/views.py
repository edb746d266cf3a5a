"""The Newsletters page and the unsubscribe button."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_ratelimit.decorators import ratelimit

from accounts.views.common import setting_rate
from core import jobs, stored_text
from core.models import Job
from rules import tasks as rule_tasks

from . import senders, unsubscribe
from .models import Unsubscription

PAGE_SIZE = 50


def newsletter_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(senders.list_senders(request.user.pk), PAGE_SIZE).get_page(request.GET.get("page"))
    rows = senders.senders_of(request.user.pk, list(page.object_list))
    return render(request, "newsletters/list.html", {"page": page, "senders": rows})


@require_POST
@ratelimit(key="user", rate=setting_rate("MAILHELPER_RATE_UNSUBSCRIBE"), method="POST", block=True)
def newsletter_unsubscribe(request: HttpRequest) -> HttpResponse:
    sender = request.POST.get("sender", "").strip()
    try:
        outcome = unsubscribe.unsubscribe(request.user.pk, sender, archive=request.POST.get("archive") == "1")
    except unsubscribe.NotFound:
        raise Http404("No list mail from this sender.") from None
    record = outcome.unsubscription
    if record.archive_rule_id:
        try:
            jobs.start(request.user, Job.Kind.RULES, {"rule_ids": [record.archive_rule_id]}, rule_tasks.run_rules_job)
            messages.info(
                request,
                _("Archiving the mail from %(sender)s: a rule now does it for new mail too.") % {"sender": sender},
            )
        except jobs.JobAlreadyActive:
            messages.info(request, _("Rules are already running on your mail; the new archive rule runs on new mail."))
    if record.state == Unsubscription.State.DONE:
        messages.success(
            request,
            _("Unsubscribed from %(sender)s (%(method)s).") % {"sender": sender, "method": record.get_method_display()},
        )
    elif record.state == Unsubscription.State.MANUAL:
        return render(request, "newsletters/finish.html", {"record": record, "link": outcome.link})
    else:
        messages.error(
            request,
            _("Could not unsubscribe from %(sender)s: %(problem)s")
            % {"sender": sender, "problem": stored_text.render(record.detail)},
        )
    page = request.POST.get("page", "")
    return redirect(reverse("newsletters:list") + (f"?page={page}" if page.isdigit() else ""))
