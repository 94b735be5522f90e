"""AgentRunner: the seed example, events, timeout, retries with resume, cancellation, heartbeats."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from agent_runtime_core import (
    AgentRunner,
    AgentRuntime,
    ConfigurationError,
    ErrorInfo,
    EventType,
    RunContext,
    RunnerConfig,
    RunResult,
    TraceSink,
    clear_registry,
    configure,
    get_runtime,
    register_runtime,
    reset_config,
)
from agent_runtime_core.events.base import Event
from agent_runtime_core.events.memory import InMemoryEventBus
from agent_runtime_core.runner import InvalidRunInputError, RunAlreadyActiveError
from agent_runtime_core.state.memory import InMemoryStateStore
from asyncgen_probe import abandoned_generators
from llm_client import (
    Agent,
    ExecutionEngine,
    MockProvider,
    MockResponse,
    ProviderError,
    RetryPolicy,
    aclose_stream,
)

MESSAGES = {"messages": [{"role": "user", "content": "Hello!"}]}


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    reset_config()
    clear_registry()
    yield
    reset_config()
    clear_registry()


class FnAgent(AgentRuntime):
    """An agent whose run is a given coroutine function."""

    def __init__(self, fn: Callable[[RunContext], Awaitable[RunResult]], key: str = "fn-agent") -> None:
        self._fn = fn
        self._key = key
        self.calls = 0

    @property
    def key(self) -> str:
        return self._key

    async def run(self, ctx: RunContext) -> RunResult:
        self.calls += 1
        return await self._fn(ctx)


def make_runner(**config: Any) -> AgentRunner:
    config.setdefault("retry_backoff_seconds", 0.0)
    return AgentRunner(RunnerConfig(**config), event_bus=InMemoryEventBus(), state_store=InMemoryStateStore())


async def events_of(runner: AgentRunner, run_id: str) -> list[Event]:
    return await runner.event_bus.get_events(run_id)


async def types_of(runner: AgentRunner, run_id: str, *, heartbeats: bool = False) -> list[str]:
    return [
        e.event_type
        for e in await events_of(runner, run_id)
        if heartbeats or e.event_type != EventType.RUN_HEARTBEAT
    ]


async def wait_for_event(runner: AgentRunner, run_id: str, event_type: str) -> Event:
    async with asyncio.timeout(5):
        async for event in runner.event_bus.subscribe(run_id):
            if event.event_type == event_type:
                return event
    raise AssertionError("unreachable")


class Retryable(Exception):
    retryable = True


# -- the seed's "Running Agents" example ------------------------------------------------------------


class MyAgent(AgentRuntime):
    """The seed's agent, with a scripted model standing in for the real one."""

    @property
    def key(self) -> str:
        return "my-agent"

    async def run(self, ctx: RunContext) -> RunResult:
        messages = ctx.input_messages
        engine = ExecutionEngine(provider=MockProvider(["Hi there!"]))
        response = await engine.complete(messages)
        await ctx.emit(EventType.ASSISTANT_MESSAGE, {"content": response.message["content"]})
        return RunResult(
            final_output={"response": response.message["content"]},
            final_messages=[response.message],
        )


async def test_seed_running_agents_example(capsys: pytest.CaptureFixture[str]) -> None:
    register_runtime(MyAgent())

    async def main() -> None:
        # Get a registered agent
        agent = get_runtime("my-agent")

        # Create a runner
        runner = AgentRunner(
            config=RunnerConfig(
                run_timeout_seconds=300,
                max_retries=3,
            )
        )

        # Execute a run
        result = await runner.execute(
            agent=agent,
            run_id="run-123",
            input_data={"messages": [{"role": "user", "content": "Hello!"}]},
        )

        print(result.final_output)

    await main()  # the seed calls asyncio.run(main()); this test already runs in a loop
    assert capsys.readouterr().out == "{'response': 'Hi there!'}\n"


