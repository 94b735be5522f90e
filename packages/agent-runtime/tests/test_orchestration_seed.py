"""The seed's "Multi-Agent Orchestration" and OrchestrationConfig examples, run as written with the
scripted model (only the names the examples leave undefined are set up here)."""

from __future__ import annotations

import json
from typing import Any

from agent_runtime import (
    AgentRole,
    ChainOperator,
    DebateOperator,
    DefaultRouter,
    ExecutionContext,
    ExecutionGraph,
    GraphEdge,
    GraphExecutor,
    GraphNode,
    InMemoryJobStore,
    JobManager,
    MapReduceOperator,
    Operator,
    OperatorContext,
    OperatorResult,
    OrchestrationConfig,
    ParallelOperator,
    PlannerExecutorOperator,
    RoutingRule,
)
from agent_runtime.orchestration import AgentOperator
from llm_client import Agent, ExecutionEngine, MockProvider, RequestSpec


def agent(*responses: str) -> Agent:
    return Agent(engine=ExecutionEngine(provider=MockProvider(list(responses))))


def echo_agent(prefix: str) -> Agent:
    """Answers every prompt with ``prefix: <last line of the prompt>``."""

    def answer(spec: RequestSpec) -> str:
        prompt = str(spec.messages[-1]["content"])
        return f"{prefix}: {prompt.splitlines()[-1]}"

    return Agent(engine=ExecutionEngine(provider=MockProvider(handler=answer)))


class SummarizerOperator(Operator):
    def __init__(self, agent):  # type: ignore[no-untyped-def]
        self._agent = agent

    @property
    def name(self) -> str:
        return "summarizer"

    @property
    def role(self) -> AgentRole:
        return AgentRole.SPECIALIST

    @property
    def description(self) -> str:
        return "Summarizes text content"

    async def execute(
        self,
        input_data: dict,  # type: ignore[type-arg]
        context: OperatorContext,
    ) -> OperatorResult:
        result = await self._agent.run(f"Summarize the following:\n\n{input_data['text']}")
        return OperatorResult(
            content=result.content,
            success=True,
            operator_name=self.name,
            role=self.role,
        )


def jobs_context(**config: Any) -> tuple[OperatorContext, JobManager]:
    jobs = JobManager(InMemoryJobStore())
    ctx = OperatorContext(
        ExecutionContext(scope_id="acme", job_id="job-root"),
        config=OrchestrationConfig(**config),
        jobs=jobs,
    )
    return ctx, jobs


async def test_custom_operator_wraps_an_agent() -> None:
    provider = MockProvider(["A short summary."])
    op = SummarizerOperator(Agent(engine=ExecutionEngine(provider=provider)))
    context = OperatorContext()
    result = await op.execute({"text": "a long text"}, context)
    assert (result.content, result.success, result.operator_name, result.role) == (
        "A short summary.",
        True,
        "summarizer",
        AgentRole.SPECIALIST,
    )
    assert provider.calls[0].messages[-1]["content"] == "Summarize the following:\n\na long text"
    assert op.description == "Summarizes text content"


async def test_chain_operator_feeds_each_step_the_previous_output() -> None:
    preprocessor_op = AgentOperator(echo_agent("clean"), name="preprocessor")
    analyzer_op = AgentOperator(echo_agent("analysed"), name="analyzer")
    formatter_op = SummarizerOperator(echo_agent("formatted"))
    context, jobs = jobs_context()

    chain = ChainOperator(
        [
            preprocessor_op,
            analyzer_op,
            formatter_op,
        ]
    )

    result = await chain.execute({"text": "..."}, context)
    assert result.success
    assert result.content == "formatted: analysed: clean: ..."
    assert [c.operator_name for c in result.children] == ["preprocessor", "analyzer", "summarizer"]
    children = await jobs.list()
    assert len(children) == 3
    assert {j.parent_job_id for j in children} == {"job-root"}
    assert {j.status.value for j in children} == {"succeeded"}


async def test_parallel_operator_aggregates() -> None:
    analyst1, analyst2, analyst3 = (echo_agent(f"analyst{i}") for i in (1, 2, 3))
    context = OperatorContext()

    parallel = ParallelOperator(
        operators=[analyst1, analyst2, analyst3],
        aggregator=lambda results: {"combined": [r.content for r in results]},
        require_all_success=False,
    )

    result = await parallel.execute({"data": "..."}, context)
    expected = [f"analyst{i}: {json.dumps({'data': '...'})}" for i in (1, 2, 3)]
    assert result.success and result.content == {"combined": expected}


async def test_map_reduce_operator() -> None:
    document_summarizer = SummarizerOperator(echo_agent("summary"))
    summary_synthesizer = AgentOperator(echo_agent("synthesis"), name="synthesizer")
    doc1, doc2, doc3 = "doc one", "doc two", "doc three"
    context, jobs = jobs_context()

    map_reduce = MapReduceOperator(
        map_operator=document_summarizer,
        reduce_operator=summary_synthesizer,
        input_key="documents",
        max_parallel=5,
    )

    result = await map_reduce.execute({"documents": [doc1, doc2, doc3]}, context)
    assert result.success
    mapped = result.children[0]
    assert mapped.content == ["summary: doc one", "summary: doc two", "summary: doc three"]
    assert result.content == "synthesis: summary: doc three"  # the reducer saw every summary, in order
    records = await jobs.list()
    stage = next(j for j in records if j.metadata["operator"] == "map_reduce.map")
    assert stage.parent_job_id == "job-root"
    items = [j for j in records if j.parent_job_id == stage.job_id]
    assert sorted(j.metadata["operator"] for j in items) == [f"summarizer[{i}]" for i in range(3)]
    assert {j.metadata["depth"] for j in items} == {2}


