"""Ollama's native chat API (``POST /api/chat``), for models running on the user's own hardware.

Ollama takes a JSON schema in ``format`` (structured outputs, Ollama >= 0.5) and constrains the
model's output to it, which makes small local models far more reliable than a prompt alone.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext

from .base import Provider, ProviderError


class OllamaProvider(Provider):
    kind = "ollama"
    label = "Ollama"

    def _headers(self) -> dict[str, str]:
        """Ollama itself has no keys; a key is sent only for an Ollama behind an authenticating proxy."""
        return {"Authorization": f"Bearer {self.config.api_key}"} if self.config.api_key else {}

    def _complete(self, system: str, user: str, *, schema: dict[str, Any] | None, max_tokens: int) -> str:
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "stream": False,
            "options": {
                "temperature": 0.1 if schema is not None else 0.6,
                "num_predict": max_tokens,
                # Ollama's default context (2-4k tokens) would silently cut a long message off.
                "num_ctx": max(4096, self.config.max_input_chars // 3 + 2048),
            },
        }
        if schema is not None:
            body["format"] = schema
        data = self._request("POST", "/api/chat", headers=self._headers(), body=body)
        try:
            content = data["message"]["content"]
        except (KeyError, TypeError):
            raise self._bad_shape() from None
        if not isinstance(content, str):
            raise self._bad_shape()
        return content

    def check(self) -> str:
        data = self._request("GET", "/api/tags", headers=self._headers())
        try:
            installed = {str(m.get("name") or m.get("model")) for m in data["models"]}
        except (KeyError, TypeError, AttributeError):
            raise self._bad_shape() from None
        model = self.config.model
        if model in installed or f"{model}:latest" in installed:
            return gettext("Ollama is reachable and model %(model)s is installed.") % {"model": model}
        text = gettext("Ollama is reachable, but model %(model)s is not installed (run: ollama pull %(model)s).")
        raise ProviderError(text % {"model": model})
