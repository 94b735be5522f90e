"""RuntimeKernel with in-memory stores: the seed's Quick Start, Runtime Kernel and llm-client
integration examples, plus governance (policy, budgets), timeout, cancellation, idempotency,
events and human-in-the-loop pauses. The scripted MockProvider stands in for the real model."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from agent_runtime import (
    ActionManager,
    ActionRequiredError,
    ActionSpec,
    ActionStatus,
    ActionType,
    Budget,
    BudgetSpec,
    ExecutionContext,
    ExecutionHandle,
    ExecutionRequest,
    ExecutionResult,
    InMemoryEventBus,
    JobNotFoundError,
    JobStatus,
    LedgerEventType,
    ModelPolicy,
    Plugin,
    PluginManifest,
    PluginRegistry,
    PluginType,
    PolicyEngine,
    PolicyRef,
    RuntimeEvent,
    RuntimeEventType,
    RuntimeKernel,
    ToolPolicy,
    ValidationError,
    current_execution,
)
from agent_runtime.jobs import InMemoryJobStore
from asyncgen_probe import abandoned_generators
from llm_client import (
    Agent,
    CompletionResult,
    ExecutionEngine,
    IdempotencyTracker,
    MockProvider,
    MockResponse,
    RequestContext,
    RequestSpec,
    ToolCall,
)
from llm_client.middleware import Call, Middleware

MODEL = "gpt-5-nano"


@dataclass
class Place:
    city: str


def make_kernel(responses: list[Any], tools: list[Any] | None = None, **components: Any) -> RuntimeKernel:
    provider = MockProvider(responses, model=MODEL)
    engine = ExecutionEngine(provider=provider)
    agent = Agent(engine=engine, tools=tools or [])
    return RuntimeKernel.create(engine=engine, agent=agent, **components)


def provider_of(kernel: RuntimeKernel) -> MockProvider:
    provider = kernel.engine.provider
    assert isinstance(provider, MockProvider)
    return provider


async def collect(handle: ExecutionHandle) -> list[RuntimeEvent]:
    return [event async for event in handle.events()]


def types_of(events: list[RuntimeEvent]) -> list[str]:
    return [e.type.value for e in events]


async def first_event(kernel: RuntimeKernel, job_id: str, kind: RuntimeEventType) -> RuntimeEvent:
    async for event in kernel.event_bus.stream(job_id=job_id):
        if event.type is kind:
            return event
    raise AssertionError(f"job {job_id} ended without a {kind.value} event")


# --- Quick Start ------------------------------------------------------------------------------


async def test_quick_start_basic_execution_streams_events_and_returns_result() -> None:
    # The seed's block, with MockProvider in place of OpenAIProvider(model="gpt-5-nano").
    provider = MockProvider(["Indents like breath / ..."], model=MODEL)
    engine = ExecutionEngine(provider=provider)
    agent = Agent(engine=engine)
    kernel = RuntimeKernel.create(engine=engine, agent=agent)
    handle = await kernel.execute(
        ExecutionRequest(prompt="Write a haiku about Python", scope_id="tenant-123", principal_id="user-456")
    )
    lines = []
    async for event in handle.events():
        lines.append(f"{event.type}: {event.data}")
    result = await handle.result()

    assert result.content == "Indents like breath / ..."
    assert result.status == "succeeded" and result.succeeded and result.turns == 1
    assert result.usage["total_tokens"] > 0 and Decimal(result.usage["total_cost"]) > 0
    assert lines[0] == "job.started: {'status': 'running'}"
    assert lines[-2].startswith("final.result: {'content': 'Indents like breath / ...'")
    assert lines[-1] == "job.completed: {'status': 'succeeded'}"
    tokens = [e.data["token"] for e in await collect(handle) if e.type is RuntimeEventType.MODEL_TOKEN]
    assert "".join(tokens) == result.content
    job = await handle.job()
    assert (
        job.status is JobStatus.SUCCEEDED and job.scope_id == "tenant-123" and job.principal_id == "user-456"
    )
    assert provider.calls[0].messages[-1]["content"] == "Write a haiku about Python"
    usage = await kernel.ledger.get_usage(scope_id="tenant-123")
    assert usage.requests == 1 and usage.tokens == result.usage["total_tokens"]


async def test_quick_start_budget_enforcement_block_runs_within_budget() -> None:
    kernel = make_kernel(["Analysis done."])
    handle = await kernel.execute(
        ExecutionRequest(
            prompt="Analyze this document...",
            scope_id="tenant-123",
            budgets=BudgetSpec(max_tokens=10000, max_cost=1.0, max_turns=5),
        )
    )
    result = await handle.result()
    assert result.status == "succeeded" and result.content == "Analysis done."
    job = await handle.job()
    assert job.budgets == BudgetSpec(max_tokens=10000, max_cost=Decimal("1.0"), max_turns=5)


async def test_quick_start_human_in_the_loop_tool_waits_inside_and_job_shows_waiting_action() -> None:
    deployed: list[str] = []
    handed_to_human: dict[str, Any] = {}

    async def do_deploy() -> None:
        deployed.append("prod")

    kernel: RuntimeKernel

    # The seed's tool; ``action_manager`` is the kernel's, ``context`` is the job's ExecutionContext.
    async def deploy_changes(context):  # type: ignore[no-untyped-def]
        action = await action_manager.require_action(
            ActionSpec(
                job_id=context.job_id,
                type="confirm",
                payload={"message": "Deploy to production?"},
                timeout_seconds=300,
            )
        )
        handed_to_human["token"] = action.resume_token  # the trusted channel (an e-mail link, a UI)

        # Wait for user resolution
        await action_manager.wait_for_resolution(action.action_id)

        if action.resolution.get("approved"):
            await do_deploy()
            return "deployed"
        return "not deployed"

    kernel = make_kernel(
        [MockResponse.tool_call("deploy_changes", {}), "Deployed to production."], tools=[deploy_changes]
    )
    action_manager: ActionManager = kernel.actions
    handle = await kernel.execute(ExecutionRequest(prompt="Ship it", scope_id="tenant-123"))

    required = await first_event(kernel, handle.job_id, RuntimeEventType.ACTION_REQUIRED)
    assert required.data["payload"] == {"message": "Deploy to production?"}
    assert (await handle.job()).status is JobStatus.WAITING_ACTION
    pending = await kernel.actions.list_pending(job_id=handle.job_id)
    assert [a.action_id for a in pending] == [required.data["action_id"]]

    await kernel.actions.resolve(handed_to_human["token"], {"approved": True})
    result = await handle.result()
    assert result.status == "succeeded" and result.content == "Deployed to production."
    assert deployed == ["prod"]
    # the model never saw a "context" parameter: the kernel supplies it
    assert provider_of(kernel).calls[0].tools[0]["function"]["parameters"]["properties"] == {}
    assert provider_of(kernel).calls[1].messages[-1]["content"] == "deployed"
    statuses = [
        e.data["status"] for e in await collect(handle) if e.type is RuntimeEventType.JOB_STATUS_CHANGED
    ]
    assert statuses == ["waiting_action", "running"]


# --- Runtime Kernel section -------------------------------------------------------------------


async def test_runtime_kernel_create_with_defaults() -> None:
    execution_engine = ExecutionEngine(provider=MockProvider(["hi"], model=MODEL))
    agent = Agent(engine=execution_engine)
    kernel = RuntimeKernel.create(engine=execution_engine, agent=agent)
    assert kernel.engine is execution_engine and kernel.agent is agent
    assert isinstance(kernel.jobs.store, InMemoryJobStore)
    assert isinstance(kernel.event_bus, InMemoryEventBus)
    result = await (await kernel.execute(ExecutionRequest(prompt="hello"))).result()
    assert result.content == "hi"


async def test_explicit_constructor_with_in_memory_components() -> None:
    engine = ExecutionEngine(provider=MockProvider(["hi"], model=MODEL))
    bus = InMemoryEventBus()
    policy = PolicyEngine()
    plugins = PluginRegistry()
    kernel = RuntimeKernel(
        engine=engine,
        agent=Agent(engine=engine),
        job_store=InMemoryJobStore(),
        policy_engine=policy,
        event_bus=bus,
        plugin_registry=plugins,
    )
    assert kernel.event_bus is bus and kernel.policy_engine is policy and kernel.plugin_registry is plugins
    handle = await kernel.execute(ExecutionRequest(prompt="hello"))
    assert (await handle.result()).content == "hi"
    assert bus.history(handle.job_id)[-1].type is RuntimeEventType.JOB_COMPLETED


async def test_execution_request_block_with_every_field() -> None:
    kernel = make_kernel(["Hello! How can I help you?"])
    request = ExecutionRequest(
        prompt="Hello, world!",
        scope_id="tenant-123",
        principal_id="user-456",
        session_id="session-789",
        idempotency_key="unique-request-123",
        budgets=BudgetSpec(max_tokens=10000),
        policy_ref=PolicyRef(name="production"),
        metadata={"source": "api"},
        timeout_seconds=300.0,
    )
    handle = await kernel.execute(request)
    result = await handle.result()
    assert result.status == "succeeded"
    job = await handle.job()
    assert (job.session_id, job.idempotency_key) == ("session-789", "unique-request-123")
    assert job.policy_ref == PolicyRef(name="production") and job.metadata == {"source": "api"}
    assert job.deadline is not None and job.deadline - job.created_at == pytest.approx(300.0)


async def test_execution_handle_block_job_events_result_cancel() -> None:
    kernel = make_kernel([MockResponse.text("Hello! How can I help you?")])
    request = ExecutionRequest(prompt="Hello, world!")
    handle = await kernel.execute(request)

    # Get job info
    job = await handle.job()
    assert job.job_id == handle.job_id

    # Stream events
    tokens = []
    async for event in handle.events():
        if event.type == RuntimeEventType.MODEL_TOKEN:
            tokens.append(event.data["token"])

    # Get final result
    result = await handle.result()
    assert "".join(tokens) == result.content == "Hello! How can I help you?"
    assert result.usage["input_tokens"] > 0 and result.usage["output_tokens"] > 0

    # Cancel: a finished job keeps its outcome
    await handle.cancel()
    assert (await handle.job()).status is JobStatus.SUCCEEDED
    assert (await handle.result()).status == "succeeded"


def test_execution_result_block() -> None:
    result = ExecutionResult(
        job_id="job-123",
        status="succeeded",
        content="Hello! How can I help you?",
        usage={"input_tokens": 10, "output_tokens": 20, "total_tokens": 30, "total_cost": "0.001"},
        turns=1,
        artifacts=[],
        error=None,
    )
    assert result.succeeded and result.usage["total_cost"] == "0.001"
    assert not ExecutionResult(job_id="job-1", status="failed", error="boom").succeeded


# --- Integration with llm-client --------------------------------------------------------------


async def test_context_propagation_block() -> None:
    seen: list[RequestSpec] = []

    class Capture(Middleware):
        async def complete(
            self, spec: RequestSpec, context: RequestContext, call_next: Call
        ) -> CompletionResult:
            contexts.append(context)
            seen.append(spec)
            return await call_next(spec, context)

    contexts: list[RequestContext] = []
    engine = ExecutionEngine(provider=MockProvider(["Hi!"], model=MODEL), middleware=[Capture()])
    agent = Agent(engine=engine)

    exec_ctx = ExecutionContext(scope_id="tenant-123", principal_id="user-456", job_id="job-789")
    request_ctx = exec_ctx.to_request_context()
    result = await agent.run("Hello", context=request_ctx)

    assert result.content == "Hi!"
    assert contexts[0].scope_id == "tenant-123" and contexts[0].job_id == "job-789"
    assert contexts[0].trace_id == exec_ctx.trace_id


async def test_agent_with_middleware_block_and_the_kernel_keeps_the_agents_chain(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def lookup(term: str) -> str:
        """Look a term up."""
        return f"{term}: found"

    tools = [lookup]
    engine = ExecutionEngine(
        provider=MockProvider([MockResponse.tool_call("lookup", {"term": "x"}), "done"], model=MODEL)
    )
    agent = Agent(engine=engine, tools=tools, use_middleware=True)  # Uses production middleware defaults
    assert [type(m).__name__ for m in agent.engine.middleware] == [
        "TelemetryMiddleware",
        "LoggingMiddleware",
        "BudgetMiddleware",
        "RetryMiddleware",
        "TimeoutMiddleware",
    ]
    kernel = RuntimeKernel.create(engine=engine, agent=agent)
    with caplog.at_level(logging.DEBUG):
        result = await (await kernel.execute(ExecutionRequest(prompt="look x up"))).result()
    assert result.content == "done" and result.turns == 2
    # LoggingMiddleware (the agent's chain) logged the kernel's model calls
    assert [r for r in caplog.records if r.name.startswith("llm_client")]


async def test_idempotency_tracker_in_engine_block() -> None:
    provider = MockProvider(["charged once"], model=MODEL)
    tracker = IdempotencyTracker(request_timeout=60.0)
    engine = ExecutionEngine(provider=provider, idempotency_tracker=tracker)
    exec_ctx = ExecutionContext(scope_id="tenant-123", principal_id="user-456", job_id="job-789")
    spec = RequestSpec.build("Summarise the contract")

    # Idempotency works with agent-runtime job_id
    result = await engine.complete(
        spec, context=exec_ctx.to_request_context(), idempotency_key=exec_ctx.job_id
    )
    again = await engine.complete(
        spec, context=exec_ctx.to_request_context(), idempotency_key=exec_ctx.job_id
    )
    assert result.content == again.content == "charged once" and provider.call_count == 1


# --- tools, events, current_execution ---------------------------------------------------------


async def test_events_of_a_tool_call_run_come_in_order() -> None:
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    kernel = make_kernel([MockResponse.tool_call("add", {"a": 1, "b": 2}, id="c1"), "3"], tools=[add])
    handle = await kernel.execute(ExecutionRequest(prompt="1+2?"))
    events = await collect(handle)
    assert types_of(events) == [
        "job.started",
        "model.done",
        "tool.start",
        "tool.end",
        "model.token",
        "model.done",
        "final.result",
        "job.completed",
    ]
    assert events[2].data == {"tool": "add", "tool_call_id": "c1"}
    assert [e.data["turn"] for e in events if e.type is RuntimeEventType.MODEL_DONE] == [1, 2]
    assert all(e.job_id == handle.job_id and e.run_id == events[0].run_id for e in events)
    result = await handle.result()
    assert result.content == "3" and result.turns == 2
    tool_usage = await kernel.ledger.writer.list_events(
        job_id=handle.job_id, event_type=LedgerEventType.TOOL_USAGE
    )
    assert [e.tool_name for e in tool_usage] == ["add"]


async def test_finished_jobs_leave_no_stream_for_the_loop_to_finalise() -> None:
    """The kernel closes the agent stream it follows (and llm-client the chain below it), so the
    ledger settlement in the governance middleware has run when the result is returned."""

    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    script: list[Any] = []
    for _ in range(3):
        script += [MockResponse.tool_call("add", {"a": 1, "b": 2}, id="c1"), "3"]
    kernel = make_kernel(script, tools=[add])
    kernel.ledger.set_budget(Budget(scope_id="t", max_tokens_daily=10**9, max_tool_calls_daily=10**6))
    with abandoned_generators() as abandoned:
        for _ in range(3):
            result = await (await kernel.execute(ExecutionRequest(prompt="1+2?", scope_id="t"))).result()
            assert result.content == "3"
            assert kernel.ledger.writer.reservations == []  # settled before the result came back
    assert abandoned == []


async def test_tools_of_a_plugin_initialised_later_reach_the_next_job() -> None:
    """The governed tools are built once per kernel and rebuilt when the set of tools changes."""

    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    def shout(text: str) -> str:
        """Upper-case a text."""
        return text.upper()

    class Shouter(Plugin):
        @property
        def manifest(self) -> PluginManifest:
            return PluginManifest(name="shouter", version="1.0", plugin_type=PluginType.TOOLS)

        async def initialize(self, context: Any) -> None:
            return None

        def get_tools(self) -> list[Any]:
            return [shout]

    kernel = make_kernel(
        [
            MockResponse.tool_call("shout", {"text": "hi"}, id="c1"),
            "no such tool",
            MockResponse.tool_call("shout", {"text": "hi"}, id="c2"),
            "done",
        ],
        tools=[add],
    )
    first = await (await kernel.execute(ExecutionRequest(prompt="shout hi"))).result()
    assert first.succeeded and "shout" not in json.dumps(provider_of(kernel).calls[0].tools)
    kernel.plugin_registry.register(Shouter())
    await kernel.plugin_registry.initialize_all()
    handle = await kernel.execute(ExecutionRequest(prompt="shout hi"))
    assert (await handle.result()).content == "done"
    ends = [e for e in await collect(handle) if e.type is RuntimeEventType.TOOL_END]
    assert [e.data["tool"] for e in ends] == ["shout"]
    assert provider_of(kernel).calls[-1].messages[-1]["content"] == "HI"


async def test_current_execution_is_the_jobs_context_inside_a_tool() -> None:
    seen: list[ExecutionContext | None] = []

    def whoami() -> str:
        """Who runs me."""
        seen.append(current_execution())
        return "ok"

    kernel = make_kernel([MockResponse.tool_call("whoami", {}), "done"], tools=[whoami])
    handle = await kernel.execute(ExecutionRequest(prompt="?", scope_id="s1", principal_id="p1"))
    await handle.result()
    ctx = seen[0]
    assert (
        ctx is not None and ctx.job_id == handle.job_id and (ctx.scope_id, ctx.principal_id) == ("s1", "p1")
    )
    assert current_execution() is None


async def test_tool_with_dataclass_argument_keeps_its_conversions() -> None:
    got: list[Any] = []

    def forecast(place: Place) -> str:
        """Weather."""
        got.append(place)
        return f"sun in {place.city}"

    kernel = make_kernel(
        [MockResponse.tool_call("forecast", {"place": {"city": "Oslo"}}), "sunny"], tools=[forecast]
    )
    await (await kernel.execute(ExecutionRequest(prompt="weather?"))).result()
    assert got == [Place("Oslo")]


# --- policy -----------------------------------------------------------------------------------


async def test_tool_denied_by_policy_becomes_a_tool_message_and_the_run_continues() -> None:
    ran: list[str] = []

    def delete_all() -> str:
        """Delete everything."""
        ran.append("x")
        return "deleted"

    policy = PolicyEngine([ToolPolicy(["delete_*"], decision="deny", reason="destructive")])
    kernel = make_kernel(
        [MockResponse.tool_call("delete_all", {}), "I may not delete."],
        tools=[delete_all],
        policy_engine=policy,
    )
    handle = await kernel.execute(ExecutionRequest(prompt="clean up"))
    result = await handle.result()
    assert result.status == "succeeded" and result.content == "I may not delete."
    assert ran == []
    tool_message = provider_of(kernel).calls[1].messages[-1]
    assert tool_message["role"] == "tool" and "denied by policy: destructive" in tool_message["content"]
    events = await collect(handle)
    assert "tool.error" in types_of(events)
    denied = await kernel.ledger.writer.list_events(
        job_id=handle.job_id, event_type=LedgerEventType.POLICY_DENIED
    )
    assert [e.tool_name for e in denied] == ["delete_all"]


async def test_model_denied_by_policy_fails_the_job_with_a_clear_error() -> None:
    policy = PolicyEngine([ModelPolicy(["gpt-5*"], decision="deny", reason="not approved for tenants")])
    kernel = make_kernel(["never"], policy_engine=policy)
    handle = await kernel.execute(ExecutionRequest(prompt="hi"))
    result = await handle.result()
    assert result.status == "failed"
    assert result.error == "PolicyDenied: not approved for tenants"
    job = await handle.job()
    assert job.status is JobStatus.FAILED and job.error_code == "PolicyDenied"
    assert provider_of(kernel).call_count == 0
    assert types_of(await collect(handle))[-2:] == ["final.error", "job.failed"]


async def test_require_approval_tool_policy_pauses_then_runs_the_tool_once_approved() -> None:
    sent: list[str] = []

    def send_email(to: str) -> str:
        """Send an e-mail."""
        sent.append(to)
        return f"sent to {to}"

    policy = PolicyEngine([ToolPolicy(["send_email"], decision="require_approval", reason="outbound mail")])
    kernel = make_kernel(
        [MockResponse.tool_call("send_email", {"to": "a@example.com"}, id="c1"), "Mail sent."],
        tools=[send_email],
        policy_engine=policy,
    )
    handle = await kernel.execute(ExecutionRequest(prompt="mail a"))
    status = await first_event(kernel, handle.job_id, RuntimeEventType.JOB_STATUS_CHANGED)
    assert status.data["status"] == "waiting_action"
    (action,) = await kernel.actions.list_pending(job_id=handle.job_id)
    assert action.type is ActionType.APPROVAL
    assert action.payload == {
        "tool": "send_email",
        "arguments": {"to": "a@example.com"},
        "reason": "outbound mail",
    }
    assert sent == [] and (await handle.job()).status is JobStatus.WAITING_ACTION

    # an operator approves (here through the store's record: tests have no e-mail channel)
    await _resolve_pending(kernel, handle.job_id, {"approved": True})
    result = await handle.result()
    assert result.content == "Mail sent." and sent == ["a@example.com"]
    assert provider_of(kernel).calls[1].messages[-1] == {
        "role": "tool",
        "tool_call_id": "c1",
        "content": "sent to a@example.com",
    }


async def test_require_approval_refused_tells_the_model_and_does_not_run_the_tool() -> None:
    sent: list[str] = []

    def send_email(to: str) -> str:
        """Send an e-mail."""
        sent.append(to)
        return "sent"

    policy = PolicyEngine([ToolPolicy(["send_email"], decision="require_approval")])
    kernel = make_kernel(
        [MockResponse.tool_call("send_email", {"to": "a@example.com"}, id="c1"), "Not sent."],
        tools=[send_email],
        policy_engine=policy,
    )
    handle = await kernel.execute(ExecutionRequest(prompt="mail a"))
    await first_event(kernel, handle.job_id, RuntimeEventType.JOB_STATUS_CHANGED)
    await _resolve_pending(kernel, handle.job_id, {"approved": False, "reason": "not today"})
    result = await handle.result()
    assert result.content == "Not sent." and sent == []
    assert (
        provider_of(kernel).calls[1].messages[-1]["content"]
        == "Error: tool call 'send_email' was not approved: not today"
    )


async def _resolve_pending(kernel: RuntimeKernel, job_id: str, answer: dict[str, Any]) -> None:
    """Resolve the job's one pending action with its token, captured from the manager's store."""
    (pending,) = await kernel.actions.list_pending(job_id=job_id)
    token = TOKENS[pending.action_id]
    await kernel.actions.resolve(token, answer)


TOKENS: dict[str, str] = {}


@pytest.fixture(autouse=True)
def capture_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    """Record each new action's token as require_action hands it out (the 'trusted channel')."""
    original = ActionManager.require_action

    async def require_action(self: ActionManager, spec: ActionSpec) -> Any:
        record = await original(self, spec)
        TOKENS[record.action_id] = record.resume_token
        return record

    monkeypatch.setattr(ActionManager, "require_action", require_action)


