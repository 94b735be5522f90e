"""OpenAI's chat-completions wire shape, without the OpenAI SDK.

The OpenAI SDK and litellm both hand back OpenAI-shaped objects (pydantic models, litellm's own
classes, sometimes plain dicts), so request building, response parsing, stream-chunk parsing and the
HTTP-status-to-error mapping live here once, reading fields by name from whichever object arrives.
Importing this module imports no SDK; the Anthropic provider reuses the error mapping.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping
from typing import Any

from llm_client.errors import (
    AuthenticationError,
    ContentFilterError,
    ContextLengthError,
    InvalidRequestError,
    LLMClientError,
    MalformedResponseError,
    PermissionDeniedError,
    ProviderError,
    RateLimitError,
    RequestTimeoutError,
    StreamInterruptedError,
)
from llm_client.messages import ToolCall
from llm_client.spec import CompletionResult, RequestSpec
from llm_client.streaming import (
    ReasoningDelta,
    StreamAccumulator,
    StreamDone,
    StreamError,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallReady,
    UsageUpdate,
)
from llm_client.usage import Usage

__all__ = [
    "field",
    "chat_messages",
    "chat_request",
    "uses_max_completion_tokens",
    "parse_completion",
    "parse_usage",
    "ChunkParser",
    "parse_retry_after",
    "error_from_status",
    "interrupted",
]

_MISSING = object()


def field(obj: Any, name: str, default: Any = None) -> Any:
    """Read ``name`` from a dict, a pydantic model (extra fields included) or any object.

    This runs a dozen times per streamed chunk, so pydantic models are read through ``__dict__``
    and ``__pydantic_extra__`` directly: a plain ``getattr`` of an absent field (the reasoning
    fields most servers never send) costs an exception inside pydantic, several microseconds.
    """
    if obj is None:
        return default
    if isinstance(obj, Mapping):
        value = obj.get(name, default)
    else:
        fields = getattr(obj, "__dict__", None)
        if fields is not None and name in fields:
            value = fields[name]
        else:
            extra: Any = getattr(obj, "__pydantic_extra__", _MISSING)
            if extra is not _MISSING:
                value = extra.get(name, default) if extra else default
            else:
                value = getattr(obj, name, default)
    return default if value is None else value


# --- requests ------------------------------------------------------------------------------------

# Reasoning models reject ``max_tokens`` and want ``max_completion_tokens``.
_MAX_COMPLETION_TOKENS_MODELS = re.compile(r"^(o\d|gpt-5)")


def uses_max_completion_tokens(model: str) -> bool:
    return bool(_MAX_COMPLETION_TOKENS_MODELS.match(model.rsplit("/", 1)[-1]))


def chat_messages(messages: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """Our messages are already OpenAI's; only our private ``reasoning`` key must not reach the wire."""
    return [{k: v for k, v in m.items() if k != "reasoning"} if "reasoning" in m else m for m in messages]


def chat_request(spec: RequestSpec, model: str, *, max_tokens_param: str = "max_tokens") -> dict[str, Any]:
    """Keyword arguments for ``chat.completions.create``; ``spec.extra`` goes last so it can override."""
    kwargs: dict[str, Any] = {"model": model, "messages": chat_messages(spec.messages)}
    if spec.tools:
        kwargs["tools"] = list(spec.tools)
        if spec.parallel_tool_calls is not None:
            kwargs["parallel_tool_calls"] = spec.parallel_tool_calls
    if spec.tool_choice is not None:
        kwargs["tool_choice"] = spec.tool_choice
    optional = {
        "temperature": spec.temperature,
        "top_p": spec.top_p,
        max_tokens_param: spec.max_tokens,
        "stop": list(spec.stop) if spec.stop else None,
        "response_format": spec.response_format,
        "reasoning_effort": spec.reasoning_effort,
        "timeout": spec.timeout,
    }
    kwargs.update({k: v for k, v in optional.items() if v is not None})
    kwargs.update(spec.extra)
    return kwargs


# --- responses -----------------------------------------------------------------------------------


def parse_usage(usage: Any) -> Usage | None:
    if usage is None:
        return None
    prompt_details = field(usage, "prompt_tokens_details")
    completion_details = field(usage, "completion_tokens_details")
    return Usage(
        input_tokens=int(field(usage, "prompt_tokens", 0)),
        output_tokens=int(field(usage, "completion_tokens", 0)),
        total_tokens=int(field(usage, "total_tokens", 0)),
        cached_tokens=int(field(prompt_details, "cached_tokens", 0)),
        # litellm reports Anthropic's cache writes under Anthropic's name
        cache_write_tokens=int(field(usage, "cache_creation_input_tokens", 0)),
        reasoning_tokens=int(field(completion_details, "reasoning_tokens", 0)),
    )


def _reasoning_of(obj: Any) -> str | None:
    # DeepSeek and vLLM call it reasoning_content; OpenRouter and some gateways call it reasoning.
    for name in ("reasoning_content", "reasoning"):
        value = field(obj, name)
        if isinstance(value, str) and value:
            return value
    return None


