"""Orchestration overhead: how fast the GraphExecutor and MapReduceOperator push instant operators.

Every node's operator returns at once, so the time measured is the orchestration itself: per node a
child context, a cancellation link, a task, the scheduling, and (in the ``+jobs`` variant) four
in-memory JobManager writes. The same 1,000-node layered DAG (``--layers`` x ``--width``; every
node after the first layer depends on two nodes of the layer before it) runs in LangGraph as a
StateGraph whose nodes each add 1 to a summed counter. Variants run in one process, interleaved
trial by trial (see common.interleaved), and the medians are reported. Numbers only: nothing here
asserts a speed.

    .venv/bin/python bench/bench_orchestration.py [--trials 9] [--quick] [--out bench/results/x.json]
"""

from __future__ import annotations

import argparse
import asyncio
import operator
import sys
import time
from typing import Annotated, Any, TypedDict

sys.path.insert(0, __file__.rsplit("/", 1)[0])

from agent_runtime import InMemoryJobStore, JobManager
from agent_runtime.orchestration import (
    ExecutionGraph,
    GraphEdge,
    GraphExecutor,
    GraphNode,
    MapReduceOperator,
    Operator,
    OperatorContext,
    OperatorResult,
    OrchestrationConfig,
)
from common import emit, interleaved, machine, spread, versions


class Instant(Operator):
    """Returns at once: the cheapest operator there is."""

    def __init__(self, name: str = "instant") -> None:
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    async def execute(self, input_data: dict[str, Any], context: OperatorContext) -> OperatorResult:
        return OperatorResult(content=1)


def dag_edges(layers: int, width: int) -> list[tuple[str, str]]:
    edges = []
    for layer in range(1, layers):
        for i in range(width):
            for j in {i, (i + 1) % width}:
                edges.append((f"n{layer - 1}_{j}", f"n{layer}_{i}"))
    return edges


def node_ids(layers: int, width: int) -> list[str]:
    return [f"n{layer}_{i}" for layer in range(layers) for i in range(width)]


def build_ours(layers: int, width: int) -> ExecutionGraph:
    graph = ExecutionGraph()
    op = Instant()
    for n in node_ids(layers, width):
        graph.add_node(GraphNode(n, op))
    for s, t in dag_edges(layers, width):
        graph.add_edge(GraphEdge(s, t))
    return graph


def build_langgraph(layers: int, width: int) -> Any:
    from langgraph.graph import END, START, StateGraph

    class State(TypedDict):
        count: Annotated[int, operator.add]

    async def instant(state: State) -> dict[str, int]:
        return {"count": 1}

    g = StateGraph(State)
    for n in node_ids(layers, width):
        g.add_node(n, instant)
    for i in range(width):
        g.add_edge(START, f"n0_{i}")
        g.add_edge(f"n{layers - 1}_{i}", END)
    for s, t in dag_edges(layers, width):
        g.add_edge(s, t)
    return g.compile()


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--layers", type=int, default=10)
    p.add_argument("--width", type=int, default=100)
    p.add_argument("--trials", type=int, default=9)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="3 trials, for a smoke run")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    trials = 3 if args.quick else args.trials
    layers, width = args.layers, args.width
    n_nodes = layers * width
    config = OrchestrationConfig(max_child_jobs=None, max_parallel=width, max_depth=5)

    t0 = time.perf_counter()
    ours = build_ours(layers, width)
    ours_build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    lg = build_langgraph(layers, width)
    lg_build_s = time.perf_counter() - t0
    items = list(range(n_nodes))

    async def run_graph() -> int:
        executor = GraphExecutor(ours, max_parallel=width)
        results = await executor.execute({}, OperatorContext(config=config))
        return sum(1 for r in results.values() if r.success)

    async def run_graph_jobs() -> int:
        executor = GraphExecutor(ours, max_parallel=width)
        ctx = OperatorContext(config=config, jobs=JobManager(InMemoryJobStore()))
        results = await executor.execute({}, ctx)
        return sum(1 for r in results.values() if r.success)

    async def run_langgraph() -> int:
        out = await lg.ainvoke({"count": 0})
        return int(out["count"])

    async def run_map_reduce() -> int:
        op = MapReduceOperator(Instant("map"), input_key="items", max_parallel=width)
        result = await op.execute({"items": items}, OperatorContext(config=config))
        assert result.success, result.error
        return len(result.content)

    variants = {
        "agent_runtime.GraphExecutor": run_graph,
        "agent_runtime.GraphExecutor+jobs": run_graph_jobs,
        "langgraph.StateGraph": run_langgraph,
        "agent_runtime.MapReduceOperator": run_map_reduce,
    }
    for name, fn in variants.items():  # correctness first, and warm-up
        for _ in range(args.warmup):
            done = await fn()
            if done != n_nodes:
                raise SystemExit(f"{name}: {done} of {n_nodes} nodes ran")

    async def measure(fn: Any) -> dict[str, float]:
        t = time.perf_counter()
        await fn()
        return {"seconds": time.perf_counter() - t}

    raw = await interleaved(variants, trials, measure)
    summary: dict[str, Any] = {}
    for name, runs in raw.items():
        secs = [r["seconds"] for r in runs]
        s = spread(secs)
        summary[name] = {
            "median_ms_per_run": s["median"] * 1e3,
            "median_nodes_per_s": n_nodes / s["median"],
            "median_us_per_node": s["median"] / n_nodes * 1e6,
            "min_ms": s["min"] * 1e3,
            "max_ms": s["max"] * 1e3,
        }
    emit(
        {
            "benchmark": "orchestration",
            "dag": {
                "nodes": n_nodes,
                "layers": layers,
                "width": width,
                "edges": len(dag_edges(layers, width)),
            },
            "trials": trials,
            "build_seconds": {"agent_runtime.ExecutionGraph": ours_build_s, "langgraph.compile": lg_build_s},
            "results": summary,
            "machine": machine(),
            "versions": versions("agent-runtime", "langgraph", "langchain-core"),
        },
        args.out,
    )


if __name__ == "__main__":
    asyncio.run(main())
