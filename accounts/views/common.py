"""Small helpers shared by the account views (audit_meta also by the mail and data views)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme


def safe_next(request: HttpRequest, default: str | None = None) -> str:
    """The ?next= target if it stays on this site, else the default page."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default or reverse(settings.LOGIN_REDIRECT_URL)


def setting_rate(setting_name: str):
    """A django-ratelimit rate read at request time, so operators and tests can change it."""

    def rate(_group, _request) -> str:
        return getattr(settings, setting_name)

    return rate


def audit_meta(request: HttpRequest) -> dict:
    """The client's IP and user agent for accounts.audit.record, without handing it the request.

    The IP is read like django-ratelimit reads it (RATELIMIT_IP_META_KEY if set, e.g. HTTP_X_REAL_IP
    behind nginx, else REMOTE_ADDR), so the log shows the address the rate limits count.
    """
    key = getattr(settings, "RATELIMIT_IP_META_KEY", None) or "REMOTE_ADDR"
    return {"ip": request.META.get(key), "user_agent": request.META.get("HTTP_USER_AGENT", "")}
