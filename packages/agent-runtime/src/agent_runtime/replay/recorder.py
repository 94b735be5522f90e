"""ReplayRecorder: record a kernel run so it can be replayed, event for event.

The bus only says *that* the model answered or a tool returned, not *what*: a deterministic replay
needs the answers themselves. The recorder therefore has two taps besides its bus subscription,
both installed by the caller without any change to the kernel:

* ``recorder.middleware()``: an llm-client middleware. Put it **first** in the engine's chain
  (``ExecutionEngine(provider, middleware=[recorder.middleware(), *others])``); the kernel keeps
  the engine's chain behind its own governance middleware, so it sees every model call of every
  job, after retries and with the final priced result, and records request digest, streamed chunks
  and result (or failure).
* ``recorder.wrap_tools(tools)``: the same tools whose handlers record what they returned (the
  text the model was shown) or raised. The kernel's own tool wrapper calls these handlers, so
  policy and budget checks still run first.

Which job a call belongs to comes from the kernel's ``current_execution()``; which tool call a
handler serves is resolved from the tool calls of the job's latest model response (name, then
arguments), since llm-client does not pass the call id to handlers.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import inspect
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from llm_client import (
    CompletionResult,
    ReasoningDelta,
    RequestContext,
    RequestSpec,
    StreamDone,
    StreamError,
    TextDelta,
    Tool,
)
from llm_client.errors import ToolInterrupt
from llm_client.middleware import Call, Middleware, StreamCall
from llm_client.streaming import StreamEvent, aclose_stream

from ..events import EventBus, EventSubscription, RuntimeEvent, RuntimeEventType
from ..kernel import current_execution
from .exchange import (
    error_to_dict,
    request_digest,
    request_to_dict,
    reset_tool_call_id,
    result_to_dict,
    set_tool_call_id,
)
from .models import (
    RecordedEvent,
    Recording,
    ReplayStateError,
    ReplayValidationError,
    RunMetadata,
    canonical_json,
    to_plain,
)

__all__ = ["ReplayRecorder"]

_TOOL_EVENTS = (RuntimeEventType.TOOL_END, RuntimeEventType.TOOL_ERROR)
# Which event carries a model call's record: an answer goes on MODEL_DONE, a failure on FINAL_ERROR.
_ANSWER_OF = {RuntimeEventType.MODEL_DONE: "result", RuntimeEventType.FINAL_ERROR: "error"}


@dataclass(slots=True)
class _JobCapture:
    """What the taps saw for one job, in call order."""

    exchanges: list[dict[str, Any]] = field(default_factory=list)
    # Tool calls of the latest model response: (id, name, raw JSON arguments), and those claimed.
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    claimed: set[str] = field(default_factory=set)
    tool_results: dict[str | None, list[dict[str, Any]]] = field(default_factory=dict)
    attached: bool = False

    def exchange(self, spec: RequestSpec) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "request_digest": request_digest(spec),
            "model": spec.model,
            "chunks": [],
            "result": None,
            "error": None,
        }
        if not self.exchanges:
            # The whole first request lets a replay rebuild the agent (tools, prompt, options)
            # when the caller has no agent object to offer.
            entry["request"] = request_to_dict(spec)
        self.exchanges.append(entry)
        return entry

    def answered(self, entry: dict[str, Any], result: CompletionResult) -> None:
        entry["result"] = result_to_dict(result)
        self.calls = [(tc.id, tc.name, tc.arguments) for tc in result.tool_calls]
        self.claimed = set()

    def claim(self, tool: Tool, arguments: Mapping[str, Any]) -> str | None:
        """The id of the pending call this handler invocation serves (None if unknown)."""
        candidates = [c for c in self.calls if c[1] == tool.name and c[0] not in self.claimed]
        if not candidates:
            return None
        chosen = candidates[0]
        if len(candidates) > 1:
            wanted = canonical_json(dict(arguments))
            for candidate in candidates:
                try:
                    validated = tool.validate_arguments(json.loads(candidate[2]))
                except Exception:
                    continue
                if canonical_json(validated) == wanted:
                    chosen = candidate
                    break
        self.claimed.add(chosen[0])
        return chosen[0]


def _first_request(capture: _JobCapture, entry: dict[str, Any]) -> dict[str, Any]:
    """The job's first attached response carries the first request, even if it was a retry."""
    if capture.exchanges and "request" not in entry and not capture.attached:
        entry = {**entry, "request": capture.exchanges[0].get("request")}
    capture.attached = True
    return entry


def _take_answer(pending: list[dict[str, Any]], capture: _JobCapture) -> dict[str, Any] | None:
    while pending and pending[0]["result"] is None:
        pending.pop(0)  # a failed attempt that was retried
    return _first_request(capture, pending.pop(0)) if pending else None


