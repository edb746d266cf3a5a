"""The user's own data: download it as a zip, or delete the account with everything in it."""

from __future__ import annotations

import tempfile

from django import forms
from django.contrib import messages
from django.contrib.auth import logout
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from ..data_export import ExportLocked, export_user_data
from ..deletion import delete_user
from ..forms import ReauthForm


class DeleteAccountForm(ReauthForm):
    """Password plus the typed username: two deliberate acts for something that cannot be undone."""

    confirm_username = forms.CharField(label="Type your username to confirm", strip=True)

    def clean_confirm_username(self) -> str:
        value = self.cleaned_data["confirm_username"]
        if value != self.user.username:
            raise forms.ValidationError("This is not your username.")
        return value


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
    out.seek(0)
    filename = f"mailhelper-{request.user.username}-{timezone.now():%Y%m%d}.zip"
    return FileResponse(out, as_attachment=True, filename=filename, content_type="application/zip")


@require_http_methods(["GET", "POST"])
def delete_account(request: HttpRequest) -> HttpResponse:
    user = request.user
    form = DeleteAccountForm(user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        delete_user(user)
        logout(request)
        messages.success(request, "Your account and all its data were deleted.")
        return redirect("accounts:login")
    return render(request, "accounts/delete_account.html", {"form": form})
