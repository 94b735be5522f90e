"""Model providers. Each SDK-backed provider imports its SDK on first use, not at import."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._lazy import lazy_exports

_EXPORTS = {
    "Provider": "base",
    "MockProvider": "mock",
    "MockResponse": "mock",
    "OpenAIProvider": "openai",
    "AnthropicProvider": "anthropic",
    "LiteLLMProvider": "litellm",
}

__all__ = [
    "Provider",
    "MockProvider",
    "MockResponse",
    "OpenAIProvider",
    "AnthropicProvider",
    "LiteLLMProvider",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:  # pragma: no cover
    from .anthropic import AnthropicProvider
    from .base import Provider
    from .litellm import LiteLLMProvider
    from .mock import MockProvider, MockResponse
    from .openai import OpenAIProvider
