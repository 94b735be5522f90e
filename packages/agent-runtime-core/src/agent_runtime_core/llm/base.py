"""LLMClient and LLMResponse: the model interface agents use, as a thin layer over llm-client.

An :class:`LLMClient` is an :class:`llm_client.ExecutionEngine` (provider + middleware chain) with
a default model and the ``generate``/``stream`` methods the seed's agents call. All provider logic,
retries, timeouts, usage and cost live in llm-client; nothing here talks to an SDK.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from llm_client import CompletionResult, ExecutionEngine, Middleware, Provider, StreamEvent, Usage
from llm_client.messages import MessageLike

from ..tools import ToolCallData

__all__ = ["LLMClient", "LLMResponse"]


@dataclass(frozen=True, slots=True)
class LLMResponse:
    """One model answer.

    ``message`` is the assistant message to append to the conversation (``message["content"]``);
    ``tool_calls`` are :class:`~agent_runtime_core.tools.ToolCallData`, so both
    ``tool_call["function"]["name"]`` and ``tool_call.id`` work. ``raw`` is llm-client's
    :class:`~llm_client.CompletionResult`.
    """

    message: dict[str, Any]
    content: str | None
    tool_calls: list[ToolCallData] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    model: str | None = None
    finish_reason: str | None = None
    raw: CompletionResult | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_result(cls, result: CompletionResult) -> LLMResponse:
        return cls(
            message=result.message,
            content=result.content,
            tool_calls=[ToolCallData(c.to_dict()) for c in result.tool_calls],
            usage=result.usage,
            model=result.model,
            finish_reason=result.finish_reason,
            raw=result,
        )

    @property
    def has_tool_calls(self) -> bool:
        return bool(self.tool_calls)


def _production_chain(timeout: float | None) -> list[Middleware]:
    from llm_client import default_middleware

    return default_middleware(timeout=timeout)


class LLMClient:
    """A model behind llm-client's :class:`~llm_client.ExecutionEngine`.

    ``LLMClient(engine=...)`` wraps any engine as is; ``LLMClient(provider=...)`` builds an engine
    for any llm-client provider, with the production middleware chain (telemetry, logging, budget,
    retry, timeout) unless ``middleware`` is given (``middleware=()`` for none).
    ``default_model`` is used when a call names no model (default: the provider's model).
    """

    #: The ``model_provider`` name this client stands for ("openai", "anthropic", ...).
    provider_name: str = "custom"

    def __init__(
        self,
        engine: ExecutionEngine | None = None,
        *,
        provider: Provider | None = None,
        default_model: str | None = None,
        middleware: Sequence[Middleware] | None = None,
        timeout: float | None = None,
    ) -> None:
        if engine is None:
            if provider is None:
                raise TypeError("LLMClient needs an engine (llm_client.ExecutionEngine) or a provider")
            if middleware is None:
                if timeout is None:
                    from ..config import get_config

                    timeout = get_config().request_timeout_seconds
                middleware = _production_chain(timeout)
            engine = ExecutionEngine(provider, middleware=middleware)
        elif provider is not None or middleware is not None:
            raise TypeError("pass engine=..., or provider=... (with optional middleware=...), not both")
        if not isinstance(engine, ExecutionEngine):
            raise TypeError(f"engine must be an llm_client.ExecutionEngine, got {type(engine).__name__}")
        self.engine = engine
        self.default_model: str = default_model or engine.model

    @property
    def provider(self) -> Provider:
        return self.engine.provider

    def _options(
        self,
        tools: Iterable[Any] | None,
        model: str | None,
        temperature: float | None,
        max_tokens: int | None,
        options: dict[str, Any],
    ) -> dict[str, Any]:
        options["model"] = model or self.default_model
        if tools:
            options["tools"] = tools
        if temperature is not None:
            options["temperature"] = temperature
        if max_tokens is not None:
            options["max_tokens"] = max_tokens
        return options

    async def generate(
        self,
        messages: str | MessageLike | Iterable[MessageLike],
        *,
        tools: Iterable[Any] | None = None,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        **options: Any,
    ) -> LLMResponse:
        """One model call. ``tools`` are OpenAI-format dicts, Tools or a ToolRegistry; ``options``
        are any other :class:`~llm_client.RequestSpec` option (``tool_choice=...``,
        ``response_format=...``) or engine argument (``context=``, ``idempotency_key=``)."""
        result = await self.engine.complete(
            messages, **self._options(tools, model, temperature, max_tokens, options)
        )
        return LLMResponse.from_result(result)

    def stream(
        self,
        messages: str | MessageLike | Iterable[MessageLike],
        *,
        tools: Iterable[Any] | None = None,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        **options: Any,
    ) -> AsyncIterator[StreamEvent]:
        """Stream one model call: llm-client's events (TextDelta, ToolCallReady, ...), ending with
        exactly one StreamDone or StreamError."""
        return self.engine.stream(messages, **self._options(tools, model, temperature, max_tokens, options))

    async def aclose(self) -> None:
        await self.engine.aclose()

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(default_model={self.default_model!r}, engine={self.engine!r})"
