"""From a user's stored provider settings to a ProviderConfig: the one place that builds it.

Analysis (pipeline.py), reply drafts (replies.py) and the settings page's "test" button all read the
same ProviderSettings row; building the config here once means a new setting (a header, a proxy, a
different timeout rule) reaches all three at once instead of one of them silently missing it.

``enabled_for`` says which row, if any, a purpose may use: analysis needs the provider switched on;
reply drafts also need "use for replies". The providers package itself stays free of models.
"""

from __future__ import annotations

from typing import Literal

from .models import ProviderSettings
from .providers import ProviderConfig

Purpose = Literal["analysis", "replies"]


def config_for(row: ProviderSettings, *, timeout: float | None = None) -> ProviderConfig:
    """The row as a provider configuration; ``timeout`` caps the row's own (a page that waits needs less)."""
    seconds = float(row.timeout_seconds) if timeout is None else min(float(row.timeout_seconds), timeout)
    return ProviderConfig(kind=row.kind, base_url=row.base_url, model=row.model, api_key=row.api_key, timeout=seconds)


def enabled_for(owner_id: int, purpose: Purpose) -> ProviderSettings | None:
    """The user's provider settings if they may be used for ``purpose``, else None (built-in analyser / template)."""
    rows = ProviderSettings.objects.filter(owner_id=owner_id, enabled=True)
    if purpose == "replies":
        rows = rows.filter(use_for_replies=True)
    elif purpose != "analysis":
        raise ValueError(f"unknown provider purpose {purpose!r}")
    return rows.first()