# --- durable pause inside one process ---------------------------------------------------------


async def test_action_required_error_pauses_the_job_and_resumes_without_rerunning_finished_calls() -> None:
    audit: list[str] = []
    kernel: RuntimeKernel

    def record_change(change: str) -> str:
        """Record a change."""
        audit.append(change)
        return "recorded"

    async def confirm(question: str) -> str:
        """Ask a human."""
        ctx = current_execution()
        assert ctx is not None and ctx.job_id is not None
        action = await kernel.actions.require_action(
            ActionSpec(job_id=ctx.job_id, type="confirm", payload={"question": question})
        )
        raise ActionRequiredError(action)

    kernel = make_kernel(
        [
            [
                ToolCall("c1", "record_change", '{"change": "v2"}'),
                ToolCall("c2", "confirm", '{"question": "go?"}'),
            ],
            "Rolled out.",
        ],
        tools=[record_change, confirm],
    )
    handle = await kernel.execute(ExecutionRequest(prompt="roll out v2", scope_id="t1"))
    waiting = await first_event(kernel, handle.job_id, RuntimeEventType.JOB_STATUS_CHANGED)
    assert waiting.data["status"] == "waiting_action"
    job = await handle.job()
    assert job.status is JobStatus.WAITING_ACTION
    assert job.state["completed"]["c1"]["content"] == "recorded"
    assert [p["name"] for p in job.state["pending"]] == ["confirm"] and job.state["turns"] == 1

    await _resolve_pending(kernel, handle.job_id, {"approved": True})
    result = await handle.result()
    assert result.status == "succeeded" and result.content == "Rolled out." and result.turns == 2
    assert audit == ["v2"]
    provider = provider_of(kernel)
    assert provider.call_count == 2
    last = provider.calls[1].messages
    assert [m.get("tool_call_id") for m in last[-2:]] == ["c1", "c2"]
    assert json.loads(last[-1]["content"]) == {"approved": True}
    model_events = await kernel.ledger.writer.list_events(
        job_id=handle.job_id, event_type=LedgerEventType.MODEL_USAGE
    )
    assert len(model_events) == 2


