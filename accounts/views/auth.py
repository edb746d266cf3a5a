"""Registration, the password step of login, logout, and the rate-limit response."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import login, logout
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from django_ratelimit.decorators import ratelimit

from .. import keyring
from ..forms import LoginForm, RegistrationForm
from ..login import check_password
from .common import audit_meta, safe_next, setting_rate

log = logging.getLogger(__name__)


def rate_limited(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """RATELIMIT_VIEW: a clear page with status 429 instead of django-ratelimit's 403."""
    response = render(request, "accounts/rate_limited.html", status=429)
    response["Retry-After"] = "60"
    return response


@ratelimit(key="ip", rate=setting_rate("MAILHELPER_RATE_REGISTER"), method="POST", block=True)
@require_http_methods(["GET", "POST"])
def register(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect(safe_next(request))
    form = RegistrationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        password = form.cleaned_data["password1"]
        with transaction.atomic():
            user = form.save()
            keyring.create_keyring(user, password)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        log.info("user %s registered", user.pk)
        return redirect("accounts:2fa-setup")
    return render(request, "accounts/register.html", {"form": form})


@ratelimit(key="ip", rate=setting_rate("MAILHELPER_RATE_LOGIN"), method="POST", block=True)
@ratelimit(key="post:username", rate=setting_rate("MAILHELPER_RATE_LOGIN_USER"), method="POST", block=True)
@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated and request.user.is_verified():
        return redirect(safe_next(request))
    form = LoginForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        outcome = check_password(form.cleaned_data["username"], form.cleaned_data["password"], **audit_meta(request))
        if outcome.ok:
            login(request, outcome.user)  # after the service: login() cycles the session key
            for notice in outcome.notices:
                request.session.update(notice.session)
                getattr(messages, notice.level)(request, notice.text)
            query = urlencode({"next": safe_next(request)})
            return redirect(f"{reverse('accounts:2fa-verify')}?{query}")
        form.add_error(None, outcome.error)
        status = 403 if outcome.locked else 200
    return render(request, "accounts/login.html", {"form": form, "next": request.GET.get("next", "")}, status=status)


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated and request.user.strict_mode:
        keyring.drop_session_key(request.user)
    logout(request)
    messages.info(request, "You are logged out.")
    return redirect("accounts:login")
