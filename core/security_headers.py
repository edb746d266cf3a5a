"""Content-Security-Policy and Permissions-Policy on every response.

Scripts come from this server only (`script-src 'self'`: no inline script, no handler attribute, no
eval), so markup that slipped through the mail sanitiser cannot run. Pages declare behaviour with
data attributes (static/js/forms.js). Styles come from this server too; inline `style=` attributes
stay allowed (`style-src-attr`) because tag colours and sanitised mail HTML use them, and a style
attribute cannot run code. Images: this server and data: URLs, plus remote images on the one
response where the user asked to see a message's remote images (`allow_remote_images`). Forms post
to this server only, except on a page whose form starts a sign-in at a mail provider: the browser
enforces form-action on the redirect too, so that page names the provider (`allow_form_targets`).
Cross-Origin-Opener-Policy and the other classic headers come from Django's SecurityMiddleware.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from django.http import HttpRequest, HttpResponse

_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "style-src-attr": "'unsafe-inline'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
    "object-src": "'none'",
}
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()"
_REMOTE_IMAGES = "_mailhelper_remote_images"
_FORM_TARGETS = "_mailhelper_form_targets"


def policy(remote_images: bool = False, form_targets: tuple[str, ...] = ()) -> str:
    directives = dict(_POLICY)
    if remote_images:
        directives["img-src"] = "'self' data: https: http:"
    if form_targets:
        directives["form-action"] = " ".join(["'self'", *form_targets])
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def allow_form_targets(response: HttpResponse, urls: list[str]) -> HttpResponse:
    """This page's forms may lead to these URLs' origins (a provider's sign-in page, via our redirect)."""
    origins = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme in ("https", "http") and parts.netloc and f"{parts.scheme}://{parts.netloc}" not in origins:
            origins.append(f"{parts.scheme}://{parts.netloc}")
    setattr(response, _FORM_TARGETS, tuple(origins))
    return response


def allow_remote_images(response: HttpResponse) -> HttpResponse:
    """This response shows a message's remote images because its user asked for them."""
    setattr(response, _REMOTE_IMAGES, True)
    return response


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        csp = policy(getattr(response, _REMOTE_IMAGES, False), getattr(response, _FORM_TARGETS, ()))
        response.headers.setdefault("Content-Security-Policy", csp)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response
