"""Priority matrix, corrections, "done", analysis settings, starting re-analysis jobs, trusted senders."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods, require_POST

from core import jobs
from core.ids import clean_id
from core.models import Job
from mail import queries
from mail.models import MailAccount

from .. import pipeline, tasks, translation
from .. import queries as inbox_queries
from ..forms import CorrectionForm, ProviderSettingsForm, TrustedSenderForm
from ..language import LANGUAGE_NAMES
from ..models import MessageAnalysis, ProviderSettings, TrustedSender
from ..provider_settings import config_for
from ..providers import ProviderError, get_provider

LEVELS = [(3, "high"), (2, "medium"), (1, "low")]
# Whole phrases, not "high" + " urgency": adjectives agree with their noun in German.
URGENCY_LABELS = {3: _("High urgency"), 2: _("Medium urgency"), 1: _("Low urgency")}
IMPORTANCE_LABELS = {3: _("High importance"), 2: _("Medium importance"), 1: _("Low importance")}


def dashboard(request: HttpRequest) -> HttpResponse:
    account = None
    if request.GET.get("account"):
        account = get_object_or_404(queries.accounts_of(request.user), pk=request.GET["account"])
    counts, pending = inbox_queries.matrix_and_pending(request.user, account)
    # What the account filter shows, and the user's own addresses for "awaiting reply" from the same rows.
    accounts = list(queries.accounts_of(request.user).only("id", "owner_id", "name", "email_address"))
    rows = [
        (
            urgency,
            URGENCY_LABELS[urgency],
            [(importance, counts.get((urgency, importance), 0)) for importance in (1, 2, 3)],
        )
        for urgency in (3, 2, 1)
    ]
    context = {
        "rows": rows,
        "importance_levels": [(level, IMPORTANCE_LABELS[level]) for level in (1, 2, 3)],
        "account": account,
        "accounts": accounts,
        "pending": pending,
        "total": sum(counts.values()),
        "tracking": inbox_queries.tracking_counts(request.user, {a.email_address.lower() for a in accounts}),
    }
    return render(request, "mail/dashboard.html", context)


def _analysis(request: HttpRequest, message_id) -> MessageAnalysis:
    return get_object_or_404(
        MessageAnalysis.objects.filter(owner=request.user).select_related("message"), message_id=message_id
    )


@require_POST
def correct(request: HttpRequest, message_id) -> HttpResponse:
    analysis = _analysis(request, message_id)
    form = CorrectionForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        if any(v not in (None, "") for v in data.values()):
            pipeline.correct(
                analysis,
                urgency=data["urgency"],
                importance=data["importance"],
                category=data["category"] or None,
                is_spam=data["spam"],
            )
            messages.success(request, gettext("Thanks: the correction is saved and your classifier learned from it."))
    else:
        messages.error(request, gettext("That correction could not be read."))
    return redirect("mail:message", message_id=analysis.message_id)


@require_POST
def mark_done(request: HttpRequest, message_id) -> HttpResponse:
    analysis = _analysis(request, message_id)
    undo = request.POST.get("undo") == "1"
    pipeline.mark_done(analysis, done=not undo)
    if request.headers.get("HX-Request"):
        return HttpResponse(status=204)
    done_text = gettext("Back in the matrix.") if undo else gettext("Marked done: cleared from the matrix.")
    messages.success(request, done_text)
    return redirect(request.POST.get("next") or reverse("mail:message", args=[analysis.message_id]))


@require_http_methods(["GET", "POST"])
def analysis_settings(request: HttpRequest) -> HttpResponse:
    row = ProviderSettings.objects.filter(owner=request.user).first() or ProviderSettings(owner=request.user)
    form = ProviderSettingsForm(request.POST or None, instance=row)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, gettext("Analysis settings saved."))
        return redirect("mail:analysis-settings")
    from ..models import LearnedClassifier

    learned = LearnedClassifier.objects.filter(owner=request.user).first()
    context = {
        "form": form,
        "learned_corrections": learned.corrections if learned else 0,
        "jobs": Job.objects.filter(owner=request.user, kind=Job.Kind.REANALYSE)[:5],
        "accounts": queries.accounts_of(request.user),
        "provider_saved": row.pk is not None,
        "translation_settings": translation.settings_for(request.user.pk),
        "languages": sorted(((str(name), code) for code, name in LANGUAGE_NAMES.items())),
    }
    return render(request, "mail/analysis_settings.html", context)


@require_POST
def provider_test(request: HttpRequest) -> HttpResponse:
    row = get_object_or_404(ProviderSettings, owner=request.user)
    try:
        result, ok = get_provider(config_for(row)).check(), True
    except ProviderError as exc:
        result, ok = str(exc), False
    return render(request, "mail/_provider_report.html", {"ok": ok, "message": result})


@require_POST
def reset_learning(request: HttpRequest) -> HttpResponse:
    pipeline.reset_learning(request.user.pk)
    messages.success(
        request, gettext("Your learned corrections were forgotten; the built-in analyser alone scores new mail.")
    )
    return redirect("mail:analysis-settings")


@require_POST
def start_reanalyse(request: HttpRequest) -> HttpResponse:
    account_id = request.POST.get("account") or None
    if account_id:
        get_object_or_404(queries.accounts_of(request.user), pk=clean_id(MailAccount, account_id))
    params = {"account_id": account_id, "since": request.POST.get("since")}
    try:
        job = jobs.start(request.user, Job.Kind.REANALYSE, params, tasks.reanalyse)
    except jobs.JobAlreadyActive as exc:
        messages.info(request, gettext("A re-analysis is already running: showing its progress."))
        job = exc.job
    return redirect("jobs:detail", job_id=job.pk)


@require_http_methods(["GET", "POST"])
def trusted_senders(request: HttpRequest) -> HttpResponse:
    form = TrustedSenderForm(request.POST or None, owner=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, gettext("Trusted sender added: their mail scores higher from now on."))
        return redirect("mail:trusted-senders")
    rows = TrustedSender.objects.filter(owner=request.user).select_related("account")
    return render(request, "mail/trusted_senders.html", {"form": form, "rows": rows})


@require_POST
def trusted_sender_delete(request: HttpRequest, pk: int) -> HttpResponse:
    row = get_object_or_404(TrustedSender.objects.filter(owner=request.user), pk=pk)
    row.delete()
    messages.success(request, gettext("Removed %(pattern)s.") % {"pattern": row.pattern})
    return redirect("mail:trusted-senders")