async def test_success_event_order_and_payloads() -> None:
    runner = make_runner()

    async def run(ctx: RunContext) -> RunResult:
        await ctx.emit_user_message("hi")
        return RunResult(final_output={"answer": 42}, usage={"total_tokens": 3})

    result = await runner.execute(agent=FnAgent(run), run_id="r1", input_data=MESSAGES)
    assert result.succeeded and result.final_output == {"answer": 42}
    events = await events_of(runner, "r1")
    assert [e.event_type for e in events] == ["run.started", "assistant.message", "run.succeeded"]
    assert [e.seq for e in events] == [1, 2, 3]
    assert events[0].payload == {"run_id": "r1", "agent_key": "fn-agent"}
    assert events[-1].payload == {
        "run_id": "r1",
        "output": {"answer": 42},
        "usage": {"total_tokens": 3},
        "attempts": 1,
    }
    assert runner.active_runs == []


async def test_a_one_tool_call_turn_with_a_scripted_model() -> None:
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    class ToolAgent(AgentRuntime):
        key = "tool-agent"

        async def run(self, ctx: RunContext) -> RunResult:
            provider = MockProvider([MockResponse.tool_call("add", {"a": 1, "b": 2}), "3"])
            out = await Agent(engine=ExecutionEngine(provider=provider), tools=[add]).run(ctx.input_messages)
            return RunResult(final_output={"response": out.content}, final_messages=out.messages)

    runner = make_runner()
    result = await runner.execute(
        ToolAgent(), "tool-run", {"messages": [{"role": "user", "content": "1+2?"}]}
    )
    assert result.final_output == {"response": "3"}
    assert result.final_messages is not None and result.final_messages[-1]["content"] == "3"


async def test_agent_by_registered_key_and_metadata_reach_the_context() -> None:
    seen: dict[str, Any] = {}

    async def run(ctx: RunContext) -> RunResult:
        seen.update(run_id=ctx.run_id, metadata=ctx.metadata, messages=ctx.input_messages)
        return RunResult()

    register_runtime(FnAgent(run, key="meta-agent"))
    runner = make_runner()
    run_id = uuid.uuid4()
    await runner.execute(
        "meta-agent", run_id, {"messages": [{"role": "user", "content": "x"}], "metadata": {"user": "u1"}}
    )
    assert seen == {
        "run_id": run_id,
        "metadata": {"user": "u1"},
        "messages": [{"role": "user", "content": "x"}],
    }
    assert await types_of(runner, str(run_id)) == ["run.started", "run.succeeded"]


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("input_data", "message"),
    [
        (None, "input_data must be a dict"),
        ("hello", "input_data must be a dict"),
        ({}, 'input_data must have a "messages" list'),
        ({"message": []}, 'input_data must have a "messages" list'),
        ({"messages": "hello"}, r'input_data\["messages"\] must be a list, got str'),
        ({"messages": ["hello"]}, r'input_data\["messages"\]\[0\] must be a dict, got str'),
        ({"messages": [], "metadata": ["x"]}, r'input_data\["metadata"\] must be a dict'),
    ],
)
async def test_bad_input_data_is_a_typed_error_before_anything_runs(input_data: Any, message: str) -> None:
    agent = FnAgent(lambda ctx: asyncio.sleep(0, RunResult()))
    runner = make_runner()
    with pytest.raises(InvalidRunInputError, match=message):
        await runner.execute(agent=agent, run_id="bad", input_data=input_data)
    assert agent.calls == 0
    assert await events_of(runner, "bad") == []


async def test_bad_agent_and_run_id() -> None:
    runner = make_runner()
    agent = FnAgent(lambda ctx: asyncio.sleep(0, RunResult()))
    with pytest.raises(TypeError, match="agent must be an AgentRuntime"):
        await runner.execute(agent=object(), run_id="r", input_data=MESSAGES)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"run_id must be a str or uuid\.UUID"):
        await runner.execute(agent=agent, run_id=7, input_data=MESSAGES)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty"):
        await runner.execute(agent=agent, run_id="", input_data=MESSAGES)
    with pytest.raises(KeyError, match="no agent runtime registered with key 'nope'"):
        await runner.execute(agent="nope", run_id="r", input_data=MESSAGES)
    assert agent.calls == 0