async def test_planner_executor_operator() -> None:
    plan = json.dumps(
        {
            "subtasks": [
                {"id": "1", "description": "Research AI trends"},
                {"id": "2", "description": "Write the report"},
            ]
        }
    )
    planner_agent = agent(f"Here is the plan:\n```json\n{plan}\n```")
    executor_agent = echo_agent("done")
    synthesizer_agent = agent("Final report")
    context = OperatorContext()

    planner_executor = PlannerExecutorOperator(
        planner=planner_agent,
        executor=executor_agent,
        synthesizer=synthesizer_agent,
        max_subtasks=10,
        parallel_execution=True,
    )

    result = await planner_executor.execute({"task": "Research AI trends and write a report"}, context)
    assert result.success and result.content == "Final report"
    assert [s["description"] for s in result.metadata["subtasks"]] == [
        "Research AI trends",
        "Write the report",
    ]
    assert [r["result"] for r in result.metadata["results"]] == [
        "done: Your subtask: Research AI trends",
        "done: Your subtask: Write the report",
    ]


async def test_debate_operator_stops_on_consensus() -> None:
    agent1 = agent("Use a cache.\nPOSITION: cache", "Fine, a cache.\nPOSITION: cache")
    agent2 = agent("Use an index.\nPOSITION: index", "A cache it is.\nPOSITION: cache")
    agent3 = agent("Cache.\nPOSITION: cache", "Still a cache.\nPOSITION: Cache.")
    moderator_agent = agent(
        '{"consensus": false, "summary": "split"}', '{"consensus": true, "summary": "Use a cache"}'
    )
    context = OperatorContext()

    debate = DebateOperator(
        debaters=[agent1, agent2, agent3],
        moderator=moderator_agent,
        max_rounds=3,
        stop_on_consensus=True,
    )

    result = await debate.execute({"topic": "Best approach for solving X?"}, context)
    assert result.success and result.content == "Use a cache"
    assert result.metadata["rounds"] == 2 and result.metadata["consensus"] is True
    assert result.metadata["transcript"][0]["positions"] == {
        "debater_1": "cache",
        "debater_2": "index",
        "debater_3": "cache",
    }


async def test_router_example() -> None:
    available_operators = {
        "summarizer": SummarizerOperator(agent("s")),
        "analyzer": AgentOperator(agent("a"), name="analyzer"),
        "general": AgentOperator(agent("g"), name="general"),
    }

    router = DefaultRouter(
        rules=[
            RoutingRule(
                operator_name="summarizer",
                keywords=["summarize", "summary", "brief"],
                priority=10,
            ),
            RoutingRule(
                operator_name="analyzer",
                keywords=["analyze", "analysis"],
                priority=5,
            ),
        ],
        default_operator="general",
    )

    decision = await router.route(
        {"prompt": "Please summarize this..."},
        available_operators,
    )
    assert decision.operator_name == "summarizer"
    assert decision.operator is available_operators["summarizer"]
    assert decision.matched_keywords == ("summarize",)
    fallback = await router.route({"prompt": "Hello there"}, available_operators)
    assert fallback.operator_name == "general" and fallback.is_default


async def test_graph_execution_example() -> None:
    planner_op = AgentOperator(echo_agent("plan"), name="planner")
    executor_op = AgentOperator(echo_agent("exec"), name="executor")
    synthesizer_op = AgentOperator(
        echo_agent("synth"), name="synthesizer", prompt=lambda d: " + ".join(sorted(d["inputs"].values()))
    )
    input_data = {"prompt": "build it"}
    context = OperatorContext()

    graph = ExecutionGraph()

    # Add nodes
    graph.add_node(GraphNode("planner", planner_op))
    graph.add_node(GraphNode("exec1", executor_op))
    graph.add_node(GraphNode("exec2", executor_op))
    graph.add_node(GraphNode("synth", synthesizer_op))

    # Define edges (data flow)
    graph.add_edge(GraphEdge("planner", "exec1"))
    graph.add_edge(GraphEdge("planner", "exec2"))
    graph.add_edge(GraphEdge("exec1", "synth"))
    graph.add_edge(GraphEdge("exec2", "synth"))

    # Execute
    executor = GraphExecutor(graph, max_parallel=5)
    results = await executor.execute(input_data, context)

    # Get output
    final_content = executor.get_final_content()
    assert list(results) == ["planner", "exec1", "exec2", "synth"]
    assert all(r.success for r in results.values())
    assert final_content == "synth: exec: build it + exec: build it"


def test_orchestration_config_reference() -> None:
    config = OrchestrationConfig(
        max_child_jobs=10,  # Max child jobs per parent
        max_depth=5,  # Max nesting depth
        timeout_seconds=300.0,  # Default timeout
        inherit_budgets=True,  # Child inherits parent budgets
        propagate_cancellation=True,  # Cancel children on parent cancel
        parallel_execution=True,  # Run children in parallel
        max_parallel=5,  # Max concurrent children
    )
    assert config == OrchestrationConfig()
