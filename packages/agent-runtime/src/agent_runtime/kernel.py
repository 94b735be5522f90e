"""RuntimeKernel: runs llm-client agents as governed, durable jobs.

Each ``execute`` becomes a job (idempotent per scope) whose agent loop runs under the kernel's
rules: the policy engine is asked before every model and tool call, budgets are reserved and
settled through the ledger around every model and tool call, the job's timeout and cancellation
reach the model call in flight, and a tool that needs a human raises ``ActionRequiredError``: the
job moves to WAITING_ACTION with its conversation persisted in the job record, and continues, in
this process or another one after a restart, once the action is resolved, without calling the
model again for the turns already done and without re-running tool calls that had finished.

The loop itself is llm-client's ``Agent``; the kernel adds a governance middleware to the engine
and wraps each tool. Nothing here is a second agent loop, retry loop or state machine.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from llm_client import (
    Agent,
    AgentDone,
    AgentInterrupted,
    BudgetMiddleware,
    CompletionResult,
    ExecutionEngine,
    LLMClientError,
    MaxTurnsExceededError,
    ReasoningDelta,
    RequestContext,
    RequestSpec,
    StreamDone,
    StreamError,
    TextDelta,
    Tool,
    ToolEnd,
    ToolExecutionError,
    ToolRegistry,
    ToolStart,
    TurnComplete,
    Usage,
)
from llm_client.middleware import Call, Middleware, StreamCall, estimate_tokens
from llm_client.streaming import StreamEvent, aclose_stream

from .actions import (
    ActionManager,
    ActionRecord,
    ActionRequiredError,
    ActionSpec,
    ActionStore,
    ActionType,
    InMemoryActionStore,
)
from .context import BudgetSpec, ExecutionContext, PolicyRef
from .errors import AgentRuntimeError, InvalidTransitionError, JobNotFoundError, ValidationError
from .events import EventBus, InMemoryEventBus, RuntimeEvent, RuntimeEventType
from .jobs import InMemoryJobStore, JobFilter, JobManager, JobRecord, JobSpec, JobStatus, JobStore
from .ledger import (
    BudgetDecision,
    BudgetExceededError,
    InMemoryLedgerWriter,
    Ledger,
    LedgerEvent,
    LedgerEventType,
    LedgerWriter,
)
from .plugins import PluginRegistry
from .policy import PolicyContext, PolicyDecision, PolicyDenied, PolicyEngine, PolicyResult

__all__ = [
    "RuntimeKernel",
    "ExecutionRequest",
    "ExecutionResult",
    "ExecutionHandle",
    "current_execution",
]

logger = logging.getLogger("agent_runtime.kernel")

_current: contextvars.ContextVar[ExecutionContext | None] = contextvars.ContextVar(
    "agent_runtime_execution", default=None
)
#: The job whose agent loop runs in this task. The governance middleware and the governed tools
#: are built once per kernel and shared by every job; each call finds its own job here.
_active_run: contextvars.ContextVar[_Run | None] = contextvars.ContextVar(
    "agent_runtime_active_run", default=None
)
#: The run whose governed tool call is executing in this task (None elsewhere).
_in_tool: contextvars.ContextVar[_Run | None] = contextvars.ContextVar("agent_runtime_in_tool", default=None)
#: Set while a tool call that a human approved is executed on resume: skip the approval rule.
_approved: contextvars.ContextVar[bool] = contextvars.ContextVar("agent_runtime_approved", default=False)


def current_execution() -> ExecutionContext | None:
    """The ExecutionContext of the job whose tool is running (None outside a kernel job)."""
    return _current.get()


@dataclass(frozen=True, slots=True)
class ExecutionRequest:
    """What to run: ``prompt`` (or a full ``messages`` list), who it runs for, and its limits.

    ``timeout_seconds`` bounds the whole job, including time spent waiting for actions; when it
    passes the job ends TIMED_OUT.
    """

    prompt: str | None = None
    scope_id: str | None = None
    principal_id: str | None = None
    session_id: str | None = None
    idempotency_key: str | None = None
    budgets: BudgetSpec | None = None
    policy_ref: PolicyRef | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    timeout_seconds: float | None = None
    messages: Sequence[Mapping[str, Any]] | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.prompt is None) == (self.messages is None):
            raise ValidationError("ExecutionRequest needs exactly one of prompt or messages")
        if self.prompt is not None and (not isinstance(self.prompt, str) or not self.prompt.strip()):
            raise ValidationError(f"prompt must be a non-empty string, got {self.prompt!r}")
        if self.messages is not None:
            messages: object = self.messages
            if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence) or not messages:
                raise ValidationError("messages must be a non-empty list of message dicts")
        if self.budgets is not None and not isinstance(self.budgets, BudgetSpec):
            raise ValidationError(f"budgets must be a BudgetSpec or None, got {type(self.budgets).__name__}")
        if self.policy_ref is not None and not isinstance(self.policy_ref, PolicyRef):
            raise ValidationError(
                f"policy_ref must be a PolicyRef or None, got {type(self.policy_ref).__name__}"
            )
        t = self.timeout_seconds
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not t > 0):
            raise ValidationError(f"timeout_seconds must be a number > 0, got {t!r}")


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """How a job ended. ``status`` is the job status value ("succeeded", "failed", "cancelled",
    "timed_out"); ``usage`` sums every model call of the job (``total_cost`` a string, or None
    when a model has no known price)."""

    job_id: str
    status: str
    content: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    turns: int = 0
    artifacts: list[Any] = field(default_factory=list)
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == JobStatus.SUCCEEDED.value


class ExecutionHandle:
    """A running (or finished) job: its record, its events, its result, and a way to stop it."""

    def __init__(
        self, kernel: RuntimeKernel, job_id: str, task: asyncio.Task[ExecutionResult] | None
    ) -> None:
        self._kernel = kernel
        self.job_id = job_id
        self._task = task

    def __repr__(self) -> str:
        state = "none" if self._task is None else ("done" if self._task.done() else "running")
        return f"ExecutionHandle(job_id={self.job_id!r}, task={state})"

    async def job(self) -> JobRecord:
        return await self._kernel.jobs.get(self.job_id)

    def events(self) -> AsyncIterator[RuntimeEvent]:
        """The job's events from its start (replayed), then live ones, until it ends."""
        return self._kernel.event_bus.stream(job_id=self.job_id).__aiter__()

    async def result(self) -> ExecutionResult:
        """Wait for the job to end (cancelling this wait does not cancel the job)."""
        if self._task is not None:
            return await asyncio.shield(self._task)
        return await self._kernel._result_of_finished(self.job_id)

    async def cancel(self, reason: str = "cancelled by caller") -> None:
        """Cancel the job and its model call in flight; a finished job is left as it is."""
        await self._kernel.cancel(self.job_id, reason)