async def test_cancelling_a_waiting_job_cancels_its_actions() -> None:
    async def confirm() -> str:
        """Ask."""
        ctx = current_execution()
        assert ctx is not None and ctx.job_id is not None
        raise ActionRequiredError(
            await kernel.actions.require_action(ActionSpec(job_id=ctx.job_id, type="confirm"))
        )

    kernel = make_kernel([MockResponse.tool_call("confirm", {})], tools=[confirm])
    handle = await kernel.execute(ExecutionRequest(prompt="?"))
    await first_event(kernel, handle.job_id, RuntimeEventType.JOB_STATUS_CHANGED)
    (pending,) = await kernel.actions.list_pending(job_id=handle.job_id)
    await handle.cancel("user gave up")
    result = await handle.result()
    assert result.status == "cancelled" and result.error == "user gave up"
    assert (await kernel.actions.get(pending.action_id)).status is ActionStatus.CANCELLED
    assert (await handle.job()).status is JobStatus.CANCELLED


# --- budgets ----------------------------------------------------------------------------------


async def test_budget_max_tokens_refuses_the_model_call() -> None:
    kernel = make_kernel(["never"])
    handle = await kernel.execute(
        ExecutionRequest(prompt="a long prompt " * 100, budgets=BudgetSpec(max_tokens=50))
    )
    result = await handle.result()
    assert result.status == "failed" and result.error is not None
    assert result.error.startswith("BudgetExceededError: token budget exceeded")
    assert provider_of(kernel).call_count == 0


