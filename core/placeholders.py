"""Rows that exist but whose content has not arrived yet, as pages should show them.

Some data lands before it can be read: mail imported from the legacy application stays legacy
ciphertext until its owner's first login. A page of a lower floor (the mail list) cannot ask the app
that knows (legacy, near the top) without importing upwards, so that app registers a provider here
and pages ask `waiting()`. Providers must cost nothing for users without such rows (the legacy one
checks a session flag first), because every list page calls this.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.http import HttpRequest

Provider = Callable[[HttpRequest, str, list[str]], set[str]]
_providers: list[Provider] = []

WAITING_SUBJECT = "Imported, waiting for first login…"


def register(provider: Provider) -> None:
    """Called from an AppConfig.ready(); registering the same provider twice keeps one."""
    if provider not in _providers:
        _providers.append(provider)


def waiting(request: HttpRequest, label: str, pks: Iterable) -> set[str]:
    """The pks (as text) among `pks` of rows of `label` ("mail.message") whose content is not there yet."""
    keys = [str(pk) for pk in pks]
    found: set[str] = set()
    for provider in _providers:
        found |= provider(request, label, keys)
    return found
