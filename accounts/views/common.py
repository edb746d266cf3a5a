"""Small helpers shared by the account views (audit_meta also by the mail and data views)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.module_loading import import_string


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


def client_ip(request: HttpRequest) -> str | None:
    """The client's address as django-ratelimit finds it, so the log shows the address the limits count.

    RATELIMIT_IP_META_KEY is read the same three ways (unset: REMOTE_ADDR; a callable or the dotted path
    of one; else a request.META key such as HTTP_X_REAL_IP behind nginx), without the limiter's IPv6
    /64 masking. A missing header gives None instead of the limiter's ImproperlyConfigured: writing
    the log must not break the page.
    """
    source = getattr(settings, "RATELIMIT_IP_META_KEY", None)
    if not source:
        return request.META.get("REMOTE_ADDR")
    if isinstance(source, str) and "." in source:
        source = import_string(source)
    if callable(source):
        return source(request)
    return request.META.get(source)


def audit_meta(request: HttpRequest) -> dict:
    """The client's IP and user agent for accounts.audit.record, without handing it the request."""
    return {"ip": client_ip(request), "user_agent": request.META.get("HTTP_USER_AGENT", "")}
