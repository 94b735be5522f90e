"""Model providers. Each SDK-backed provider imports its SDK on first use, not at import."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'llm_client.providers' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:  # pragma: no cover
    from .anthropic import AnthropicProvider
    from .base import Provider
    from .litellm import LiteLLMProvider
    from .mock import MockProvider, MockResponse
    from .openai import OpenAIProvider
