"""``get_llm_client()``: the process's default model client, and how to override it.

Resolution, first match wins, for a call that names no ``provider``:

1. the client installed for the current task by ``with use_llm_client(client):`` (a ContextVar,
   so concurrent runs and tests can each use their own scripted model);
2. the process-wide client set with ``set_llm_client(client)``;
3. a client built from ``get_config().model_provider`` ("openai", "anthropic", "litellm") and
   cached per process (rebuilt when ``configure()`` changes the config). For ``"mock"`` the most
   recently created :class:`~agent_runtime_core.testing.MockLLMClient` is returned; with none, a
   :class:`~agent_runtime_core.config.ConfigurationError` explains how to install one.

``get_llm_client(provider="openai")`` skips steps 1 and 2 and builds (or reuses) that provider's
client. ``model=`` selects the client's default model for the built clients.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from contextvars import ContextVar

from ..config import ConfigurationError, RuntimeConfig, get_config
from .base import LLMClient

__all__ = [
    "get_llm_client",
    "set_llm_client",
    "use_llm_client",
    "reset_llm_clients",
    "PROVIDERS",
]

#: The ``model_provider`` values get_llm_client understands.
PROVIDERS = ("openai", "anthropic", "litellm", "mock")

_scoped: ContextVar[LLMClient | None] = ContextVar("agent_runtime_core_llm_client", default=None)
_lock = threading.Lock()
_process_override: LLMClient | None = None
_current_mock: LLMClient | None = None
_cache: dict[tuple[int, str, str | None], LLMClient] = {}
_cache_config: RuntimeConfig | None = None


def _no_mock_error() -> ConfigurationError:
    return ConfigurationError(
        "model_provider is 'mock' but no scripted model is installed: create one with "
        "agent_runtime_core.testing.MockLLMClient(responses=[...]) (the most recently created "
        "MockLLMClient is the mock default), or install any client with set_llm_client(client) or "
        "`with use_llm_client(client): ...`"
    )


def _build(provider: str, model: str | None, config: RuntimeConfig) -> LLMClient:
    from .clients import AnthropicClient, LiteLLMClient, OpenAIClient

    if provider == "openai":
        return OpenAIClient(default_model=model or config.default_model)
    if provider == "anthropic":
        return AnthropicClient(default_model=model) if model else AnthropicClient()
    return LiteLLMClient(default_model=model or config.default_model)


def get_llm_client(provider: str | None = None, model: str | None = None) -> LLMClient:
    """The model client agents should use (see the module docstring for the resolution order)."""
    global _cache_config
    if provider is None:
        client = _scoped.get()
        if client is not None:
            return client
        client = _process_override
        if client is not None:
            return client
    config = get_config()
    name = provider or config.model_provider
    if name not in PROVIDERS:
        raise ConfigurationError(f"unknown LLM provider {name!r}; expected one of {', '.join(PROVIDERS)}")
    if name == "mock":
        mock = _current_mock
        if mock is None:
            raise _no_mock_error()
        return mock
    key = (os.getpid(), name, model)
    with _lock:
        if _cache_config is not config:  # configure() was called: settings may have changed
            _cache.clear()
            _cache_config = config
        client = _cache.get(key)
        if client is None:
            client = _cache[key] = _build(name, model, config)
    return client


def set_llm_client(client: LLMClient | None) -> None:
    """Make ``client`` what ``get_llm_client()`` returns in this process (None removes it)."""
    global _process_override
    if client is not None and not isinstance(client, LLMClient):
        raise TypeError(f"set_llm_client expects an LLMClient, got {type(client).__name__}")
    _process_override = client


@contextlib.contextmanager
def use_llm_client(client: LLMClient) -> Iterator[LLMClient]:
    """``get_llm_client()`` returns ``client`` inside the block, in this task and tasks it starts."""
    if not isinstance(client, LLMClient):
        raise TypeError(f"use_llm_client expects an LLMClient, got {type(client).__name__}")
    token = _scoped.set(client)
    try:
        yield client
    finally:
        _scoped.reset(token)


def reset_llm_clients() -> None:
    """Forget overrides, the current mock and cached clients (for tests)."""
    global _process_override, _current_mock, _cache_config
    with _lock:
        _process_override = None
        _current_mock = None
        _cache.clear()
        _cache_config = None


def current_mock_client() -> LLMClient | None:
    """The most recently created MockLLMClient, if any (what model_provider="mock" resolves to)."""
    return _current_mock


def _set_current_mock(client: LLMClient) -> None:
    global _current_mock
    _current_mock = client
