"""Mail account pages: list, add, edit, delete, connection test and folder choice, sync now."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from accounts import audit
from accounts.views.common import audit_meta
from core.security_headers import allow_form_targets

from .. import backfill, imap, oauth, queries, sync, tasks
from ..forms import FolderSelectionForm, MailAccountForm
from ..models import MailAccount, SyncRun


def _account(request: HttpRequest, account_id) -> MailAccount:
    return get_object_or_404(queries.accounts_of(request.user), pk=account_id)


def account_list(request: HttpRequest) -> HttpResponse:
    accounts = queries.accounts_of(request.user).select_related("periodic_task")
    latest = {}
    for run in queries.sync_runs_of(request.user).order_by("account_id", "-queued_at").distinct("account_id"):
        latest[run.account_id] = run
    rows = [(account, latest.get(account.pk)) for account in accounts]
    response = render(request, "mail/account_list.html", {"rows": rows})
    return allow_form_targets(response, [p.authorize_url for p in oauth.providers()])  # "Sign in again"


@require_http_methods(["GET", "POST"])
def account_add(request: HttpRequest) -> HttpResponse:
    form = MailAccountForm(request.POST or None, owner=request.user)
    if request.method == "POST" and form.is_valid():
        account = form.save()
        audit.record(request.user, audit.Kind.MAIL_ACCOUNT_ADDED, audit_meta(request), account=account.name)
        if account.is_pop3:  # no folders to choose: the connection test is shown here instead
            _report_connection(request, account, _("Account “%(name)s” added.") % {"name": account.name})
            return redirect("mail:accounts")
        messages.success(request, _("Account “%(name)s” added. Choose the folders to sync.") % {"name": account.name})
        return redirect("mail:account-folders", account_id=account.pk)
    providers = oauth.providers()
    context = {"form": form, "adding": True, "oauth_providers": providers}
    return allow_form_targets(render(request, "mail/account_form.html", context), [p.authorize_url for p in providers])


@require_http_methods(["GET", "POST"])
def account_edit(request: HttpRequest, account_id) -> HttpResponse:
    account = _account(request, account_id)
    form = MailAccountForm(request.POST or None, instance=account, owner=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        audit.record(request.user, audit.Kind.MAIL_ACCOUNT_CHANGED, audit_meta(request), account=account.name)
        if account.is_pop3:
            _report_connection(request, account, _("Account saved."))
        else:
            messages.success(request, _("Account saved."))
        return redirect("mail:accounts")
    context = {"form": form, "account": account, "adding": False, "backfill": backfill.progress(account)}
    return render(request, "mail/account_form.html", context)


def account_backfill(request: HttpRequest, account_id) -> HttpResponse:
    """htmx: the status line of the background fetch of older mail, polled while it runs."""
    account = _account(request, account_id)
    context = {"account": account, "backfill": backfill.progress(account)}
    return render(request, "mail/_backfill_status.html", context)


@require_http_methods(["GET", "POST"])
def account_delete(request: HttpRequest, account_id) -> HttpResponse:
    account = _account(request, account_id)
    if request.method == "POST":
        name = account.name
        account.delete()
        audit.record(request.user, audit.Kind.MAIL_ACCOUNT_DELETED, audit_meta(request), account=name)
        messages.success(
            request, _("Account “%(name)s” and its stored mail were removed here (not on the server).") % {"name": name}
        )
        return redirect("mail:accounts")
    count = account.messages.count()
    revoking = oauth.revoking_provider(account)  # mail/oauth_receivers.py withdraws the consent there
    context = {"account": account, "message_count": count, "revoking": revoking}
    return render(request, "mail/account_confirm_delete.html", context)


def _report_connection(request: HttpRequest, account: MailAccount, saved: str) -> None:
    """After saving a POP3 account: its connection test, as the IMAP folder page shows one."""
    report = sync.check_connection(account)
    if report.ok:
        messages.success(request, _("%(saved)s %(report)s") % {"saved": saved, "report": report.message})
    else:
        messages.error(
            request,
            _("%(saved)s Connection failed (%(kind)s): %(report)s")
            % {"saved": saved, "kind": report.kind, "report": report.message},
        )


@require_POST
def account_test(request: HttpRequest, account_id) -> HttpResponse:
    """htmx: test the stored settings and show the result in place."""
    account = _account(request, account_id)
    return render(request, "mail/_connection_report.html", {"report": sync.check_connection(account)})


@require_http_methods(["GET", "POST"])
def account_folders(request: HttpRequest, account_id) -> HttpResponse:
    account = _account(request, account_id)
    if account.is_pop3:
        messages.info(
            request,
            _("No folders to choose for “%(name)s”: %(reason)s")
            % {"name": account.name, "reason": account.imap_only_reason},
        )
        return redirect("mail:accounts")
    report = None
    if request.method == "GET" or not account.folders.exists():
        report = imap.check_connection(sync.server_config(account))
        if report.ok:
            sync.refresh_folders(account, report.folders)
    folders = list(account.folders.filter(exists_on_server=True).order_by("name"))
    counts = {f.name: f for f in report.folders} if report and report.ok else {}
    choices = [(f.name, f.display_name) for f in folders]
    form = FolderSelectionForm(
        request.POST or None, choices=choices, initial={"folders": [f.name for f in folders if f.sync_enabled]}
    )
    if request.method == "POST" and form.is_valid():
        chosen = set(form.cleaned_data["folders"])
        with transaction.atomic():
            for folder in folders:
                folder.sync_enabled = folder.name in chosen
                folder.save(update_fields=["sync_enabled"])
        messages.success(
            request,
            # Both English forms alike, as the page always said it; the German ones differ.
            ngettext("%(count)s folder(s) will be synced.", "%(count)s folder(s) will be synced.", len(chosen))
            % {"count": len(chosen)},
        )
        return redirect("mail:accounts")
    rows = [(f, counts.get(f.name)) for f in folders]
    return render(
        request, "mail/account_folders.html", {"account": account, "form": form, "rows": rows, "report": report}
    )


@require_POST
def sync_now(request: HttpRequest, account_id) -> HttpResponse:
    account = _account(request, account_id)
    run, created = sync.queue_run(account, SyncRun.Trigger.MANUAL)
    if created:
        transaction.on_commit(
            lambda: tasks.sync_account.delay(account_id=str(account.pk), run_id=run.pk, trigger=run.trigger)
        )
    else:
        messages.info(request, _("A sync of this account is already running: showing its progress."))
    return redirect("mail:sync-run", run_id=run.pk)


def sync_run(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(queries.sync_runs_of(request.user).select_related("account"), pk=run_id)
    template = "mail/_sync_progress.html" if request.headers.get("HX-Request") else "mail/sync_run.html"
    return render(request, template, {"run": run})
