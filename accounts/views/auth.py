"""Registration, the password step of login, logout, and the rate-limit response."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import authenticate, login, logout
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from django_ratelimit.decorators import ratelimit

from .. import keyring, lockout
from ..forms import LoginForm, RegistrationForm
from ..models import User
from .common import safe_next, setting_rate

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
        username, password = form.cleaned_data["username"], form.cleaned_data["password"]
        candidate = User.objects.filter(username=username).first()
        if candidate is not None and candidate.is_locked():
            form.add_error(None, _locked_message(candidate))
            status = 403
        else:
            user = authenticate(request, username=username, password=password)
            if user is None:
                if candidate is not None and lockout.register_failure(candidate):
                    form.add_error(None, _locked_message(candidate))
                    status = 403
                else:
                    form.add_error(None, "Wrong username or password.")
            else:
                try:
                    keyring.on_password_verified(user, password)
                except keyring.KeyringLocked:
                    messages.warning(
                        request, "Your stored mail cannot be opened with this password: use a recovery code."
                    )
                legacy = _legacy_first_login(user, password)
                login(request, user)
                if legacy is not None:
                    _legacy_after_login(request, user, queued=legacy)
                query = urlencode({"next": safe_next(request)})
                return redirect(f"{reverse('accounts:2fa-verify')}?{query}")
    return render(request, "accounts/login.html", {"form": form, "next": request.GET.get("next", "")}, status=status)


def _legacy_first_login(user: User, password: str) -> bool | None:
    """Users imported from the legacy application: their legacy key opens now (see mailhelper.legacy).

    None: not an imported user with data waiting; True: conversion queued; False: the legacy key did not open.
    """
    from mailhelper.legacy import conversion

    if conversion.pending_key(user) is None:
        return None
    if not conversion.on_password_verified(user, password):
        return False
    from mailhelper.tasks import convert_legacy_user

    user_id = user.pk
    transaction.on_commit(lambda: convert_legacy_user.delay(user_id))
    return True


def _legacy_after_login(request: HttpRequest, user: User, queued: bool) -> None:
    from mailhelper.legacy import ui

    request.session[ui.SESSION_FLAG] = True
    if queued:
        messages.info(request, "Your mail from the previous application is being converted; it appears in a moment.")
    else:
        messages.error(
            request,
            "Your mail from the previous application could not be unlocked with this password, so it stays "
            "waiting (nothing is lost). Ask your administrator; the reason is shown in the admin.",
        )
    if not user.key_wraps.filter(kind="recovery").exists():
        messages.warning(
            request,
            "Recovery codes of the previous application do not work here: make new ones in Settings "
            "(Security → Recovery codes).",
        )


def _locked_message(user: User) -> str:
    minutes = lockout.minutes_left(user)
    return (
        "This account is locked after too many failed attempts. "
        f"Try again in {minutes} minute{'s' if minutes != 1 else ''}, or reset your password with a recovery code."
    )


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated and request.user.strict_mode:
        keyring.drop_session_key(request.user)
    logout(request)
    messages.info(request, "You are logged out.")
    return redirect("accounts:login")