def test_runner_config_defaults_and_validation() -> None:
    cfg = RunnerConfig()
    assert (cfg.run_timeout_seconds, cfg.max_retries, cfg.retry_backoff_seconds) == (300, 3, 1.0)
    assert cfg.heartbeat_interval_seconds == 30
    with pytest.raises(ConfigurationError, match="run_timeout_seconds must be > 0"):
        RunnerConfig(run_timeout_seconds=0)
    with pytest.raises(ConfigurationError, match="max_retries must be an int >= 0"):
        RunnerConfig(max_retries=-1)
    with pytest.raises(ConfigurationError, match="heartbeat_interval_seconds must be a number"):
        RunnerConfig(heartbeat_interval_seconds="30")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="retry_jitter"):
        RunnerConfig(retry_jitter=2)
    with pytest.raises(TypeError, match="config must be a RunnerConfig"):
        AgentRunner(config={"max_retries": 1})  # type: ignore[arg-type]


def test_default_runner_reads_configure_and_uses_the_factories() -> None:
    from agent_runtime_core.events import get_event_bus
    from agent_runtime_core.state import get_state_store

    configure(run_timeout_seconds=12, max_retries=5, retry_backoff_seconds=0.25, heartbeat_interval_seconds=7)
    runner = AgentRunner()
    assert runner.config.run_timeout_seconds == 12
    assert runner.config.max_retries == 5
    assert runner.config.heartbeat_interval_seconds == 7
    assert runner.event_bus is get_event_bus()
    assert runner.state_store is get_state_store()
    policy = runner.retry_policy
    assert isinstance(policy, RetryPolicy)
    assert (policy.max_attempts, policy.initial_delay) == (6, 0.25)


# -- failures and retries ---------------------------------------------------------------------------


async def test_non_retryable_error_fails_at_once_with_error_info() -> None:
    async def run(ctx: RunContext) -> RunResult:
        raise ValueError("bad thing")

    agent = FnAgent(run)
    runner = make_runner(max_retries=3)
    result = await runner.execute(agent=agent, run_id="r", input_data=MESSAGES)
    assert agent.calls == 1
    assert result.error is not None
    assert (result.error.type, result.error.message, result.error.retryable) == (
        "ValueError",
        "bad thing",
        False,
    )
    assert result.error.details == {"status": "failed", "attempts": 1}
    assert result.error.stack is not None and "bad thing" in result.error.stack
    events = await events_of(runner, "r")
    assert [e.event_type for e in events] == ["run.started", "run.failed"]
    assert ErrorInfo.from_dict(events[-1].payload["error"]).type == "ValueError"
    assert events[-1].payload["attempts"] == 1


async def test_agent_returning_an_error_result_is_a_failed_run() -> None:
    async def run(ctx: RunContext) -> RunResult:
        return RunResult(error=ErrorInfo(type="Refused", message="no"))

    runner = make_runner()
    result = await runner.execute(agent=FnAgent(run), run_id="r", input_data=MESSAGES)
    assert result.error is not None and result.error.type == "Refused"
    events = await events_of(runner, "r")
    assert events[-1].event_type == "run.failed"
    assert events[-1].payload["error"]["message"] == "no"


async def test_agent_returning_something_else_fails_with_type_error() -> None:
    async def run(ctx: RunContext) -> Any:
        return {"final_output": 1}

    result = await make_runner().execute(agent=FnAgent(run), run_id="r", input_data=MESSAGES)
    assert result.error is not None and result.error.type == "TypeError"
    assert "must return a RunResult, got dict" in result.error.message