async def test_budget_max_cost_refuses_the_model_call() -> None:
    kernel = make_kernel(["never"])
    handle = await kernel.execute(
        ExecutionRequest(prompt="a long prompt " * 1000, budgets=BudgetSpec(max_cost="0.0000001"))
    )
    result = await handle.result()
    assert result.status == "failed" and result.error is not None
    assert result.error.startswith("BudgetExceededError: cost budget exceeded")
    assert provider_of(kernel).call_count == 0


async def test_budget_max_turns_fails_a_job_that_keeps_calling_tools() -> None:
    def ping() -> str:
        """Ping."""
        return "pong"

    kernel = make_kernel(
        [MockResponse.tool_call("ping", {}), MockResponse.tool_call("ping", {})], tools=[ping]
    )
    handle = await kernel.execute(ExecutionRequest(prompt="ping forever", budgets=BudgetSpec(max_turns=2)))
    result = await handle.result()
    assert result.status == "failed" and result.error is not None
    assert result.error.startswith("MaxTurnsExceededError") and result.turns == 2
    assert provider_of(kernel).call_count == 2


async def test_budget_max_tool_calls_stops_the_job_before_the_extra_call() -> None:
    calls: list[int] = []

    def step(n: int) -> str:
        """One step."""
        calls.append(n)
        return "ok"

    kernel = make_kernel(
        [MockResponse.tool_call("step", {"n": 1}), MockResponse.tool_call("step", {"n": 2}), "never"],
        tools=[step],
    )
    handle = await kernel.execute(ExecutionRequest(prompt="steps", budgets=BudgetSpec(max_tool_calls=1)))
    result = await handle.result()
    assert result.status == "failed" and result.error is not None
    assert result.error.startswith("BudgetExceededError: tool call budget exceeded: max_tool_calls=1")
    assert calls == [1]
    assert (await handle.job()).error_code == "BudgetExceededError"