@dataclass(slots=True)
class _Run:
    """Per-job mutable bookkeeping (process-local; the durable part lives in the job's ``state``)."""

    ctx: ExecutionContext
    timeout_message: str = ""
    usage: Usage = field(default_factory=Usage.zero)
    turns: int = 0
    tool_calls: int = 0
    task: asyncio.Task[ExecutionResult] | None = None
    cancel_reason: str | None = None
    #: tool calls blocked in ``wait_for_resolution`` right now (the job shows WAITING_ACTION)
    blocking_waits: int = 0
    wait_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: when progress was last written to the job store (monotonic; 0 = never, so the first turn of
    #: a job is saved once a second has passed since process start)
    progress_saved_at: float = field(default_factory=time.monotonic)


class _ApprovalRequired(ActionRequiredError):
    """A REQUIRE_APPROVAL tool policy paused the call: on approval the kernel runs the tool."""


class _FatalToolError(Exception):
    """Escapes the Agent's tool-error handling so the job ends with ``error`` (e.g. a budget)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class _StillAlive(Exception):
    """Recovery re-read a job and found it moved or freshly stamped: its worker lives."""


class _Superseded(Exception):
    """Another worker (or a cancel) took the job over while this one waited: stop, write nothing."""


class _KernelActionManager(ActionManager):
    """The kernel's ActionManager: a tool of a kernel job that blocks in ``wait_for_resolution``
    (the seed's human-in-the-loop pattern) moves its job to WAITING_ACTION for the wait."""

    def __init__(self, kernel: RuntimeKernel, store: ActionStore, **kwargs: Any) -> None:
        super().__init__(store, **kwargs)
        self._kernel = kernel

    async def wait_for_resolution(
        self, action_id: str, timeout: float | None = None, poll_interval: float = 1.0
    ) -> ActionRecord:
        run = _in_tool.get()
        if run is None or run.ctx.job_id is None:
            return await super().wait_for_resolution(action_id, timeout, poll_interval)
        await self._kernel._enter_blocking_wait(run, action_id)
        try:
            record = await super().wait_for_resolution(action_id, timeout, poll_interval)
        except asyncio.CancelledError:
            run.blocking_waits -= 1  # the job is ending: no transition back to RUNNING
            raise
        except BaseException:
            await self._kernel._leave_blocking_wait(run)
            raise
        await self._kernel._leave_blocking_wait(run)
        return record


def _running_job(what: str) -> _Run:
    run = _active_run.get()
    if run is None:
        raise AgentRuntimeError(f"{what} belongs to a RuntimeKernel and runs only inside one of its jobs")
    return run


class _Governance(Middleware):
    """Policy check and ledger reservation around every model call of the job running in this task."""

    def __init__(self, kernel: RuntimeKernel, engine_model: str) -> None:
        self.kernel = kernel
        self.engine_model = engine_model

    async def _before(self, ctx: ExecutionContext, spec: RequestSpec) -> Any:
        model = spec.model or self.engine_model
        estimate = _estimate_tokens(spec)
        decision = await self.kernel.policy_engine.check_model(
            model,
            PolicyContext(
                scope_id=ctx.scope_id,
                principal_id=ctx.principal_id,
                model=model,
                requested_tokens=estimate,
                metadata={"job_id": ctx.job_id},
            ),
        )
        if decision.decision in (PolicyDecision.DENY, PolicyDecision.REQUIRE_APPROVAL):
            await self.kernel._policy_denied(ctx, decision, model=model)
            raise PolicyDenied(
                decision.reason or f"model {model!r} denied by policy", violations=decision.violations
            )
        check = await self.kernel.ledger.reserve(ctx, pending_tokens=estimate)
        if check.decision is BudgetDecision.DENY:
            raise BudgetExceededError(check.reason, violations=check.exceeded)
        return check.reservation

    async def _after(
        self,
        ctx: ExecutionContext,
        reservation: Any,
        spec: RequestSpec,
        result: CompletionResult | None,
        started: float,
    ) -> None:
        if result is None:
            if reservation is not None:
                await self.kernel.ledger.release(reservation)
            return
        await self.kernel.ledger.record_model_usage(
            ctx,
            result.usage,
            provider=result.provider or None,
            model=result.model or spec.model or self.engine_model,
            duration_ms=(time.perf_counter() - started) * 1000,
            reservation=reservation,
        )

    async def complete(self, spec: RequestSpec, context: RequestContext, call_next: Call) -> CompletionResult:
        ctx = _running_job("the kernel's governed engine").ctx
        reservation = await self._before(ctx, spec)
        started = time.perf_counter()
        result: CompletionResult | None = None
        try:
            result = await call_next(spec, context)
            return result
        finally:
            await self._after(ctx, reservation, spec, result, started)

    async def stream(
        self, spec: RequestSpec, context: RequestContext, call_next: StreamCall
    ) -> AsyncIterator[StreamEvent]:
        ctx = _running_job("the kernel's governed engine").ctx
        reservation = await self._before(ctx, spec)
        started = time.perf_counter()
        result: CompletionResult | None = None
        inner = call_next(spec, context)
        try:
            async for event in inner:
                if isinstance(event, StreamDone):
                    result = event.result
                yield event
        finally:
            try:
                await aclose_stream(inner)
            finally:
                await self._after(ctx, reservation, spec, result, started)


def _estimate_tokens(spec: RequestSpec) -> int:
    return sum(estimate_tokens(spec))


class _GovernedTool(Tool):
    """The same tool behind a policy check, the tool-call budgets and the ledger.

    Overrides ``invoke`` (not the handler), so the wrapped tool keeps its own argument validation
    and conversions (dataclasses, enums) and its error messages to the model.
    """

    def __init__(self, kernel: RuntimeKernel, inner: Tool) -> None:
        super().__init__(inner.name, inner.description, inner.parameters, inner.handler, strict=inner.strict)
        self._kernel = kernel
        self._inner = inner
        handler = inner.handler
        self._inject_context = (
            handler is not None
            and _takes_context(handler)
            and "context" not in (inner.parameters.get("properties") or {})
        )

    async def invoke(
        self, arguments: str | Mapping[str, Any] | None = None, *, injected: Mapping[str, Any] | None = None
    ) -> Any:
        kernel, name = self._kernel, self.name
        run = _running_job(f"governed tool {name!r}")
        ctx = run.ctx
        budgets = ctx.budgets
        if budgets.max_tool_calls is not None and run.tool_calls >= budgets.max_tool_calls:
            raise _FatalToolError(
                BudgetExceededError(
                    f"tool call budget exceeded: max_tool_calls={budgets.max_tool_calls} "
                    f"already used, {name!r} not run"
                )
            )
        decision = await kernel.policy_engine.check_tool(
            name, PolicyContext(scope_id=ctx.scope_id, principal_id=ctx.principal_id, tool_name=name)
        )
        if decision.decision is PolicyDecision.DENY:
            await kernel._policy_denied(ctx, decision, tool=name)
            reason = decision.reason or "denied by policy"
            raise ToolExecutionError(
                f"tool {name!r} is denied by policy: {reason}",
                original=PolicyDenied(reason, decision.violations),
            )
        if decision.decision is PolicyDecision.REQUIRE_APPROVAL and not _approved.get():
            action = await kernel.actions.require_action(
                ActionSpec(
                    job_id=str(ctx.job_id),
                    type=ActionType.APPROVAL,
                    payload={
                        "tool": name,
                        "arguments": _parse_arguments(arguments),
                        "reason": decision.reason,
                    },
                )
            )
            raise _ApprovalRequired(action, f"tool {name!r} needs approval ({action.action_id})")
        check = await kernel.ledger.reserve(ctx, pending_tool_calls=1)
        if check.decision is BudgetDecision.DENY:
            raise _FatalToolError(BudgetExceededError(check.reason, violations=check.exceeded))
        run.tool_calls += 1
        extra = dict(injected or {})
        if self._inject_context:
            extra.setdefault("context", ctx)
        started = time.perf_counter()
        token = _in_tool.set(run)
        try:
            return await self._inner.invoke(arguments, injected=extra or None)
        finally:
            _in_tool.reset(token)
            await kernel.ledger.record_tool_usage(
                ctx,
                tool_name=name,
                duration_ms=(time.perf_counter() - started) * 1000,
                reservation=check.reservation,
            )


def _parse_arguments(arguments: str | Mapping[str, Any] | None) -> Any:
    if arguments is None:
        return {}
    if isinstance(arguments, Mapping):
        return dict(arguments)
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments


def _takes_context(handler: Callable[..., Any]) -> bool:
    try:
        return "context" in inspect.signature(handler).parameters
    except (TypeError, ValueError):
        return False


def _with_context_injected(tool: Tool) -> Tool:
    """A tool whose handler has an untyped ``context`` parameter (the seed's ``deploy_changes(context)``)
    gets it from the kernel: rebuilt without it in the schema, so the model is not asked for it."""
    handler = tool.handler
    if handler is None or isinstance(handler, Tool) or not _takes_context(handler):
        return tool
    if (tool.parameters.get("properties") or {}).get("context") != {}:
        return tool
    return Tool.from_function(
        handler,
        name=tool.name,
        description=tool.description,
        strict=tool.strict,
        run_in_thread=tool.run_in_thread,
        skip={"context"},
    )


class RuntimeKernel:
    """Jobs, actions, policy, ledger, events and plugins around one engine and agent.

    ``RuntimeKernel.create(engine=..., agent=...)`` uses in-memory stores; pass PostgreSQL stores
    (and a shared event bus) for durable, multi-process deployments. Model calls go through the
    agent's engine (so ``Agent(use_middleware=True)`` keeps its middleware chain), with the
    kernel's governance middleware outermost.
    """

    def __init__(
        self,
        engine: ExecutionEngine,
        agent: Agent | None = None,
        *,
        job_store: JobStore | None = None,
        action_store: ActionStore | None = None,
        ledger_writer: LedgerWriter | None = None,
        policy_engine: PolicyEngine | None = None,
        event_bus: EventBus | None = None,
        plugin_registry: PluginRegistry | None = None,
        ledger: Ledger | None = None,
        heartbeat_interval: float = 30.0,
    ) -> None:
        if not isinstance(engine, ExecutionEngine):
            raise ValidationError(
                f"engine must be an llm_client ExecutionEngine, got {type(engine).__name__}"
            )
        if agent is not None and not isinstance(agent, Agent):
            raise ValidationError(f"agent must be an llm_client Agent, got {type(agent).__name__}")
        if ledger is not None and ledger_writer is not None:
            raise ValidationError("pass ledger or ledger_writer, not both")
        if policy_engine is not None and not isinstance(policy_engine, PolicyEngine):
            raise ValidationError(f"policy_engine must be a PolicyEngine, got {type(policy_engine).__name__}")
        if event_bus is not None and not isinstance(event_bus, EventBus):
            raise ValidationError(f"event_bus must be an EventBus, got {type(event_bus).__name__}")
        if plugin_registry is not None and not isinstance(plugin_registry, PluginRegistry):
            raise ValidationError(
                f"plugin_registry must be a PluginRegistry, got {type(plugin_registry).__name__}"
            )
        interval = _seconds("heartbeat_interval", heartbeat_interval)
        self.engine = engine
        self.agent = agent if agent is not None else Agent(engine=engine)
        self.jobs = JobManager(job_store if job_store is not None else InMemoryJobStore())
        self.event_bus: EventBus = event_bus if event_bus is not None else InMemoryEventBus()
        self.actions: ActionManager = _KernelActionManager(
            self,
            action_store if action_store is not None else InMemoryActionStore(),
            on_event=self.event_bus.publish,
        )
        self.ledger = ledger if ledger is not None else Ledger(ledger_writer or InMemoryLedgerWriter())
        self.policy_engine = policy_engine if policy_engine is not None else PolicyEngine()
        self.plugin_registry = plugin_registry if plugin_registry is not None else PluginRegistry()
        self._runs: dict[str, _Run] = {}
        #: governed engines by "adds a BudgetMiddleware", each with the base engine it wraps
        self._engines: dict[bool, tuple[ExecutionEngine, ExecutionEngine]] = {}
        #: the governed tools, with the (agent and plugin) tools they were built from
        self._governed: tuple[tuple[object, ...], ToolRegistry] | None = None
        self.heartbeat_interval = interval
        #: the next heartbeat, armed while this kernel runs jobs (a timer, not a task per job)
        self._beat: asyncio.TimerHandle | None = None
        self._beat_loop: asyncio.AbstractEventLoop | None = None
        self._beating: set[asyncio.Task[list[str]]] = set()

    @classmethod
    def create(cls, engine: ExecutionEngine, agent: Agent | None = None, **components: Any) -> RuntimeKernel:
        """A kernel with in-memory stores (override any component by keyword)."""
        return cls(engine, agent, **components)

    def __repr__(self) -> str:
        return (
            f"RuntimeKernel(provider={self.engine.provider.name!r}, model={self.engine.model!r}, "
            f"running_jobs={len(self._runs)})"
        )

    # --- running -----------------------------------------------------------------------------

    async def execute(self, request: ExecutionRequest) -> ExecutionHandle:
        """Create (or, for a known idempotency key in the scope, find) the job and start running it.

        Returns at once; the job runs in a task of the current event loop. The same key again
        returns the handle of the same job, which runs once.
        """
        if not isinstance(request, ExecutionRequest):
            raise ValidationError(f"execute() takes an ExecutionRequest, got {type(request).__name__}")
        budgets = request.budgets or BudgetSpec()
        timeout = _effective_timeout(request.timeout_seconds, budgets)
        job = await self.jobs.create(
            JobSpec(
                scope_id=request.scope_id,
                principal_id=request.principal_id,
                session_id=request.session_id,
                idempotency_key=request.idempotency_key,
                budgets=budgets,
                policy_ref=request.policy_ref,
                metadata=dict(request.metadata),
                tags=dict(request.tags),
                timeout_seconds=timeout,
                state={"request": _request_state(request)},
            )
        )
        existing = self._runs.get(job.job_id)
        if existing is not None:
            return ExecutionHandle(self, job.job_id, existing.task)
        if job.status is not JobStatus.QUEUED:
            return ExecutionHandle(self, job.job_id, None)  # an earlier request with this key
        ctx = self._context_for(job)
        run = _Run(ctx=ctx, timeout_message=f"job timed out after {timeout:g}s" if timeout else "")
        self._runs[job.job_id] = run
        run.task = asyncio.create_task(self._drive(job.job_id, run, timeout, None), name=f"job:{job.job_id}")
        self._arm_heartbeat()
        return ExecutionHandle(self, job.job_id, run.task)

    async def resume(self, job_id: str) -> ExecutionHandle:
        """Continue a job that waits for an action, e.g. in a new process after a restart.

        The job continues from the conversation saved in its ``state`` once its pending actions
        are resolved (already, or later: this waits). Raises ValidationError for a job that is
        not waiting for an action or has no saved conversation.
        """
        existing = self._runs.get(job_id)
        if existing is not None:
            return ExecutionHandle(self, job_id, existing.task)
        job = await self.jobs.get(job_id)
        if job.status is not JobStatus.WAITING_ACTION:
            raise ValidationError(f"job {job_id!r} is {job.status.value}, only a waiting job can be resumed")
        state = dict(job.state)
        if not isinstance(state.get("actions"), Mapping) or not isinstance(state.get("messages"), list):
            raise ValidationError(
                f"job {job_id!r} has no saved conversation to resume from (it was waiting inside a "
                "tool call, not paused by ActionRequiredError, when its process stopped)"
            )
        run = _Run(
            ctx=self._context_for(job),
            timeout_message="job passed its deadline",
            usage=_usage_from(state.get("usage")),
            turns=int(state.get("turns", 0)),
            tool_calls=int(state.get("tool_calls", 0)),
        )
        self._runs[job_id] = run
        remaining = None if job.deadline is None else max(job.deadline - time.time(), 0.001)
        run.task = asyncio.create_task(self._drive(job_id, run, remaining, state), name=f"job:{job_id}")
        self._arm_heartbeat()
        return ExecutionHandle(self, job_id, run.task)

    async def cancel(self, job_id: str, reason: str = "cancelled by caller") -> None:
        """Cancel a job: its model call in flight is cancelled, its pending actions too.

        A job running in another process (or waiting with nobody running it) is marked CANCELLED
        in the store; a finished job is left as it is.
        """
        run = self._runs.get(job_id)
        if run is None or run.task is None or run.task.done():
            job = await self.jobs.get(job_id)
            if not job.status.is_terminal:
                try:
                    await self.jobs.cancel(job_id, reason=reason)
                except InvalidTransitionError:
                    return  # it finished meanwhile
                await self._cancel_actions(job_id)
                await self._publish_job(
                    job_id, RuntimeEventType.JOB_CANCELLED, {"status": "cancelled", "reason": reason}
                )
            return
        if run.cancel_reason is None:
            run.cancel_reason = reason
        run.ctx.cancellation_token.cancel(reason)
        run.task.cancel(reason)
        await asyncio.wait({run.task})

    # --- liveness ----------------------------------------------------------------------------

    def _arm_heartbeat(self) -> None:
        loop = asyncio.get_running_loop()
        # A timer of another (e.g. closed) event loop never fires: arm one on this loop.
        if self._beat is None or self._beat_loop is not loop:
            self._beat = loop.call_later(self.heartbeat_interval, self._on_heartbeat)
            self._beat_loop = loop

    def _on_heartbeat(self) -> None:
        self._beat = None
        if not self._runs:
            return  # idle: the next execute arms the timer again
        task = asyncio.get_running_loop().create_task(self.heartbeat(), name="agent_runtime:heartbeat")
        self._beating.add(task)
        task.add_done_callback(self._beating.discard)
        self._arm_heartbeat()

    async def heartbeat(self) -> list[str]:
        """Stamp every job this kernel is running as alive (its ``updated_at``); returns their ids.

        Runs by itself every ``heartbeat_interval`` seconds while the kernel runs jobs, so another
        process's :meth:`recover_lost_jobs` can tell a live job from one whose worker died. A
        store error is logged, not raised: the next beat tries again.
        """
        beaten: list[str] = []
        for job_id in list(self._runs):
            try:
                await self.jobs.heartbeat(job_id)
            except (InvalidTransitionError, JobNotFoundError):
                continue  # it ended (or was deleted) meanwhile
            except Exception as exc:
                logger.warning("heartbeat of job %s failed: %s: %s", job_id, type(exc).__name__, exc)
                continue
            beaten.append(job_id)
        return beaten

    async def recover_lost_jobs(self, stale_after: float | None = None) -> list[JobRecord]:
        """Fail the kernel jobs whose worker is gone: QUEUED or RUNNING, run by no live kernel.

        A job counts as lost when this kernel does not run it and nothing has written it
        (heartbeat, progress, transition) for ``stale_after`` seconds (default: three heartbeat
        intervals). It ends FAILED with ``error_code="worker_lost"``, its pending actions are
        cancelled and ``final.error`` / ``job.failed`` events are published. Jobs are not re-run:
        their model calls and tools may already have happened. Jobs waiting for an action are not
        touched (continue them with :meth:`resume`), nor are jobs the kernel did not create (e.g.
        orchestration children). Call it from one process at start-up or on a schedule; racing
        callers are safe (each job is failed once).
        """
        window = 3 * self.heartbeat_interval if stale_after is None else _seconds("stale_after", stale_after)
        cutoff = time.time() - window
        message = f"worker lost: no heartbeat for over {window:g}s"
        lost: list[JobRecord] = []
        for job in await self.jobs.list(JobFilter(status=[JobStatus.QUEUED, JobStatus.RUNNING])):
            if job.job_id in self._runs or not _is_kernel_job(job) or _last_seen(job) > cutoff:
                continue

            def give_up(fresh: JobRecord) -> JobRecord:
                if fresh.status not in (JobStatus.QUEUED, JobStatus.RUNNING) or _last_seen(fresh) > cutoff:
                    raise _StillAlive(fresh.job_id)
                return fresh.transition_to(JobStatus.FAILED).with_error(message, error_code="worker_lost")

            try:
                failed = await self.jobs.modify(job.job_id, give_up)
            except (_StillAlive, JobNotFoundError):
                continue
            await self._cancel_actions(job.job_id)
            data = {"status": JobStatus.FAILED.value, "error": message, "error_code": "worker_lost"}
            await self._publish_job(job.job_id, RuntimeEventType.FINAL_ERROR, data)
            await self._publish_job(job.job_id, RuntimeEventType.JOB_FAILED, data)
            lost.append(failed)
        return lost

    def _context_for(self, job: JobRecord) -> ExecutionContext:
        return ExecutionContext(
            scope_id=job.scope_id,
            principal_id=job.principal_id,
            session_id=job.session_id,
            job_id=job.job_id,
            budgets=job.budgets,
            policy_ref=job.policy_ref,
            metadata=dict(job.metadata),
        )

    async def _drive(
        self, job_id: str, run: _Run, timeout: float | None, saved: dict[str, Any] | None
    ) -> ExecutionResult:
        ctx = run.ctx
        active = _active_run.set(run)
        try:
            scope = asyncio.timeout(timeout)
            try:
                async with scope:
                    if saved is None:
                        started = await self.jobs.start(job_id)
                        await self._publish(ctx, RuntimeEventType.JOB_STARTED, {"status": "running"})
                        messages = _initial_messages(started)
                    else:
                        await self._publish(
                            ctx, RuntimeEventType.PROGRESS, {"resumed": True, "turn": run.turns}
                        )
                        messages = await self._wait_and_resume(job_id, run, saved)
                    return await self._loop(job_id, run, messages)
            except TimeoutError:
                if not scope.expired():
                    raise  # a TimeoutError of something inside (e.g. an expired action), not the job's
                return await self._finish_error(
                    job_id, run, JobStatus.TIMED_OUT, run.timeout_message, "timeout"
                )
        except asyncio.CancelledError:
            result = await self._finish_cancelled(job_id, run)
            if run.cancel_reason is None:
                raise  # cancelled from outside the kernel (e.g. loop shutdown): propagate
            return result
        except _Superseded:
            logger.info("job %s was taken over or ended elsewhere; this worker stops", job_id)
            return await self._result_of_finished(job_id)
        except Exception as exc:
            error = exc.error if isinstance(exc, _FatalToolError) else exc
            logger.info("job %s failed: %s: %s", job_id, type(error).__name__, error)
            code = type(error).__name__
            return await self._finish_error(job_id, run, JobStatus.FAILED, f"{code}: {error}", code)
        finally:
            _active_run.reset(active)
            self._runs.pop(job_id, None)

    async def _loop(self, job_id: str, run: _Run, messages: list[dict[str, Any]]) -> ExecutionResult:
        ctx = run.ctx
        token = _current.set(ctx)
        try:
            while True:
                agent = self._agent_for(run)
                paused: AgentInterrupted | None = None
                stream = agent.stream(messages, context=ctx.to_request_context())
                try:
                    async for event in stream:
                        if isinstance(event, AgentDone):
                            return await self._finish_ok(job_id, run, event.result.content)
                        if isinstance(event, StreamError):
                            paused = _paused_for_actions(event.error)
                        else:
                            await self._report(job_id, run, event)
                finally:
                    await aclose_stream(stream)
                if paused is None:  # pragma: no cover - agent.stream always ends with a terminal event
                    raise AgentRuntimeError("agent stream ended without a result")
                state = self._pause_state(run, paused)
                await self.jobs.set_state(job_id, state)
                await self._to_waiting(job_id, run, {"actions": list(state["actions"].values())})
                messages = await self._wait_and_resume(job_id, run, state)
        finally:
            _current.reset(token)

    async def _report(self, job_id: str, run: _Run, event: Any) -> None:
        """Publish what the agent loop did as runtime events (and, at most once a second, progress)."""
        ctx = run.ctx
        if isinstance(event, TextDelta):
            await self._publish(ctx, RuntimeEventType.MODEL_TOKEN, {"token": event.text})
        elif isinstance(event, ReasoningDelta):
            await self._publish(ctx, RuntimeEventType.MODEL_REASONING, {"text": event.text})
        elif isinstance(event, TurnComplete):
            run.turns += 1
            run.usage = run.usage + event.response.usage
            await self._publish(
                ctx,
                RuntimeEventType.MODEL_DONE,
                {"turn": run.turns, "finish_reason": event.response.finish_reason},
            )
            # Progress is persisted at most once a second: the MODEL_DONE event already tells live
            # watchers, and a store write per turn would dominate short jobs.
            now = time.monotonic()
            if now - run.progress_saved_at >= 1.0:
                run.progress_saved_at = now
                limit = _turn_limit(self.agent, ctx.budgets)
                await self.jobs.update_progress(job_id, min(0.99, run.turns / limit), turn=run.turns)
        elif isinstance(event, ToolStart):
            await self._publish(
                ctx, RuntimeEventType.TOOL_START, {"tool": event.call.name, "tool_call_id": event.call.id}
            )
        elif isinstance(event, ToolEnd):
            outcome = event.outcome
            await self._publish_tool_end(
                ctx, outcome.call.name, outcome.call.id, outcome.error, outcome.duration_ms
            )

    def _pause_state(self, run: _Run, paused: AgentInterrupted) -> dict[str, Any]:
        """What a paused job needs to continue anywhere: JSON, saved with the job."""
        interrupts: list[ActionRequiredError] = [
            i for i in paused.interrupts if isinstance(i, ActionRequiredError)
        ]
        return {
            **paused.to_state(),
            "actions": {c.id: i.action_id for c, i in zip(paused.pending, interrupts, strict=True)},
            "approvals": [
                c.id
                for c, i in zip(paused.pending, interrupts, strict=True)
                if isinstance(i, _ApprovalRequired)
            ],
            "turns": run.turns,
            "tool_calls": run.tool_calls,
            "usage": _usage_to_state(run.usage),
        }

    async def _wait_and_resume(
        self, job_id: str, run: _Run, state: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """Wait for every pending action of a paused job and build the conversation to continue."""
        resolved: dict[str, ActionRecord] = {}
        for call_id, action_id in dict(state["actions"]).items():
            resolved[call_id] = await self.actions.wait_for_resolution(action_id)
        try:
            await self.jobs.resume(job_id)
        except InvalidTransitionError:
            raise _Superseded(job_id) from None
        await self._publish(run.ctx, RuntimeEventType.JOB_STATUS_CHANGED, {"status": "running"})
        messages: list[dict[str, Any]] = [dict(m) for m in state["messages"]]
        calls = {tc["id"]: tc for tc in messages[-1].get("tool_calls") or ()}
        approvals = set(state.get("approvals") or ())
        completed: Mapping[str, Any] = state["completed"]
        for call_id, tc in calls.items():
            if call_id in completed:
                messages.append(dict(completed[call_id]))
            elif call_id in resolved:
                answer = resolved[call_id].resolution or {}
                if call_id in approvals:
                    content = await self._run_approved(run, call_id, tc["function"], answer)
                else:
                    content = json.dumps(answer, default=str)
                messages.append({"role": "tool", "tool_call_id": call_id, "content": content})
        return messages

    async def _run_approved(
        self, run: _Run, call_id: str, function: Mapping[str, Any], answer: Mapping[str, Any]
    ) -> str:
        """The tool message for a call that waited for approval: the tool's result, or the refusal."""
        name = str(function.get("name"))
        if not answer.get("approved"):
            why = answer.get("reason")
            return f"Error: tool call {name!r} was not approved" + (f": {why}" if why else "")
        tools = self._tools()
        await self._publish(run.ctx, RuntimeEventType.TOOL_START, {"tool": name, "tool_call_id": call_id})
        started = time.perf_counter()
        error: str | None = None
        token = _approved.set(True)
        try:
            value = await tools.get(name).invoke(function.get("arguments"))
            content = Tool.format_result(value)
        except LLMClientError as exc:
            content = error = f"Error: {exc.message}"
        finally:
            _approved.reset(token)
        await self._publish_tool_end(run.ctx, name, call_id, error, (time.perf_counter() - started) * 1000)
        return content

    async def _to_waiting(self, job_id: str, run: _Run, data: Mapping[str, Any]) -> None:
        async with run.wait_lock:
            job = await self.jobs.get(job_id)
            if job.status is JobStatus.RUNNING:
                await self.jobs.wait_for_action(job_id)
                await self._publish(
                    run.ctx, RuntimeEventType.JOB_STATUS_CHANGED, {"status": "waiting_action", **data}
                )

    async def _enter_blocking_wait(self, run: _Run, action_id: str) -> None:
        run.blocking_waits += 1
        await self._to_waiting(str(run.ctx.job_id), run, {"action_id": action_id})

    async def _leave_blocking_wait(self, run: _Run) -> None:
        run.blocking_waits -= 1
        job_id = str(run.ctx.job_id)
        async with run.wait_lock:
            if run.blocking_waits > 0:
                return
            job = await self.jobs.get(job_id)
            if job.status is JobStatus.WAITING_ACTION:
                await self.jobs.resume(job_id)
                await self._publish(run.ctx, RuntimeEventType.JOB_STATUS_CHANGED, {"status": "running"})

    # --- governance ---------------------------------------------------------------------------

    def _engine_for(self, budgets: BudgetSpec) -> ExecutionEngine:
        """The agent's engine behind the governance middleware (built once, shared by all jobs)."""
        base = self.agent.engine
        add_budget = (budgets.max_tokens is not None or budgets.max_cost is not None) and not any(
            isinstance(m, BudgetMiddleware) for m in base.middleware
        )
        cached = self._engines.get(add_budget)
        if cached is not None and cached[0] is base:
            return cached[1]
        middleware: list[Middleware] = [_Governance(self, base.model), *base.middleware]
        if add_budget:
            middleware.append(BudgetMiddleware(base.pricing))
        engine = base.with_middleware(middleware)
        self._engines[add_budget] = (base, engine)
        return engine

    def _tools(self) -> ToolRegistry:
        """The agent's and the plugins' tools, governed; rebuilt only when that set of tools changes."""
        sources: tuple[Any, ...] = (*self.agent.tools.tools(), *self.plugin_registry.get_all_tools())
        cached = self._governed
        if (
            cached is not None
            and len(cached[0]) == len(sources)
            and all(a is b for a, b in zip(cached[0], sources, strict=True))
        ):
            return cached[1]
        tools = [t if isinstance(t, Tool) else Tool.from_function(t) for t in sources]
        registry = ToolRegistry([_GovernedTool(self, _with_context_injected(t)) for t in tools])
        self._governed = (sources, registry)
        return registry

    def _agent_for(self, run: _Run) -> Agent:
        """The agent for the rest of the job: governed engine and tools, the turns still allowed."""
        base = self.agent
        limit = _turn_limit(base, run.ctx.budgets)
        remaining = limit - run.turns
        if remaining < 1:
            raise MaxTurnsExceededError(
                f"turn budget exceeded: the job used {run.turns} of max_turns={limit} model calls "
                "without a final answer"
            )
        return Agent(
            engine=self._engine_for(run.ctx.budgets),
            tools=self._tools(),
            system_prompt=base.system_prompt,
            model=base.model,
            max_turns=remaining,
            parallel_tool_calls=base.parallel_tool_calls,
            request_options=base.request_options,
        )

    async def _policy_denied(
        self,
        ctx: ExecutionContext,
        decision: PolicyResult,
        *,
        model: str | None = None,
        tool: str | None = None,
    ) -> None:
        """Audit trail of a refusal: a POLICY_DENIED ledger event and a PROGRESS runtime event."""
        await self.ledger.writer.write(
            LedgerEvent(
                type=LedgerEventType.POLICY_DENIED,
                job_id=ctx.job_id,
                run_id=ctx.run_id,
                scope_id=ctx.scope_id,
                principal_id=ctx.principal_id,
                session_id=ctx.session_id,
                model=model,
                tool_name=tool,
                requests=0,
                metadata={"policy": decision.to_dict()},
            )
        )
        await self._publish(ctx, RuntimeEventType.PROGRESS, {"policy": decision.to_dict()})

    # --- endings ------------------------------------------------------------------------------

    def _usage_dict(self, run: _Run) -> dict[str, Any]:
        u = run.usage
        return {
            "input_tokens": u.input_tokens,
            "output_tokens": u.output_tokens,
            "total_tokens": u.total_tokens,
            "total_cost": None if u.cost is None else str(u.cost),
        }

    async def _finish_ok(self, job_id: str, run: _Run, content: str | None) -> ExecutionResult:
        usage = self._usage_dict(run)
        await self.jobs.complete(
            job_id,
            result_ref=f"job:{job_id}:result",
            state={"result": {"content": content, "usage": usage}, "turns": run.turns},
            turn=run.turns,
        )
        result = ExecutionResult(job_id, JobStatus.SUCCEEDED.value, content, usage, run.turns)
        await self._publish(run.ctx, RuntimeEventType.FINAL_RESULT, {"content": content, "usage": usage})
        await self._publish(run.ctx, RuntimeEventType.JOB_COMPLETED, {"status": result.status})
        return result

    async def _finish_error(
        self, job_id: str, run: _Run, status: JobStatus, message: str, code: str
    ) -> ExecutionResult:
        usage = self._usage_dict(run)
        try:
            await self.jobs.set_state(
                job_id, {"result": {"content": None, "usage": usage}, "turns": run.turns}
            )
            if status is JobStatus.TIMED_OUT:
                await self.jobs.timeout(job_id, message)
            else:
                await self.jobs.fail(job_id, message, error_code=code)
        except InvalidTransitionError:
            return await self._result_of_finished(job_id)  # ended elsewhere first (e.g. cancelled)
        await self._cancel_actions(job_id)
        result = ExecutionResult(job_id, status.value, None, usage, run.turns, error=message)
        await self._publish(run.ctx, RuntimeEventType.FINAL_ERROR, {"error": message, "status": status.value})
        await self._publish(run.ctx, RuntimeEventType.JOB_FAILED, {"status": status.value, "error": message})
        return result

    async def _finish_cancelled(self, job_id: str, run: _Run) -> ExecutionResult:
        reason = run.cancel_reason or "cancelled"
        usage = self._usage_dict(run)
        try:
            await self.jobs.set_state(
                job_id, {"result": {"content": None, "usage": usage}, "turns": run.turns}
            )
            await self.jobs.cancel(job_id, reason=reason)
        except InvalidTransitionError:
            return await self._result_of_finished(job_id)
        await self._cancel_actions(job_id)
        await self._publish(
            run.ctx, RuntimeEventType.JOB_CANCELLED, {"status": "cancelled", "reason": reason}
        )
        return ExecutionResult(job_id, JobStatus.CANCELLED.value, None, usage, run.turns, error=reason)

    async def _cancel_actions(self, job_id: str) -> None:
        for action in await self.actions.list_pending(job_id=job_id):
            await self.actions.cancel(action.action_id, reason="job ended")

    async def _result_of_finished(self, job_id: str) -> ExecutionResult:
        job = await self.jobs.get(job_id)
        saved = dict(job.state.get("result") or {})
        return ExecutionResult(
            job_id,
            job.status.value,
            saved.get("content"),
            dict(saved.get("usage") or {}),
            int(job.state.get("turns", 0)),
            error=job.error,
        )

    # --- events -------------------------------------------------------------------------------

    async def _publish(self, ctx: ExecutionContext, type: RuntimeEventType, data: Mapping[str, Any]) -> None:
        await self.event_bus.publish(RuntimeEvent.from_context(ctx, type, dict(data)))

    async def _publish_job(self, job_id: str, type: RuntimeEventType, data: Mapping[str, Any]) -> None:
        await self.event_bus.publish(RuntimeEvent(type=type, job_id=job_id, data=dict(data)))

    async def _publish_tool_end(
        self, ctx: ExecutionContext, name: str, call_id: str, error: str | None, duration_ms: float
    ) -> None:
        kind = RuntimeEventType.TOOL_END if error is None else RuntimeEventType.TOOL_ERROR
        data: dict[str, Any] = {"tool": name, "tool_call_id": call_id, "duration_ms": duration_ms}
        if error is not None:
            data["error"] = error
        await self._publish(ctx, kind, data)

    async def aclose(self) -> None:
        """Cancel the jobs this kernel runs (they end CANCELLED) and close the event bus."""
        if self._beat is not None:
            self._beat.cancel()
            self._beat = None
        if self._beating:
            await asyncio.wait(set(self._beating))
        runs = [r for r in self._runs.values() if r.task is not None and not r.task.done()]
        for run in runs:
            if run.cancel_reason is None:
                run.cancel_reason = "kernel closed"
            run.ctx.cancellation_token.cancel("kernel closed")
            assert run.task is not None
            run.task.cancel()
        if runs:
            await asyncio.wait({r.task for r in runs if r.task is not None})
        await self.event_bus.close()


def _seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValidationError(f"{name} must be a number of seconds > 0, got {value!r}")
    return float(value)


def _is_kernel_job(job: JobRecord) -> bool:
    """Made by ``execute`` (its request is saved) or paused by the kernel (its conversation is)."""
    return "request" in job.state or "actions" in job.state


def _last_seen(job: JobRecord) -> float:
    return job.updated_at if job.updated_at is not None else job.created_at


def _paused_for_actions(error: Exception) -> AgentInterrupted:
    """The pause of a loop whose tools all wait for actions; any other error ends the job."""
    if isinstance(error, AgentInterrupted) and all(
        isinstance(i, ActionRequiredError) for i in error.interrupts
    ):
        return error
    raise error


def _effective_timeout(timeout_seconds: float | None, budgets: BudgetSpec) -> float | None:
    limits = [t for t in (timeout_seconds, budgets.max_runtime_seconds) if t is not None]
    return float(min(limits)) if limits else None


def _turn_limit(agent: Agent, budgets: BudgetSpec) -> int:
    return agent.max_turns if budgets.max_turns is None else min(agent.max_turns, budgets.max_turns)


def _usage_to_state(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "cost": None if usage.cost is None else str(usage.cost),
        "requests": usage.requests,
    }


def _usage_from(data: Any) -> Usage:
    if not isinstance(data, Mapping):
        return Usage.zero()
    cost = data.get("cost")
    return Usage(
        input_tokens=int(data.get("input_tokens", 0)),
        output_tokens=int(data.get("output_tokens", 0)),
        total_tokens=int(data.get("total_tokens", 0)),
        cost=None if cost is None else Decimal(str(cost)),
        requests=int(data.get("requests", 0)),
    )


def _request_state(request: ExecutionRequest) -> dict[str, Any]:
    if request.messages is not None:
        return {"messages": [dict(m) for m in request.messages]}
    return {"prompt": request.prompt}


def _initial_messages(job: JobRecord) -> list[dict[str, Any]]:
    saved = dict(job.state.get("request") or {})
    if "messages" in saved:
        return [dict(m) for m in saved["messages"]]
    return [{"role": "user", "content": str(saved["prompt"])}]
