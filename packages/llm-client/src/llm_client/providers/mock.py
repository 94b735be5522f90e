"""A scripted provider for tests and benchmarks: no network, deterministic, and fast.

Everything above the provider (engine, middleware, agent loop, upper layers) is tested against
this mock, and the engine's own overhead is measured with it, so ``complete`` does as little as
possible: no copies, no sleeps, no regex. Streaming follows the same contract as the real
providers (one terminal event, a final result equal to ``complete``'s), so code tested against
the mock behaves the same against a real model.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from llm_client.errors import LLMClientError, MockExhaustedError, StreamInterruptedError
from llm_client.messages import ToolCall
from llm_client.providers.base import Provider
from llm_client.spec import CompletionResult, RequestSpec
from llm_client.streaming import (
    ReasoningDelta,
    StreamDone,
    StreamError,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallReady,
    UsageUpdate,
)
from llm_client.usage import Usage

__all__ = ["MockResponse", "MockProvider", "MockItem"]


_CACHE_SIZE = 256


def _word_chunks(text: str) -> tuple[str, ...]:
    """Split into words that keep their trailing whitespace, so the chunks join back to ``text``."""
    chunks: list[str] = []
    start = 0
    n = len(text)
    i = 0
    while i < n:
        while i < n and text[i].isspace():  # leading whitespace sticks to the first word
            i += 1
        while i < n and not text[i].isspace():
            i += 1
        while i < n and text[i].isspace():
            i += 1
        chunks.append(text[start:i])
        start = i
    return tuple(chunks)


@dataclass(frozen=True, slots=True)
class MockResponse:
    """One scripted answer.

    ``chunks`` is how the content streams (default: one chunk per word, spaces kept).
    ``error`` is raised by ``complete`` and is the stream's only event. ``stream_error_after=n``
    makes a stream yield ``n`` text chunks and then fail with :class:`StreamInterruptedError`,
    to test what callers do with a partial answer. ``complete`` ignores ``stream_error_after``.
    """

    content: str | None = None
    tool_calls: Sequence[ToolCall] = ()
    reasoning: str | None = None
    usage: Usage | None = None
    chunks: Sequence[str] | None = None
    error: LLMClientError | None = None
    stream_error_after: int | None = None
    finish_reason: str | None = None
    model: str | None = None
    # Derived once, so the provider's hot path only reads them.
    _output_tokens: int = field(default=0, init=False, repr=False, compare=False)
    _needs_ids: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        content, calls = self.content, self.tool_calls
        if content is not None and type(content) is not str:
            raise TypeError(f"MockResponse content must be a str or None, got {type(content).__name__}")
        size = len(content) if content else 0
        if calls:
            calls = tuple(calls)
            for call in calls:
                if not isinstance(call, ToolCall):
                    raise TypeError(
                        f"MockResponse tool_calls must be ToolCall objects, got {type(call).__name__}; "
                        "use MockResponse.tool_calls([(name, arguments), ...]) to build them"
                    )
                size += len(call.arguments)
            object.__setattr__(self, "tool_calls", calls)
            object.__setattr__(self, "_needs_ids", any(not c.id for c in calls))
        elif type(calls) is not tuple:
            object.__setattr__(self, "tool_calls", ())
        if self.chunks is not None:
            object.__setattr__(self, "chunks", tuple(self.chunks))
        if self.error is not None and not isinstance(self.error, LLMClientError):
            raise TypeError(
                f"MockResponse error must be an LLMClientError (e.g. RateLimitError('...')), "
                f"got {type(self.error).__name__}"
            )
        if self.stream_error_after is not None and self.stream_error_after < 0:
            raise ValueError(f"stream_error_after must be >= 0, got {self.stream_error_after}")
        object.__setattr__(self, "_output_tokens", size // 4 + 1)

    @classmethod
    def text(cls, content: str, **kwargs: Any) -> MockResponse:
        return cls(content=content, **kwargs)

    @classmethod
    def tool_call(
        cls, name: str, arguments: Mapping[str, Any] | str | None = None, id: str | None = None, **kwargs: Any
    ) -> MockResponse:
        """A response calling one tool. Without ``id`` the provider assigns ``call_<n>``."""
        return cls(tool_calls=(_make_call(name, arguments, id),), **kwargs)

    @classmethod
    def raise_(cls, error: LLMClientError) -> MockResponse:
        return cls(error=error)


ToolCallSpec: TypeAlias = (
    ToolCall | tuple[str, Mapping[str, Any] | str] | tuple[str, Mapping[str, Any] | str, str]
)


def _tool_calls_builder(
    cls: type[MockResponse], calls: Iterable[ToolCallSpec], **kwargs: Any
) -> MockResponse:
    """A response calling several tools: ``[(name, arguments), (name, arguments, id), ToolCall]``."""
    built: list[ToolCall] = []
    for call in calls:
        built.append(call if isinstance(call, ToolCall) else _make_call(*call))
    return cls(tool_calls=tuple(built), **kwargs)


class _FieldOrBuilder:
    """``MockResponse.tool_calls`` is both a field and, on the class, a builder.

    Reading it on an instance gives the field (through the slot); reading it on the class gives
    the builder, so ``MockResponse.tool_calls([...])`` reads like the other builders.
    """

    def __init__(self, slot: Any, builder: Callable[..., MockResponse]) -> None:
        self.slot = slot
        self.builder = builder
        self.__doc__ = builder.__doc__

    def __get__(self, obj: Any, owner: type[Any] | None = None) -> Any:
        if obj is None:
            return functools.partial(self.builder, owner)
        return self.slot.__get__(obj, owner)

    def __set__(self, obj: Any, value: Any) -> None:
        self.slot.__set__(obj, value)

    def __delete__(self, obj: Any) -> None:
        self.slot.__delete__(obj)


type.__setattr__(
    MockResponse, "tool_calls", _FieldOrBuilder(vars(MockResponse)["tool_calls"], _tool_calls_builder)
)


def _make_call(
    name: str, arguments: Mapping[str, Any] | str | None = None, id: str | None = None
) -> ToolCall:
    if arguments is None:
        args = "{}"
    elif isinstance(arguments, str):
        args = arguments
    else:
        args = json.dumps(arguments)
    return ToolCall(id=id or "", name=name, arguments=args)


MockItem: TypeAlias = MockResponse | str | ToolCall | Sequence[ToolCall] | CompletionResult | LLMClientError


def _to_response(item: Any, where: str) -> MockResponse | CompletionResult:
    if isinstance(item, (MockResponse, CompletionResult)):
        return item
    if isinstance(item, str):
        return MockResponse(content=item)
    if isinstance(item, ToolCall):
        return MockResponse(tool_calls=(item,))
    if isinstance(item, LLMClientError):
        return MockResponse(error=item)
    if isinstance(item, (list, tuple)) and all(isinstance(c, ToolCall) for c in item):
        return MockResponse(tool_calls=tuple(item))
    raise TypeError(
        f"{where}: expected a MockResponse, str, ToolCall, list of ToolCall, CompletionResult or "
        f"LLMClientError, got {type(item).__name__}"
    )


def _input_tokens(spec: RequestSpec) -> int:
    size = 0
    for message in spec.messages:
        content = message.get("content")
        if type(content) is str:
            size += len(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, Mapping):
                    text = part.get("text")
                    if isinstance(text, str):
                        size += len(text)
    return size // 4 + 1


class MockProvider(Provider):
    """A provider that answers from a script, or from a function of the request.

    Scripted: ``MockProvider(["Hello", MockResponse.tool_call("add", {"a": 1})])`` consumes one
    item per call (``complete`` or ``stream``) and raises :class:`MockExhaustedError` past the end.
    Function mode: ``MockProvider(handler=lambda spec: ...)`` (sync or async) answers each request.
    Every request is recorded in ``calls``. Usage is deterministic (about four characters a token)
    and carries no cost: the engine prices usage, not providers.
    """

    name = "mock"

    def __init__(
        self,
        responses: Sequence[MockItem] | None = None,
        *,
        handler: Callable[[RequestSpec], Any] | None = None,
        model: str = "mock-model",
        name: str = "mock",
    ) -> None:
        if (responses is None) == (handler is None):
            raise ValueError(
                "MockProvider needs exactly one of responses=[...] (a script; may be empty and filled "
                "with add()) or handler=callable(spec) (answers computed per request)"
            )
        if isinstance(responses, (str, MockResponse, CompletionResult, LLMClientError, ToolCall)):
            raise TypeError("responses must be a list of scripted items, e.g. responses=['Hello']")
        self.model = model
        if name != "mock":
            self.name = name
        self._handler = handler
        self._script: list[MockResponse | CompletionResult] = []
        self._index = 0
        self._next_id = 0
        self.calls: list[RequestSpec] = []
        # Results are immutable, so identical answers are built once: a benchmark loop that gets
        # the same reply for the same prompt then measures the engine, not dataclass construction.
        self._texts: dict[str, MockResponse] = {}
        self._usages: dict[tuple[int, int], Usage] = {}
        self._results: dict[tuple[int, int, str | None], tuple[MockResponse, CompletionResult]] = {}
        if responses is not None:
            self.add(*responses)

    # --- script ---------------------------------------------------------------------------------

    def add(self, *responses: MockItem) -> MockProvider:
        """Append scripted responses; returns the provider, for chaining."""
        if self._handler is not None:
            raise ValueError("add() is for scripted MockProviders; this one answers with a handler")
        start = len(self._script)
        self._script.extend(
            self._text(r) if type(r) is str else _to_response(r, f"response {start + i}")
            for i, r in enumerate(responses)
        )
        return self

    @property
    def call_count(self) -> int:
        return len(self.calls)

    @property
    def last_call(self) -> RequestSpec | None:
        return self.calls[-1] if self.calls else None

    @property
    def remaining(self) -> int | None:
        """Scripted responses not yet used; None in function mode, which never runs out."""
        return None if self._handler is not None else len(self._script) - self._index

    def reset(self) -> None:
        """Forget the recorded calls and replay the script from the start (ids restart too)."""
        self.calls.clear()
        self._index = 0
        self._next_id = 0

    # --- answering ------------------------------------------------------------------------------

    async def _next(self, spec: RequestSpec) -> MockResponse | CompletionResult:
        self.calls.append(spec)
        handler = self._handler
        if handler is None:
            i = self._index
            if i >= len(self._script):
                raise self._exhausted(spec)
            self._index = i + 1
            return self._script[i]
        value = handler(spec)
        if inspect.isawaitable(value):
            value = await value
        if type(value) is str:
            return self._text(value)
        return _to_response(value, "MockProvider handler returned an unsupported value")

    def _usage(self, input_tokens: int, output_tokens: int) -> Usage:
        usage = self._usages.get((input_tokens, output_tokens))
        if usage is None:
            if len(self._usages) >= _CACHE_SIZE:
                self._usages.clear()
            usage = self._usages[input_tokens, output_tokens] = Usage(
                input_tokens=input_tokens, output_tokens=output_tokens
            )
        return usage

    def _text(self, text: str) -> MockResponse:
        response = self._texts.get(text)
        if response is None:
            if len(self._texts) >= _CACHE_SIZE:
                self._texts.clear()
            response = self._texts[text] = MockResponse(content=text)
        return response

    def _exhausted(self, spec: RequestSpec) -> MockExhaustedError:
        last = spec.messages[-1] if spec.messages else None
        shown = repr(last)
        if len(shown) > 200:
            shown = shown[:197] + "..."
        n = len(self._script)
        return MockExhaustedError(
            f"MockProvider had {n} scripted response{'s' if n != 1 else ''} and all were used; "
            f"call {len(self.calls)} asked for another. Last message of that request: {shown}. "
            "Script more responses (or use add())",
            provider=self.name,
        )

    def _result(self, response: MockResponse, spec: RequestSpec) -> CompletionResult:
        if response._needs_ids:  # fresh ids each time: never cached
            return self._build(response, spec, -1 if response.usage else _input_tokens(spec))
        input_tokens = -1 if response.usage else _input_tokens(spec)
        key = (id(response), input_tokens, spec.model)
        hit = self._results.get(key)
        if hit is not None and hit[0] is response:
            return hit[1]
        result = self._build(response, spec, input_tokens)
        if len(self._results) >= _CACHE_SIZE:
            self._results.clear()
        self._results[key] = (response, result)
        return result

    def _build(self, response: MockResponse, spec: RequestSpec, input_tokens: int) -> CompletionResult:
        calls = response.tool_calls
        if response._needs_ids:
            fixed: list[ToolCall] = []
            for call in calls:
                if call.id:
                    fixed.append(call)
                else:
                    self._next_id += 1
                    fixed.append(ToolCall(f"call_{self._next_id}", call.name, call.arguments))
            calls = tuple(fixed)
        content = response.content
        if content is None and not calls:
            content = ""
        return CompletionResult(
            content=content,
            tool_calls=calls,  # type: ignore[arg-type]  # a tuple since __post_init__
            usage=response.usage or self._usage(input_tokens, response._output_tokens),
            model=response.model or spec.model or self.model,
            finish_reason=response.finish_reason or ("tool_calls" if calls else "stop"),
            reasoning=response.reasoning,
            provider=self.name,
            raw=response,
        )

    async def complete(self, spec: RequestSpec) -> CompletionResult:
        response = await self._next(spec)
        if type(response) is CompletionResult:
            return response
        assert isinstance(response, MockResponse)
        if response.error is not None:
            raise response.error
        return self._result(response, spec)

    async def stream(self, spec: RequestSpec) -> AsyncIterator[StreamEvent]:
        model = spec.model or self.model
        try:
            response = await self._next(spec)
        except LLMClientError as exc:  # MockExhaustedError, or raised by a handler
            yield StreamError(exc, CompletionResult(model=model, provider=self.name))
            return
        if isinstance(response, CompletionResult):
            result = response
            response = MockResponse(
                content=result.content,
                tool_calls=result.tool_calls,
                reasoning=result.reasoning,
                usage=result.usage,
            )
        elif response.error is not None:
            yield StreamError(
                response.error, CompletionResult(model=response.model or model, provider=self.name)
            )
            return
        else:
            result = self._result(response, spec)

        if response.reasoning:
            yield ReasoningDelta(response.reasoning)
        content = response.content or ""
        chunks = (
            response.chunks if response.chunks is not None else (_word_chunks(content) if content else ())
        )
        fail_after = response.stream_error_after
        sent: list[str] = []
        for chunk in chunks:
            if fail_after is not None and len(sent) >= fail_after:
                break
            sent.append(chunk)
            yield TextDelta(chunk)
        if fail_after is not None:
            partial_text = "".join(sent)
            error = StreamInterruptedError(
                f"mock stream interrupted after {len(sent)} chunk{'s' if len(sent) != 1 else ''}",
                partial_text=partial_text,
                provider=self.name,
            )
            partial = CompletionResult(
                content=partial_text,
                reasoning=response.reasoning,
                model=result.model,
                finish_reason=None,
                provider=self.name,
            )
            yield StreamError(error, partial)
            return
        for index, call in enumerate(result.tool_calls):
            yield ToolCallDelta(index=index, id=call.id, name=call.name)
            yield ToolCallDelta(index=index, arguments=call.arguments)
            yield ToolCallReady(call)
        yield UsageUpdate(result.usage)
        yield StreamDone(result)