async def test_ledger_budget_denies_the_next_model_call_of_the_scope() -> None:
    kernel = make_kernel(["first answer", "never"])
    first = await (await kernel.execute(ExecutionRequest(prompt="hello", scope_id="tenant-1"))).result()
    assert first.status == "succeeded"
    kernel.ledger.set_budget(Budget(scope_id="tenant-1", max_tokens_total=first.usage["total_tokens"] + 1))
    second = await (
        await kernel.execute(ExecutionRequest(prompt="hello again", scope_id="tenant-1"))
    ).result()
    assert second.status == "failed" and second.error is not None and "BudgetExceededError" in second.error
    assert provider_of(kernel).call_count == 1
    other = make_kernel(["fine"], ledger=kernel.ledger)
    assert (
        await (await other.execute(ExecutionRequest(prompt="hi", scope_id="tenant-2"))).result()
    ).succeeded


async def test_ledger_budget_on_tool_calls_stops_the_job() -> None:
    ran: list[str] = []

    def work() -> str:
        """Work."""
        ran.append("w")
        return "done"

    kernel = make_kernel([MockResponse.tool_call("work", {}), "never"], tools=[work])
    kernel.ledger.set_budget(Budget(scope_id="t", max_tool_calls_total=0))
    result = await (await kernel.execute(ExecutionRequest(prompt="work", scope_id="t"))).result()
    assert (
        result.status == "failed"
        and result.error is not None
        and result.error.startswith("BudgetExceededError")
    )
    assert ran == []


