"""Optional LLM providers for analysis and reply drafts (Ollama, OpenAI-compatible, Anthropic).

Callers get a ProviderConfig from the user's (decrypted) settings with
``analysis.provider_settings.config_for(row)``, call ``get_provider(config)`` and catch
``ProviderError``: on any error the pipeline falls back to the built-in analyser.
"""

from __future__ import annotations

from .anthropic import AnthropicProvider
from .base import (
    ANALYSIS_SCHEMA,
    DRAFT_STYLES,
    PROVIDER_KINDS,
    Provider,
    ProviderBadAnswer,
    ProviderConfig,
    ProviderError,
    ProviderHTTPError,
    ProviderRefused,
    ProviderTimeout,
    ProviderUnavailable,
    extract_json_object,
    validate_analysis,
)
from .ollama import OllamaProvider
from .openai_compat import OpenAICompatProvider

__all__ = [
    "ANALYSIS_SCHEMA",
    "DRAFT_STYLES",
    "PROVIDER_KINDS",
    "AnthropicProvider",
    "OllamaProvider",
    "OpenAICompatProvider",
    "Provider",
    "ProviderBadAnswer",
    "ProviderConfig",
    "ProviderError",
    "ProviderHTTPError",
    "ProviderRefused",
    "ProviderTimeout",
    "ProviderUnavailable",
    "extract_json_object",
    "get_provider",
    "validate_analysis",
]

_PROVIDERS: dict[str, type[Provider]] = {
    "ollama": OllamaProvider,
    "openai": OpenAICompatProvider,
    "anthropic": AnthropicProvider,
}


def get_provider(config: ProviderConfig) -> Provider:
    """The provider for ``config.kind``; an unknown kind is a ProviderError (it comes from user settings)."""
    try:
        provider_class = _PROVIDERS[config.kind]
    except KeyError:
        raise ProviderError(f"unknown provider kind {config.kind!r}") from None
    return provider_class(config)
