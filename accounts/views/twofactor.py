"""Second factor: TOTP enrolment, TOTP verification and login with a recovery code."""

from __future__ import annotations

import base64
from urllib.parse import quote

import segno
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_ratelimit.decorators import ratelimit

from .. import audit, keyring, lockout
from ..forms import RecoveryCodeForm, TokenForm
from ..models import RecoveryDevice
from .common import audit_meta, safe_next, setting_rate


def _code_error(device, token: str, wrong_message: str) -> str | None:
    """None if the device accepts the token, else what to tell the user (throttled or wrong)."""
    allowed, _details = device.verify_is_allowed()
    if device.verify_token(token):
        return None
    if not allowed:
        return _("Too many wrong codes in a row: wait a few seconds, then enter the newest code.")
    return wrong_message


def _confirmed_totp(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def render_recovery_codes(request: HttpRequest, codes: list[str], next_url: str) -> HttpResponse:
    """Shown once, never stored in plain: the download is a data: URL built into this page."""
    heading = _("Mailhelper recovery codes for %(username)s") % {"username": request.user.get_username()}
    text = "{}\n{}\n\n{}\n".format(heading, _("Each code works once."), "\n".join(codes))
    return render(
        request,
        "accounts/recovery_codes.html",
        {"codes": codes, "download_href": "data:text/plain;charset=utf-8," + quote(text), "next": next_url},
    )


@require_http_methods(["GET", "POST"])
def setup(request: HttpRequest) -> HttpResponse:
    """Mandatory TOTP enrolment after registration (or for users created by an operator)."""
    user = request.user
    if _confirmed_totp(user) is not None:
        if user.is_verified():
            messages.info(request, _("Two-factor authentication is already set up."))
            return redirect("accounts:settings")
        return redirect("accounts:2fa-verify")
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        error = _code_error(
            device,
            form.cleaned_data["token"],
            _("That code is not valid. Check the time on your phone and try the newest code."),
        )
        if error is None:
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            otp_login(request, device)
            codes = keyring.issue_recovery_codes(user, keyring.dek_for(user.pk))
            audit.record(user, audit.Kind.TWO_FACTOR_ENABLED, audit_meta(request))
            messages.success(request, _("Two-factor authentication is on."))
            return render_recovery_codes(request, codes, safe_next(request))
        form.add_error("token", error)
    secret = base64.b32encode(device.bin_key).decode("ascii")
    context = {
        "form": form,
        "qr_svg": segno.make(device.config_url, error="m").svg_inline(scale=5, dark="#111", light="#fff"),
        "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        "next": request.GET.get("next", ""),
    }
    return render(request, "accounts/2fa_setup.html", context)


#: The login step a form field belongs to, as the audit log names it.
_STEP_OF_FIELD = {"token": "totp", "code": "recovery_code"}


def _fail_second_factor(request: HttpRequest, form, field: str, message: str) -> HttpResponse | None:
    """Count a failed code towards lockout and log it; once locked, end the half-logged-in session."""
    user = request.user
    step = _STEP_OF_FIELD[field]
    if lockout.register_failure(user):
        audit.record(user, audit.Kind.LOCKED_OUT, audit_meta(request), step=step)
        logout(request)
        minutes = lockout.minutes_left(user)
        messages.error(
            request,
            ngettext(
                "This account is locked after too many failed attempts. Try again in %(minutes)s minute.",
                "This account is locked after too many failed attempts. Try again in %(minutes)s minutes.",
                minutes,
            )
            % {"minutes": minutes},
        )
        return redirect("accounts:login")
    audit.record(user, audit.Kind.LOGIN_FAILED, audit_meta(request), step=step)
    form.add_error(field, message)
    return None


@ratelimit(key="user_or_ip", rate=setting_rate("MAILHELPER_RATE_LOGIN_USER"), method="POST", block=True)
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    user = request.user
    if user.is_verified():
        return redirect(safe_next(request))
    device = _confirmed_totp(user)
    if device is None:
        return redirect(f"{reverse('accounts:2fa-setup')}?next={quote(safe_next(request))}")
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        error = _code_error(device, form.cleaned_data["token"], _("That code is not valid."))
        if error is None:
            otp_login(request, device)
            lockout.clear_failures(user)
            audit.record(user, audit.Kind.LOGIN, audit_meta(request))
            return redirect(safe_next(request))
        failed = _fail_second_factor(request, form, "token", error)
        if failed is not None:
            return failed
    return render(request, "accounts/2fa_verify.html", {"form": form, "next": request.GET.get("next", "")})


@ratelimit(key="user_or_ip", rate=setting_rate("MAILHELPER_RATE_LOGIN_USER"), method="POST", block=True)
@require_http_methods(["GET", "POST"])
def recovery_login(request: HttpRequest) -> HttpResponse:
    """Second factor by recovery code, for a lost phone. Each code works once."""
    user = request.user
    if user.is_verified():
        return redirect(safe_next(request))
    form = RecoveryCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = RecoveryDevice.objects.filter(user=user).first()
        if device is not None and device.verify_token(form.cleaned_data["code"]):
            otp_login(request, device)
            lockout.clear_failures(user)
            left = device.remaining()
            audit.record(user, audit.Kind.RECOVERY_LOGIN, audit_meta(request), codes_left=left)
            messages.warning(
                request,
                ngettext(
                    "You used a recovery code; %(left)s left. "
                    "Set up your authenticator again or make new codes in settings.",
                    "You used a recovery code; %(left)s left. "
                    "Set up your authenticator again or make new codes in settings.",
                    left,
                )
                % {"left": left},
            )
            return redirect(safe_next(request))
        failed = _fail_second_factor(request, form, "code", _("That recovery code is not valid or was already used."))
        if failed is not None:
            return failed
    return render(request, "accounts/2fa_recovery.html", {"form": form, "next": request.GET.get("next", "")})
