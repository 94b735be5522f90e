"""RuntimeKernel: runs llm-client agents as governed, durable jobs.

Each ``execute`` becomes a job (idempotent per scope) whose agent loop runs under the kernel's
rules: the policy engine is asked before every model and tool call, budgets are reserved and
settled through the ledger around every model call, the job's timeout and cancellation reach the
model call in flight, and a tool that needs a human raises ``ActionRequiredError``: the job moves
to WAITING_ACTION with its conversation persisted in the job record, and continues, in this
process or another one after a restart, once the action is resolved, without calling the model
again for the turns already done and without re-running tool calls that had finished.

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
    ReasoningDelta,
    RequestContext,
    RequestSpec,
    StreamDone,
    StreamError,
    TextDelta,
    Tool,
    ToolEnd,
    ToolRegistry,
    ToolStart,
    TurnComplete,
    Usage,
)
from llm_client.middleware import Call, Middleware, StreamCall
from llm_client.streaming import StreamEvent

from .actions import (
    ActionManager,
    ActionRecord,
    ActionRequiredError,
    ActionSpec,
    ActionStore,
    InMemoryActionStore,
)
from .context import BudgetSpec, ExecutionContext, PolicyRef
from .errors import AgentRuntimeError, ValidationError
from .events import EventBus, InMemoryEventBus, RuntimeEvent, RuntimeEventType
from .jobs import InMemoryJobStore, JobManager, JobRecord, JobSpec, JobStatus, JobStore
from .ledger import BudgetDecision, BudgetExceededError, InMemoryLedgerWriter, Ledger, LedgerWriter
from .plugins import PluginRegistry
from .policy import PolicyContext, PolicyDecision, PolicyDenied, PolicyEngine

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


def current_execution() -> ExecutionContext | None:
    """The ExecutionContext of the job whose tool is running (None outside a kernel job)."""
    return _current.get()


@dataclass(frozen=True, slots=True)
class ExecutionRequest:
    """What to run. ``prompt`` (or a full ``messages`` list) and who it runs for."""

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
        if self.prompt is not None and not self.prompt.strip():
            raise ValidationError("prompt is empty")
        if self.timeout_seconds is not None and self.timeout_seconds <= 0:
            raise ValidationError(f"timeout_seconds must be > 0, got {self.timeout_seconds}")


@dataclass(frozen=True, slots=True)
class ExecutionResult:
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

    async def job(self) -> JobRecord:
        return await self._kernel.jobs.get(self.job_id)

    def events(self) -> AsyncIterator[RuntimeEvent]:
        """The job's events from its start (replayed), then live ones, until it ends."""
        return self._kernel.event_bus.stream(job_id=self.job_id).__aiter__()

    async def result(self) -> ExecutionResult:
        if self._task is not None:
            return await asyncio.shield(self._task)
        return await self._kernel._result_of_finished(self.job_id)

    async def cancel(self, reason: str = "cancelled by caller") -> None:
        await self._kernel.cancel(self.job_id, reason)


@dataclass(slots=True)
class _Run:
    """Per-job mutable bookkeeping."""

    ctx: ExecutionContext
    usage: Usage = field(default_factory=Usage.zero)
    turns: int = 0
    tool_calls: int = 0
    task: asyncio.Task[ExecutionResult] | None = None


