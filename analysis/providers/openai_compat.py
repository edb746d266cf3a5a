"""Any OpenAI-compatible chat endpoint (``POST /v1/chat/completions``).

One protocol covers OpenAI, Mistral, vLLM, LM Studio and llama.cpp's server. Deliberately sent:
only what all of them accept (no ``temperature``, no ``max_tokens``: some OpenAI models reject
both), and ``response_format: json_object`` to ask for JSON, which the schema check then verifies.
Servers that only know ``json_schema`` (LM Studio) reject ``json_object`` with HTTP 400; the request is
then repeated once with the schema, and that choice is remembered for the provider's lifetime.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext

from .base import Provider, ProviderError, ProviderHTTPError

_JSON_OBJECT = {"response_format": {"type": "json_object"}}


def _with_schema(body: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The structured-output form (OpenAI, vLLM, LM Studio, llama.cpp): not strict, the schema is checked here."""
    return {
        **body,
        "response_format": {"type": "json_schema", "json_schema": {"name": "mail_analysis", "schema": schema}},
    }


class OpenAICompatProvider(Provider):
    kind = "openai"
    label = "OpenAI-compatible endpoint"
    _use_json_schema = False  # set per instance once the server rejected json_object

    def _url(self, path: str) -> str:
        """Accept a base URL with or without the trailing /v1 (both spellings are common in docs)."""
        base = self.config.base_url.rstrip("/")
        if base.endswith("/v1") and path.startswith("/v1/"):
            path = path[len("/v1") :]
        return base + path

    def _headers(self) -> dict[str, str]:
        """Local servers (vLLM, LM Studio, llama.cpp) usually need no key; hosted ones need Bearer."""
        return {"Authorization": f"Bearer {self.config.api_key}"} if self.config.api_key else {}

    def _complete(self, system: str, user: str, *, schema: dict[str, Any] | None, max_tokens: int) -> str:
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
        }
        if schema is None:
            data = self._request("POST", "/v1/chat/completions", headers=self._headers(), body=body)
        elif self._use_json_schema:
            data = self._request(
                "POST", "/v1/chat/completions", headers=self._headers(), body=_with_schema(body, schema)
            )
        else:
            try:
                data = self._request(
                    "POST", "/v1/chat/completions", headers=self._headers(), body={**body, **_JSON_OBJECT}
                )
            except ProviderHTTPError as exc:
                if exc.status_code != 400:
                    raise
                self._use_json_schema = True
                data = self._request(
                    "POST", "/v1/chat/completions", headers=self._headers(), body=_with_schema(body, schema)
                )
        try:
            content = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise self._bad_shape() from None
        if not isinstance(content, str):  # None when the model refused
            raise self._bad_shape()
        return content

    def check(self) -> str:
        data = self._request("GET", "/v1/models", headers=self._headers())
        try:
            offered = [str(m["id"]) for m in data["data"]]
        except (KeyError, TypeError):
            raise self._bad_shape() from None
        model = self.config.model
        if model in offered:
            return gettext("The endpoint is reachable and offers model %(model)s.") % {"model": model}
        if len(offered) == 1:
            # Single-model servers (llama.cpp, LM Studio with one model) answer whatever name is asked for.
            text = gettext("The endpoint is reachable; it serves only %(served)s, which will answer for %(model)s.")
            return text % {"served": offered[0], "model": model}
        text = gettext("The endpoint is reachable, but does not offer model %(model)s (%(count)s models).")
        raise ProviderError(text % {"model": model, "count": len(offered)})
