"""Model clients for agents: ``get_llm_client()`` and thin adapters over llm-client providers.

Names load on first access, so importing this package imports no provider SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llm_client._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "LLMClient": "base",
    "LLMResponse": "base",
    "OpenAIClient": "clients",
    "AnthropicClient": "clients",
    "LiteLLMClient": "clients",
    "get_llm_client": "factory",
    "set_llm_client": "factory",
    "use_llm_client": "factory",
    "reset_llm_clients": "factory",
    "current_mock_client": "factory",
    "PROVIDERS": "factory",
}

__all__ = [
    "LLMClient",
    "LLMResponse",
    "OpenAIClient",
    "AnthropicClient",
    "LiteLLMClient",
    "get_llm_client",
    "set_llm_client",
    "use_llm_client",
    "reset_llm_clients",
    "current_mock_client",
    "PROVIDERS",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:  # pragma: no cover
    from .base import LLMClient, LLMResponse
    from .clients import AnthropicClient, LiteLLMClient, OpenAIClient
    from .factory import (
        PROVIDERS,
        current_mock_client,
        get_llm_client,
        reset_llm_clients,
        set_llm_client,
        use_llm_client,
    )