class _Governance(Middleware):
    """Policy check and ledger reservation around every model call of one job."""

    def __init__(self, kernel: RuntimeKernel, run: _Run) -> None:
        self.kernel = kernel
        self.run = run

    async def _before(self, spec: RequestSpec) -> Any:
        ctx = self.run.ctx
        model = spec.model or self.kernel.engine.model
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
            await self.kernel._publish(ctx, RuntimeEventType.PROGRESS, {"policy": decision.to_dict()})
            raise PolicyDenied(
                decision.reason or f"model {model!r} denied by policy", violations=decision.violations
            )
        check = await self.kernel.ledger.reserve(ctx, pending_tokens=estimate)
        if check.decision is BudgetDecision.DENY:
            raise BudgetExceededError(check.reason)
        return check.reservation

    async def _after(self, reservation: Any, spec: RequestSpec, result: CompletionResult | None) -> None:
        ctx = self.run.ctx
        if result is None:
            if reservation is not None:
                await self.kernel.ledger.release(reservation)
            return
        await self.kernel.ledger.record_model_usage(
            ctx,
            result.usage,
            provider=result.provider or self.kernel.engine.provider.name,
            model=result.model or spec.model,
            reservation=reservation,
        )

    async def complete(self, spec: RequestSpec, context: RequestContext, call_next: Call) -> CompletionResult:
        reservation = await self._before(spec)
        result: CompletionResult | None = None
        try:
            result = await call_next(spec, context)
            return result
        finally:
            await self._after(reservation, spec, result)

    async def stream(
        self, spec: RequestSpec, context: RequestContext, call_next: StreamCall
    ) -> AsyncIterator[StreamEvent]:
        reservation = await self._before(spec)
        result: CompletionResult | None = None
        try:
            async for event in call_next(spec, context):
                if isinstance(event, StreamDone):
                    result = event.result
                yield event
        finally:
            await self._after(reservation, spec, result)


def _estimate_tokens(spec: RequestSpec) -> int:
    chars = sum(len(m["content"]) for m in spec.messages if isinstance(m.get("content"), str))
    return chars // 4 + 4 * len(spec.messages) + (spec.max_tokens or 0)


