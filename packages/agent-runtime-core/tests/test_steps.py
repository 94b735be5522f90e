"""StepExecutor: the seed's examples, events, resume, retries, timeouts, cancellation, bad input."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from agent_runtime_core import (
    AgentRunner,
    AgentRuntime,
    DefaultRunContext,
    RunContext,
    RunnerConfig,
    RunResult,
)
from agent_runtime_core.context import RunCancelledError
from agent_runtime_core.events.memory import InMemoryEventBus
from agent_runtime_core.state.memory import InMemoryStateStore
from agent_runtime_core.steps import Step, StepExecutor, StepTimeoutError
from llm_client import ProviderError


def make_ctx(run_id: str = "run-1", **kwargs: Any) -> DefaultRunContext:
    kwargs.setdefault("event_bus", InMemoryEventBus())
    kwargs.setdefault("state_store", InMemoryStateStore())
    return DefaultRunContext(run_id, [], **kwargs)


async def step_events(ctx: DefaultRunContext) -> list[tuple[str, str | None]]:
    return [
        (e.event_type, e.payload.get("step"))
        for e in await ctx.event_bus.get_events(ctx.run_key)
        if e.event_type.startswith("step.")
    ]


# -- the seed's examples ---------------------------------------------------------------------------


class MyAgent(AgentRuntime):
    """The seed's "Basic Usage" agent. The seed leaves out ``key`` (required by AgentRuntime) and
    returns ``{"items": [...]}`` (an Ellipsis, which no checkpoint can store): both filled in."""

    @property
    def key(self) -> str:
        return "steps-agent"

    async def run(self, ctx: RunContext) -> RunResult:
        executor = StepExecutor(ctx)

        results = await executor.run(
            [
                Step("fetch", self.fetch_data),
                Step("process", self.process_data, retries=3),
                Step("validate", self.validate_results),
            ]
        )

        return RunResult(final_output=results)

    async def fetch_data(self, ctx: RunContext, state: dict[str, Any]) -> dict[str, Any]:
        # Fetch data from external API
        return {"items": [1, 2, 3]}

    async def process_data(self, ctx: RunContext, state: dict[str, Any]) -> dict[str, Any]:
        # Access results from previous steps via state
        return {"processed": True}

    async def validate_results(self, ctx: RunContext, state: dict[str, Any]) -> dict[str, Any]:
        return {"valid": True}


async def test_seed_basic_usage_under_the_runner() -> None:
    runner = AgentRunner(RunnerConfig(), event_bus=InMemoryEventBus(), state_store=InMemoryStateStore())
    result = await runner.execute(agent=MyAgent(), run_id="steps-1", input_data={"messages": []})
    assert result.final_output == {
        "fetch": {"items": [1, 2, 3]},
        "process": {"processed": True},
        "validate": {"valid": True},
    }
    types = [e.event_type for e in await runner.event_bus.get_events("steps-1")]
    assert types == [
        "run.started",
        *(["step.started", "state.checkpoint", "step.completed", "progress.update"] * 3),
        "run.succeeded",
    ]


async def test_seed_step_options() -> None:
    async def process_data(ctx: RunContext, state: dict[str, Any]) -> str:
        return "ok"

    step = Step(
        name="process",  # Unique step identifier
        fn=process_data,  # Async function(ctx, state) -> result
        retries=3,  # Retry attempts on failure (default: 0)
        retry_delay=2.0,  # Seconds between retries (default: 1.0)
        timeout=30.0,  # Step timeout in seconds (optional)
        description="Process data",  # Human-readable description
        checkpoint=True,  # Save checkpoint after step (default: True)
    )
    assert (step.retries, step.retry_delay, step.timeout, step.description) == (3, 2.0, 30.0, "Process data")
    default = Step("x", process_data)
    assert (default.retries, default.retry_delay, default.timeout, default.checkpoint) == (0, 1.0, None, True)
    ctx = make_ctx()
    assert await StepExecutor(ctx).run([step]) == {"process": "ok"}
    started = [e for e in await ctx.event_bus.get_events("run-1") if e.event_type == "step.started"]
    assert started[0].payload["description"] == "Process data"


async def test_seed_resume_from_checkpoint() -> None:
    calls: dict[str, int] = {"step1": 0, "step2": 0, "step3": 0}

    async def one(ctx: RunContext, state: dict[str, Any]) -> str:
        calls["step1"] += 1
        return "one"

    async def two(ctx: RunContext, state: dict[str, Any]) -> str:
        calls["step2"] += 1
        if calls["step2"] == 1:
            raise RuntimeError("crashed in step2")
        return "two"

    async def three(ctx: RunContext, state: dict[str, Any]) -> str:
        calls["step3"] += 1
        return "three"

    step1, step2, step3 = Step("step1", one), Step("step2", two), Step("step3", three)
    ctx = make_ctx()

    # First run - completes step1, fails during step2
    executor = StepExecutor(ctx)
    with pytest.raises(RuntimeError, match="crashed in step2") as info:
        await executor.run([step1, step2, step3])  # Checkpoints after step1
    assert "in step 'step2' (attempt 1 of 1)" in info.value.__notes__

    # Second run - skips step1, resumes from step2
    executor = StepExecutor(ctx)
    results = await executor.run([step1, step2, step3])  # step1 skipped

    assert results == {"step1": "one", "step2": "two", "step3": "three"}
    assert calls == {"step1": 1, "step2": 2, "step3": 1}
    assert await step_events(ctx) == [
        ("step.started", "step1"),
        ("step.completed", "step1"),
        ("step.started", "step2"),
        ("step.failed", "step2"),
        ("step.skipped", "step1"),
        ("step.started", "step2"),
        ("step.completed", "step2"),
        ("step.started", "step3"),
        ("step.completed", "step3"),
    ]


async def test_seed_custom_state() -> None:
    ctx = make_ctx()

    async def step1(ctx: RunContext, state: dict[str, Any]) -> str:
        state["counter"] = 1
        return "done"

    async def step2(ctx: RunContext, state: dict[str, Any]) -> int:
        state["counter"] += 1  # Access state from step1
        return int(state["counter"])

    executor = StepExecutor(ctx)
    results = await executor.run(
        [Step("step1", step1), Step("step2", step2)],
        initial_state={"counter": 0},
    )
    assert results == {"step1": "done", "step2": 2}
    assert executor.state == {"counter": 2}
    assert (await ctx.get_state()) == {
        "__steps__": {"completed": ["step1", "step2"], "results": results, "state": {"counter": 2}}
    }


# -- events and progress ---------------------------------------------------------------------------


async def test_progress_percentages_count_skipped_steps() -> None:
    ctx = make_ctx()

    async def ok(ctx: RunContext, state: dict[str, Any]) -> int:
        return 1

    steps = [Step("a", ok), Step("b", ok), Step("c", ok)]
    await StepExecutor(ctx).run(steps[:1])
    await StepExecutor(ctx).run(steps)
    progress = [
        (e.payload["step"], e.payload["completed"], e.payload["total"], e.payload["percentage"])
        for e in await ctx.event_bus.get_events("run-1")
        if e.event_type == "progress.update"
    ]
    assert progress == [("a", 1, 1, 100.0), ("a", 1, 3, 33.3), ("b", 2, 3, 66.7), ("c", 3, 3, 100.0)]


async def test_resume_restores_saved_state_and_ignores_initial_state() -> None:
    ctx = make_ctx()
    seen: list[dict[str, Any]] = []

    async def first(ctx: RunContext, state: dict[str, Any]) -> None:
        state["token"] = "from-step-1"

    async def second(ctx: RunContext, state: dict[str, Any]) -> str:
        seen.append(dict(state))
        if len(seen) == 1:
            raise RuntimeError("fail once")
        return str(state["token"])

    steps = [Step("first", first), Step("second", second)]
    with pytest.raises(RuntimeError):
        await StepExecutor(ctx).run(steps, initial_state={"seed": 1})
    results = await StepExecutor(ctx).run(steps, initial_state={"seed": 999})
    assert results == {"first": None, "second": "from-step-1"}
    assert seen == [{"seed": 1, "token": "from-step-1"}, {"seed": 1, "token": "from-step-1"}]


async def test_initial_state_is_not_mutated() -> None:
    initial = {"counter": 0}

    async def bump(ctx: RunContext, state: dict[str, Any]) -> None:
        state["counter"] += 1

    await StepExecutor(make_ctx()).run([Step("bump", bump)], initial_state=initial)
    assert initial == {"counter": 0}


async def test_sync_step_functions_work() -> None:
    def double(ctx: RunContext, state: dict[str, Any]) -> int:
        return 2 * int(state["n"])

    assert await StepExecutor(make_ctx()).run([Step("double", double)], initial_state={"n": 21}) == {
        "double": 42
    }


# -- retries and timeouts ----------------------------------------------------------------------------


async def test_step_retries_then_succeeds() -> None:
    attempts: list[int] = []

    async def flaky(ctx: RunContext, state: dict[str, Any]) -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError(f"try {len(attempts)}")
        return "ok"

    ctx = make_ctx()
    assert await StepExecutor(ctx).run([Step("flaky", flaky, retries=2, retry_delay=0)]) == {"flaky": "ok"}
    events = await ctx.event_bus.get_events("run-1")
    retrying = [e.payload for e in events if e.event_type == "step.retrying"]
    assert [(p["attempt"], p["max_attempts"], p["error"]["message"]) for p in retrying] == [
        (1, 3, "try 1"),
        (2, 3, "try 2"),
    ]
    assert [e.event_type for e in events if e.event_type.startswith("step.")] == [
        "step.started",
        "step.retrying",
        "step.retrying",
        "step.completed",
    ]


async def test_step_retries_exhausted_reraises_the_original_error() -> None:
    async def broken(ctx: RunContext, state: dict[str, Any]) -> None:
        raise ProviderError("still down")

    ctx = make_ctx()
    with pytest.raises(ProviderError, match="still down") as info:
        await StepExecutor(ctx).run([Step("call", broken, retries=1, retry_delay=0)])
    assert info.value.retryable  # the runner can still retry the whole run
    assert "in step 'call' (attempt 2 of 2)" in info.value.__notes__
    failed = [e for e in await ctx.event_bus.get_events("run-1") if e.event_type == "step.failed"]
    assert failed[0].payload["attempts"] == 2
    assert failed[0].payload["error"]["type"] == "ProviderError"
    assert await ctx.get_state() is None


async def test_step_timeout() -> None:
    attempts: list[int] = []

    async def slow(ctx: RunContext, state: dict[str, Any]) -> None:
        attempts.append(1)
        await asyncio.Event().wait()

    ctx = make_ctx()
    with pytest.raises(StepTimeoutError, match=r"step 'slow' timed out after 0\.02 s"):
        await StepExecutor(ctx).run([Step("slow", slow, timeout=0.02, retries=1, retry_delay=0)])
    assert len(attempts) == 2
    assert [t for t, _ in await step_events(ctx)] == ["step.started", "step.retrying", "step.failed"]


async def test_a_steps_own_timeout_error_is_not_a_step_timeout() -> None:
    async def raises(ctx: RunContext, state: dict[str, Any]) -> None:
        raise TimeoutError("remote")

    with pytest.raises(TimeoutError, match="remote") as info:
        await StepExecutor(make_ctx()).run([Step("r", raises, timeout=10)])
    assert not isinstance(info.value, StepTimeoutError)


async def test_runner_retry_resumes_the_pipeline_without_redoing_done_steps() -> None:
    calls = {"a": 0, "b": 0}

    async def a(ctx: RunContext, state: dict[str, Any]) -> int:
        calls["a"] += 1
        state["from_a"] = 10
        return 1

    async def b(ctx: RunContext, state: dict[str, Any]) -> int:
        calls["b"] += 1
        if calls["b"] == 1:
            raise ProviderError("overloaded")
        return int(state["from_a"]) + 1

    class Pipeline(AgentRuntime):
        key = "pipeline"

        async def run(self, ctx: RunContext) -> RunResult:
            return RunResult(final_output=await StepExecutor(ctx).run([Step("a", a), Step("b", b)]))

    runner = AgentRunner(
        RunnerConfig(retry_backoff_seconds=0), event_bus=InMemoryEventBus(), state_store=InMemoryStateStore()
    )
    result = await runner.execute(agent=Pipeline(), run_id="p", input_data={"messages": []})
    assert result.final_output == {"a": 1, "b": 11}
    assert calls == {"a": 1, "b": 2}


# -- cancellation, checkpoints, bad input ----------------------------------------------------------


async def test_cancellation_is_checked_between_steps() -> None:
    ran: list[str] = []

    async def first(ctx: RunContext, state: dict[str, Any]) -> None:
        ran.append("first")
        ctx.cancel_token.cancel("stop")  # type: ignore[attr-defined]

    async def second(ctx: RunContext, state: dict[str, Any]) -> None:
        ran.append("second")

    ctx = make_ctx()
    with pytest.raises(RunCancelledError, match="before step 'second'"):
        await StepExecutor(ctx).run([Step("first", first), Step("second", second)])
    assert ran == ["first"]
    assert (await ctx.get_state() or {})["__steps__"]["completed"] == ["first"]


async def test_checkpoint_keeps_other_keys_and_respects_checkpoint_false() -> None:
    ctx = make_ctx()
    await ctx.checkpoint({"agent": "own data"})

    async def ok(ctx: RunContext, state: dict[str, Any]) -> str:
        return "r"

    await StepExecutor(ctx, checkpoint_key="pipeline").run(
        [Step("quick", ok, checkpoint=False), Step("slow", ok)]
    )
    checkpoints = await ctx.state_store.list_checkpoints("run-1")
    assert len(checkpoints) == 2  # the agent's own, then one after "slow" only
    assert checkpoints[-1] == {
        "agent": "own data",
        "pipeline": {"completed": ["quick", "slow"], "results": {"quick": "r", "slow": "r"}, "state": {}},
    }


async def test_a_non_serialisable_result_is_a_clear_type_error() -> None:
    async def bad(ctx: RunContext, state: dict[str, Any]) -> object:
        return object()

    with pytest.raises(TypeError, match=r"step 'bad': its result or the shared state cannot be checkpointed"):
        await StepExecutor(make_ctx()).run([Step("bad", bad)])


async def test_bad_steps_are_rejected_before_anything_runs() -> None:
    ran: list[str] = []

    async def ok(ctx: RunContext, state: dict[str, Any]) -> None:
        ran.append("x")

    ex = StepExecutor(make_ctx())
    with pytest.raises(ValueError, match="step names must be unique; duplicated: 'a'"):
        await ex.run([Step("a", ok), Step("b", ok), Step("a", ok)])
    with pytest.raises(TypeError, match=r"steps\[1\] must be a Step, got function"):
        await ex.run([Step("a", ok), ok])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="initial_state must be a dict"):
        await ex.run([Step("a", ok)], initial_state=[1])  # type: ignore[arg-type]
    assert ran == []
    assert await ex.run([]) == {}


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"name": ""}, ValueError, "step name must be a non-empty string"),
        ({"fn": "nope"}, TypeError, "fn must be callable"),
        ({"retries": -1}, ValueError, "retries must be an int >= 0"),
        ({"retries": 1.5}, ValueError, "retries must be an int >= 0"),
        ({"retry_delay": -1}, ValueError, "retry_delay must be >= 0"),
        ({"timeout": 0}, ValueError, "timeout must be > 0 seconds or None"),
    ],
)
def test_bad_step_options(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    def ok(ctx: RunContext, state: dict[str, Any]) -> None:
        return None

    with pytest.raises(error, match=message):
        Step(**{"name": "s", "fn": ok, **kwargs})


async def test_a_foreign_value_under_the_checkpoint_key_is_reported() -> None:
    ctx = make_ctx()
    await ctx.checkpoint({"__steps__": "something else"})
    with pytest.raises(ValueError, match="does not hold step progress"):
        await StepExecutor(ctx).run([Step("a", lambda ctx, state: 1)])
    with pytest.raises(ValueError, match="checkpoint_key must be a non-empty string"):
        StepExecutor(ctx, checkpoint_key="")
