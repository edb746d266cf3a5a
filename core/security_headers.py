"""Content-Security-Policy and Permissions-Policy on every response.

Scripts come from this server only (`script-src 'self'`: no inline script, no handler attribute, no
eval), so markup that slipped through the mail sanitiser cannot run. Pages declare behaviour with
data attributes (static/js/forms.js). Styles come from this server too; inline `style=` attributes
stay allowed (`style-src-attr`) because tag colours and sanitised mail HTML use them, and a style
attribute cannot run code. Images: this server and data: URLs, plus remote images on the one
response where the user asked to see a message's remote images (`allow_remote_images`).
Cross-Origin-Opener-Policy and the other classic headers come from Django's SecurityMiddleware.
"""

from __future__ import annotations

from collections.abc import Callable

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


def policy(remote_images: bool = False) -> str:
    directives = dict(_POLICY)
    if remote_images:
        directives["img-src"] = "'self' data: https: http:"
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def allow_remote_images(response: HttpResponse) -> HttpResponse:
    """This response shows a message's remote images because its user asked for them."""
    setattr(response, _REMOTE_IMAGES, True)
    return response


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", policy(getattr(response, _REMOTE_IMAGES, False)))
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response
