"""Orchestration under failure and limits: partial failure, cancellation, budgets, config limits,
timeouts, plans that do not parse, graph failures and cycles, routing ties, concurrency bounds."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from agent_runtime import (
    AgentRole,
    Budget,
    BudgetExceededError,
    BudgetSpec,
    ChainOperator,
    DebateOperator,
    DefaultRouter,
    ExecutionContext,
    ExecutionGraph,
    GraphEdge,
    GraphExecutor,
    GraphNode,
    InMemoryJobStore,
    JobFilter,
    JobManager,
    JobStatus,
    Ledger,
    MapReduceOperator,
    Operator,
    OperatorContext,
    OperatorResult,
    OrchestrationConfig,
    ParallelOperator,
    PlannerExecutorOperator,
    RoutingRule,
    ValidationError,
)
from agent_runtime.orchestration import (
    AgentOperator,
    ChildBudgetExceededError,
    ChildTimeoutError,
    GraphCycleError,
    GraphError,
    MaxChildJobsError,
    MaxDepthError,
    OperatorCancelledError,
    OperatorFailedError,
    PlanParseError,
    RoutingError,
    UpstreamFailedError,
    parse_plan,
)
from llm_client import Agent, ExecutionEngine, MockProvider, MockResponse, Usage


class Const(Operator):
    """Returns ``value``; fails (returns a failed result) or raises when told to."""

    def __init__(self, name: str, value: Any = None, *, fail: bool = False, boom: bool = False) -> None:
        self._name, self.value, self.fail, self.boom = name, value, fail, boom
        self.calls = 0

    @property
    def name(self) -> str:
        return self._name

    async def execute(self, input_data: dict[str, Any], context: OperatorContext) -> OperatorResult:
        self.calls += 1
        if self.boom:
            raise RuntimeError(f"{self._name} exploded")
        if self.fail:
            return OperatorResult.failure(self._name, f"{self._name} could not do it")
        return OperatorResult(content=self.value if self.value is not None else self._name)


class Blocker(Operator):
    """Blocks until cancelled; counts starts and signals when ``expected`` are running."""

    def __init__(self, name: str, started: list[str], all_started: asyncio.Event, expected: int) -> None:
        self._name, self.started, self.all_started, self.expected = name, started, all_started, expected

    @property
    def name(self) -> str:
        return self._name

    async def execute(self, input_data: dict[str, Any], context: OperatorContext) -> OperatorResult:
        self.started.append(self._name)
        if len(self.started) == self.expected:
            self.all_started.set()
        await asyncio.Event().wait()  # never set: only cancellation ends this
        raise AssertionError("unreachable")


class Nested(Operator):
    """Runs ``inner`` as its own child: a second level of the job tree."""

    def __init__(self, name: str, inner: Operator) -> None:
        self._name, self.inner = name, inner

    @property
    def name(self) -> str:
        return self._name

    async def execute(self, input_data: dict[str, Any], context: OperatorContext) -> OperatorResult:
        return await context.run_child(self.inner, input_data)


def scripted(*responses: Any) -> tuple[Agent, MockProvider]:
    provider = MockProvider(list(responses))
    return Agent(engine=ExecutionEngine(provider=provider)), provider


def context_with_jobs(**config: Any) -> tuple[OperatorContext, JobManager]:
    jobs = JobManager(InMemoryJobStore())
    ctx = OperatorContext(
        ExecutionContext(scope_id="acme", job_id="job-parent"),
        config=OrchestrationConfig(**config),
        jobs=jobs,
    )
    return ctx, jobs


# -- partial failure ------------------------------------------------------------------------------


async def test_one_of_five_parallel_children_fails() -> None:
    ops = [Const(f"a{i}") for i in range(5)]
    ops[2] = Const("a2", boom=True)
    ctx, _ = context_with_jobs()

    tolerant = await ParallelOperator(ops, require_all_success=False).execute({}, ctx)
    assert tolerant.success
    assert tolerant.content == ["a0", "a1", "a3", "a4"]
    assert tolerant.metadata["failed"] == {"a2": "a2 exploded"}
    assert tolerant.metadata["succeeded"] == 4

    strict_ctx, strict_jobs = context_with_jobs()
    strict = await ParallelOperator(ops, require_all_success=True).execute({}, strict_ctx)
    assert not strict.success
    assert strict.error == "1 of 5 operators failed: a2: a2 exploded"
    assert isinstance(strict.exception, RuntimeError)
    with pytest.raises(RuntimeError, match="a2 exploded"):
        strict.raise_for_error()

    records = await strict_jobs.list(JobFilter(parent_job_id="job-parent"))
    by_name = {j.metadata["operator"]: j for j in records}
    assert by_name["a2"].status is JobStatus.FAILED
    assert by_name["a2"].error == "RuntimeError: a2 exploded" and by_name["a2"].error_code == "RuntimeError"
    assert [by_name[f"a{i}"].status for i in (0, 1, 3, 4)] == [JobStatus.SUCCEEDED] * 4


async def test_all_failed_is_a_failure_even_when_partial_success_is_allowed() -> None:
    result = await ParallelOperator(
        [Const("x", fail=True), Const("y", fail=True)], require_all_success=False
    ).execute({}, OperatorContext())
    assert not result.success and result.error is not None and result.error.startswith("all operators failed")
    with pytest.raises(OperatorFailedError, match="x could not do it"):
        result.raise_for_error()


async def test_chain_stops_at_the_failed_step_and_names_it() -> None:
    last = Const("c")
    result = await ChainOperator([Const("a"), Const("b", fail=True), last]).execute({}, OperatorContext())
    assert not result.success
    assert result.error == "step 2 (b) failed: b could not do it"
    assert result.metadata["failed_step"] == 2 and last.calls == 0


# -- cancellation -----------------------------------------------------------------------------------


async def test_cancelled_parent_cancels_all_running_children_within_a_second() -> None:
    started: list[str] = []
    all_started = asyncio.Event()
    ops = [Blocker(f"b{i}", started, all_started, 5) for i in range(5)]
    ctx, jobs = context_with_jobs()
    task = asyncio.create_task(ParallelOperator(ops).execute({}, ctx))
    await all_started.wait()
    running = await jobs.list(JobFilter(parent_job_id="job-parent"))
    assert {j.status for j in running} == {JobStatus.RUNNING} and len(running) == 5

    ctx.cancel("user pressed stop")
    with pytest.raises(OperatorCancelledError, match="user pressed stop"):
        await asyncio.wait_for(task, timeout=1.0)
    records = await jobs.list(JobFilter(parent_job_id="job-parent"))
    assert [j.status for j in records] == [JobStatus.CANCELLED] * 5
    assert {j.error for j in records} == {"user pressed stop"}


async def test_cancellation_reaches_grandchildren() -> None:
    started: list[str] = []
    all_started = asyncio.Event()
    tree = ParallelOperator([Nested(f"n{i}", Blocker(f"leaf{i}", started, all_started, 2)) for i in range(2)])
    ctx, jobs = context_with_jobs()
    task = asyncio.create_task(tree.execute({}, ctx))
    await all_started.wait()
    ctx.cancel("stop")
    with pytest.raises(OperatorCancelledError):
        await asyncio.wait_for(task, timeout=1.0)
    records = await jobs.list()
    assert len(records) == 4
    assert {j.status for j in records} == {JobStatus.CANCELLED}
    leaves = [j for j in records if j.metadata["operator"].startswith("leaf")]
    assert {j.metadata["depth"] for j in leaves} == {2}


async def test_cancelling_the_parent_task_cancels_children_jobs() -> None:
    started: list[str] = []
    all_started = asyncio.Event()
    ctx, jobs = context_with_jobs()
    task = asyncio.create_task(
        ParallelOperator([Blocker(f"b{i}", started, all_started, 3) for i in range(3)]).execute({}, ctx)
    )
    await all_started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert {j.status for j in await jobs.list()} == {JobStatus.CANCELLED}


async def test_without_propagation_children_outlive_a_cancelled_parent_token() -> None:
    gate = asyncio.Event()
    running = asyncio.Event()

    class Waits(Operator):
        name = "waits"  # type: ignore[assignment]

        async def execute(self, input_data: dict[str, Any], context: OperatorContext) -> OperatorResult:
            running.set()
            await gate.wait()
            return OperatorResult(content="finished", success=not context.is_cancelled)

    ctx = OperatorContext(config=OrchestrationConfig(propagate_cancellation=False))
    task = asyncio.create_task(ctx.run_child(Waits(), {}))
    await running.wait()
    ctx.cancel("parent only")
    gate.set()
    result = await asyncio.wait_for(task, timeout=1.0)
    assert result.success and result.content == "finished"


async def test_a_cancelled_context_starts_no_children() -> None:
    ctx = OperatorContext()
    ctx.cancel("too late")
    op = Const("never")
    with pytest.raises(OperatorCancelledError, match="too late"):
        await ctx.run_child(op, {})
    assert op.calls == 0


# -- budgets ----------------------------------------------------------------------------------------


async def test_child_that_would_exceed_the_parents_ledger_budget_is_refused() -> None:
    ledger = Ledger()
    ledger.set_budget(Budget(scope_id="acme", max_tokens_total=100, warning_threshold=None))
    first, first_provider = scripted(
        MockResponse.text("used a lot", usage=Usage(input_tokens=70, output_tokens=28))
    )
    second, second_provider = scripted("never sent")
    jobs = JobManager(InMemoryJobStore())
    ctx = OperatorContext(ExecutionContext(scope_id="acme", job_id="job-parent"), jobs=jobs, ledger=ledger)

    chain = ChainOperator([AgentOperator(first, name="first"), AgentOperator(second, name="second")])
    result = await chain.execute({"text": "x" * 80}, ctx)

    assert not result.success
    assert isinstance(result.exception, ChildBudgetExceededError)
    assert isinstance(result.exception, BudgetExceededError)  # one except clause for every budget refusal
    assert "child operator 'second' refused" in str(result.exception)
    assert "total tokens exceeded (98 used + 6 pending, limit 100)" in str(result.exception)
    assert second_provider.call_count == 0 and first_provider.call_count == 1
    # The first child's usage was charged once, under its own job, against the parent's scope.
    usage = await ledger.get_usage(scope_id="acme")
    assert usage.tokens == 98 and usage.requests == 1
    first_job = next(j for j in await jobs.list() if j.metadata["operator"] == "first")
    events = await ledger.writer.list_events(job_id=first_job.job_id, event_type="model_usage")
    assert [e.total_tokens for e in events] == [98]
    assert [j.metadata["operator"] for j in await jobs.list()] == ["first"]  # the refused child is no job


async def test_nested_usage_is_charged_to_the_ledger_once() -> None:
    ledger = Ledger()
    a, _ = scripted(MockResponse.text("a", usage=Usage(input_tokens=10, output_tokens=5)))
    b, _ = scripted(MockResponse.text("b", usage=Usage(input_tokens=20, output_tokens=5)))
    tree = ChainOperator([Nested("outer", AgentOperator(a, name="a")), AgentOperator(b, name="b")])
    result = await tree.execute(
        {"text": "go"}, OperatorContext(ExecutionContext(scope_id="s"), ledger=ledger)
    )
    assert result.success and result.usage is not None and result.usage.total_tokens == 40
    assert (await ledger.get_usage(scope_id="s")).tokens == 40


async def test_child_refused_when_the_runs_live_budget_cannot_cover_it() -> None:
    execution = ExecutionContext(budgets=BudgetSpec(max_tokens=10))
    assert execution.request_budget is not None
    agent, provider = scripted("unused")
    result = await OperatorContext(execution).run_child(AgentOperator(agent, name="big"), {"text": "y" * 200})
    assert not result.success and result.metadata == {"refused": True}
    assert isinstance(result.exception, ChildBudgetExceededError)
    assert "needs about 54 tokens but only 10" in str(result.exception)
    assert provider.call_count == 0


async def test_budgets_not_inherited_when_configured_off() -> None:
    execution = ExecutionContext(budgets=BudgetSpec(max_tokens=10))
    seen: list[ExecutionContext] = []

    class Looks(Operator):
        name = "looks"  # type: ignore[assignment]

        def estimate_tokens(self, input_data: Any) -> int:
            return 1000

        async def execute(self, input_data: dict[str, Any], context: OperatorContext) -> OperatorResult:
            seen.append(context.execution)
            return OperatorResult(content="ok")

    ctx = OperatorContext(execution, config=OrchestrationConfig(inherit_budgets=False))
    assert (await ctx.run_child(Looks(), {})).success
    assert seen[0].budgets.is_unlimited and seen[0].request_budget is None


# -- config limits ----------------------------------------------------------------------------------


async def test_max_child_jobs_refuses_the_extra_child() -> None:
    ctx = OperatorContext(config=OrchestrationConfig(max_child_jobs=2))
    assert (await ctx.run_child(Const("a"), {})).success
    assert (await ctx.run_child(Const("b"), {})).success
    extra = Const("c")
    refused = await ctx.run_child(extra, {})
    assert not refused.success and extra.calls == 0
    assert isinstance(refused.exception, MaxChildJobsError)
    assert "at most 2 child job(s)" in str(refused.exception)


async def test_fan_out_wider_than_the_limit_is_refused_before_anything_runs() -> None:
    ops = [Const(f"o{i}") for i in range(4)]
    result = await ParallelOperator(ops).execute(
        {}, OperatorContext(config=OrchestrationConfig(max_child_jobs=3))
    )
    assert isinstance(result.exception, MaxChildJobsError)
    assert all(op.calls == 0 for op in ops)


async def test_max_depth() -> None:
    leaf = Const("leaf")
    tree = Nested("l1", Nested("l2", leaf))
    ctx, jobs = context_with_jobs(max_depth=2)
    result = await ctx.run_child(tree, {})
    assert not result.success and leaf.calls == 0
    assert isinstance(result.exception, MaxDepthError)
    assert "nesting depth 3, past OrchestrationConfig.max_depth=2" in str(result.exception)
    depths = {j.metadata["operator"]: j.metadata["depth"] for j in await jobs.list()}
    assert depths == {"l1": 1, "l2": 2}


async def test_child_timeout_marks_the_job_timed_out() -> None:
    class Slow(Operator):
        name = "slow"  # type: ignore[assignment]

        async def execute(self, input_data: dict[str, Any], context: OperatorContext) -> OperatorResult:
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

    ctx, jobs = context_with_jobs(timeout_seconds=0.01)
    result = await ctx.run_child(Slow(), {})
    assert isinstance(result.exception, ChildTimeoutError)
    assert (await jobs.list())[0].status is JobStatus.TIMED_OUT


async def test_map_reduce_max_parallel_is_a_real_bound() -> None:
    active = 0
    peak = 0

    class Tracks(Operator):
        name = "tracks"  # type: ignore[assignment]

        async def execute(self, input_data: dict[str, Any], context: OperatorContext) -> OperatorResult:
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            for _ in range(5):
                await asyncio.sleep(0)  # yield so that unbounded siblings would overlap
            active -= 1
            return OperatorResult(content=input_data["text"] * 2)

    config = OrchestrationConfig(max_child_jobs=20)
    result = await MapReduceOperator(Tracks(), input_key="docs", max_parallel=3).execute(
        {"docs": list(range(12))}, OperatorContext(config=config)
    )
    assert result.success and result.content == [i * 2 for i in range(12)]
    assert peak == 3

    peak = 0
    tight = OrchestrationConfig(max_child_jobs=20, max_parallel=2)
    await MapReduceOperator(Tracks(), input_key="docs", max_parallel=10).execute(
        {"docs": list(range(12))}, OperatorContext(config=tight)
    )
    assert peak == 2  # the config's bound holds too

    peak = 0
    sequential = OrchestrationConfig(max_child_jobs=20, parallel_execution=False)
    await MapReduceOperator(Tracks(), input_key="docs").execute(
        {"docs": [1, 2, 3]}, OperatorContext(config=sequential)
    )
    assert peak == 1


async def test_map_reduce_failures() -> None:
    class Picky(Operator):
        name = "picky"  # type: ignore[assignment]

        async def execute(self, input_data: dict[str, Any], context: OperatorContext) -> OperatorResult:
            if input_data["text"] == "bad":
                raise ValueError("cannot read 'bad'")
            return OperatorResult(content=input_data["text"].upper())

    strict = await MapReduceOperator(Picky(), Const("reduce")).execute(
        {"items": ["a", "bad"]}, OperatorContext()
    )
    assert (
        not strict.success
        and "map failed" in (strict.error or "")
        and "cannot read 'bad'" in (strict.error or "")
    )
    partial = await MapReduceOperator(Picky(), allow_partial=True).execute(
        {"items": ["a", "bad", "c"]}, OperatorContext()
    )
    assert partial.success and partial.content == ["A", "C"] and partial.metadata["failed"] == 1
    wrong = await MapReduceOperator(Picky()).execute({"items": "not a list"}, OperatorContext())
    assert isinstance(wrong.exception, ValidationError)


# -- planner / debate -------------------------------------------------------------------------------


async def test_unparsable_plan_is_a_clear_failure() -> None:
    planner, _ = scripted("I would rather not make a plan.")
    executor, executor_provider = scripted()
    result = await PlannerExecutorOperator(planner, executor).execute({"task": "t"}, OperatorContext())
    assert not result.success
    assert isinstance(result.exception, PlanParseError)
    assert result.error is not None and result.error.startswith(
        "planner output could not be parsed as subtasks"
    )
    assert executor_provider.call_count == 0


def test_parse_plan_formats() -> None:
    assert [s.description for s in parse_plan('["a", "b"]')] == ["a", "b"]
    assert parse_plan('{"steps": [{"id": 7, "task": "x"}]}')[0].id == "7"
    assert [s.description for s in parse_plan("Plan:\n1. first\n2) second\n- third")] == [
        "first",
        "second",
        "third",
    ]
    for bad, why in [
        ('{"subtasks": []}', "no subtasks"),
        ('{"answer": 1}', "without a 'subtasks' list"),
        ('{"subtasks": [{"id": 1}]}', "subtask 1 has no description"),
        ("just prose", "neither JSON nor"),
    ]:
        with pytest.raises(PlanParseError, match=why):
            parse_plan(bad)


async def test_plan_longer_than_max_subtasks_is_cut_and_sequential_runs_see_earlier_results() -> None:
    planner, _ = scripted('["one", "two", "three"]')
    executor, provider = scripted("r1", "r2")
    op = PlannerExecutorOperator(planner, executor, max_subtasks=2, parallel_execution=False)
    result = await op.execute({"task": "t"}, OperatorContext())
    assert result.success and result.content == "r1\n\nr2"
    assert result.metadata["dropped_subtasks"] == 1
    assert "Results so far:\n- executor[1]: r1" in provider.calls[1].messages[-1]["content"]


async def test_debate_without_moderator_runs_all_rounds_when_nobody_agrees() -> None:
    a, _ = scripted("POSITION: yes", "POSITION: yes")
    b, _ = scripted("POSITION: no", "POSITION: no")
    result = await DebateOperator([a, b], max_rounds=2).execute({"topic": "?"}, OperatorContext())
    assert result.success and result.metadata["rounds"] == 2 and result.metadata["consensus"] is False
    assert result.content == "debater_1: POSITION: yes\n\ndebater_2: POSITION: no"
    with pytest.raises(ValidationError, match="at least two debaters"):
        DebateOperator([a])


# -- graphs -----------------------------------------------------------------------------------------


def test_graph_rejects_cycles_when_built() -> None:
    graph = ExecutionGraph()
    for n in "abc":
        graph.add_node(GraphNode(n, Const(n)))
    graph.add_edge(GraphEdge("a", "b")).add_edge(GraphEdge("b", "c"))
    with pytest.raises(GraphCycleError, match="c -> a -> b -> c") as info:
        graph.add_edge(GraphEdge("c", "a"))
    assert info.value.cycle == ["c", "a", "b", "c"]
    assert len(graph.edges) == 2  # the graph is unchanged
    with pytest.raises(GraphCycleError):
        graph.add_edge(GraphEdge("a", "a"))
    with pytest.raises(GraphError, match="no node 'zz'"):
        graph.add_edge(GraphEdge("a", "zz"))
    with pytest.raises(GraphError, match="already has a node 'a'"):
        graph.add_node(GraphNode("a", Const("a")))


async def test_failed_node_fails_its_dependants_and_names_itself() -> None:
    graph = ExecutionGraph()
    unrelated = Const("side")
    for node in [
        GraphNode("a", Const("a")),
        GraphNode("b", Const("b", boom=True)),
        GraphNode("side", unrelated),
    ]:
        graph.add_node(node)
    after_b, after_after = Const("c"), Const("d")
    graph.add_node(GraphNode("c", after_b)).add_node(GraphNode("d", after_after))
    for s, t in [("a", "b"), ("b", "c"), ("c", "d"), ("a", "side")]:
        graph.add_edge(GraphEdge(s, t))
    executor = GraphExecutor(graph)
    results = await executor.execute({}, OperatorContext())
    assert [results[n].status for n in "abcd"] == [
        "succeeded",
        "failed",
        "upstream_failed",
        "upstream_failed",
    ]
    assert results["side"].success and unrelated.calls == 1
    assert after_b.calls == 0 and after_after.calls == 0
    assert results["d"].failed_node == "b" and isinstance(results["d"].exception, UpstreamFailedError)
    assert results["d"].error == "node 'd' not run: upstream node 'b' failed: b exploded"
    assert executor.failed_nodes == ["b", "c", "d"]
    assert executor.get_final_content() == {"side": "side"}  # two exit nodes: d failed, side did not


async def test_graph_nodes_start_as_soon_as_their_inputs_are_ready() -> None:
    release_slow = asyncio.Event()
    order: list[str] = []

    class Step(Operator):
        def __init__(self, name: str, wait: asyncio.Event | None = None) -> None:
            self._name, self.wait = name, wait

        @property
        def name(self) -> str:
            return self._name

        async def execute(self, input_data: dict[str, Any], context: OperatorContext) -> OperatorResult:
            if self.wait is not None:
                await self.wait.wait()
            order.append(self._name)
            if self._name == "fast_child":
                release_slow.set()  # only reachable if fast_child did not wait for the slow branch
            return OperatorResult(content=self._name, role=AgentRole.EXECUTOR)

    graph = ExecutionGraph()
    graph.add_node(GraphNode("slow", Step("slow", release_slow)))
    graph.add_node(GraphNode("fast", Step("fast"))).add_node(GraphNode("fast_child", Step("fast_child")))
    graph.add_node(GraphNode("join", Step("join")))
    for s, t in [("fast", "fast_child"), ("fast_child", "join"), ("slow", "join")]:
        graph.add_edge(GraphEdge(s, t, input_key=f"from_{s}" if t == "join" else None))
    executor = GraphExecutor(graph, max_parallel=2)
    results = await asyncio.wait_for(executor.execute({}, OperatorContext()), timeout=5)
    assert order == ["fast", "fast_child", "slow", "join"]
    assert results["join"].success and executor.get_final_content() == "join"


async def test_graph_executor_limits_and_cancellation() -> None:
    graph = ExecutionGraph()
    for i in range(4):
        graph.add_node(GraphNode(f"n{i}", Const(f"n{i}")))
    with pytest.raises(MaxChildJobsError):
        await GraphExecutor(graph).execute({}, OperatorContext(config=OrchestrationConfig(max_child_jobs=3)))
    with pytest.raises(GraphError, match="needs execute"):
        GraphExecutor(graph).get_final_content()
    with pytest.raises(GraphError, match="no nodes"):
        await GraphExecutor(ExecutionGraph()).execute({}, OperatorContext())

    started: list[str] = []
    all_started = asyncio.Event()
    blocking = ExecutionGraph()
    for i in range(3):
        blocking.add_node(GraphNode(f"b{i}", Blocker(f"b{i}", started, all_started, 3)))
    ctx, jobs = context_with_jobs()
    task = asyncio.create_task(GraphExecutor(blocking).execute({}, ctx))
    await all_started.wait()
    ctx.cancel("stop graph")
    with pytest.raises(OperatorCancelledError):
        await asyncio.wait_for(task, timeout=1.0)
    assert {j.status for j in await jobs.list()} == {JobStatus.CANCELLED}


# -- routing ----------------------------------------------------------------------------------------


async def test_routing_priority_then_matches_then_order() -> None:
    ops = ["a", "b", "c", "general"]
    router = DefaultRouter(
        [
            RoutingRule("a", ["report"], priority=1),
            RoutingRule("b", ["report", "weekly"], priority=1),
            RoutingRule("c", ["report"], priority=1),
            RoutingRule("missing", ["report"], priority=99),  # not available: skipped
        ],
        default_operator="general",
    )
    assert (await router.route({"prompt": "the weekly REPORT"}, ops)).operator_name == "b"
    assert (await router.route({"prompt": "a report"}, ops)).operator_name == "a"  # tie: listed first
    assert (await router.route({"prompt": "reporting"}, ops)).operator_name == "general"  # whole words
    with pytest.raises(RoutingError, match="default operator 'general' is not available"):
        await router.route({"prompt": "nothing"}, ["a"])
    with pytest.raises(ValidationError):
        RoutingRule("x", "not-a-list")


# -- validation -------------------------------------------------------------------------------------


def test_config_and_operator_validation() -> None:
    with pytest.raises(ValidationError, match="max_parallel"):
        OrchestrationConfig(max_parallel=0)
    with pytest.raises(ValidationError, match="timeout_seconds"):
        OrchestrationConfig(timeout_seconds=0)
    with pytest.raises(ValidationError, match="async run"):
        AgentOperator(object())  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="must not be empty"):
        ChainOperator([])


async def test_operator_returning_something_else_is_a_failed_child() -> None:
    class Wrong(Operator):
        name = "wrong"  # type: ignore[assignment]

        async def execute(self, input_data: dict[str, Any], context: OperatorContext) -> OperatorResult:
            return "text"  # type: ignore[return-value]

    result = await OperatorContext().run_child(Wrong(), {})
    assert isinstance(result.exception, ValidationError) and "not an OperatorResult" in (result.error or "")


_ = Decimal
