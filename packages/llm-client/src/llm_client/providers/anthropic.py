"""Anthropic's Messages API through the official SDK.

Our messages are OpenAI-shaped, so this module is mostly translation: system messages become the
``system`` parameter, tool calls become ``tool_use`` blocks, tool results become ``tool_result``
blocks in a user turn, and the answer's blocks come back as content, tool calls and reasoning.

Structured output: Anthropic has no ``response_format``. A ``json_schema`` (or ``json_object``)
response format is sent as one extra tool whose ``input_schema`` is the schema, and the call is
forced to use it; the tool's input, serialised as JSON, becomes the result's ``content``. That tool
never appears in ``tool_calls``, and while it is forced the caller's own tools will not be called.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from types import ModuleType
from typing import Any

from llm_client.errors import (
    AuthenticationError,
    ContentFilterError,
    InvalidRequestError,
    LLMClientError,
    MalformedResponseError,
    MissingDependencyError,
    ProviderConnectionError,
    ProviderError,
    RequestTimeoutError,
)
from llm_client.messages import ToolCall, parse_tool_arguments
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

from ._openai_wire import error_from_status, field, interrupted
from .base import Provider, import_sdk, require_sdk

__all__ = ["AnthropicProvider", "STRUCTURED_OUTPUT_TOOL"]

STRUCTURED_OUTPUT_TOOL = "structured_output"
"""The name of the forced tool that carries a ``response_format`` schema, unless the schema names one."""

_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
}

# Error types Anthropic sends inside a 200 stream, as the status they would have had.
_ERROR_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(
        p.get("text", "") for p in content or () if isinstance(p, Mapping) and p.get("type") == "text"
    )


def _content_blocks(content: Any) -> list[dict[str, Any]]:
    """OpenAI content parts as Anthropic blocks; parts already in Anthropic's shape pass through."""
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks: list[dict[str, Any]] = []
    for part in content:
        if not isinstance(part, Mapping):
            raise InvalidRequestError(f"a content part must be a dict, got {type(part).__name__}")
        if part.get("type") == "image_url":
            image = part.get("image_url")
            url = image.get("url", "") if isinstance(image, Mapping) else str(image or "")
            if url.startswith("data:") and ";base64," in url:
                media_type, data = url[5:].split(";base64,", 1)
                blocks.append(
                    {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
                )
            else:
                blocks.append({"type": "image", "source": {"type": "url", "url": url}})
        else:
            blocks.append(dict(part))
    return blocks


def to_anthropic_messages(messages: tuple[dict[str, Any], ...]) -> tuple[str | None, list[dict[str, Any]]]:
    """Split out the system prompt and translate the rest into Anthropic's alternating turns."""
    system: list[str] = []
    out: list[dict[str, Any]] = []

    def append(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if out and out[-1]["role"] == role:  # consecutive tool results, or results then a user turn
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    for m in messages:
        role = m["role"]
        if role in ("system", "developer"):
            system.append(_text_of(m.get("content")))
        elif role == "user":
            append("user", _content_blocks(m.get("content")))
        elif role == "assistant":
            blocks = _content_blocks(m.get("content"))
            for tc in m.get("tool_calls") or ():
                fn = tc["function"]
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": tc["id"],
                        "name": fn["name"],
                        "input": parse_tool_arguments(fn["name"], fn.get("arguments")),
                    }
                )
            append("assistant", blocks)
        elif role == "tool":
            content = m.get("content")
            result = content if isinstance(content, str) else _content_blocks(content)
            append("user", [{"type": "tool_result", "tool_use_id": m["tool_call_id"], "content": result}])
    return ("\n\n".join(s for s in system if s) or None), out


def _tool_choice(choice: str | dict[str, Any] | None) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        mapped = {"auto": "auto", "required": "any", "any": "any", "none": "none"}.get(choice)
        if mapped is None:
            raise InvalidRequestError(
                f"tool_choice {choice!r} is not one of 'auto', 'required', 'none' or "
                "{'type': 'function', 'function': {'name': ...}}"
            )
        return {"type": mapped}
    fn = choice.get("function")
    if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
        return {"type": "tool", "name": fn["name"]}
    if choice.get("type") in ("auto", "any", "none", "tool"):  # already Anthropic's shape
        return dict(choice)
    raise InvalidRequestError(
        "tool_choice must be 'auto', 'required', 'none' or "
        f"{{'type': 'function', 'function': {{'name': ...}}}}, got {choice!r}"
    )