# --- timeout and cancellation -----------------------------------------------------------------


async def test_timeout_ends_the_job_timed_out() -> None:
    never = asyncio.Event()
    cancelled: list[bool] = []

    async def slow(spec: RequestSpec) -> str:
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return "late"

    engine = ExecutionEngine(provider=MockProvider(handler=slow, model=MODEL))
    kernel = RuntimeKernel.create(engine=engine)
    handle = await kernel.execute(ExecutionRequest(prompt="hi", timeout_seconds=0.05))
    result = await handle.result()
    assert result.status == "timed_out" and result.error == "job timed out after 0.05s"
    job = await handle.job()
    assert job.status is JobStatus.TIMED_OUT and job.error_code == "timeout"
    assert cancelled == [True]
    events = await collect(handle)
    assert events[-1].type is RuntimeEventType.JOB_FAILED and events[-1].data["status"] == "timed_out"


async def test_cancel_cancels_the_job_and_the_model_call_in_flight() -> None:
    entered = asyncio.Event()
    never = asyncio.Event()
    outcome: list[str] = []

    async def blocked(spec: RequestSpec) -> str:
        entered.set()
        try:
            await never.wait()
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise
        return "unreachable"

    engine = ExecutionEngine(provider=MockProvider(handler=blocked, model=MODEL))
    kernel = RuntimeKernel.create(engine=engine)
    handle = await kernel.execute(ExecutionRequest(prompt="hi"))
    await entered.wait()
    await handle.cancel("stop it")
    assert outcome == ["cancelled"]
    result = await handle.result()
    assert result.status == "cancelled" and result.error == "stop it"
    job = await handle.job()
    assert job.status is JobStatus.CANCELLED and job.error == "stop it"
    assert types_of(await collect(handle))[-1] == "job.cancelled"
    # the reservation of the cancelled call was given back, and no usage was recorded
    assert (await kernel.ledger.get_usage()).requests == 0


