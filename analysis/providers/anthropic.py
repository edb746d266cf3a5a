"""Anthropic's Messages API (``POST /v1/messages``).

Anthropic has no JSON mode: the schema goes into the system prompt and the answer is checked like
any other. ``max_tokens`` is mandatory in this API; the key travels in ``x-api-key``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django.utils.translation import gettext

from .base import Provider

ANTHROPIC_VERSION = "2023-06-01"


class AnthropicProvider(Provider):
    kind = "anthropic"
    label = "Anthropic"

    def _headers(self) -> dict[str, str]:
        return {"x-api-key": self.config.api_key, "anthropic-version": ANTHROPIC_VERSION}

    def _complete(self, system: str, user: str, *, schema: dict[str, Any] | None, max_tokens: int) -> str:
        body = {
            "model": self.config.model,
            "max_tokens": max_tokens,
            "system": system,
            "messages": [{"role": "user", "content": user}],
        }
        data = self._request("POST", "/v1/messages", headers=self._headers(), body=body)
        try:
            texts = [block["text"] for block in data["content"] if block.get("type", "text") == "text"]
        except (KeyError, TypeError, AttributeError):
            raise self._bad_shape() from None
        if not texts or not all(isinstance(text, str) for text in texts):
            raise self._bad_shape()
        return "".join(texts)

    def check(self) -> str:
        """Look the model up (resolves aliases; costs no tokens, unlike a test message)."""
        data = self._request("GET", f"/v1/models/{quote(self.config.model, safe='')}", headers=self._headers())
        name = data.get("display_name") or data.get("id") if isinstance(data, dict) else None
        if not name:
            raise self._bad_shape()
        return gettext("Anthropic accepted the API key; model %(model)s is available.") % {"model": name}
