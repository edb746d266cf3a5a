"""Every page needs a login with a second factor unless it is listed as public here."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone, translation

from . import keyring, preferences

# URL names reachable without logging in.
PUBLIC_URL_NAMES = {
    "accounts:login",
    "accounts:register",
    "accounts:recover",
    "healthz",
    "metrics",
}
# URL names reachable after the password step, before the second factor.
HALF_LOGGED_IN_URL_NAMES = {
    "accounts:2fa-setup",
    "accounts:2fa-verify",
    "accounts:2fa-recovery",
    "accounts:logout",
}


def _url_name(request: HttpRequest) -> str | None:
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return None
    return match.view_name


class UserPreferencesMiddleware:
    """The logged-in user's language and time zone for this request, where they chose them.

    After LocaleMiddleware (which took the browser's language) and AuthenticationMiddleware. A time
    zone the server no longer knows (tzdata updated) falls back to the server's own.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            if user.language:
                translation.activate(user.language)
                request.LANGUAGE_CODE = user.language
            zone = preferences.zone(user.time_zone)
            if zone is not None:
                timezone.activate(zone)
            else:
                timezone.deactivate()
        return self.get_response(request)


class Require2FAMiddleware:
    """Secure by default: new pages of later apps are protected without a decorator."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.static_prefix = "/" + settings.STATIC_URL.lstrip("/")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(self.static_prefix):
            return self.get_response(request)
        user = request.user
        if user.is_authenticated and user.is_verified():
            # Every page is open to a user past both steps: no need to resolve the URL's name (#15).
            return self.get_response(request)
        name = _url_name(request)
        if name in PUBLIC_URL_NAMES:
            return self.get_response(request)
        if not user.is_authenticated:
            query = urlencode({"next": request.get_full_path()})
            return HttpResponseRedirect(f"{reverse('accounts:login')}?{query}")
        if not user.is_verified() and name not in HALF_LOGGED_IN_URL_NAMES:
            from django_otp.plugins.otp_totp.models import TOTPDevice

            has_device = TOTPDevice.objects.filter(user=user, confirmed=True).exists()
            target = "accounts:2fa-verify" if has_device else "accounts:2fa-setup"
            query = urlencode({"next": request.get_full_path()})
            return HttpResponseRedirect(f"{reverse(target)}?{query}")
        return self.get_response(request)


class StrictModeKeyMiddleware:
    """Slides the expiry of a strict-mode user's cached data key along with the session."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.strict_mode and user.is_verified():
            keyring.touch_session_key(user)
        return self.get_response(request)
