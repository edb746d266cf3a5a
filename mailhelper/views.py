"""Project views: home page, health, metrics, the operator page and the download of a user's data
(these read every app)."""

from __future__ import annotations

import hmac
import tempfile

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts import audit
from accounts.views.common import audit_meta

from . import operations
from .data_export import ExportLocked, export_user_data
from .health import run_checks
from .metrics import render_metrics


def home(request: HttpRequest) -> HttpResponse:
    """The mail list once there is an account; until then, the next step to take."""
    from mail.queries import accounts_of

    if accounts_of(request.user).exists():
        return redirect("mail:dashboard")
    return render(request, "home.html")


def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's login page: ours instead (the admin's own would skip the second factor).

    A user past both steps who is not staff is refused here: our login would send them straight
    back to the admin, which sends them here again, a redirect loop the browser gives up on.
    """
    user = request.user
    if user.is_authenticated and user.is_verified() and not user.is_staff:
        raise PermissionDenied("The admin is for operators.")
    query = request.META.get("QUERY_STRING", "")
    return redirect(reverse("accounts:login") + (f"?{query}" if query else ""))


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    ok, checks = run_checks()
    return JsonResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.MAILHELPER_METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return HttpResponse("metrics token required\n", status=401, content_type="text/plain")
    return HttpResponse(render_metrics(), content_type="text/plain; version=0.0.4; charset=utf-8")


OPERATIONS_PAGE_SIZE = 50


@never_cache
@require_GET
def operations_page(request: HttpRequest) -> HttpResponse:
    """Every account's health for operators. A user who is not staff gets a 404, as for any page
    that is not theirs: the page's existence is nothing a user needs to learn."""
    if not request.user.is_staff:
        raise Http404
    sort = request.GET.get("sort", operations.DEFAULT_SORT)
    if sort not in operations.SORTS:
        sort = operations.DEFAULT_SORT
    page = Paginator(operations.accounts(sort), OPERATIONS_PAGE_SIZE).get_page(request.GET.get("page"))
    now = timezone.now()
    rows = [
        {
            "account": account,
            "lag": operations.lag(account, now),
            "error_kind": operations.error_kind_label(account.last_error_kind),
        }
        for account in page.object_list
    ]
    backlog = operations.analysis_backlog()
    context = {
        "page": page,
        "rows": rows,
        "sort": sort,
        "sorts": [(key, label) for key, (label, _) in operations.SORTS.items()],
        "alerts": operations.alerts(now),
        "queues": operations.queue_lengths(),
        "workers": operations.workers(),
        "backlog": backlog,
        "backlog_age": backlog.age(now),
        "failed": operations.failed_jobs(now),
        "beat_last_tick": operations.beat_last_tick(),
    }
    return render(request, "mailhelper/operations.html", context)


@require_POST
def export_data(request: HttpRequest) -> HttpResponse:
    """Build the zip synchronously into a temporary file and stream it.

    Synchronous on purpose for now: simple and fine for ordinary mailboxes; a very large mailbox
    ties up a web worker for the duration (a Job-based background export would be the next step).
    """
    out = tempfile.TemporaryFile()  # noqa: SIM115 - FileResponse closes it after streaming
    try:
        export_user_data(request.user, out)
    except ExportLocked:
        out.close()
        messages.error(request, gettext("Your data key is not available right now: log in again and retry."))
        return redirect("accounts:settings")
    audit.record(request.user, audit.Kind.DATA_EXPORTED, audit_meta(request))
    out.seek(0)
    filename = f"mailhelper-{request.user.username}-{timezone.now():%Y%m%d}.zip"
    return FileResponse(out, as_attachment=True, filename=filename, content_type="application/zip")
