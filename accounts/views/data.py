"""Deleting the account with everything in it (the download of one's data is mailhelper.views.export_data)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.http import require_http_methods

from ..deletion import delete_user
from ..forms import ReauthForm


class DeleteAccountForm(ReauthForm):
    """Password plus the typed username: two deliberate acts for something that cannot be undone."""

    confirm_username = forms.CharField(label=gettext_lazy("Type your username to confirm"), strip=True)

    def clean_confirm_username(self) -> str:
        value = self.cleaned_data["confirm_username"]
        if value != self.user.username:
            raise forms.ValidationError(gettext("This is not your username."))
        return value


@require_http_methods(["GET", "POST"])
def delete_account(request: HttpRequest) -> HttpResponse:
    user = request.user
    form = DeleteAccountForm(user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        delete_user(user)
        logout(request)
        messages.success(request, gettext("Your account and all its data were deleted."))
        return redirect("accounts:login")
    return render(request, "accounts/delete_account.html", {"form": form})
