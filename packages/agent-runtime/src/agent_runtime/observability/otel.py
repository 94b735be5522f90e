"""OpenTelemetry spans built from runtime events, so tracing needs no hook inside the kernel.

Uses opentelemetry-api (``pip install 'agent-runtime[otel]'``), imported only when an adapter is
built. The adapter subscribes to an event bus and turns each job's events into a span tree:

* ``agent.job``: from ``job.started`` to the job's terminal event (``invoke_agent``);
* ``agent.run``: one agent turn, child of the job: the model call (from the job's start, or from the
  end of the previous turn, to ``model.done``) and the tools and actions that answer it; it ends when
  the next turn's model call starts or the job ends;
* ``agent.tool``: ``tool.start`` to ``tool.end``/``tool.error`` (``execute_tool``), child of the run;
  a tool that paused the job for a human ends when the job starts waiting;
* ``agent.action``: ``action.required`` to its resolution, expiry or cancellation, child of the run.

Span times are the events' timestamps, not the moment the bus delivered them, so a slow subscriber
does not stretch the spans. Spans are not made current: the handler runs on the bus's task, not in
the job, so llm-client's own ``chat`` spans are not parented under them.

Attributes follow the GenAI semantic conventions (``gen_ai.operation.name``, ``gen_ai.tool.*``,
``gen_ai.usage.*``, ``gen_ai.response.finish_reasons``) plus ``agent_runtime.*`` identifiers.
Content that may hold personal data is off by default: ``capture_input`` (the prompt, from ``jobs``
or the event, and action resolutions), ``capture_output`` (the turn's streamed text and the final
answer) and ``capture_tool_args`` (tool arguments when an event carries them, and action payloads).
``record_exceptions`` adds an ``exception`` event with the error message to failed tools and jobs.
``sampling_rate`` keeps that fraction of jobs, chosen from the job id, so every process that sees a
job (e.g. after a restart) makes the same choice; a job not kept produces no span at all.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, Self

from llm_client.errors import MissingDependencyError

from ..errors import NotFoundError, ValidationError
from ..events.bus import EventBus, EventSubscription
from ..events.models import RuntimeEvent, RuntimeEventType

__all__ = ["OTelConfig", "OpenTelemetryAdapter", "SPAN_JOB", "SPAN_RUN", "SPAN_TOOL", "SPAN_ACTION"]

logger = logging.getLogger("agent_runtime.observability")

SPAN_JOB = "agent.job"
SPAN_RUN = "agent.run"
SPAN_TOOL = "agent.tool"
SPAN_ACTION = "agent.action"

T = RuntimeEventType
_MODEL_EVENTS = frozenset({T.MODEL_TOKEN, T.MODEL_REASONING, T.MODEL_DONE})
_ACTION_ENDS = {
    T.ACTION_RESOLVED: "resolved",
    T.ACTION_EXPIRED: "expired",
    T.ACTION_CANCELLED: "cancelled",
}


def _import_otel_trace() -> Any:
    try:
        from opentelemetry import trace
    except ImportError as exc:
        raise MissingDependencyError("opentelemetry-api", "otel", distribution="agent-runtime") from exc
    return trace


class _JobLookup(Protocol):
    async def get(self, job_id: str) -> Any: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class OTelConfig:
    """What the adapter records. The PII switches are off by default; see the module docstring.

    ``max_attribute_length`` truncates captured text; ``max_open_jobs`` bounds the jobs tracked at
    once (the least recently active one is ended, marked ``agent_runtime.job.evicted``).
    """

    tracer_name: str = "agent_runtime"
    service_name: str | None = None
    capture_input: bool = False
    capture_output: bool = False
    capture_tool_args: bool = False
    record_exceptions: bool = True
    sampling_rate: float = 1.0
    max_attribute_length: int = 8192
    max_open_jobs: int = 10000

    def __post_init__(self) -> None:
        if not isinstance(self.tracer_name, str) or not self.tracer_name:
            raise ValidationError(f"tracer_name must be a non-empty string, got {self.tracer_name!r}")
        if self.service_name is not None and not isinstance(self.service_name, str):
            raise ValidationError(f"service_name must be a string or None, got {self.service_name!r}")
        for name in ("capture_input", "capture_output", "capture_tool_args", "record_exceptions"):
            if not isinstance(getattr(self, name), bool):
                raise ValidationError(f"{name} must be True or False, got {getattr(self, name)!r}")
        rate = self.sampling_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate <= 1.0:
            raise ValidationError(f"sampling_rate must be a number between 0 and 1, got {rate!r}")
        for name in ("max_attribute_length", "max_open_jobs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValidationError(f"{name} must be a positive integer, got {value!r}")

    def sampled(self, job_id: str) -> bool:
        """Whether ``job_id`` is traced: a stable hash of the id against ``sampling_rate``."""
        if self.sampling_rate >= 1.0:
            return True
        if self.sampling_rate <= 0.0:
            return False
        digest = hashlib.sha256(job_id.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") / 2.0**64 < self.sampling_rate


@dataclass(slots=True)
class _JobSpans:
    job: Any
    run: Any | None = None
    run_turn: int = 0
    run_model_done: bool = False
    run_text: list[str] = field(default_factory=list)
    tools: dict[str, Any] = field(default_factory=dict)
    actions: dict[str, Any] = field(default_factory=dict)
    last_ns: int = 0


def _ns(event: RuntimeEvent) -> int:
    return int(event.timestamp * 1_000_000_000)


class OpenTelemetryAdapter:
    """Turns a bus's runtime events into OpenTelemetry spans (see the module docstring).

    ``tracer_provider`` defaults to the global one; ``jobs`` (a JobManager or JobStore, e.g.
    ``kernel.jobs``) is only used with ``capture_input``, to read the job's prompt.
    """

    def __init__(
        self,
        event_bus: EventBus,
        config: OTelConfig | None = None,
        *,
        tracer_provider: Any | None = None,
        jobs: _JobLookup | None = None,
    ) -> None:
        self._trace = _import_otel_trace()
        if not isinstance(event_bus, EventBus):
            raise ValidationError(f"event_bus must be an EventBus, got {type(event_bus).__name__}")
        if config is None:
            config = OTelConfig()
        if not isinstance(config, OTelConfig):
            raise ValidationError(f"config must be an OTelConfig, got {type(config).__name__}")
        self.event_bus = event_bus
        self.config = config
        self._jobs = jobs
        self._tracer: Any = self._trace.get_tracer(
            config.tracer_name,
            tracer_provider=tracer_provider,
            attributes={"service.name": config.service_name} if config.service_name else None,
        )
        self._open: OrderedDict[str, _JobSpans] = OrderedDict()
        self._subscription: EventSubscription | None = None

    @property
    def running(self) -> bool:
        return self._subscription is not None

    @property
    def open_jobs(self) -> int:
        """Jobs whose ``agent.job`` span is still open."""
        return len(self._open)

    async def start(self) -> None:
        if self._subscription is None:
            self._subscription = await self.event_bus.subscribe(self.handle)

    async def stop(self) -> None:
        """Handle what the bus already holds, then end every open span (marked unfinished)."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            await subscription.wait_idle()
            await subscription.unsubscribe()
        for job_id in list(self._open):
            self._end_job(job_id, None, unfinished=True)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- event handling -------------------------------------------------------------------------

    async def handle(self, event: RuntimeEvent) -> None:
        """Apply one event to its job's spans (the subscription calls this, in publish order)."""
        job_id = event.job_id
        if job_id is None or not self.config.sampled(job_id):
            return
        state = self._open.get(job_id)
        if state is None:
            if event.is_terminal and event.type is not T.JOB_CANCELLED:
                return
            state = await self._open_job(event)
        else:
            self._open.move_to_end(job_id)
        now = _ns(event)
        kind = event.type
        if kind in _MODEL_EVENTS:
            self._on_model(state, event, now)
        elif kind is T.TOOL_START:
            self._on_tool_start(state, event, now)
        elif kind in (T.TOOL_END, T.TOOL_ERROR):
            self._on_tool_end(state, event, now)
        elif kind is T.ACTION_REQUIRED:
            self._on_action_required(state, event, now)
        elif kind in _ACTION_ENDS:
            self._on_action_end(state, event, now)
        elif kind is T.JOB_STATUS_CHANGED and event.data.get("status") == "waiting_action":
            for call_id in list(state.tools):
                span = state.tools.pop(call_id)
                span.set_attribute("agent_runtime.tool.interrupted", True)
                span.end(end_time=now)
        elif kind is T.FINAL_RESULT:
            self._on_final_result(state, event)
        elif kind is T.FINAL_ERROR:
            state.job.set_attribute("error.type", str(event.data.get("status") or "failed"))
        if event.is_terminal:
            self._end_job(job_id, event)
        else:
            state.last_ns = now

    async def _open_job(self, event: RuntimeEvent) -> _JobSpans:
        assert event.job_id is not None
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "invoke_agent",
            "agent_runtime.job.id": event.job_id,
        }
        for name, key in (("run_id", "run.id"), ("trace_id", "trace.id"), ("scope_id", "scope.id")):
            value = getattr(event, name)
            if value is not None:
                attributes[f"agent_runtime.{key}"] = value
        if self.config.service_name:
            attributes["agent_runtime.service.name"] = self.config.service_name
        if event.type is not T.JOB_STARTED:
            attributes["agent_runtime.job.resumed"] = True  # this process missed the job's start
        if self.config.capture_input:
            prompt = await self._prompt_of(event)
            if prompt is not None:
                attributes["gen_ai.input.messages"] = self._text(prompt)
        job_span = self._tracer.start_span(SPAN_JOB, attributes=attributes, start_time=_ns(event))
        state = _JobSpans(job=job_span, last_ns=_ns(event))
        self._open[event.job_id] = state
        while len(self._open) > self.config.max_open_jobs:
            oldest = next(iter(self._open))
            self._open[oldest].job.set_attribute("agent_runtime.job.evicted", True)
            self._end_job(oldest, None, unfinished=True)
        if event.type is T.JOB_STARTED:
            self._start_run(state, _ns(event))
        return state

    async def _prompt_of(self, event: RuntimeEvent) -> Any:
        for key in ("prompt", "input", "messages"):
            if key in event.data:
                return event.data[key]
        if self._jobs is None or event.job_id is None:
            return None
        try:
            record = await self._jobs.get(event.job_id)
        except NotFoundError:
            return None  # an event published without a kernel job behind it
        except Exception:
            logger.warning("cannot read job %s for its prompt", event.job_id, exc_info=True)
            return None
        state = getattr(record, "state", None) or {}
        request = state.get("request")
        if isinstance(request, Mapping):
            return request.get("prompt", request.get("messages"))
        # The kernel replaces "request" with the conversation when the job pauses for an action.
        for message in state.get("messages") or ():
            if isinstance(message, Mapping) and message.get("role") == "user":
                return message.get("content")
        return None  # the job already finished: the kernel keeps only its result

    def _context(self, span: Any) -> Any:
        return self._trace.set_span_in_context(span)

    def _start_run(self, state: _JobSpans, start_ns: int) -> None:
        state.run_turn += 1
        state.run = self._tracer.start_span(
            SPAN_RUN,
            context=self._context(state.job),
            attributes={"gen_ai.operation.name": "chat", "agent_runtime.turn": state.run_turn},
            start_time=start_ns,
        )
        state.run_model_done = False
        state.run_text = []

    def _end_run(self, state: _JobSpans, end_ns: int) -> None:
        if state.run is not None:
            state.run.end(end_time=end_ns)
            state.run = None

    def _parent(self, state: _JobSpans, now: int) -> Any:
        if state.run is None:
            self._start_run(state, state.last_ns or now)
        return state.run

    def _on_model(self, state: _JobSpans, event: RuntimeEvent, now: int) -> None:
        if state.run is None or state.run_model_done:
            # A new model call: the previous turn (its tools and actions) is over.
            self._end_run(state, state.last_ns)
            self._start_run(state, state.last_ns)
        run = state.run
        assert run is not None
        if event.type is T.MODEL_TOKEN and self.config.capture_output:
            state.run_text.append(str(event.data.get("token", "")))
        elif event.type is T.MODEL_DONE:
            state.run_model_done = True
            reason = event.data.get("finish_reason")
            if reason:
                run.set_attribute("gen_ai.response.finish_reasons", [str(reason)])
            turn = event.data.get("turn")
            if isinstance(turn, int):
                state.run_turn = turn
                run.set_attribute("agent_runtime.turn", turn)
            if self.config.capture_output and state.run_text:
                run.set_attribute("gen_ai.output.messages", self._text("".join(state.run_text)))
            run.add_event("gen_ai.model.done", timestamp=now)

    def _on_tool_start(self, state: _JobSpans, event: RuntimeEvent, now: int) -> None:
        name = str(event.data.get("tool") or "unknown")
        call_id = str(event.data.get("tool_call_id") or event.event_id)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            "gen_ai.tool.call.id": call_id,
            "gen_ai.tool.type": "function",
        }
        if self.config.capture_tool_args and "arguments" in event.data:
            attributes["gen_ai.tool.call.arguments"] = self._text(event.data["arguments"])
        state.tools[call_id] = self._tracer.start_span(
            SPAN_TOOL, context=self._context(self._parent(state, now)), attributes=attributes, start_time=now
        )

    def _on_tool_end(self, state: _JobSpans, event: RuntimeEvent, now: int) -> None:
        call_id = str(event.data.get("tool_call_id") or "")
        span = state.tools.pop(call_id, None)
        if span is None:
            return
        duration = event.data.get("duration_ms")
        if isinstance(duration, (int, float)):
            span.set_attribute("agent_runtime.tool.duration_ms", float(duration))
        if self.config.capture_output and "result" in event.data:
            span.set_attribute("gen_ai.tool.call.result", self._text(event.data["result"]))
        if event.type is T.TOOL_ERROR:
            self._fail(span, "tool_error", str(event.data.get("error") or "tool failed"), now)
        span.end(end_time=now)

    def _on_action_required(self, state: _JobSpans, event: RuntimeEvent, now: int) -> None:
        action_id = str(event.data.get("action_id") or event.event_id)
        attributes: dict[str, Any] = {"agent_runtime.action.id": action_id}
        if event.data.get("type") is not None:
            attributes["agent_runtime.action.type"] = str(event.data["type"])
        if self.config.capture_tool_args and event.data.get("payload") is not None:
            attributes["agent_runtime.action.payload"] = self._text(event.data["payload"])
        state.actions[action_id] = self._tracer.start_span(
            SPAN_ACTION,
            context=self._context(self._parent(state, now)),
            attributes=attributes,
            start_time=now,
        )

    def _on_action_end(self, state: _JobSpans, event: RuntimeEvent, now: int) -> None:
        span = state.actions.pop(str(event.data.get("action_id") or ""), None)
        if span is None:
            return
        span.set_attribute("agent_runtime.action.status", _ACTION_ENDS[event.type])
        if self.config.capture_input and event.data.get("resolution") is not None:
            span.set_attribute("agent_runtime.action.resolution", self._text(event.data["resolution"]))
        span.end(end_time=now)

    def _on_final_result(self, state: _JobSpans, event: RuntimeEvent) -> None:
        usage = event.data.get("usage")
        if isinstance(usage, Mapping):
            for key, attribute in (
                ("input_tokens", "gen_ai.usage.input_tokens"),
                ("output_tokens", "gen_ai.usage.output_tokens"),
            ):
                if isinstance(usage.get(key), int):
                    state.job.set_attribute(attribute, usage[key])
            if usage.get("total_cost") is not None:
                state.job.set_attribute("agent_runtime.cost_usd", str(usage["total_cost"]))
        if self.config.capture_output and event.data.get("content") is not None:
            state.job.set_attribute("gen_ai.output.messages", self._text(event.data["content"]))

    def _end_job(self, job_id: str, event: RuntimeEvent | None, *, unfinished: bool = False) -> None:
        state = self._open.pop(job_id, None)
        if state is None:
            return
        now = _ns(event) if event is not None else max(state.last_ns, time.time_ns())
        for span in [*state.tools.values(), *state.actions.values()]:
            span.set_attribute("agent_runtime.unfinished", True)
            span.end(end_time=now)
        self._end_run(state, now)
        job = state.job
        if unfinished:
            job.set_attribute("agent_runtime.unfinished", True)
        elif event is not None:
            status = str(event.data.get("status") or event.type.value.split(".", 1)[1])
            job.set_attribute("agent_runtime.job.status", status)
            if event.type is T.JOB_COMPLETED:
                job.set_status(self._trace.Status(self._trace.StatusCode.OK))
            else:
                message = str(event.data.get("error") or event.data.get("reason") or status)
                self._fail(job, status, message, now)
        job.end(end_time=now)

    def _fail(self, span: Any, error_type: str, message: str, now: int) -> None:
        span.set_attribute("error.type", error_type)
        span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, error_type))
        if self.config.record_exceptions:
            span.add_event(
                "exception",
                {"exception.type": error_type, "exception.message": message},
                timestamp=now,
            )

    def _text(self, value: Any) -> str:
        text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
        limit = self.config.max_attribute_length
        return text if len(text) <= limit else text[:limit] + "..."