async def test_aclose_cancels_running_jobs() -> None:
    entered = asyncio.Event()

    async def blocked(spec: RequestSpec) -> str:
        entered.set()
        await asyncio.Event().wait()
        return "unreachable"

    kernel = RuntimeKernel.create(engine=ExecutionEngine(provider=MockProvider(handler=blocked, model=MODEL)))
    handle = await kernel.execute(ExecutionRequest(prompt="hi"))
    await entered.wait()
    await kernel.aclose()
    assert (await handle.job()).status is JobStatus.CANCELLED
    assert (await handle.result()).status == "cancelled"


# --- idempotency ------------------------------------------------------------------------------


async def test_same_idempotency_key_in_same_scope_returns_the_same_job_and_runs_once() -> None:
    kernel = make_kernel(["once", "twice"])
    request = ExecutionRequest(prompt="charge", scope_id="tenant-1", idempotency_key="req-1")
    first = await kernel.execute(request)
    again = await kernel.execute(request)  # while the first still runs
    assert again.job_id == first.job_id
    assert (await first.result()).content == (await again.result()).content == "once"
    later = await kernel.execute(request)  # after it finished
    assert later.job_id == first.job_id and (await later.result()).content == "once"
    assert provider_of(kernel).call_count == 1

    other_scope = await kernel.execute(
        ExecutionRequest(prompt="charge", scope_id="tenant-2", idempotency_key="req-1")
    )
    assert other_scope.job_id != first.job_id
    assert (await other_scope.result()).content == "twice"
    assert provider_of(kernel).call_count == 2