class RuntimeKernel:
    """Jobs, actions, policy, ledger, events and plugins around one engine and agent.

    ``RuntimeKernel.create(engine=..., agent=...)`` uses in-memory stores; pass PostgreSQL stores
    (and a shared event bus) for durable, multi-process deployments.
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
    ) -> None:
        if not isinstance(engine, ExecutionEngine):
            raise ValidationError(
                f"engine must be an llm_client ExecutionEngine, got {type(engine).__name__}"
            )
        if agent is not None and not isinstance(agent, Agent):
            raise ValidationError(f"agent must be an llm_client Agent, got {type(agent).__name__}")
        self.engine = engine
        self.agent = agent if agent is not None else Agent(engine=engine)
        self.jobs = JobManager(job_store if job_store is not None else InMemoryJobStore())
        self.event_bus: EventBus = event_bus if event_bus is not None else InMemoryEventBus()
        self.actions = ActionManager(
            action_store if action_store is not None else InMemoryActionStore(),
            on_event=self.event_bus.publish,
        )
        self.ledger = ledger if ledger is not None else Ledger(ledger_writer or InMemoryLedgerWriter())
        self.policy_engine = policy_engine if policy_engine is not None else PolicyEngine()
        self.plugin_registry = plugin_registry if plugin_registry is not None else PluginRegistry()
        self._runs: dict[str, _Run] = {}

    @classmethod
    def create(cls, engine: ExecutionEngine, agent: Agent | None = None, **components: Any) -> RuntimeKernel:
        """A kernel with in-memory stores (override any component by keyword)."""
        return cls(engine, agent, **components)

    # --- running -----------------------------------------------------------------------------

    async def execute(self, request: ExecutionRequest) -> ExecutionHandle:
        """Create (or, for a known idempotency key, find) the job and start running it."""
        if not isinstance(request, ExecutionRequest):
            raise ValidationError(f"execute() takes an ExecutionRequest, got {type(request).__name__}")
        budgets = request.budgets or BudgetSpec()
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
                timeout_seconds=request.timeout_seconds,
                state={"request": _request_state(request)},
            )
        )
        existing = self._runs.get(job.job_id)
        if existing is not None:
            return ExecutionHandle(self, job.job_id, existing.task)
        if job.status is not JobStatus.QUEUED:
            return ExecutionHandle(self, job.job_id, None)  # an earlier request with this key
        ctx = ExecutionContext(
            scope_id=request.scope_id,
            principal_id=request.principal_id,
            session_id=request.session_id,
            job_id=job.job_id,
            budgets=budgets,
            policy_ref=request.policy_ref,
            metadata=dict(request.metadata),
        )
        run = _Run(ctx=ctx)
        self._runs[job.job_id] = run
        run.task = asyncio.create_task(self._drive(job.job_id, run, request.timeout_seconds, None))
        return ExecutionHandle(self, job.job_id, run.task)

    async def resume(self, job_id: str) -> ExecutionHandle:
        """Continue a job that waits for an action, e.g. in a new process after a restart."""
        existing = self._runs.get(job_id)
        if existing is not None:
            return ExecutionHandle(self, job_id, existing.task)
        job = await self.jobs.get(job_id)
        if job.status is not JobStatus.WAITING_ACTION:
            raise ValidationError(f"job {job_id!r} is {job.status.value}, only a waiting job can be resumed")
        ctx = ExecutionContext(
            scope_id=job.scope_id,
            principal_id=job.principal_id,
            session_id=job.session_id,
            job_id=job.job_id,
            budgets=job.budgets,
            policy_ref=job.policy_ref,
            metadata=dict(job.metadata),
        )
        run = _Run(ctx=ctx, turns=int(job.state.get("turns", 0)))
        self._runs[job_id] = run
        remaining = None if job.deadline is None else max(job.deadline - time.time(), 0.001)
        run.task = asyncio.create_task(self._drive(job_id, run, remaining, dict(job.state)))
        return ExecutionHandle(self, job_id, run.task)

    async def cancel(self, job_id: str, reason: str = "cancelled by caller") -> None:
        run = self._runs.get(job_id)
        if run is None or run.task is None or run.task.done():
            job = await self.jobs.get(job_id)
            if not job.status.is_terminal:
                await self.jobs.cancel(job_id, reason=reason)
                await self._publish_job(job_id, RuntimeEventType.JOB_CANCELLED, {"reason": reason})
            return
        if run.ctx.cancellation_token is not None:
            run.ctx.cancellation_token.cancel(reason)
        run.task.cancel(reason)
        try:
            await asyncio.shield(run.task)
        except asyncio.CancelledError:
            pass

    async def _drive(
        self, job_id: str, run: _Run, timeout: float | None, saved: dict[str, Any] | None
    ) -> ExecutionResult:
        ctx = run.ctx
        try:
            try:
                async with asyncio.timeout(timeout):
                    if saved is None:
                        await self.jobs.start(job_id)
                        await self._publish(ctx, RuntimeEventType.JOB_STARTED, {"status": "running"})
                        messages = _initial_messages(await self.jobs.get(job_id))
                    else:
                        messages = await self._wait_and_resume(job_id, run, saved)
                    return await self._loop(job_id, run, messages)
            except TimeoutError:
                return await self._finish_error(job_id, run, "timed_out", f"job timed out after {timeout:g}s")
        except asyncio.CancelledError:
            await self._finish_cancelled(job_id, run)
            raise
        except Exception as exc:
            logger.info("job %s failed: %s: %s", job_id, type(exc).__name__, exc)
            code = type(exc).__name__
            return await self._finish_error(job_id, run, "failed", f"{code}: {exc}", code)
        finally:
            self._runs.pop(job_id, None)

    async def _loop(self, job_id: str, run: _Run, messages: list[dict[str, Any]]) -> ExecutionResult:
        ctx = run.ctx
        agent = self._agent_for(run)
        token = _current.set(ctx)
        try:
            while True:
                request_ctx = ctx.to_request_context()
                paused: AgentInterrupted | None = None
                async for event in agent.stream(messages, context=request_ctx):
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
                        await self.jobs.update_progress(
                            job_id, min(0.99, run.turns / agent.max_turns), turn=run.turns
                        )
                    elif isinstance(event, ToolStart):
                        await self._publish(
                            ctx,
                            RuntimeEventType.TOOL_START,
                            {"tool": event.call.name, "tool_call_id": event.call.id},
                        )
                    elif isinstance(event, ToolEnd):
                        o = event.outcome
                        kind = RuntimeEventType.TOOL_END if o.ok else RuntimeEventType.TOOL_ERROR
                        await self._publish(
                            ctx,
                            kind,
                            {
                                "tool": o.call.name,
                                "tool_call_id": o.call.id,
                                "duration_ms": o.duration_ms,
                                **({"error": o.error} if o.error else {}),
                            },
                        )
                    elif isinstance(event, AgentDone):
                        return await self._finish_ok(job_id, run, event.result.content)
                    elif isinstance(event, StreamError):
                        if isinstance(event.error, AgentInterrupted) and all(
                            isinstance(i, ActionRequiredError) for i in event.error.interrupts
                        ):
                            paused = event.error
                        else:
                            raise event.error
                if paused is None:  # pragma: no cover - agent.stream always ends with a terminal event
                    raise AgentRuntimeError("agent stream ended without a result")
                state = {
                    **paused.to_state(),
                    "actions": {
                        c.id: i.action_id  # type: ignore[attr-defined]
                        for c, i in zip(paused.pending, paused.interrupts, strict=True)
                    },
                    "turns": run.turns,
                }
                await self.jobs.set_state(job_id, state)
                await self.jobs.wait_for_action(job_id)
                await self._publish(ctx, RuntimeEventType.JOB_STATUS_CHANGED, {"status": "waiting_action"})
                messages = await self._wait_and_resume(job_id, run, state)
        finally:
            _current.reset(token)

    async def _wait_and_resume(
        self, job_id: str, run: _Run, state: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """Wait for every pending action of a paused job and build the conversation to continue."""
        results: dict[str, str] = {}
        for call_id, action_id in dict(state["actions"]).items():
            resolved: ActionRecord = await self.actions.wait_for_resolution(action_id)
            results[call_id] = json.dumps(resolved.resolution, default=str)
        job = await self.jobs.get(job_id)
        if job.status is JobStatus.WAITING_ACTION:
            await self.jobs.resume(job_id)
        await self._publish(run.ctx, RuntimeEventType.JOB_STATUS_CHANGED, {"status": "running"})
        messages: list[dict[str, Any]] = list(state["messages"])
        for tc in messages[-1].get("tool_calls") or ():
            call_id = tc["id"]
            if call_id in state["completed"]:
                messages.append(state["completed"][call_id])
            elif call_id in results:
                messages.append({"role": "tool", "tool_call_id": call_id, "content": results[call_id]})
        return messages

    # --- governance ---------------------------------------------------------------------------

    def _agent_for(self, run: _Run) -> Agent:
        base = self.agent
        middleware: list[Middleware] = [_Governance(self, run), *self.engine.middleware]
        budgets = run.ctx.budgets
        if (budgets.max_tokens is not None or budgets.max_cost is not None) and not any(
            isinstance(m, BudgetMiddleware) for m in middleware
        ):
            middleware.append(BudgetMiddleware(self.engine.pricing))
        engine = self.engine.with_middleware(middleware)
        tools = ToolRegistry(
            [self._govern_tool(t, run) for t in [*base.tools.tools(), *self._plugin_tools()]]
        )
        max_turns = base.max_turns if budgets.max_turns is None else min(base.max_turns, budgets.max_turns)
        return Agent(
            engine=engine,
            tools=tools,
            system_prompt=base.system_prompt,
            model=base.model,
            max_turns=max_turns,
            parallel_tool_calls=base.parallel_tool_calls,
            request_options=base.request_options,
        )

    def _plugin_tools(self) -> list[Tool]:
        out: list[Tool] = []
        for t in self.plugin_registry.get_all_tools():
            out.append(t if isinstance(t, Tool) else Tool.from_function(t))
        return out

    def _govern_tool(self, tool: Tool, run: _Run) -> Tool:
        """The same tool behind a policy check, the tool-call budget and the ledger."""
        kernel = self
        inner = tool

        async def governed(**arguments: Any) -> Any:
            ctx = run.ctx
            budgets = ctx.budgets
            if budgets.max_tool_calls is not None and run.tool_calls >= budgets.max_tool_calls:
                raise BudgetExceededError(f"tool call budget of {budgets.max_tool_calls} calls is used up")
            decision = await kernel.policy_engine.check_tool(
                inner.name,
                PolicyContext(scope_id=ctx.scope_id, principal_id=ctx.principal_id, tool_name=inner.name),
            )
            if decision.decision is PolicyDecision.DENY:
                raise PolicyDenied(decision.reason or f"tool {inner.name!r} denied by policy")
            if decision.decision is PolicyDecision.REQUIRE_APPROVAL:
                action = await kernel.actions.require_action(
                    ActionSpec(
                        job_id=str(ctx.job_id),
                        type="approval",
                        payload={"tool": inner.name, "arguments": arguments, "reason": decision.reason},
                    )
                )
                raise ActionRequiredError(action)
            run.tool_calls += 1
            started = time.perf_counter()
            try:
                return await _call_handler(inner, arguments, ctx)
            finally:
                await kernel.ledger.record_tool_usage(
                    ctx, tool_name=inner.name, duration_ms=(time.perf_counter() - started) * 1000
                )

        return Tool(
            name=tool.name, description=tool.description, parameters=tool.parameters, handler=governed
        )

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
        await self.jobs.set_state(
            job_id, {"result": {"content": content, "usage": self._usage_dict(run)}, "turns": run.turns}
        )
        await self.jobs.complete(job_id, result_ref=f"job:{job_id}:result")
        result = ExecutionResult(job_id, JobStatus.SUCCEEDED.value, content, self._usage_dict(run), run.turns)
        await self._publish(
            run.ctx, RuntimeEventType.FINAL_RESULT, {"content": content, "usage": result.usage}
        )
        await self._publish(run.ctx, RuntimeEventType.JOB_COMPLETED, {"status": result.status})
        return result

    async def _finish_error(
        self, job_id: str, run: _Run, status: str, message: str, code: str | None = None
    ) -> ExecutionResult:
        if status == "timed_out":
            await self.jobs.timeout(job_id, message)
        else:
            await self.jobs.fail(job_id, message, error_code=code)
        result = ExecutionResult(job_id, status, None, self._usage_dict(run), run.turns, error=message)
        await self._publish(run.ctx, RuntimeEventType.FINAL_ERROR, {"error": message, "status": status})
        await self._publish(run.ctx, RuntimeEventType.JOB_FAILED, {"status": status, "error": message})
        return result

    async def _finish_cancelled(self, job_id: str, run: _Run) -> None:
        job = await self.jobs.get(job_id)
        if not job.status.is_terminal:
            await self.jobs.cancel(job_id, reason="cancelled")
        for action in await self.actions.list_pending(job_id=job_id):
            await self.actions.cancel(action.action_id, reason="job cancelled")
        await self._publish(run.ctx, RuntimeEventType.JOB_CANCELLED, {"status": "cancelled"})

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

    async def aclose(self) -> None:
        for run in list(self._runs.values()):
            if run.task is not None and not run.task.done():
                run.task.cancel()
        await self.event_bus.close()


async def _call_handler(tool: Tool, arguments: dict[str, Any], ctx: ExecutionContext) -> Any:
    """Call the wrapped tool's handler (arguments were validated against its schema already).

    A handler parameter named ``context`` (as in the seed's human-in-the-loop example) receives
    the job's ExecutionContext.
    """
    handler = tool.handler
    if handler is None:
        raise ValidationError(f"tool {tool.name!r} has no handler")
    kwargs = dict(arguments)
    if "context" not in kwargs and _takes_context(handler):
        kwargs["context"] = ctx
    result = handler(**kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


_TAKES_CONTEXT: dict[Any, bool] = {}


def _takes_context(handler: Callable[..., Any]) -> bool:
    known = _TAKES_CONTEXT.get(handler)
    if known is None:
        try:
            known = "context" in inspect.signature(handler).parameters
        except (TypeError, ValueError):
            known = False
        _TAKES_CONTEXT[handler] = known
    return known


def _request_state(request: ExecutionRequest) -> dict[str, Any]:
    if request.messages is not None:
        return {"messages": [dict(m) for m in request.messages]}
    return {"prompt": request.prompt}


def _initial_messages(job: JobRecord) -> list[dict[str, Any]]:
    saved = dict(job.state.get("request") or {})
    if "messages" in saved:
        return [dict(m) for m in saved["messages"]]
    return [{"role": "user", "content": str(saved["prompt"])}]


_ = Decimal  # re-exported type used in docs
