"""Security settings: the user's audit log, password change, password reset by recovery code, codes, strict mode."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_ratelimit.decorators import ratelimit

from .. import audit, keyring, preferences
from ..forms import PasswordChangeForm, PreferencesForm, ReauthForm, RecoverPasswordForm, StrictModeForm
from ..models import RecoveryDevice, User
from .common import audit_meta, setting_rate
from .twofactor import render_recovery_codes

AUDIT_PAGE_SIZE = 20


def settings_page(request: HttpRequest) -> HttpResponse:
    user = request.user
    device = RecoveryDevice.objects.filter(user=user).first()
    events = Paginator(audit.events_of(user), AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "totp": TOTPDevice.objects.filter(user=user, confirmed=True).first(),
        "recovery_left": device.remaining() if device else 0,
        "locked": keyring.is_locked(user.pk),
        "events": events,
        "event_rows": [(event, audit.describe(event)) for event in events],
        "audit_days": settings.MAILHELPER_AUDIT_DAYS,
    }
    return render(request, "accounts/settings.html", context)


@require_http_methods(["GET", "POST"])
def preferences_page(request: HttpRequest) -> HttpResponse:
    user = request.user
    form = PreferencesForm(request.POST or None, initial={"language": user.language, "time_zone": user.time_zone})
    if request.method == "POST" and form.is_valid():
        preferences.save(user, language=form.cleaned_data["language"], time_zone=form.cleaned_data["time_zone"])
        if user.language:
            translation.activate(user.language)  # the confirmation already in the chosen language
        messages.success(request, _("Language and time zone saved."))
        return redirect("accounts:preferences")
    return render(request, "accounts/preferences.html", {"form": form})


@require_http_methods(["GET", "POST"])
def password_change(request: HttpRequest) -> HttpResponse:
    form = PasswordChangeForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        keyring.change_password(request.user, form.cleaned_data["old_password"], form.cleaned_data["new_password1"])
        update_session_auth_hash(request, request.user)
        audit.record(request.user, audit.Kind.PASSWORD_CHANGED, audit_meta(request))
        messages.success(request, _("Your password was changed. Your mail stays readable."))
        return redirect("accounts:settings")
    return render(request, "accounts/password_change.html", {"form": form})


@ratelimit(key="ip", rate=setting_rate("MAILHELPER_RATE_LOGIN"), method="POST", block=True)
@ratelimit(key="post:username", rate=setting_rate("MAILHELPER_RATE_LOGIN_USER"), method="POST", block=True)
@require_http_methods(["GET", "POST"])
def recover(request: HttpRequest) -> HttpResponse:
    """Forgotten password: a recovery code proves ownership and unwraps the data key."""
    form = RecoverPasswordForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = User.objects.filter(username=form.cleaned_data["username"]).first()
        if user is not None and keyring.reset_password_with_recovery_code(
            user, form.cleaned_data["code"], form.cleaned_data["new_password1"]
        ):
            audit.record(user, audit.Kind.PASSWORD_RESET, audit_meta(request))
            messages.success(request, _("Your password was reset and the recovery code used up. Log in now."))
            return redirect("accounts:login")
        if user is not None:
            audit.record(user, audit.Kind.LOGIN_FAILED, audit_meta(request), step="password_reset")
        form.add_error(None, _("That username and recovery code do not match an unused code."))
    return render(request, "accounts/recover.html", {"form": form})


@require_http_methods(["GET", "POST"])
def regenerate_codes(request: HttpRequest) -> HttpResponse:
    form = ReauthForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        dek = keyring.unwrap_with_password(request.user, form.cleaned_data["password"])
        codes = keyring.issue_recovery_codes(request.user, dek)
        audit.record(request.user, audit.Kind.RECOVERY_CODES_REGENERATED, audit_meta(request))
        messages.success(request, _("New recovery codes made; the old ones no longer work."))
        return render_recovery_codes(request, codes, "")
    return render(request, "accounts/regenerate_codes.html", {"form": form})


@require_http_methods(["GET", "POST"])
def strict_mode(request: HttpRequest) -> HttpResponse:
    user = request.user
    form = StrictModeForm(user, request.POST or None, initial={"strict_mode": user.strict_mode})
    if request.method == "POST" and form.is_valid():
        enabled = form.cleaned_data["strict_mode"]
        if enabled != user.strict_mode:
            keyring.set_strict_mode(user, enabled, form.cleaned_data["password"])
            kind = audit.Kind.STRICT_MODE_ON if enabled else audit.Kind.STRICT_MODE_OFF
            audit.record(user, kind, audit_meta(request))
            messages.success(
                request,
                _("Strict mode is on: mail syncs only while you are logged in.")
                if enabled
                else _("Strict mode is off: mail syncs in the background."),
            )
        return redirect("accounts:settings")
    return render(request, "accounts/strict_mode.html", {"form": form})