# --- bad input --------------------------------------------------------------------------------


def test_execution_request_rejects_bad_input() -> None:
    with pytest.raises(ValidationError, match="exactly one of prompt or messages"):
        ExecutionRequest()
    with pytest.raises(ValidationError, match="exactly one of prompt or messages"):
        ExecutionRequest(prompt="a", messages=[{"role": "user", "content": "b"}])
    with pytest.raises(ValidationError, match="prompt must be a non-empty string"):
        ExecutionRequest(prompt="   ")
    with pytest.raises(ValidationError, match="messages must be a non-empty list"):
        ExecutionRequest(messages=[])
    with pytest.raises(ValidationError, match="timeout_seconds must be a number > 0"):
        ExecutionRequest(prompt="a", timeout_seconds=0)
    with pytest.raises(ValidationError, match="budgets must be a BudgetSpec"):
        ExecutionRequest(prompt="a", budgets={"max_tokens": 5})  # type: ignore[arg-type]


async def test_kernel_rejects_bad_components_and_requests() -> None:
    engine = ExecutionEngine(provider=MockProvider(["x"], model=MODEL))
    with pytest.raises(ValidationError, match="engine must be an llm_client ExecutionEngine"):
        RuntimeKernel.create(engine="gpt")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="agent must be an llm_client Agent"):
        RuntimeKernel.create(engine=engine, agent="agent")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="policy_engine must be a PolicyEngine"):
        RuntimeKernel(engine, policy_engine=object())  # type: ignore[arg-type]
    kernel = RuntimeKernel.create(engine=engine)
    with pytest.raises(ValidationError, match="execute\\(\\) takes an ExecutionRequest"):
        await kernel.execute("hello")  # type: ignore[arg-type]
    with pytest.raises(JobNotFoundError):
        await kernel.resume("job-unknown")
    handle = await kernel.execute(ExecutionRequest(prompt="hi"))
    await handle.result()
    with pytest.raises(ValidationError, match="only a waiting job can be resumed"):
        await kernel.resume(handle.job_id)


async def test_messages_request_runs_the_given_conversation() -> None:
    kernel = make_kernel(["Paris"])
    messages = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Capital of France?"}]
    result = await (await kernel.execute(ExecutionRequest(messages=messages))).result()
    assert result.content == "Paris"
    assert list(provider_of(kernel).calls[0].messages) == messages


async def test_resume_token_never_appears_in_logs_events_or_reprs(caplog: pytest.LogCaptureFixture) -> None:
    interrupts: list[ActionRequiredError] = []

    async def confirm() -> str:
        """Ask."""
        ctx = current_execution()
        assert ctx is not None and ctx.job_id is not None
        error = ActionRequiredError(
            await kernel.actions.require_action(ActionSpec(job_id=ctx.job_id, type="confirm"))
        )
        interrupts.append(error)
        raise error

    kernel = make_kernel([MockResponse.tool_call("confirm", {}), "done"], tools=[confirm])
    with caplog.at_level(logging.DEBUG):
        handle = await kernel.execute(ExecutionRequest(prompt="?"))
        await first_event(kernel, handle.job_id, RuntimeEventType.JOB_STATUS_CHANGED)
        (pending,) = await kernel.actions.list_pending(job_id=handle.job_id)
        token = TOKENS[pending.action_id]
        waiting_job = await handle.job()
        await kernel.actions.resolve(token, {"ok": True})
        result = await handle.result()
    assert result.succeeded and token
    texts = [
        caplog.text,
        *(e.to_json() for e in await collect(handle)),
        repr(handle),
        repr(kernel),
        repr(waiting_job),
        json.dumps(waiting_job.to_dict(), default=str),
        repr(await handle.job()),
        repr(result),
        repr(interrupts[0].action),
        str(interrupts[0]),
    ]
    assert any("action.required" in t for t in texts)
    assert not [t for t in texts if token in t]