def _structured_tool(response_format: dict[str, Any] | None) -> dict[str, Any] | None:
    if not response_format:
        return None
    kind = response_format.get("type")
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema")
        if not isinstance(schema, Mapping):
            raise InvalidRequestError("response_format json_schema needs a 'schema' object")
        return {
            "name": spec.get("name") or STRUCTURED_OUTPUT_TOOL,
            "description": spec.get("description")
            or "Reply by calling this tool with the answer as its input.",
            "input_schema": dict(schema),
        }
    if kind == "json_object":
        return {
            "name": STRUCTURED_OUTPUT_TOOL,
            "description": "Reply by calling this tool with the answer, a JSON object, as its input.",
            "input_schema": {"type": "object"},
        }
    if kind == "text":
        return None
    raise InvalidRequestError(
        f"response_format type {kind!r} is not supported; use 'json_schema' or 'json_object'"
    )


def _usage(usage: Any) -> Usage:
    cache_read = int(field(usage, "cache_read_input_tokens", 0))
    cache_write = int(field(usage, "cache_creation_input_tokens", 0))
    input_tokens = int(field(usage, "input_tokens", 0)) + cache_read + cache_write
    return Usage(
        input_tokens=input_tokens,
        output_tokens=int(field(usage, "output_tokens", 0)),
        cached_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


class AnthropicProvider(Provider):
    """A Claude model behind Anthropic's Messages API.

    ``max_tokens`` is required by Anthropic on every call; it is the default when the request does
    not set one. ``thinking_budget`` turns on extended thinking; ``reasoning_effort`` is ignored.
    """

    name: str = "anthropic"

    def __init__(
        self,
        model: str = "claude-sonnet-4-6",
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 60.0,
        max_tokens: int = 4096,
        client: Any | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        if max_tokens <= 0:
            raise ValueError(f"max_tokens must be > 0, got {max_tokens}")
        if client is None:
            require_sdk("anthropic", "anthropic")
        self.model = model
        self.api_key = api_key
        self.base_url = base_url
        self.timeout = timeout
        self.max_tokens = max_tokens
        self._client: Any | None = client
        self._owns_client = client is None
        self._sdk_module: ModuleType | None = None
        self._httpx_module: ModuleType | None = None

    @property
    def _sdk(self) -> ModuleType:
        if self._sdk_module is None:
            try:
                import anthropic  # the only module that imports the anthropic SDK, on first use
            except ImportError as exc:
                raise MissingDependencyError("anthropic", "anthropic") from exc
            self._sdk_module = anthropic
            # The SDK does not wrap transport errors raised while a stream's body is read.
            self._httpx_module = import_sdk("httpx2", "anthropic")
        return self._sdk_module

    @property
    def client(self) -> Any:
        """The ``anthropic.AsyncAnthropic`` client, built on first use."""
        if self._client is None:
            self._client = self._sdk.AsyncAnthropic(
                api_key=self.api_key, base_url=self.base_url, timeout=self.timeout, max_retries=0
            )
        return self._client

    # --- requests --------------------------------------------------------------------------------

    def _request(self, spec: RequestSpec) -> tuple[dict[str, Any], str | None]:
        system, messages = to_anthropic_messages(spec.messages)
        if not messages:
            raise InvalidRequestError(
                "Anthropic needs at least one user or assistant message besides the system prompt"
            )
        kwargs: dict[str, Any] = {
            "model": spec.model or self.model,
            "messages": messages,
            "max_tokens": spec.max_tokens or self.max_tokens,
        }
        if system:
            kwargs["system"] = system
        tools = [
            {
                "name": t["function"]["name"],
                "description": t["function"].get("description", ""),
                "input_schema": t["function"].get("parameters") or {"type": "object", "properties": {}},
            }
            for t in spec.tools
        ]
        tool_choice = _tool_choice(spec.tool_choice)
        structured = _structured_tool(spec.response_format)
        if structured is not None:
            tools.append(structured)
            tool_choice = {"type": "tool", "name": structured["name"]}
        if tools:
            kwargs["tools"] = tools
        if spec.parallel_tool_calls is False and tools:
            tool_choice = {**(tool_choice or {"type": "auto"}), "disable_parallel_tool_use": True}
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        if spec.thinking_budget:
            kwargs["thinking"] = {"type": "enabled", "budget_tokens": spec.thinking_budget}
        if spec.stop:
            kwargs["stop_sequences"] = list(spec.stop)
        if spec.timeout is not None:
            kwargs["timeout"] = spec.timeout
        # The SDK no longer names sampling parameters (newer models reject them), so they ride in
        # the body for the models that still take them.
        sampling = {"temperature": spec.temperature, "top_p": spec.top_p}
        body = {k: v for k, v in sampling.items() if v is not None}
        extra = dict(spec.extra)
        if body or "extra_body" in extra:
            extra["extra_body"] = {**body, **(extra.get("extra_body") or {})}
        kwargs.update(extra)
        return kwargs, structured["name"] if structured else None

    def _map_error(self, exc: BaseException) -> LLMClientError:
        if isinstance(exc, LLMClientError):
            return exc
        sdk, httpx = self._sdk, self._httpx_module
        if isinstance(exc, sdk.APITimeoutError) or (
            httpx is not None and isinstance(exc, httpx.TimeoutException)
        ):
            return RequestTimeoutError(
                f"the request timed out (timeout {self.timeout}s)", provider=self.name, original=exc
            )
        if isinstance(exc, sdk.APIConnectionError) or (
            httpx is not None and isinstance(exc, httpx.TransportError)
        ):
            return ProviderConnectionError(f"connection failed: {exc}", provider=self.name, original=exc)
        if isinstance(exc, sdk.APIStatusError):
            err_type = getattr(exc, "type", None)
            status = exc.status_code
            if status < 400:  # an `error` event inside a stream that had started with 200
                status = _ERROR_TYPE_STATUS.get(err_type or "", 500)
            message = getattr(exc, "api_message", None) or exc.message
            return error_from_status(
                status, message, provider=self.name, code=err_type, headers=exc.response.headers, original=exc
            )
        if isinstance(exc, sdk.APIResponseValidationError):
            return MalformedResponseError(f"unexpected response: {exc}", provider=self.name, original=exc)
        if isinstance(exc, sdk.AnthropicError) and "api_key" in str(exc):
            return AuthenticationError(
                "no Anthropic API key: pass api_key=... or set ANTHROPIC_API_KEY",
                provider=self.name,
                original=exc,
            )
        if isinstance(exc, ValueError):
            return MalformedResponseError(f"unparsable response: {exc}", provider=self.name, original=exc)
        return ProviderError(f"unexpected failure: {exc!r}", provider=self.name, original=exc)

    # --- responses -------------------------------------------------------------------------------

    def _finish_reason(self, stop_reason: str | None, *, structured: bool) -> str:
        if stop_reason == "refusal":
            raise ContentFilterError(
                "the model refused to answer (stop_reason 'refusal')", provider=self.name
            )
        if structured:
            return "stop"
        return _STOP_REASONS.get(stop_reason or "", stop_reason or "stop")

    def _parse(self, response: Any, model: str, structured_name: str | None) -> CompletionResult:
        texts: list[str] = []
        thinking: list[str] = []
        calls: list[ToolCall] = []
        structured_input: str | None = None
        for block in field(response, "content") or ():
            kind = field(block, "type")
            if kind == "text":
                texts.append(field(block, "text", ""))
            elif kind == "thinking":
                thinking.append(field(block, "thinking", ""))
            elif kind == "tool_use":
                arguments = json.dumps(field(block, "input", {}))
                if structured_name is not None and field(block, "name") == structured_name:
                    structured_input = arguments
                else:
                    calls.append(
                        ToolCall(id=field(block, "id"), name=field(block, "name"), arguments=arguments)
                    )
        content = structured_input if structured_input is not None else ("".join(texts) if texts else None)
        return CompletionResult(
            content=content if content is not None or calls else "",
            tool_calls=tuple(calls),
            usage=_usage(field(response, "usage")),
            model=field(response, "model") or model,
            finish_reason=self._finish_reason(
                field(response, "stop_reason"), structured=structured_input is not None
            ),
            reasoning="".join(thinking) or None,
            provider=self.name,
            raw=response,
        )

    # --- the Provider interface ------------------------------------------------------------------

    async def complete(self, spec: RequestSpec) -> CompletionResult:
        kwargs, structured_name = self._request(spec)
        try:
            response = await self.client.messages.create(**kwargs)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise self._map_error(exc) from exc
        return self._parse(response, kwargs["model"], structured_name)

    async def stream(self, spec: RequestSpec) -> AsyncIterator[StreamEvent]:
        kwargs, structured_name = self._request(spec)
        acc = StreamAccumulator(model=kwargs["model"], provider=self.name)
        # content-block index -> (tool ordinal, tool name); tool calls are numbered 0, 1, ...
        tool_blocks: dict[int, tuple[int, str]] = {}
        start_usage: Any = None
        stop_reason: str | None = None
        sdk_stream: Any = None

        def emit(event: StreamEvent) -> StreamEvent:
            acc.add(event)
            return event

        try:
            try:
                sdk_stream = await self.client.messages.create(**kwargs, stream=True)
                async for event in sdk_stream:
                    kind = field(event, "type")
                    if kind == "message_start":
                        message = field(event, "message")
                        acc.model = field(message, "model") or acc.model
                        start_usage = field(message, "usage")
                    elif kind == "content_block_start":
                        block = field(event, "content_block")
                        if field(block, "type") == "tool_use":
                            name = field(block, "name", "")
                            if name != structured_name:
                                ordinal = sum(1 for _, n in tool_blocks.values() if n != structured_name)
                                tool_blocks[field(event, "index", 0)] = (ordinal, name)
                                yield emit(ToolCallDelta(index=ordinal, id=field(block, "id"), name=name))
                            else:
                                tool_blocks[field(event, "index", 0)] = (-1, name)
                        elif field(block, "type") == "text" and field(block, "text"):
                            yield emit(TextDelta(field(block, "text")))
                    elif kind == "content_block_delta":
                        delta = field(event, "delta")
                        dtype = field(delta, "type")
                        if dtype == "text_delta":
                            yield emit(TextDelta(field(delta, "text", "")))
                        elif dtype == "thinking_delta":
                            yield emit(ReasoningDelta(field(delta, "thinking", "")))
                        elif dtype == "input_json_delta":
                            ordinal, _ = tool_blocks.get(field(event, "index", 0), (-1, ""))
                            piece = field(delta, "partial_json", "")
                            if ordinal < 0:  # the structured-output tool: its input is the content
                                if piece:
                                    yield emit(TextDelta(piece))
                            elif piece:
                                yield emit(ToolCallDelta(index=ordinal, arguments=piece))
                    elif kind == "message_delta":
                        stop_reason = field(field(event, "delta"), "stop_reason") or stop_reason
                        usage = _usage(start_usage)
                        end = field(event, "usage")
                        final = Usage(
                            input_tokens=usage.input_tokens,
                            output_tokens=int(field(end, "output_tokens", 0)),
                            cached_tokens=usage.cached_tokens,
                            cache_write_tokens=usage.cache_write_tokens,
                        )
                        yield emit(UsageUpdate(final))
                if stop_reason is None:
                    raise ProviderConnectionError("the stream ended before message_stop", provider=self.name)
                acc.finish_reason = self._finish_reason(stop_reason, structured=structured_name is not None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                yield StreamError(interrupted(self._map_error(exc), acc), acc.result())
                return
            for call in acc.pending_tool_calls():
                yield emit(ToolCallReady(call))
            yield StreamDone(acc.result())
        finally:
            if sdk_stream is not None:
                await sdk_stream.close()

    async def aclose(self) -> None:
        if self._owns_client and self._client is not None:
            client, self._client = self._client, None
            await client.close()
