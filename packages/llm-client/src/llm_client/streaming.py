"""The typed events of a streamed call, and the accumulator that turns them into a result.

A stream is an async iterator of :data:`StreamEvent`. It always ends with exactly one terminal
event: :class:`StreamDone` carrying the full :class:`CompletionResult`, or :class:`StreamError`
carrying a typed error (and what had arrived before it). Consumers match on the class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from .errors import LLMClientError
from .messages import ToolCall
from .spec import CompletionResult
from .usage import Usage

__all__ = [
    "TextDelta",
    "ReasoningDelta",
    "ToolCallDelta",
    "ToolCallReady",
    "UsageUpdate",
    "StreamDone",
    "StreamError",
    "StreamEvent",
    "TERMINAL_EVENTS",
    "StreamAccumulator",
    "aclose_stream",
]


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str
    type: Literal["text_delta"] = "text_delta"


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str
    type: Literal["reasoning_delta"] = "reasoning_delta"


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A fragment of a tool call as it streams: ``id``/``name`` arrive first, arguments in pieces."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    type: Literal["tool_call_delta"] = "tool_call_delta"


@dataclass(frozen=True, slots=True)
class ToolCallReady:
    """A tool call whose arguments are complete."""

    call: ToolCall
    type: Literal["tool_call"] = "tool_call"


@dataclass(frozen=True, slots=True)
class UsageUpdate:
    usage: Usage
    type: Literal["usage"] = "usage"


@dataclass(frozen=True, slots=True)
class StreamDone:
    """Terminal: the stream finished; ``result`` is what a non-streamed call would have returned."""

    result: CompletionResult
    type: Literal["done"] = "done"


@dataclass(frozen=True, slots=True)
class StreamError:
    """Terminal: the stream failed. ``partial`` holds what had arrived before the failure."""

    error: LLMClientError
    partial: CompletionResult = field(default_factory=CompletionResult)
    type: Literal["error"] = "error"


StreamEvent: TypeAlias = (
    TextDelta | ReasoningDelta | ToolCallDelta | ToolCallReady | UsageUpdate | StreamDone | StreamError
)
TERMINAL_EVENTS = (StreamDone, StreamError)


class StreamAccumulator:
    """Collects stream events into a :class:`CompletionResult`.

    Providers feed it their events as they yield them, so the final :class:`StreamDone` carries the
    same result a non-streamed call returns; tool calls are assembled by index.
    """

    __slots__ = ("_calls", "_ready", "_reasoning", "_text", "finish_reason", "model", "provider", "usage")

    def __init__(self, *, model: str | None = None, provider: str | None = None) -> None:
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._calls: dict[int, list[Any]] = {}  # index -> [id, name, [argument pieces]]
        self._ready: list[ToolCall] = []
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.model = model
        self.provider = provider

    @property
    def has_output(self) -> bool:
        return bool(self._text or self._reasoning or self._calls or self._ready)

    @property
    def text(self) -> str:
        return "".join(self._text)

    def add(self, event: StreamEvent) -> None:
        if isinstance(event, TextDelta):
            self._text.append(event.text)
        elif isinstance(event, ReasoningDelta):
            self._reasoning.append(event.text)
        elif isinstance(event, ToolCallDelta):
            slot = self._calls.setdefault(event.index, [None, None, []])
            if event.id:
                slot[0] = event.id
            if event.name:
                slot[1] = event.name
            if event.arguments:
                slot[2].append(event.arguments)
        elif isinstance(event, ToolCallReady):
            self._ready.append(event.call)
        elif isinstance(event, UsageUpdate):
            self.usage = event.usage

    def pending_tool_calls(self) -> list[ToolCall]:
        """Tool calls assembled from deltas (in index order) that were not yet announced as ready."""
        out: list[ToolCall] = []
        for index in sorted(self._calls):
            call_id, name, pieces = self._calls[index]
            out.append(
                ToolCall(id=call_id or f"call_{index}", name=name or "", arguments="".join(pieces) or "{}")
            )
        return out

    def result(self, raw: Any = None) -> CompletionResult:
        calls = tuple(self._ready) if self._ready else tuple(self.pending_tool_calls())
        return CompletionResult(
            content="".join(self._text) if self._text else (None if calls else ""),
            tool_calls=calls,
            usage=self.usage or Usage(),
            model=self.model,
            finish_reason=self.finish_reason or ("tool_calls" if calls else "stop"),
            reasoning="".join(self._reasoning) or None,
            provider=self.provider,
            raw=raw,
        )


async def aclose_stream(stream: object) -> None:
    """Close a stream that can be closed (an async generator, an SDK stream), so its ``finally``
    blocks run now: a stream abandoned while suspended is closed by the event loop's
    async-generator finalizer only later, after its owner has moved on."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()