def _take_failure(pending: list[dict[str, Any]], capture: _JobCapture) -> dict[str, Any] | None:
    if not pending or any(entry["error"] is None for entry in pending):
        return None
    last = pending[-1]
    pending.clear()
    return _first_request(capture, last)


class _RecordingMiddleware(Middleware):
    """Records each model call of a recorded job; passes everything through unchanged."""

    def __init__(self, recorder: ReplayRecorder) -> None:
        self._recorder = recorder

    async def complete(self, spec: RequestSpec, context: RequestContext, call_next: Call) -> CompletionResult:
        capture = self._recorder._capture()
        if capture is None:
            return await call_next(spec, context)
        entry = capture.exchange(spec)
        try:
            result = await call_next(spec, context)
        except Exception as exc:
            entry["error"] = error_to_dict(exc)
            raise
        capture.answered(entry, result)
        return result

    async def stream(
        self, spec: RequestSpec, context: RequestContext, call_next: StreamCall
    ) -> AsyncIterator[StreamEvent]:
        capture = self._recorder._capture()
        inner = call_next(spec, context)
        if capture is None:
            try:
                async for event in inner:
                    yield event
            finally:
                await aclose_stream(inner)
            return
        entry = capture.exchange(spec)
        chunks: list[list[str]] = entry["chunks"]
        try:
            async for event in inner:
                if isinstance(event, TextDelta):
                    chunks.append(["text", event.text])
                elif isinstance(event, ReasoningDelta):
                    chunks.append(["reasoning", event.text])
                elif isinstance(event, StreamDone):
                    capture.answered(entry, event.result)
                elif isinstance(event, StreamError):
                    entry["error"] = error_to_dict(event.error)
                yield event
        except Exception as exc:
            entry["error"] = error_to_dict(exc)
            raise
        finally:
            await aclose_stream(inner)