async def test_retryable_error_retries_and_resumes_from_the_checkpoint() -> None:
    seen_states: list[dict[str, Any] | None] = []

    async def run(ctx: RunContext) -> RunResult:
        state = await ctx.get_state()
        seen_states.append(state)
        if state is None:
            await ctx.checkpoint({"progress": 1, "partial": ["a"]})
            raise ProviderError("overloaded")  # llm-client's typed, retryable error
        return RunResult(final_output={"resumed_from": state["progress"], "partial": state["partial"]})

    agent = FnAgent(run)
    runner = make_runner(max_retries=3)
    result = await runner.execute(agent=agent, run_id="r", input_data=MESSAGES)
    assert result.succeeded
    assert result.final_output == {"resumed_from": 1, "partial": ["a"]}
    assert seen_states == [None, {"progress": 1, "partial": ["a"]}]
    events = await events_of(runner, "r")
    assert [e.event_type for e in events] == [
        "run.started",
        "state.checkpoint",
        "run.retrying",
        "run.succeeded",
    ]
    retrying = events[2].payload
    assert (retrying["attempt"], retrying["next_attempt"], retrying["max_retries"]) == (1, 2, 3)
    assert retrying["error"] == {"type": "ProviderError", "message": "overloaded"}
    assert events[-1].payload["attempts"] == 2


async def test_any_exception_with_retryable_true_is_retried_until_max_retries() -> None:
    async def run(ctx: RunContext) -> RunResult:
        raise Retryable("flaky")

    agent = FnAgent(run)
    runner = make_runner(max_retries=2)
    result = await runner.execute(agent=agent, run_id="r", input_data=MESSAGES)
    assert agent.calls == 3
    assert result.error is not None and result.error.type == "Retryable"
    assert result.error.details == {"status": "failed", "attempts": 3}
    assert await types_of(runner, "r") == ["run.started", "run.retrying", "run.retrying", "run.failed"]


async def test_max_retries_zero_never_retries() -> None:
    async def run(ctx: RunContext) -> RunResult:
        raise Retryable("flaky")

    agent = FnAgent(run)
    result = await make_runner(max_retries=0).execute(agent=agent, run_id="r", input_data=MESSAGES)
    assert agent.calls == 1 and result.error is not None


async def test_retry_on_predicate_marks_more_errors_retryable() -> None:
    attempts: list[int] = []

    async def run(ctx: RunContext) -> RunResult:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionResetError("peer reset")
        return RunResult(final_output={"ok": True})

    runner = make_runner(retry_on=lambda exc: isinstance(exc, ConnectionError))
    result = await runner.execute(agent=FnAgent(run), run_id="r", input_data=MESSAGES)
    assert result.succeeded and len(attempts) == 2
    assert runner.is_retryable(ConnectionResetError()) and not runner.is_retryable(ValueError())


async def test_backoff_comes_from_llm_client_retry_policy() -> None:
    async def run(ctx: RunContext) -> RunResult:
        raise Retryable("flaky")

    runner = make_runner(max_retries=3, retry_backoff_seconds=0.001, retry_jitter=0.0)
    await runner.execute(agent=FnAgent(run), run_id="r", input_data=MESSAGES)
    delays = [
        e.payload["delay_seconds"] for e in await events_of(runner, "r") if e.event_type == "run.retrying"
    ]
    expected = [RetryPolicy(initial_delay=0.001, jitter=0.0).delay_for(n) for n in (1, 2, 3)]
    assert delays == pytest.approx(expected)
    assert delays == pytest.approx([0.001, 0.002, 0.004])


async def test_llm_client_errors_that_llm_client_does_not_retry_are_not_retried() -> None:
    from llm_client import AuthenticationError

    async def run(ctx: RunContext) -> RunResult:
        raise AuthenticationError("bad key")

    agent = FnAgent(run)
    result = await make_runner().execute(agent=agent, run_id="r", input_data=MESSAGES)
    assert agent.calls == 1
    assert result.error is not None and result.error.type == "AuthenticationError"


# -- timeout --------------------------------------------------------------------------------------


