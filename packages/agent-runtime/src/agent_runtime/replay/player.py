"""ReplayPlayer: play a recording back, or run it again and check that it did the same thing.

* ``FAST`` and ``TIMED`` republish the recorded events to the bus (as fast as possible, or with
  the recorded gaps between them) so consumers such as a UI or an SSE client see the run again.
  Republished events get new event ids and a fresh job id per recorded job (see
  ``ReplayResult.job_ids``): a receiver deduplicating by event id must not drop them as
  redeliveries, and the original job's history and terminal state on the bus stay untouched.
  ``preserve_ids=True`` republishes them exactly as recorded instead.
* ``DETERMINISTIC`` re-executes the job in a RuntimeKernel whose model is a :class:`ReplayProvider`
  answering with the recorded responses and whose tools return the recorded results; no provider
  and no tool handler of the original run is called. The new run is recorded the same way the
  original was, and the first event whose fingerprint differs is reported.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llm_client import (
    Agent,
    CompletionResult,
    ExecutionEngine,
    LLMClientError,
    ReasoningDelta,
    RequestSpec,
    StreamDone,
    StreamError,
    TextDelta,
    Tool,
)
from llm_client.providers.base import Provider
from llm_client.streaming import StreamEvent

from ..context import RunVersions
from ..events import EventBus, RuntimeEvent, RuntimeEventType
from ..kernel import ExecutionRequest, ExecutionResult, RuntimeKernel
from .exchange import (
    ReplayExhaustedError,
    ReplayToolMismatchError,
    current_tool_call_id,
    error_from_dict,
    result_from_dict,
)
from .models import (
    EventFingerprint,
    RecordedEvent,
    Recording,
    ReplayIssue,
    ReplayValidationError,
)
from .recorder import ReplayRecorder

__all__ = [
    "ReplayMode",
    "ReplayPlayer",
    "ReplayResult",
    "ReplayDivergence",
    "ReplayProvider",
    "KernelFactory",
]

Sleep = Callable[[float], Awaitable[Any]]
Clock = Callable[[], float]
KernelFactory = Callable[[ExecutionEngine, Agent, EventBus], RuntimeKernel]
"""Builds the kernel of a deterministic replay on the engine, agent and bus it is given (e.g. to
reuse the original run's policy engine)."""

_REQUEST_KEYS = ("prompt", "messages", "scope_id", "principal_id", "session_id", "metadata", "tags")
_OPTION_KEYS = (
    "tool_choice",
    "temperature",
    "top_p",
    "max_tokens",
    "stop",
    "response_format",
    "reasoning_effort",
    "thinking_budget",
)
_WAITING = "waiting_action"


async def _default_sleep(delay: float) -> None:
    await asyncio.sleep(delay)


class ReplayMode(enum.StrEnum):
    FAST = "fast"
    TIMED = "timed"
    DETERMINISTIC = "deterministic"


@dataclass(frozen=True, slots=True)
class ReplayDivergence:
    """Where a deterministic replay stopped matching the recording.

    ``index`` counts the job's events (both runs are aligned there); ``recording_index`` is the
    same event's position in ``recording.events`` (None when the re-run produced more events than
    were recorded). ``expected`` / ``actual`` are None when that run had no event at ``index``.
    """

    index: int
    recording_index: int | None
    expected: EventFingerprint | None
    actual: EventFingerprint | None
    expected_event: RuntimeEvent | None = None
    actual_event: RuntimeEvent | None = None

    @property
    def reason(self) -> str:
        if self.actual is None:
            return "the replayed run ended before this event"
        if self.expected is None:
            return "the replayed run produced more events than were recorded"
        if self.expected.event_type != self.actual.event_type:
            return f"expected a {self.expected.event_type} event, got {self.actual.event_type}"
        return f"{self.expected.event_type} event differs (data, model response or tool result)"

    def __str__(self) -> str:
        return (
            f"divergence at event {self.index}: {self.reason} (expected {self.expected}, got {self.actual})"
        )


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What a replay did. ``success`` is False only when a deterministic replay diverged."""

    mode: ReplayMode
    events_replayed: int
    duration_seconds: float
    divergence: ReplayDivergence | None = None
    fingerprints_compared: int = 0
    job_ids: Mapping[str, str] = field(default_factory=dict)
    replay_recording: Recording | None = None
    execution: ExecutionResult | None = None

    @property
    def success(self) -> bool:
        return self.divergence is None

    @property
    def events_per_second(self) -> float:
        return self.events_replayed / self.duration_seconds if self.duration_seconds > 0 else float("inf")


class ReplayProvider(Provider):
    """An llm-client provider that answers with recorded responses, in order, and nothing else.

    Asked once more than the recording answered, it raises :class:`ReplayExhaustedError`. Streams
    yield the recorded chunks, so the kernel publishes the same MODEL_TOKEN events again.
    """

    name = "replay"

    def __init__(self, responses: Sequence[Mapping[str, Any]], *, model: str = "replay") -> None:
        self.model = model
        self._responses = list(responses)
        self._next_index = 0
        self.requests: list[RequestSpec] = []

    @property
    def remaining(self) -> int:
        return len(self._responses) - self._next_index

    def _take(self, spec: RequestSpec) -> Mapping[str, Any]:
        self.requests.append(spec)
        if self._next_index >= len(self._responses):
            raise ReplayExhaustedError(
                f"the recording holds {len(self._responses)} model responses; "
                f"the replayed run asked for response {self._next_index + 1}",
                provider=self.name,
            )
        response = self._responses[self._next_index]
        self._next_index += 1
        return response

    async def complete(self, spec: RequestSpec) -> CompletionResult:
        response = self._take(spec)
        if response.get("error") is not None:
            raise error_from_dict(response["error"], model_call=True)
        return result_from_dict(response["result"])

    async def stream(self, spec: RequestSpec) -> AsyncIterator[StreamEvent]:
        response = self._take(spec)
        for kind, text in response.get("chunks") or ():
            yield ReasoningDelta(text) if kind == "reasoning" else TextDelta(text)
        if response.get("error") is not None:
            error = error_from_dict(response["error"], model_call=True)
            if isinstance(error, LLMClientError):
                yield StreamError(error)
                return
            raise error  # pragma: no cover - model-call failures are rebuilt as LLMClientError
        yield StreamDone(result_from_dict(response["result"]))


def _replay_handler(name: str, results: dict[str, deque[dict[str, Any]]]) -> Callable[..., Any]:
    async def replayed(**arguments: Any) -> Any:
        call_id = current_tool_call_id()
        queue = results.get(call_id) if call_id is not None else None
        if not queue:
            raise ReplayToolMismatchError(
                f"the recording has no result for {name!r} call {call_id!r} with arguments {arguments!r}"
            )
        entry = queue.popleft()
        if entry.get("error") is not None:
            raise error_from_dict(entry["error"], model_call=False)
        return entry["content"]

    replayed.__name__ = f"replay_{name}"
    return replayed


_EVENT_FIELDS = tuple(f.name for f in dataclasses.fields(RuntimeEvent))


def _copy_event(event: RuntimeEvent, event_id: str, timestamp: float, job_id: str | None) -> RuntimeEvent:
    """``event`` under new ids, without RuntimeEvent's validation.

    A recorded event was validated (including a JSON encode of its data) when it was built; doing
    it again for every republished event would cost more than the rest of a FAST replay.
    """
    clone = object.__new__(RuntimeEvent)
    for name in _EVENT_FIELDS:
        object.__setattr__(clone, name, getattr(event, name))
    object.__setattr__(clone, "event_id", event_id)
    object.__setattr__(clone, "timestamp", timestamp)
    object.__setattr__(clone, "job_id", job_id)
    object.__setattr__(clone, "data", dict(event.data))
    return clone


def _default_kernel(engine: ExecutionEngine, agent: Agent, bus: EventBus) -> RuntimeKernel:
    return RuntimeKernel(engine, agent, event_bus=bus)


class ReplayPlayer:
    """Plays ``recording`` back onto ``event_bus``.

    ``agent`` is the agent the recorded job ran (its tool schemas, system prompt and settings are
    used; its provider and tool handlers never are). Without it a deterministic replay rebuilds
    the agent from the first recorded model request. ``kernel_factory`` builds the replay kernel
    (default: a plain in-memory RuntimeKernel). ``sleep`` and ``clock`` drive TIMED mode and are
    injectable so it can be tested without waiting.
    """

    def __init__(
        self,
        recording: Recording,
        event_bus: EventBus,
        *,
        agent: Agent | None = None,
        kernel_factory: KernelFactory | None = None,
        preserve_ids: bool = False,
        sleep: Sleep | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        if not isinstance(recording, Recording):
            raise ReplayValidationError(f"recording must be a Recording, got {type(recording).__name__}")
        if not isinstance(event_bus, EventBus):
            raise ReplayValidationError(f"event_bus must be an EventBus, got {type(event_bus).__name__}")
        if agent is not None and not isinstance(agent, Agent):
            raise ReplayValidationError(f"agent must be an llm_client Agent, got {type(agent).__name__}")
        self.recording = recording
        self.event_bus = event_bus
        self.agent = agent
        self.kernel_factory = kernel_factory or _default_kernel
        self.preserve_ids = preserve_ids
        self._sleep = sleep
        self._clock = clock
        # Republished event ids: one random prefix per player and a counter, as unique as uuid4
        # ids within and across players, at a fraction of the cost per event.
        self._id_prefix = uuid.uuid4().hex[:24]
        self._sequence = 0

    # --- validation ---------------------------------------------------------------------------

    async def validate_recording(self) -> tuple[bool, list[ReplayIssue]]:
        """Check the recording's integrity and replayability; valid means no ``error`` issue."""
        issues = self._check()
        return not any(i.severity == "error" for i in issues), issues

    def _check(self) -> list[ReplayIssue]:
        rec = self.recording
        issues: list[ReplayIssue] = []
        if not rec.events:
            issues.append(ReplayIssue("error", "the recording has no events"))
        if rec.dropped_events:
            issues.append(
                ReplayIssue("error", f"{rec.dropped_events} events were lost while recording (bus overflow)")
            )
        previous = 0.0
        for index, recorded in enumerate(rec.events):
            if recorded.fingerprint != recorded.compute_fingerprint():
                issues.append(
                    ReplayIssue(
                        "error", "stored fingerprint does not match the event's content (edited?)", index
                    )
                )
            if recorded.relative_timestamp_ms < previous:
                issues.append(ReplayIssue("error", "relative timestamp goes backwards", index))
            previous = max(previous, recorded.relative_timestamp_ms)
        issues.extend(self._replayability())
        installed = RunVersions()
        for name in ("runtime_version", "llm_client_version"):
            recorded_version = getattr(rec.metadata, name)
            now = getattr(installed, name)
            if recorded_version is not None and now is not None and recorded_version != now:
                issues.append(
                    ReplayIssue("warning", f"recorded with {name} {recorded_version}, replaying with {now}")
                )
        if len(rec.job_ids) > 1:
            issues.append(
                ReplayIssue(
                    "warning", f"events of {len(rec.job_ids)} jobs; a deterministic replay needs job_id="
                )
            )
        return issues

    def _replayability(self, job_id: str | None = None) -> list[ReplayIssue]:
        """What stops a deterministic replay of ``job_id`` (or of every recorded job)."""
        issues: list[ReplayIssue] = []
        for index, recorded in enumerate(self.recording.events):
            if job_id is not None and recorded.event.job_id != job_id:
                continue
            kind = recorded.event.type
            if kind is RuntimeEventType.MODEL_DONE and recorded.response is None:
                issues.append(
                    ReplayIssue(
                        "error",
                        "model.done without a recorded model response "
                        "(put recorder.middleware() first in the engine's middleware)",
                        index,
                    )
                )
            elif kind is RuntimeEventType.TOOL_END and recorded.tool_result is None:
                issues.append(
                    ReplayIssue(
                        "error",
                        "tool.end without a recorded tool result (wrap tools with recorder.wrap_tools)",
                        index,
                    )
                )
            elif kind is RuntimeEventType.ACTION_REQUIRED or (
                kind is RuntimeEventType.JOB_STATUS_CHANGED and recorded.event.data.get("status") == _WAITING
            ):
                issues.append(
                    ReplayIssue("error", "the run waited for a human action; it cannot be re-executed", index)
                )
        return issues

    # --- replaying ----------------------------------------------------------------------------

    async def replay(
        self,
        mode: ReplayMode | str = ReplayMode.FAST,
        *,
        speed: float = 1.0,
        job_id: str | None = None,
        request: ExecutionRequest | None = None,
    ) -> ReplayResult:
        """Replay in ``mode``. ``speed`` scales TIMED gaps (2.0 = twice as fast).

        DETERMINISTIC only: ``job_id`` picks the job when several were recorded, ``request``
        overrides how the re-run starts (default: the recording's ``initial_input`` prompt or
        messages, else the first recorded request's messages).
        """
        try:
            mode = ReplayMode(mode)
        except ValueError:
            known = ", ".join(m.value for m in ReplayMode)
            raise ReplayValidationError(f"unknown replay mode {mode!r}; expected one of: {known}") from None
        if mode is ReplayMode.DETERMINISTIC:
            return await self._deterministic(job_id, request)
        if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not speed > 0:
            raise ReplayValidationError(f"speed must be a number > 0, got {speed!r}")
        started = time.perf_counter()
        job_ids: dict[str, str] = {}
        publish = self.event_bus.publish
        if mode is ReplayMode.FAST:
            for recorded in self.recording.events:
                await publish(self._republished(recorded, job_ids))
        else:
            sleep = self._sleep or _default_sleep
            clock = self._clock
            origin = clock()
            for recorded in self.recording.events:
                delay = origin + recorded.relative_timestamp_ms / 1000.0 / speed - clock()
                if delay > 0:
                    await sleep(delay)
                await publish(self._republished(recorded, job_ids))
        return ReplayResult(
            mode=mode,
            events_replayed=len(self.recording.events),
            duration_seconds=time.perf_counter() - started,
            job_ids=job_ids,
        )

    async def step(self) -> AsyncIterator[RecordedEvent]:
        """Republish one event per iteration and yield it: the consumer sets the pace."""
        job_ids: dict[str, str] = {}
        for recorded in self.recording.events:
            await self.event_bus.publish(self._republished(recorded, job_ids))
            yield recorded

    def _republished(self, recorded: RecordedEvent, job_ids: dict[str, str]) -> RuntimeEvent:
        event = recorded.event
        if self.preserve_ids:
            return event
        job = event.job_id
        if job is not None:
            mapped = job_ids.get(job)
            if mapped is None:
                mapped = job_ids[job] = f"{job}.replay-{uuid.uuid4().hex[:8]}"
            job = mapped
        self._sequence += 1
        return _copy_event(event, f"evt-{self._id_prefix}{self._sequence:08x}", time.time(), job)

    # --- deterministic ------------------------------------------------------------------------

    def _target_job(self, job_id: str | None) -> str:
        jobs = self.recording.job_ids
        if job_id is not None:
            if job_id not in jobs:
                raise ReplayValidationError(f"the recording has no events of job {job_id!r}; it has {jobs}")
            return job_id
        if not jobs:
            raise ReplayValidationError("the recording has no job events to re-execute")
        if len(jobs) > 1:
            raise ReplayValidationError(
                f"the recording holds {len(jobs)} jobs ({', '.join(jobs)}); pass job_id= to pick one"
            )
        return jobs[0]

    async def _deterministic(self, job_id: str | None, request: ExecutionRequest | None) -> ReplayResult:
        target = self._target_job(job_id)
        problems = self._replayability(target)
        if self.recording.dropped_events:
            lost = self.recording.dropped_events
            problems.append(ReplayIssue("error", f"{lost} events were lost while recording"))
        if problems:
            raise ReplayValidationError(
                f"job {target!r} cannot be replayed deterministically: {problems[0]}",
                [str(p) for p in problems],
            )
        expected = [(i, e) for i, e in enumerate(self.recording.events) if e.event.job_id == target]
        responses = [e.response for _, e in expected if e.response is not None]
        first_request = next((r["request"] for r in responses if r.get("request")), None)
        tool_results: dict[str, deque[dict[str, Any]]] = {}
        for _, recorded in expected:
            result = recorded.tool_result
            if result is not None and result.get("tool_call_id") is not None:
                tool_results.setdefault(result["tool_call_id"], deque()).append(dict(result))

        model = (first_request or {}).get("model") or self.recording.metadata.model_version or "replay"
        provider = ReplayProvider(responses, model=model)
        recorder = ReplayRecorder(self.event_bus, self.recording.metadata)
        agent = self._replay_agent(provider, recorder, tool_results, first_request)
        kernel = self.kernel_factory(agent.engine, agent, self.event_bus)
        if (
            not isinstance(kernel, RuntimeKernel)
            or kernel.engine is not agent.engine
            or kernel.agent is not agent
        ):
            raise ReplayValidationError("kernel_factory must build the kernel on the engine and agent given")
        if kernel.plugin_registry.get_all_tools():
            raise ReplayValidationError("the replay kernel has plugin tools, which would run live")
        start_request = request or self._start_request(first_request)

        started = time.perf_counter()
        waiting = asyncio.Event()
        recorder._listeners.append(
            lambda ev: (
                waiting.set()
                if ev.type is RuntimeEventType.JOB_STATUS_CHANGED and ev.data.get("status") == _WAITING
                else None
            )
        )
        await recorder.start(initial_input=self.recording.initial_input)
        try:
            handle = await kernel.execute(start_request)
            execution = await self._finish(kernel, handle.job_id, handle.result(), waiting)
        finally:
            replayed = await recorder.stop()
        duration = time.perf_counter() - started

        actual = replayed.events_of(handle.job_id)
        divergence: ReplayDivergence | None = None
        compared = 0
        for index in range(max(len(expected), len(actual))):
            rec_index, want = expected[index] if index < len(expected) else (None, None)
            got = actual[index] if index < len(actual) else None
            want_fp = want.fingerprint if want is not None else None
            got_fp = got.fingerprint if got is not None else None
            if want_fp is None or got_fp is None or want_fp != got_fp:
                divergence = ReplayDivergence(
                    index=index,
                    recording_index=rec_index,
                    expected=want_fp,
                    actual=got_fp,
                    expected_event=want.event if want is not None else None,
                    actual_event=got.event if got is not None else None,
                )
                break
            compared += 1
        return ReplayResult(
            mode=ReplayMode.DETERMINISTIC,
            events_replayed=len(actual),
            duration_seconds=duration,
            divergence=divergence,
            fingerprints_compared=compared,
            job_ids={target: handle.job_id},
            replay_recording=replayed,
            execution=execution,
        )

    @staticmethod
    async def _finish(
        kernel: RuntimeKernel, job_id: str, result: Awaitable[ExecutionResult], waiting: asyncio.Event
    ) -> ExecutionResult | None:
        """The re-run's result; a re-run that starts waiting for a human is cancelled, not awaited."""
        done = asyncio.ensure_future(result)
        waiter = asyncio.ensure_future(waiting.wait())
        try:
            await asyncio.wait({done, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if done.done():
            return done.result()
        await kernel.cancel(job_id, "deterministic replay: the re-run waited for a human action")
        done.cancel()
        return None

    def _replay_agent(
        self,
        provider: ReplayProvider,
        recorder: ReplayRecorder,
        tool_results: dict[str, deque[dict[str, Any]]],
        first_request: Mapping[str, Any] | None,
    ) -> Agent:
        base = self.agent
        schemas: list[tuple[str, str, dict[str, Any], bool]]
        if base is not None:
            schemas = [(t.name, t.description, t.parameters, t.strict) for t in base.tools.tools()]
        elif first_request is not None:
            schemas = []
            spec: Any
            for spec in first_request.get("tools") or ():
                fn = spec.get("function") or {}
                schemas.append(
                    (
                        str(fn.get("name")),
                        str(fn.get("description") or ""),
                        dict(fn.get("parameters") or {}),
                        bool(fn.get("strict")),
                    )
                )
        else:
            raise ReplayValidationError(
                "a deterministic replay needs the agent (ReplayPlayer(..., agent=...)) or a recorded "
                "model request to rebuild it from"
            )
        tools = recorder.wrap_tools(
            Tool(name, description, parameters, _replay_handler(name, tool_results), strict=strict)
            for name, description, parameters, strict in schemas
        )
        engine = ExecutionEngine(
            provider,
            middleware=[recorder.middleware()],
            pricing=base.engine.pricing if base is not None else None,
        )
        if base is not None:
            return Agent(
                engine=engine,
                tools=tools,
                system_prompt=base.system_prompt,
                model=base.model,
                max_turns=base.max_turns,
                parallel_tool_calls=base.parallel_tool_calls,
                request_options=base.request_options,
            )
        assert first_request is not None
        configured = self.recording.metadata.config.get("max_turns")
        max_turns = configured if isinstance(configured, int) and configured > 0 else 10
        parallel = first_request.get("parallel_tool_calls")
        return Agent(
            engine=engine,
            tools=tools,
            model=first_request.get("model"),
            max_turns=max(max_turns, 1),
            parallel_tool_calls=True if parallel is None else bool(parallel),
            request_options={k: first_request[k] for k in _OPTION_KEYS if first_request.get(k) is not None}
            | ({"extra": first_request["extra"]} if first_request.get("extra") else {}),
        )

    def _start_request(self, first_request: Mapping[str, Any] | None) -> ExecutionRequest:
        given = {k: v for k, v in self.recording.initial_input.items() if k in _REQUEST_KEYS}
        # Without the agent, the recorded first request is the only faithful start: it already
        # holds the system prompt the rebuilt agent does not know about.
        if self.agent is None or (given.get("prompt") is None and given.get("messages") is None):
            given.pop("prompt", None)
            given.pop("messages", None)
            if first_request is None:
                raise ReplayValidationError(
                    "no way to start the re-run: initial_input has no 'prompt' or 'messages' "
                    "and no model request was recorded; pass request="
                )
            messages = [dict(m) for m in first_request["messages"]]
            system = self.agent.system_prompt if self.agent is not None else None
            if system and messages and messages[0].get("role") in ("system", "developer"):
                messages = messages[1:]  # the agent adds its own system prompt back
            given["messages"] = messages
        try:
            return ExecutionRequest(**given)
        except (TypeError, ValueError) as exc:
            raise ReplayValidationError(f"initial_input cannot start the re-run: {exc}") from exc