async def _call(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], in_thread: bool
) -> Any:
    if in_thread:
        return await asyncio.to_thread(fn, *args, **kwargs)
    result = fn(*args, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


class ReplayRecorder:
    """Records the events a bus carries between ``start()`` and ``stop()``, with model responses
    and tool results from :meth:`middleware` and :meth:`wrap_tools`.

    ``job_id`` limits the recording to one job (default: every job on the bus). ``queue_size``
    bounds the recorder's subscription buffer: the in-memory bus drops the oldest events of a
    subscriber that falls that far behind, and a recording that lost events says so
    (``Recording.dropped_events``) rather than pretending to be complete.
    """

    def __init__(
        self,
        event_bus: EventBus,
        metadata: RunMetadata,
        *,
        job_id: str | None = None,
        queue_size: int = 1_000_000,
    ) -> None:
        if not isinstance(event_bus, EventBus):
            raise ReplayValidationError(f"event_bus must be an EventBus, got {type(event_bus).__name__}")
        if not isinstance(metadata, RunMetadata):
            raise ReplayValidationError(f"metadata must be a RunMetadata, got {type(metadata).__name__}")
        self.event_bus = event_bus
        self.metadata = metadata
        self.job_id = job_id
        self.queue_size = queue_size
        self._events: list[RuntimeEvent] = []
        self._captures: dict[str | None, _JobCapture] = {}
        self._subscription: EventSubscription | None = None
        self._initial_input: dict[str, Any] = {}
        self._started_at = 0.0
        self._active = False
        self._stopped = False
        self._listeners: list[Callable[[RuntimeEvent], None]] = []

    @property
    def recording(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        return self._active

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self, initial_input: Mapping[str, Any] | None = None) -> None:
        """Subscribe to the bus; events published from now on are recorded.

        ``initial_input`` is kept in the recording as given; a deterministic replay uses its
        ``prompt`` or ``messages`` to start the re-run.
        """
        if self._active or self._stopped:
            raise ReplayStateError("a ReplayRecorder records once: create a new one for another run")
        if initial_input is not None and not isinstance(initial_input, Mapping):
            raise ReplayValidationError(f"initial_input must be a dict, got {type(initial_input).__name__}")
        try:
            self._initial_input = to_plain(dict(initial_input or {}))
        except (TypeError, ValueError) as exc:  # pragma: no cover - to_plain stringifies the unknown
            raise ReplayValidationError(f"initial_input is not JSON-serialisable: {exc}") from exc
        self._started_at = time.time()
        self._subscription = await self.event_bus.subscribe(
            self._on_event, job_id=self.job_id, queue_size=self.queue_size
        )
        self._active = True

    async def stop(self) -> Recording:
        """Stop recording (after every event already published has been received) and return it."""
        if not self._active or self._subscription is None:
            raise ReplayStateError("stop() called on a ReplayRecorder that is not recording")
        subscription = self._subscription
        await subscription.wait_idle()
        await subscription.unsubscribe()
        self._active = False
        self._stopped = True
        return Recording(
            metadata=self.metadata,
            initial_input=self._initial_input,
            events=self._assemble(),
            dropped_events=subscription.dropped,
        )

    def _on_event(self, event: RuntimeEvent) -> None:
        self._events.append(event)
        for listener in self._listeners:
            listener(event)

    # --- taps ---------------------------------------------------------------------------------

    def middleware(self) -> Middleware:
        """The llm-client middleware that records model calls; put it first in the engine's chain."""
        return _RecordingMiddleware(self)

    def wrap_tool(self, tool: Tool | Callable[..., Any]) -> Tool:
        """``tool`` (or a function, made a Tool) with a handler that records its result."""
        base = tool if isinstance(tool, Tool) else Tool.from_function(tool)
        original = base.handler
        if original is None:
            return base
        in_thread = base.run_in_thread and not base._is_async
        recorder = self

        async def recorded(*args: Any, **kwargs: Any) -> Any:
            capture = recorder._capture()
            if capture is None:
                return await _call(original, args, kwargs, in_thread)
            arguments = {k: v for k, v in kwargs.items() if k != "context"}
            call_id = capture.claim(base, arguments)
            entry: dict[str, Any] = {
                "tool_call_id": call_id,
                "tool": base.name,
                "arguments": to_plain(arguments if not args else {"args": list(args), **arguments}),
                "content": None,
                "error": None,
            }
            token = set_tool_call_id(call_id)
            try:
                value = await _call(original, args, kwargs, in_thread)
            except ToolInterrupt:
                raise  # a pause for a human, not a result
            except Exception as exc:
                entry["error"] = {"type": type(exc).__name__, "message": str(exc)}
                capture.tool_results.setdefault(call_id, []).append(entry)
                raise
            finally:
                reset_tool_call_id(token)
            entry["content"] = Tool.format_result(value)
            capture.tool_results.setdefault(call_id, []).append(entry)
            return value

        # __wrapped__ makes inspect.signature report the original's parameters, so the kernel
        # still injects ``context`` into handlers that ask for it.
        functools.update_wrapper(recorded, original)
        clone = copy.copy(base)
        clone.handler = recorded
        clone._is_async = True
        clone.run_in_thread = False
        return clone

    def wrap_tools(self, tools: Iterable[Tool | Callable[..., Any]]) -> list[Tool]:
        return [self.wrap_tool(t) for t in tools]

    def _capture(self) -> _JobCapture | None:
        if not self._active:
            return None
        ctx = current_execution()
        job_id = ctx.job_id if ctx is not None else None
        if self.job_id is not None and job_id != self.job_id:
            return None
        capture = self._captures.get(job_id)
        if capture is None:
            capture = self._captures[job_id] = _JobCapture()
        return capture

    # --- assembling ---------------------------------------------------------------------------

    def _assemble(self) -> list[RecordedEvent]:
        """Attach each job's model responses and tool results to the events they produced.

        The n-th MODEL_DONE of a job gets the job's n-th answered model call; a failed model call
        (always the job's last) goes on its FINAL_ERROR. Failed attempts that a retry middleware
        outside the recorder retried produced no event and are dropped: the replay engine has no
        retry middleware, so it must get only what the agent finally saw. Tool results go on the
        TOOL_END / TOOL_ERROR event of their tool call id.
        """
        queues: dict[str | None, list[dict[str, Any]]] = {
            job: list(c.exchanges) for job, c in self._captures.items()
        }
        out: list[RecordedEvent] = []
        for event in self._events:
            job = event.job_id
            capture = self._captures.get(job) if job is not None else None
            model_response: dict[str, Any] | None = None
            tool_result: dict[str, Any] | None = None
            if capture is not None:
                pending = queues[job]
                if event.type is RuntimeEventType.MODEL_DONE:
                    model_response = _take_answer(pending, capture)
                elif event.type is RuntimeEventType.FINAL_ERROR:
                    model_response = _take_failure(pending, capture)
                elif event.type in _TOOL_EVENTS:
                    tool_result = self._take_tool_result(capture, event)
            out.append(
                RecordedEvent(
                    event=event,
                    relative_timestamp_ms=max(0.0, (event.timestamp - self._started_at) * 1000.0),
                    model_response=model_response,
                    tool_result=tool_result,
                )
            )
        return out

    @staticmethod
    def _take_tool_result(capture: _JobCapture, event: RuntimeEvent) -> dict[str, Any] | None:
        call_id = event.data.get("tool_call_id")
        found = capture.tool_results.get(call_id)
        if found:
            return found.pop(0)
        unresolved = capture.tool_results.get(None) or []
        for index, entry in enumerate(unresolved):
            if entry["tool"] == event.data.get("tool"):
                entry = unresolved.pop(index)
                return {**entry, "tool_call_id": call_id}
        return None