async def test_timeout_returns_a_timed_out_result() -> None:
    never = asyncio.Event()
    cancelled = asyncio.Event()

    async def run(ctx: RunContext) -> RunResult:
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return RunResult()

    runner = make_runner(run_timeout_seconds=0.05)
    result = await runner.execute(agent=FnAgent(run), run_id="r", input_data=MESSAGES)
    assert cancelled.is_set()  # the agent's await was interrupted, not left running
    assert result.error is not None
    assert result.error.type == "RunTimedOutError"
    assert result.error.details["status"] == "timed_out"
    events = await events_of(runner, "r")
    assert [e.event_type for e in events] == ["run.started", "run.timed_out"]
    assert events[-1].payload["timeout_seconds"] == 0.05
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_the_timeout_bounds_retries_and_backoff_too() -> None:
    async def run(ctx: RunContext) -> RunResult:
        raise Retryable("flaky")

    runner = make_runner(run_timeout_seconds=0.05, max_retries=5, retry_backoff_seconds=30)
    result = await runner.execute(agent=FnAgent(run), run_id="r", input_data=MESSAGES)
    assert result.error is not None and result.error.type == "RunTimedOutError"
    assert await types_of(runner, "r") == ["run.started", "run.retrying", "run.timed_out"]


async def test_an_agents_own_timeout_error_is_a_failure_not_a_run_timeout() -> None:
    async def run(ctx: RunContext) -> RunResult:
        raise TimeoutError("upstream api timed out")

    runner = make_runner()
    result = await runner.execute(agent=FnAgent(run), run_id="r", input_data=MESSAGES)
    assert result.error is not None and result.error.type == "TimeoutError"
    assert await types_of(runner, "r") == ["run.started", "run.failed"]


# -- cancellation ---------------------------------------------------------------------------------


async def test_cooperative_cancellation() -> None:
    running = asyncio.Event()

    async def run(ctx: RunContext) -> RunResult:
        stop = asyncio.Event()
        ctx.cancel_token.add_callback(stop.set)  # type: ignore[attr-defined]
        running.set()
        await stop.wait()
        assert ctx.is_cancelled()
        return RunResult(final_output={"stopped_cleanly": True})

    runner = make_runner(cancel_grace_seconds=30)
    task = asyncio.create_task(runner.execute(agent=FnAgent(run), run_id="r", input_data=MESSAGES))
    await running.wait()
    assert runner.active_runs == ["r"]
    assert runner.cancel("r", reason="user asked")
    result = await task
    assert result.final_output == {"stopped_cleanly": True}
    assert result.error is not None
    assert result.error.type == "RunCancelledError"
    assert result.error.details["status"] == "cancelled"
    events = await events_of(runner, "r")
    assert [e.event_type for e in events] == ["run.started", "run.cancelled"]
    assert events[-1].payload == {"run_id": "r", "reason": "user asked"}


async def test_an_agent_that_ignores_cancellation_is_cancelled_after_the_grace_period() -> None:
    running = asyncio.Event()
    interrupted = asyncio.Event()

    async def run(ctx: RunContext) -> RunResult:
        running.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            interrupted.set()
            raise
        return RunResult()

    runner = make_runner(cancel_grace_seconds=0.01)
    task = asyncio.create_task(runner.execute(agent=FnAgent(run), run_id="r", input_data=MESSAGES))
    await running.wait()
    runner.cancel("r")
    result = await task
    assert interrupted.is_set()
    assert result.error is not None and result.error.type == "RunCancelledError"
    assert await types_of(runner, "r") == ["run.started", "run.cancelled"]
    assert not task.cancelled()


async def test_an_error_raised_because_of_cancellation_counts_as_cancelled() -> None:
    running = asyncio.Event()

    async def run(ctx: RunContext) -> RunResult:
        stop = asyncio.Event()
        ctx.cancel_token.add_callback(stop.set)  # type: ignore[attr-defined]
        running.set()
        await stop.wait()
        ctx.raise_if_cancelled()  # type: ignore[attr-defined]
        return RunResult()

    runner = make_runner()
    task = asyncio.create_task(runner.execute(agent=FnAgent(run), run_id="r", input_data=MESSAGES))
    await running.wait()
    runner.cancel("r")
    result = await task
    assert result.error is not None and result.error.type == "RunCancelledError"
    assert await types_of(runner, "r") == ["run.started", "run.cancelled"]


