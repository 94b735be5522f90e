"""The seed's provider clients, each a thin adapter over the matching llm-client provider.

``OpenAIClient``, ``AnthropicClient`` and ``LiteLLMClient`` only choose settings (arguments, then
``configure()``/environment) and build an :class:`~llm_client.ExecutionEngine` with the production
middleware chain, so retries, timeouts, error mapping, usage and cost all come from llm-client.
No SDK is imported here: each provider imports its SDK on its first call. A missing API key is
not an error at construction; the first call raises llm-client's ``AuthenticationError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llm_client import AnthropicProvider, LiteLLMProvider, Middleware, OpenAIProvider

from ..config import get_config
from .base import LLMClient

__all__ = ["OpenAIClient", "AnthropicClient", "LiteLLMClient"]


def _timeout(timeout: float | None) -> float:
    return get_config().request_timeout_seconds if timeout is None else timeout


class OpenAIClient(LLMClient):
    """OpenAI chat completions (or any OpenAI-compatible server via ``base_url``).

    ``api_key`` defaults to ``configure(openai_api_key=...)`` or ``OPENAI_API_KEY``; ``base_url``
    to ``configure(openai_base_url=...)`` or ``OPENAI_BASE_URL``. Other keyword arguments go to
    :class:`llm_client.OpenAIProvider` (``organization``, ``transport``, ``default_headers``, ...).
    """

    provider_name = "openai"

    def __init__(
        self,
        api_key: str | None = None,
        default_model: str = "gpt-4o",
        base_url: str | None = None,
        *,
        timeout: float | None = None,
        middleware: Sequence[Middleware] | None = None,
        **provider_kwargs: Any,
    ) -> None:
        config = get_config()
        limit = _timeout(timeout)
        provider = OpenAIProvider(
            default_model,
            api_key=api_key or config.openai_api_key,
            base_url=base_url or config.openai_base_url,
            timeout=limit,
            **provider_kwargs,
        )
        super().__init__(provider=provider, default_model=default_model, middleware=middleware, timeout=limit)


class AnthropicClient(LLMClient):
    """Anthropic's Messages API.

    ``api_key`` defaults to ``configure(anthropic_api_key=...)`` or ``ANTHROPIC_API_KEY``;
    ``base_url`` to ``configure(anthropic_base_url=...)`` or ``ANTHROPIC_BASE_URL``. ``max_tokens``
    is the default output limit Anthropic requires on every call.
    """

    provider_name = "anthropic"

    def __init__(
        self,
        api_key: str | None = None,
        default_model: str = "claude-3-5-sonnet-20241022",
        base_url: str | None = None,
        *,
        max_tokens: int = 4096,
        timeout: float | None = None,
        middleware: Sequence[Middleware] | None = None,
        **provider_kwargs: Any,
    ) -> None:
        config = get_config()
        limit = _timeout(timeout)
        provider = AnthropicProvider(
            default_model,
            api_key=api_key or config.anthropic_api_key,
            base_url=base_url or config.anthropic_base_url,
            timeout=limit,
            max_tokens=max_tokens,
            **provider_kwargs,
        )
        super().__init__(provider=provider, default_model=default_model, middleware=middleware, timeout=limit)


class LiteLLMClient(LLMClient):
    """Any model litellm knows (``"gpt-4o"``, ``"claude-3-5-sonnet-20241022"``, ``"ollama/llama2"``).

    ``api_base`` defaults to ``configure(litellm_api_base=...)`` or ``LITELLM_API_BASE``; litellm
    reads provider keys from the environment itself. Other keyword arguments go to litellm.
    """

    provider_name = "litellm"

    def __init__(
        self,
        default_model: str = "gpt-4o",
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        timeout: float | None = None,
        middleware: Sequence[Middleware] | None = None,
        **litellm_kwargs: Any,
    ) -> None:
        limit = _timeout(timeout)
        provider = LiteLLMProvider(
            default_model,
            api_base=api_base or get_config().litellm_api_base,
            api_key=api_key,
            timeout=limit,
            **litellm_kwargs,
        )
        super().__init__(provider=provider, default_model=default_model, middleware=middleware, timeout=limit)
