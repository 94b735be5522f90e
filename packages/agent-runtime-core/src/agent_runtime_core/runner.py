"""The runner: executes one agent run with events, timeout, retries, cancellation and heartbeats.

``await runner.execute(agent=..., run_id=..., input_data={"messages": [...]})`` returns a
:class:`~agent_runtime_core.RunResult` for every outcome of the run itself. Failures, timeouts and
cancellation by :meth:`AgentRunner.cancel` do **not** raise: the result's ``error`` is set (an
:class:`~agent_runtime_core.ErrorInfo` whose ``type`` is the exception's class name, e.g.
``RunTimedOutError`` or ``RunCancelledError``, and whose ``details["status"]`` is ``"failed"``,
``"timed_out"`` or ``"cancelled"``), which is what a worker needs to record the run. What does
raise: bad arguments (:class:`InvalidRunInputError`, TypeError), a run id already running in this
runner (:class:`RunAlreadyActiveError`), and cancellation of the *calling task* from outside
(``CancelledError`` propagates, after ``run.cancelled`` was emitted).

Events, in order: ``run.started``; the agent's own; ``run.retrying`` before each new attempt; one
terminal event: ``run.succeeded`` (``output``), ``run.failed`` (``error``), ``run.cancelled`` or
``run.timed_out``. ``run.heartbeat`` comes every ``heartbeat_interval_seconds`` while the run is
active, from one timer shared by all the runner's active runs (no task per run).

Retries: an exception is retryable when llm-client's :class:`~llm_client.RetryPolicy` says so (an
``LLMClientError`` with ``retryable``), or when any other exception has ``retryable = True``, or
when ``RunnerConfig.retry_on`` (a predicate) returns True. The delay before each retry is
``RetryPolicy.delay_for`` (exponential backoff from ``retry_backoff_seconds`` with jitter, capped at
``retry_max_backoff_seconds``, honouring Retry-After). A new attempt gets the same context, so
``ctx.get_state()`` returns the last checkpoint of the failed attempt and the agent resumes from it.
``run_timeout_seconds`` bounds the whole run, retries and backoff included.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llm_client import CancellationToken, LLMClientError, RetryPolicy, aclose_stream

from .context import DefaultRunContext, RunCancelledError, run_key_of
from .interfaces import AgentRuntime, ErrorInfo, EventType, RunResult

if TYPE_CHECKING:
    from .config import RuntimeConfig
    from .events.base import Event, EventBus
    from .state.base import StateStore
    from .tools import ToolRegistry
    from .tracing import TraceSink

__all__ = [
    "AgentRunner",
    "RunnerConfig",
    "InvalidRunInputError",
    "RunAlreadyActiveError",
    "RunCancelledError",
    "RunTimedOutError",
    "TERMINAL_EVENTS",
]

logger = logging.getLogger(__name__)

#: The events that end a run; exactly one of them is emitted per ``execute``.
TERMINAL_EVENTS = frozenset(
    {EventType.RUN_SUCCEEDED, EventType.RUN_FAILED, EventType.RUN_CANCELLED, EventType.RUN_TIMED_OUT}
)
_TERMINAL_NAMES = frozenset(e.value for e in TERMINAL_EVENTS)


class InvalidRunInputError(ValueError):
    """``input_data`` is not ``{"messages": [dict, ...], "metadata": {...}?}``."""


class RunAlreadyActiveError(RuntimeError):
    """``execute`` was called with the run id of a run this runner is still executing."""


class RunTimedOutError(TimeoutError):
    """The run exceeded ``run_timeout_seconds``."""

    retryable = False


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    """How the runner runs. Defaults match the seed; :meth:`from_runtime_config` reads ``configure()``.

    ``max_retries`` counts retries after the first attempt. ``retry_jitter`` (0..1) scales each
    backoff down by up to that fraction at random. ``cancel_grace_seconds`` is how long a cancelled
    run may take to stop on its own before its task is cancelled. ``retry_on`` is an optional extra
    predicate marking exceptions retryable.
    """

    run_timeout_seconds: float = 300.0
    max_retries: int = 3
    retry_backoff_seconds: float = 1.0
    retry_max_backoff_seconds: float = 60.0
    retry_jitter: float = 0.5
    heartbeat_interval_seconds: float = 30.0
    cancel_grace_seconds: float = 5.0
    retry_on: Callable[[BaseException], bool] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        from .config import ConfigurationError

        def positive(name: str, value: float, *, allow_zero: bool = False) -> None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigurationError(f"{name} must be a number, got {type(value).__name__}")
            if value < 0 or (value == 0 and not allow_zero):
                raise ConfigurationError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")

        positive("run_timeout_seconds", self.run_timeout_seconds)
        positive("heartbeat_interval_seconds", self.heartbeat_interval_seconds)
        positive("retry_backoff_seconds", self.retry_backoff_seconds, allow_zero=True)
        positive("retry_max_backoff_seconds", self.retry_max_backoff_seconds, allow_zero=True)
        positive("cancel_grace_seconds", self.cancel_grace_seconds, allow_zero=True)
        if (
            isinstance(self.max_retries, bool)
            or not isinstance(self.max_retries, int)
            or self.max_retries < 0
        ):
            raise ConfigurationError(f"max_retries must be an int >= 0, got {self.max_retries!r}")
        if not 0 <= self.retry_jitter <= 1:
            raise ConfigurationError(f"retry_jitter must be between 0 and 1, got {self.retry_jitter}")

    @classmethod
    def from_runtime_config(cls, config: RuntimeConfig | None = None, **overrides: Any) -> RunnerConfig:
        """A RunnerConfig from the process config (``configure(...)``), with ``overrides`` on top."""
        if config is None:
            from .config import get_config

            config = get_config()
        values: dict[str, Any] = {
            "run_timeout_seconds": config.run_timeout_seconds,
            "max_retries": config.max_retries,
            "retry_backoff_seconds": config.retry_backoff_seconds,
            "heartbeat_interval_seconds": config.heartbeat_interval_seconds,
        }
        values.update(overrides)
        return cls(**values)

    def retry_policy(self) -> RetryPolicy:
        """llm-client's policy with this config's numbers: the one backoff formula of the stack."""
        return RetryPolicy(
            max_attempts=self.max_retries + 1,
            initial_delay=self.retry_backoff_seconds,
            max_delay=self.retry_max_backoff_seconds,
            jitter=self.retry_jitter,
            max_total_time=None,  # the run timeout bounds the whole run instead
        )


_Outcome = tuple[RunResult, EventType, dict[str, Any]]


class _ActiveRun:
    __slots__ = ("attempt", "ctx", "finished", "forced", "grace_handle", "in_backoff", "started", "task")

    def __init__(self, ctx: DefaultRunContext, task: asyncio.Task[Any]) -> None:
        self.ctx = ctx
        self.task = task
        self.attempt = 1
        self.started = time.monotonic()
        self.forced = False  # the runner cancelled the task after the grace period
        self.finished = False  # the terminal event is being emitted: no more heartbeats or forcing
        self.in_backoff = False
        self.grace_handle: asyncio.TimerHandle | None = None


def _default_event_bus() -> EventBus:
    try:
        from .events import get_event_bus
    except ImportError:  # pragma: no cover - factories not installed
        from .events.memory import InMemoryEventBus

        return InMemoryEventBus()
    return get_event_bus()


def _default_state_store() -> StateStore:
    try:
        from .state import get_state_store
    except ImportError:  # pragma: no cover - factories not installed
        from .state.memory import InMemoryStateStore

        return InMemoryStateStore()
    return get_state_store()


def _parse_input(input_data: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    if not isinstance(input_data, Mapping):
        raise InvalidRunInputError(
            f'input_data must be a dict like {{"messages": [...]}}, got {type(input_data).__name__}'
        )
    if "messages" not in input_data:
        raise InvalidRunInputError(
            'input_data must have a "messages" list; keys given: ' + repr(list(input_data))
        )
    messages = input_data["messages"]
    if not isinstance(messages, list):
        raise InvalidRunInputError(f'input_data["messages"] must be a list, got {type(messages).__name__}')
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise InvalidRunInputError(
                f'input_data["messages"][{i}] must be a dict, got {type(message).__name__}'
            )
    metadata = input_data.get("metadata")
    if metadata is None:
        metadata = {}
    elif not isinstance(metadata, dict):
        raise InvalidRunInputError(f'input_data["metadata"] must be a dict, got {type(metadata).__name__}')
    return messages, metadata


def _error(exc: BaseException, status: str, attempts: int) -> ErrorInfo:
    info = ErrorInfo.from_exception(exc)
    info.details["status"] = status
    info.details["attempts"] = attempts
    return info


class AgentRunner:
    """Runs agents: ``await runner.execute(agent=..., run_id=..., input_data=...)``.

    ``config`` defaults to :meth:`RunnerConfig.from_runtime_config`; ``event_bus`` and
    ``state_store`` to the factories' choice for the current config (``get_event_bus()``,
    ``get_state_store()``); ``trace_sink`` to ``get_trace_sink()``.
    """

    def __init__(
        self,
        config: RunnerConfig | None = None,
        *,
        event_bus: EventBus | None = None,
        state_store: StateStore | None = None,
        trace_sink: TraceSink | None = None,
    ) -> None:
        if config is not None and not isinstance(config, RunnerConfig):
            raise TypeError(f"config must be a RunnerConfig, got {type(config).__name__}")
        self.config = config if config is not None else RunnerConfig.from_runtime_config()
        self.event_bus = event_bus if event_bus is not None else _default_event_bus()
        self.state_store = state_store if state_store is not None else _default_state_store()
        if trace_sink is None:
            from .tracing import get_trace_sink

            trace_sink = get_trace_sink()
        self.trace_sink = trace_sink
        self.retry_policy = self.config.retry_policy()
        self._active: dict[str, _ActiveRun] = {}
        self._heartbeat_handle: asyncio.TimerHandle | None = None
        self._heartbeat_loop: asyncio.AbstractEventLoop | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None

    # -- public API ---------------------------------------------------------------------------

    @property
    def active_runs(self) -> list[str]:
        """Keys of the runs this runner is executing now."""
        return list(self._active)

    def is_retryable(self, exc: BaseException) -> bool:
        """Whether a failed attempt is retried (see the module docstring)."""
        if isinstance(exc, LLMClientError):
            retryable = self.retry_policy.is_retryable(exc)
        else:
            retryable = getattr(exc, "retryable", False) is True
        if not retryable and self.config.retry_on is not None:
            retryable = bool(self.config.retry_on(exc))
        return retryable

    async def execute(
        self,
        agent: AgentRuntime | str,
        run_id: str | uuid.UUID,
        input_data: Mapping[str, Any],
        *,
        tools: ToolRegistry | None = None,
        cancel_token: CancellationToken | None = None,
    ) -> RunResult:
        """Run ``agent`` to completion and return its result (``error`` set if it did not succeed).

        ``agent`` is an :class:`AgentRuntime` or a registered key. ``input_data`` is
        ``{"messages": [...], "metadata": {...}}`` (metadata optional).
        """
        if isinstance(agent, str):
            from .registry import get_runtime

            agent = get_runtime(agent)
        elif not isinstance(agent, AgentRuntime):
            raise TypeError(f"agent must be an AgentRuntime or a registered key, got {type(agent).__name__}")
        messages, metadata = _parse_input(input_data)
        ctx = DefaultRunContext(
            run_id,
            messages,
            metadata,
            tools,
            event_bus=self.event_bus,
            state_store=self.state_store,
            cancel_token=cancel_token,
            trace_sink=self.trace_sink,
        )
        key = ctx.run_key
        if key in self._active:
            raise RunAlreadyActiveError(f"run {key!r} is already running in this runner")
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - always inside a task under asyncio
            raise RuntimeError("AgentRunner.execute must run inside an asyncio task")
        active = _ActiveRun(ctx, task)
        self._active[key] = active
        if self._heartbeat_handle is None or self._heartbeat_loop is not task.get_loop():
            self._schedule_heartbeat(task.get_loop())
        try:
            return await self._execute(agent, ctx, active)
        finally:
            del self._active[key]
            if active.grace_handle is not None:
                active.grace_handle.cancel()

    def cancel(self, run_id: str | uuid.UUID, reason: str | None = None) -> bool:
        """Request cancellation of an active run; returns False if this runner is not running it.

        The run's token is cancelled at once (``ctx.is_cancelled()`` becomes True) so the agent can
        stop cleanly; if it has not finished ``cancel_grace_seconds`` later, its task is cancelled.
        A run waiting between attempts is stopped at once. Either way it ends with ``run.cancelled``.
        """
        key, _ = run_key_of(run_id)
        active = self._active.get(key)
        if active is None or active.finished:
            return False
        active.ctx.cancel_token.cancel(reason)
        if active.in_backoff or self.config.cancel_grace_seconds == 0:
            self._force_cancel(active)
        elif active.grace_handle is None:
            loop = active.task.get_loop()
            active.grace_handle = loop.call_later(
                self.config.cancel_grace_seconds, self._force_cancel, active
            )
        return True

    async def events(self, run_id: str | uuid.UUID, *, from_seq: int = 0) -> AsyncIterator[Event]:
        """The run's events from the bus (replayed, then live), ending after its terminal event."""
        key, _ = run_key_of(run_id)
        subscription = self.event_bus.subscribe(key, from_seq)
        try:
            async for event in subscription:
                yield event
                if event.event_type in _TERMINAL_NAMES:
                    return
        finally:
            await aclose_stream(subscription)  # e.g. a Redis subscription gives its connection back now

    async def stream(
        self,
        agent: AgentRuntime | str,
        run_id: str | uuid.UUID,
        input_data: Mapping[str, Any],
        **kwargs: Any,
    ) -> AsyncIterator[Event]:
        """Execute the run in a task and yield its events as they happen, ending with the terminal one.

        Leaving the loop early cancels the run (``runner.cancel``) and waits for it to end.
        """
        _parse_input(input_data)  # fail here, not inside the task
        key, _ = run_key_of(run_id)
        existing = await self.event_bus.get_events(key)
        from_seq = existing[-1].seq if existing else 0
        task = asyncio.ensure_future(self.execute(agent, run_id, input_data, **kwargs))
        events = self.events(key, from_seq=from_seq)
        try:
            async for event in events:
                yield event
        finally:
            await aclose_stream(events)
            if not task.done():
                self.cancel(key, "stream closed")
            await task  # surfaces an exception raised by execute (e.g. RunAlreadyActiveError)

    async def aclose(self) -> None:
        """Stop the heartbeat timer and close the trace sink (flushing it)."""
        if self._heartbeat_handle is not None:
            self._heartbeat_handle.cancel()
            self._heartbeat_handle = None
        await self.trace_sink.close()

    # -- internals ----------------------------------------------------------------------------

    async def _execute(self, agent: AgentRuntime, ctx: DefaultRunContext, active: _ActiveRun) -> RunResult:
        key = ctx.run_key
        cfg = self.config
        await ctx.emit(EventType.RUN_STARTED, {"run_id": key, "agent_key": agent.key})
        timeout = asyncio.timeout(cfg.run_timeout_seconds)
        try:
            async with timeout:
                result, event_type, payload = await self._attempts(agent, ctx, active)
        except TimeoutError as exc:
            if not timeout.expired():  # pragma: no cover - _attempts turns agent errors into results
                raise
            error = RunTimedOutError(f"run {key!r} exceeded run_timeout_seconds={cfg.run_timeout_seconds}")
            error.__cause__ = exc
            info = _error(error, "timed_out", active.attempt)
            result, event_type = RunResult(error=info), EventType.RUN_TIMED_OUT
            payload = {"run_id": key, "timeout_seconds": cfg.run_timeout_seconds, "error": info.to_dict()}
        except asyncio.CancelledError:
            active.finished = True
            task = active.task
            if not (active.forced and task.cancelling()):
                try:  # cancelled from outside: record it, then let the cancellation propagate
                    await ctx.emit(EventType.RUN_CANCELLED, {"run_id": key, "reason": "task cancelled"})
                except Exception:  # pragma: no cover - best effort while shutting down
                    logger.exception("could not emit run.cancelled for %s", key)
                raise
            task.uncancel()
            result, event_type, payload = self._cancellation(ctx, active, RunResult())
        # The terminal event goes out after the timeout scope, so a deadline passing while it is
        # being published cannot produce a second terminal event.
        active.finished = True
        await ctx.emit(event_type, payload)
        return result

    async def _attempts(self, agent: AgentRuntime, ctx: DefaultRunContext, active: _ActiveRun) -> _Outcome:
        """Run attempts until one ends the run; returns the result and the terminal event to emit."""
        key = ctx.run_key
        token = ctx.cancel_token
        while True:
            try:
                result = await agent.run(ctx)
                if not isinstance(result, RunResult):
                    raise TypeError(
                        f"{type(agent).__name__}.run() must return a RunResult, got {type(result).__name__}"
                    )
            except Exception as exc:
                if token.is_cancelled:
                    active.finished = True
                    return self._cancellation(ctx, active, RunResult(), cause=exc)
                if active.attempt > self.config.max_retries or not self.is_retryable(exc):
                    active.finished = True
                    info = _error(exc, "failed", active.attempt)
                    payload = {"run_id": key, "error": info.to_dict(), "attempts": active.attempt}
                    return RunResult(error=info), EventType.RUN_FAILED, payload
                delay = self.retry_policy.delay_for(active.attempt, exc)
                await ctx.emit(
                    EventType.RUN_RETRYING,
                    {
                        "run_id": key,
                        "attempt": active.attempt,
                        "next_attempt": active.attempt + 1,
                        "max_retries": self.config.max_retries,
                        "delay_seconds": delay,
                        "error": {"type": type(exc).__name__, "message": str(exc)},
                    },
                )
                active.in_backoff = True
                try:
                    await asyncio.sleep(delay)
                finally:
                    active.in_backoff = False
                active.attempt += 1
                continue
            active.finished = True
            if token.is_cancelled:
                return self._cancellation(ctx, active, result)
            if result.error is not None:
                payload = {"run_id": key, "error": result.error.to_dict(), "attempts": active.attempt}
                return result, EventType.RUN_FAILED, payload
            payload = {
                "run_id": key,
                "output": result.final_output,
                "usage": result.usage,
                "attempts": active.attempt,
            }
            return result, EventType.RUN_SUCCEEDED, payload

    def _cancellation(
        self,
        ctx: DefaultRunContext,
        active: _ActiveRun,
        result: RunResult,
        cause: BaseException | None = None,
    ) -> _Outcome:
        reason = ctx.cancel_token.reason
        error = RunCancelledError(f"run {ctx.run_key!r} was cancelled" + (f": {reason}" if reason else ""))
        if cause is not None and not isinstance(cause, RunCancelledError):
            error.__cause__ = cause
        result.error = _error(error, "cancelled", active.attempt)
        return result, EventType.RUN_CANCELLED, {"run_id": ctx.run_key, "reason": reason}

    def _force_cancel(self, active: _ActiveRun) -> None:
        active.grace_handle = None
        if not active.finished and not active.task.done():
            active.forced = True
            active.task.cancel()

    # -- heartbeats: one timer for all active runs --------------------------------------------

    # The timer is not cancelled when the last run ends (that would cost a timer per run when runs
    # come one after another): it fires once more, finds no active run, emits nothing and stops.

    def _schedule_heartbeat(self, loop: asyncio.AbstractEventLoop) -> None:
        self._heartbeat_loop = loop
        self._heartbeat_handle = loop.call_later(self.config.heartbeat_interval_seconds, self._on_heartbeat)

    def _on_heartbeat(self) -> None:
        self._heartbeat_handle = None
        if not self._active:
            return
        loop = asyncio.get_running_loop()
        if self._heartbeat_task is None or self._heartbeat_task.done():
            self._heartbeat_task = loop.create_task(self._beat(list(self._active.values())))
        self._schedule_heartbeat(loop)

    async def _beat(self, runs: list[_ActiveRun]) -> None:
        now = time.monotonic()
        for active in runs:
            if active.finished or active.ctx.run_key not in self._active:
                continue
            try:
                await self.event_bus.publish(
                    active.ctx.run_key,
                    EventType.RUN_HEARTBEAT,
                    {
                        "run_id": active.ctx.run_key,
                        "attempt": active.attempt,
                        "elapsed_seconds": round(now - active.started, 3),
                    },
                )
            except Exception:
                logger.exception("heartbeat for run %s failed", active.ctx.run_key)