async def test_cancelling_during_backoff_stops_at_once() -> None:
    async def run(ctx: RunContext) -> RunResult:
        raise Retryable("flaky")

    agent = FnAgent(run)
    runner = make_runner(retry_backoff_seconds=60, cancel_grace_seconds=60)
    task = asyncio.create_task(runner.execute(agent=agent, run_id="r", input_data=MESSAGES))
    await wait_for_event(runner, "r", "run.retrying")
    assert runner.cancel("r")
    async with asyncio.timeout(5):
        result = await task
    assert agent.calls == 1
    assert result.error is not None and result.error.type == "RunCancelledError"
    assert await types_of(runner, "r") == ["run.started", "run.retrying", "run.cancelled"]


async def test_cancelling_the_calling_task_propagates() -> None:
    running = asyncio.Event()

    async def run(ctx: RunContext) -> RunResult:
        running.set()
        await asyncio.Event().wait()
        return RunResult()

    runner = make_runner()
    task = asyncio.create_task(runner.execute(agent=FnAgent(run), run_id="r", input_data=MESSAGES))
    await running.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await types_of(runner, "r") == ["run.started", "run.cancelled"]
    assert runner.active_runs == []


async def test_cancel_of_an_unknown_or_finished_run_returns_false() -> None:
    runner = make_runner()
    assert runner.cancel("nope") is False
    await runner.execute(
        agent=FnAgent(lambda ctx: asyncio.sleep(0, RunResult())), run_id="r", input_data=MESSAGES
    )
    assert runner.cancel("r") is False


async def test_the_same_run_id_cannot_run_twice_at_once() -> None:
    release = asyncio.Event()

    async def run(ctx: RunContext) -> RunResult:
        await release.wait()
        return RunResult()

    runner = make_runner()
    task = asyncio.create_task(runner.execute(agent=FnAgent(run), run_id="r", input_data=MESSAGES))
    await wait_for_event(runner, "r", "run.started")
    with pytest.raises(RunAlreadyActiveError, match="'r' is already running"):
        await runner.execute(agent=FnAgent(run), run_id="r", input_data=MESSAGES)
    release.set()
    assert (await task).succeeded


# -- heartbeats ----------------------------------------------------------------------------------


async def test_heartbeats_while_the_run_is_active_and_none_after() -> None:
    release = asyncio.Event()

    async def run(ctx: RunContext) -> RunResult:
        await release.wait()
        return RunResult()

    runner = make_runner(heartbeat_interval_seconds=0.01)
    task = asyncio.create_task(runner.execute(agent=FnAgent(run), run_id="r", input_data=MESSAGES))
    beat = await wait_for_event(runner, "r", "run.heartbeat")
    assert beat.payload["run_id"] == "r" and beat.payload["attempt"] == 1
    assert beat.payload["elapsed_seconds"] >= 0
    release.set()
    await task
    runner._on_heartbeat()  # the shared timer firing after the last run ended: it stops
    assert runner._heartbeat_handle is None
    types = await types_of(runner, "r", heartbeats=True)
    assert types[0] == "run.started" and types[-1] == "run.succeeded"
    assert set(types[1:-1]) == {"run.heartbeat"}
    await runner.aclose()


async def test_one_heartbeat_timer_serves_concurrent_runs() -> None:
    release = asyncio.Event()

    async def run(ctx: RunContext) -> RunResult:
        await release.wait()
        return RunResult()

    runner = make_runner(heartbeat_interval_seconds=0.01)
    tasks = [
        asyncio.create_task(runner.execute(agent=FnAgent(run), run_id=f"r{i}", input_data=MESSAGES))
        for i in range(3)
    ]
    for i in range(3):
        await wait_for_event(runner, f"r{i}", "run.heartbeat")
    release.set()
    await asyncio.gather(*tasks)
    await runner.aclose()
    assert runner._heartbeat_handle is None


async def test_no_heartbeat_for_a_short_run() -> None:
    runner = make_runner(heartbeat_interval_seconds=30)
    await runner.execute(
        agent=FnAgent(lambda ctx: asyncio.sleep(0, RunResult())), run_id="r", input_data=MESSAGES
    )
    assert await types_of(runner, "r", heartbeats=True) == ["run.started", "run.succeeded"]
    await runner.aclose()
    assert runner._heartbeat_handle is None


# -- streaming and tracing ---------------------------------------------------------------------


