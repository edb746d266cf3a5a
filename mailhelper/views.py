"""Project views: home page, health, metrics, and the download of a user's data (it reads every app)."""

from __future__ import annotations

import hmac
import tempfile

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts import audit
from accounts.views.common import audit_meta

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
        messages.error(request, "Your data key is not available right now: log in again and retry.")
        return redirect("accounts:settings")
    audit.record(request.user, audit.Kind.DATA_EXPORTED, audit_meta(request))
    out.seek(0)
    filename = f"mailhelper-{request.user.username}-{timezone.now():%Y%m%d}.zip"
    return FileResponse(out, as_attachment=True, filename=filename, content_type="application/zip")