def parse_completion(response: Any, *, provider: str, default_model: str) -> CompletionResult:
    choices = field(response, "choices")
    if not choices:
        raise MalformedResponseError("the response has no choices", provider=provider)
    choice = choices[0]
    message = field(choice, "message")
    if message is None:
        raise MalformedResponseError("the response's first choice has no message", provider=provider)
    content = field(message, "content")
    calls = tuple(
        ToolCall(
            id=field(tc, "id") or f"call_{i}",
            name=field(field(tc, "function"), "name", ""),
            arguments=field(field(tc, "function"), "arguments") or "{}",
        )
        for i, tc in enumerate(field(message, "tool_calls") or ())
    )
    finish_reason = field(choice, "finish_reason")
    refusal = field(message, "refusal")
    if not content and not calls and (finish_reason == "content_filter" or refusal):
        raise ContentFilterError(
            f"the model refused to answer: {refusal}"
            if refusal
            else "the output was blocked by the content filter",
            provider=provider,
        )
    return CompletionResult(
        content=content if content is not None else (None if calls else ""),
        tool_calls=calls,
        usage=parse_usage(field(response, "usage")) or Usage(),
        model=field(response, "model") or default_model,
        finish_reason=finish_reason or ("tool_calls" if calls else "stop"),
        reasoning=_reasoning_of(message),
        provider=provider,
        raw=response,
    )


class ChunkParser:
    """Turns streamed chat-completion chunks into stream events, feeding a :class:`StreamAccumulator`.

    ``finish()`` produces the closing events, so a streamed call ends with the same
    :class:`CompletionResult` a non-streamed call returns.
    """

    def __init__(self, *, provider: str, model: str) -> None:
        self.provider = provider
        self.acc = StreamAccumulator(model=model, provider=provider)

    def _emit(self, event: StreamEvent, out: list[StreamEvent]) -> None:
        self.acc.add(event)
        out.append(event)

    def feed(self, chunk: Any) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        model = field(chunk, "model")
        if model:
            self.acc.model = model
        for choice in field(chunk, "choices") or ():
            if field(choice, "index", 0) != 0:
                continue
            delta = field(choice, "delta")
            reasoning = _reasoning_of(delta)
            if reasoning:
                self._emit(ReasoningDelta(reasoning), out)
            text = field(delta, "content")
            if text:
                self._emit(TextDelta(text), out)
            for i, tc in enumerate(field(delta, "tool_calls") or ()):
                fn = field(tc, "function")
                self._emit(
                    ToolCallDelta(
                        index=int(field(tc, "index", i)),
                        id=field(tc, "id"),
                        name=field(fn, "name"),
                        arguments=field(fn, "arguments", ""),
                    ),
                    out,
                )
            finish = field(choice, "finish_reason")
            if finish:
                self.acc.finish_reason = finish
        usage = parse_usage(field(chunk, "usage"))
        if usage is not None:
            self._emit(UsageUpdate(usage), out)
        return out

    def finish(self, raw: Any = None) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        calls = self.acc.pending_tool_calls()
        for call in calls:
            self._emit(ToolCallReady(call), out)
        if self.acc.finish_reason == "content_filter" and not self.acc.text and not calls:
            error = ContentFilterError("the output was blocked by the content filter", provider=self.provider)
            out.append(StreamError(error, self.acc.result(raw)))
            return out
        out.append(StreamDone(self.acc.result(raw)))
        return out

    def error(self, error: LLMClientError) -> StreamError:
        return StreamError(interrupted(error, self.acc), self.acc.result())


def interrupted(error: LLMClientError, acc: StreamAccumulator) -> LLMClientError:
    """Before any output a failure keeps its own (maybe retryable) type; after output it is final.

    Retrying a stream that already showed text would show it twice, so once output has been
    yielded the error becomes :class:`StreamInterruptedError`, which is never retried.
    """
    if not acc.has_output or isinstance(error, StreamInterruptedError):
        return error
    return StreamInterruptedError(
        f"the stream broke after output had arrived: {error.message}",
        partial_text=acc.text,
        provider=error.provider,
        original=error.original or error,
    )


# --- errors --------------------------------------------------------------------------------------


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    get = headers.get
    ms = get("retry-after-ms") or get("Retry-After-Ms")
    if ms:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    value = get("retry-after") or get("Retry-After")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


_CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})
_CONTEXT_TEXT = re.compile(
    r"maximum context length|context[ _]length|context window|prompt is too long|too many tokens", re.I
)
_FILTER_CODES = frozenset({"content_filter", "content_policy_violation", "content_policy_violation_error"})
_FILTER_TEXT = re.compile(r"content management policy|content[ _]policy|content filter", re.I)


def error_from_status(
    status: int | None,
    message: str,
    *,
    provider: str,
    code: str | None = None,
    headers: Any = None,
    original: BaseException | None = None,
) -> LLMClientError:
    """Map an HTTP error status (and the vendor's error code) onto our typed errors."""
    kw: dict[str, Any] = {"provider": provider, "status_code": status, "original": original}
    if code in _CONTEXT_CODES or (status in (400, 413, 422, None) and _CONTEXT_TEXT.search(message)):
        return ContextLengthError(message, **kw)
    if code in _FILTER_CODES or (status in (400, 422, None) and _FILTER_TEXT.search(message)):
        return ContentFilterError(message, **kw)
    if status == 401:
        return AuthenticationError(message, **kw)
    if status == 403:
        return PermissionDeniedError(message, **kw)
    if status == 429:
        return RateLimitError(message, retry_after=parse_retry_after(headers), **kw)
    if status == 408:
        return RequestTimeoutError(message, **kw)
    if status is not None and 400 <= status < 500:
        return InvalidRequestError(message, **kw)
    return ProviderError(message, **kw)
