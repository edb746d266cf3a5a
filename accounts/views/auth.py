"""Registration, the password step of login, logout, and the rate-limit response."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import login, logout
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST
from django_ratelimit.decorators import ratelimit

from .. import invitations, keyring
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
    """Sign-up as MAILHELPER_REGISTRATION allows (accounts/invitations.py).

    open: the form. closed: a page saying the administrator creates accounts (a POST is refused).
    invite: `?invite=<token>` shows the form for the invited address; `?address=1` the form for an
    address-only invitation; anything else a page saying sign-up is by invitation (no form).
    """
    if request.user.is_authenticated:
        return redirect(safe_next(request))
    refused = 403 if request.method == "POST" else 200
    mode = invitations.mode()
    if mode == invitations.CLOSED:
        return render(request, "accounts/register_closed.html", status=refused)
    form_options = {}
    if mode == invitations.INVITE:
        token = request.GET.get("invite", "")
        if token:
            invitation = invitations.by_token(token)
            if invitation is None or invitation.state != "valid":
                state = invitation.state if invitation else "unknown"
                return render(request, "accounts/register_invite_only.html", {"invalid": state}, status=refused)
            form_options["invitation"] = invitation
        elif request.GET.get("address"):
            form_options["invited_address"] = True
        else:
            return render(request, "accounts/register_invite_only.html", status=refused)
    form = RegistrationForm(request.POST or None, **form_options)
    if request.method == "POST" and form.is_valid():
        password = form.cleaned_data["password1"]

        def make_user():
            user = form.save()
            keyring.create_keyring(user, password)
            return user

        try:
            with transaction.atomic():
                if form.invitation is None:
                    user = make_user()
                else:
                    user = invitations.redeem(form.invitation, make_user, audit_meta(request))
        except invitations.InvitationUsed:
            form.add_error(None, _("This invitation has just been used or has expired. Ask for a new one."))
        except IntegrityError:
            # The form checked the name and address, but a registration racing this one took them since.
            form.add_error(None, _("This user name or email address was taken a moment ago. Choose another."))
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            log.info("user %s registered", user.pk)
            return redirect("accounts:2fa-setup")
    return render(request, "accounts/register.html", {"form": form, "mode": mode})


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
        form.add_error(None, str(outcome.error))
        status = 403 if outcome.locked else 200
    context = {"form": form, "next": request.GET.get("next", ""), "registration": invitations.mode()}
    return render(request, "accounts/login.html", context, status=status)


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated and request.user.strict_mode:
        keyring.drop_session_key(request.user)
    logout(request)
    messages.info(request, _("You are logged out."))
    return redirect("accounts:login")