async def test_stream_yields_the_runs_events_in_order() -> None:
    async def run(ctx: RunContext) -> RunResult:
        await ctx.emit_user_message("one")
        await ctx.emit_user_message("two")
        return RunResult(final_output={"n": 2})

    runner = make_runner()
    seen = [e.event_type async for e in runner.stream(FnAgent(run), "r", MESSAGES)]
    assert seen == ["run.started", "assistant.message", "assistant.message", "run.succeeded"]
    # a second run with the same id streams only its own events
    seqs = [e.seq async for e in runner.stream(FnAgent(run), "r", MESSAGES)]
    assert seqs == [5, 6, 7, 8]


async def test_leaving_a_stream_early_cancels_the_run() -> None:
    async def run(ctx: RunContext) -> RunResult:
        await ctx.emit_user_message("first")
        stop = asyncio.Event()
        ctx.cancel_token.add_callback(stop.set)  # type: ignore[attr-defined]
        await stop.wait()
        return RunResult()

    runner = make_runner()
    stream = runner.stream(FnAgent(run), "r", MESSAGES)
    async for event in stream:
        if event.event_type == "assistant.message":
            break
    await stream.aclose()  # type: ignore[attr-defined]
    assert runner.active_runs == []
    assert (await types_of(runner, "r"))[-1] == "run.cancelled"


async def test_events_helper_replays_and_ends_at_the_terminal_event() -> None:
    runner = make_runner()
    await runner.execute(
        agent=FnAgent(lambda ctx: asyncio.sleep(0, RunResult())), run_id="r", input_data=MESSAGES
    )
    assert [e.event_type async for e in runner.events("r")] == ["run.started", "run.succeeded"]


async def test_events_and_stream_close_the_bus_subscription_they_follow() -> None:
    """Ending at the terminal event, or a consumer leaving early, closes the subscription now
    (a Redis subscription gives its connection back), not when the loop finalises it."""

    async def run(ctx: RunContext) -> RunResult:
        await ctx.emit_user_message("one")
        return RunResult()

    runner = make_runner()
    with abandoned_generators() as abandoned:
        assert [e.event_type async for e in runner.stream(FnAgent(run), "r", MESSAGES)][-1] == "run.succeeded"
        assert [e.event_type async for e in runner.events("r")][-1] == "run.succeeded"
        stream = runner.events("r")
        assert (await anext(stream)).event_type == "run.started"
        await aclose_stream(stream)  # the caller closes what it leaves early
    assert abandoned == []


async def test_the_runner_sends_lifecycle_traces_to_its_sink() -> None:
    class ListSink(TraceSink):
        def __init__(self) -> None:
            self.events: list[dict[str, Any]] = []

        async def trace(self, event: dict[str, Any]) -> None:
            self.events.append(event)

    sink = ListSink()
    runner = AgentRunner(
        RunnerConfig(), event_bus=InMemoryEventBus(), state_store=InMemoryStateStore(), trace_sink=sink
    )

    async def run(ctx: RunContext) -> RunResult:
        raise ValueError("boom")

    await runner.execute(agent=FnAgent(run), run_id="r", input_data=MESSAGES)
    assert [e["event_type"] for e in sink.events] == ["run.started", "run.failed"]
    assert sink.events[1]["payload"]["error"]["message"] == "boom"
    assert sink.events[0]["run_id"] == "r"


def test_a_runner_reused_across_event_loops_keeps_heartbeating() -> None:
    runner = make_runner(heartbeat_interval_seconds=0.01)

    async def quick() -> None:
        await runner.execute(
            agent=FnAgent(lambda ctx: asyncio.sleep(0, RunResult())), run_id="a", input_data=MESSAGES
        )

    async def blocked() -> None:
        release = asyncio.Event()

        async def run(ctx: RunContext) -> RunResult:
            await release.wait()
            return RunResult()

        task = asyncio.create_task(runner.execute(agent=FnAgent(run), run_id="b", input_data=MESSAGES))
        await wait_for_event(runner, "b", "run.heartbeat")
        release.set()
        await task

    asyncio.run(quick())  # leaves the timer scheduled on a loop that is then closed
    asyncio.run(blocked())
