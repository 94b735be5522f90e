"""Execution graphs: operators wired by data-flow edges, each run as soon as its inputs are ready.

The graph refuses a cycle when the offending edge is added, so an ExecutionGraph that exists is
always runnable. The executor schedules by counting unfinished inputs per node, not in
topological waves, so a slow branch never holds back an unrelated one. When a node fails, every
node downstream of it is failed at once (without running) and names the node that failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError
from .base import Operator, OperatorLike, OperatorResult, as_operator, positive_int
from .context import OperatorContext, first_error
from .errors import GraphCycleError, GraphError, UpstreamFailedError

__all__ = ["GraphNode", "GraphEdge", "ExecutionGraph", "NodeResult", "GraphExecutor"]

InputMapper = Callable[[Mapping[str, Any], Mapping[str, "NodeResult"]], Mapping[str, Any]]


@dataclass(frozen=True, slots=True, init=False)
class GraphNode:
    """A node: an operator (or agent) under an id.

    Its input is the graph's input plus ``inputs`` (``{source_id: content}`` of its predecessors)
    and any ``input_key`` its incoming edges name; ``input_mapper(graph_input, predecessor_results)``
    replaces that rule.
    """

    node_id: str
    operator: Operator
    input_mapper: InputMapper | None
    description: str

    def __init__(
        self,
        node_id: str,
        operator: OperatorLike,
        *,
        input_mapper: InputMapper | None = None,
        description: str = "",
    ) -> None:
        if not isinstance(node_id, str) or not node_id:
            raise ValidationError(f"node_id must be a non-empty string, got {node_id!r}")
        object.__setattr__(self, "node_id", node_id)
        object.__setattr__(self, "operator", as_operator(operator, name=node_id))
        object.__setattr__(self, "input_mapper", input_mapper)
        object.__setattr__(self, "description", description)


@dataclass(frozen=True, slots=True)
class GraphEdge:
    """``source``'s output flows into ``target``; with ``input_key`` it also lands under that key."""

    source: str
    target: str
    input_key: str | None = None


class ExecutionGraph:
    def __init__(self) -> None:
        self.nodes: dict[str, GraphNode] = {}
        self.edges: list[GraphEdge] = []
        self._succ: dict[str, list[str]] = {}
        self._pred: dict[str, list[GraphEdge]] = {}

    def add_node(self, node: GraphNode) -> ExecutionGraph:
        if not isinstance(node, GraphNode):
            raise GraphError(f"add_node takes a GraphNode, got {type(node).__name__}")
        if node.node_id in self.nodes:
            raise GraphError(f"graph already has a node {node.node_id!r}")
        self.nodes[node.node_id] = node
        self._succ[node.node_id] = []
        self._pred[node.node_id] = []
        return self

    def add_edge(self, edge: GraphEdge) -> ExecutionGraph:
        """Add ``edge``; raises GraphCycleError (naming the cycle) and leaves the graph unchanged if
        the edge would close a cycle."""
        if not isinstance(edge, GraphEdge):
            raise GraphError(f"add_edge takes a GraphEdge, got {type(edge).__name__}")
        for end in (edge.source, edge.target):
            if end not in self.nodes:
                raise GraphError(f"edge {edge.source!r} -> {edge.target!r}: no node {end!r} (add it first)")
        if edge.target in self._succ[edge.source]:
            raise GraphError(f"graph already has an edge {edge.source!r} -> {edge.target!r}")
        path = self._path(edge.target, edge.source)
        if path is not None:
            raise GraphCycleError([edge.source, *path])
        self.edges.append(edge)
        self._succ[edge.source].append(edge.target)
        self._pred[edge.target].append(edge)
        return self

    def _path(self, start: str, goal: str) -> list[str] | None:
        """A path start -> ... -> goal along existing edges (depth-first), or None."""
        if start == goal:
            return [start]
        parent: dict[str, str] = {}
        stack = [start]
        seen = {start}
        while stack:
            node = stack.pop()
            for nxt in self._succ[node]:
                if nxt in seen:
                    continue
                parent[nxt] = node
                if nxt == goal:
                    path = [goal]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return path[::-1]
                seen.add(nxt)
                stack.append(nxt)
        return None

    def predecessors(self, node_id: str) -> list[str]:
        return [e.source for e in self._pred[node_id]]

    def successors(self, node_id: str) -> list[str]:
        return list(self._succ[node_id])

    @property
    def entry_nodes(self) -> list[str]:
        return [n for n in self.nodes if not self._pred[n]]

    @property
    def exit_nodes(self) -> list[str]:
        return [n for n in self.nodes if not self._succ[n]]

    def topological_order(self) -> list[str]:
        waiting = {n: len(p) for n, p in self._pred.items()}
        ready = [n for n in self.nodes if waiting[n] == 0]
        order: list[str] = []
        while ready:
            node = ready.pop(0)
            order.append(node)
            for nxt in self._succ[node]:
                waiting[nxt] -= 1
                if waiting[nxt] == 0:
                    ready.append(nxt)
        return order

    def __len__(self) -> int:
        return len(self.nodes)


@dataclass(slots=True)
class NodeResult:
    """One node's outcome. ``failed_node`` names the node whose failure this is: the node itself,
    or, for a node that never ran (``upstream_failed``), the upstream node that failed."""

    node_id: str
    success: bool
    result: OperatorResult | None = None
    error: str | None = None
    failed_node: str | None = None
    exception: BaseException | None = field(default=None, repr=False, compare=False)

    @property
    def content(self) -> Any:
        return None if self.result is None else self.result.content

    @property
    def upstream_failed(self) -> bool:
        return not self.success and self.failed_node not in (None, self.node_id)

    @property
    def status(self) -> str:
        if self.success:
            return "succeeded"
        return "upstream_failed" if self.upstream_failed else "failed"


class GraphExecutor:
    """Runs an ExecutionGraph; at most ``max_parallel`` nodes at once (and the config's bound).

    Every node runs as a child of the context passed to ``execute`` (so a child job each, when the
    context has a JobManager): size ``OrchestrationConfig.max_child_jobs`` for the graph.
    """

    def __init__(self, graph: ExecutionGraph, max_parallel: int = 5) -> None:
        if not isinstance(graph, ExecutionGraph):
            raise ValidationError(f"graph must be an ExecutionGraph, got {type(graph).__name__}")
        self.graph = graph
        self.max_parallel = positive_int("max_parallel", max_parallel)
        self.results: dict[str, NodeResult] = {}
        self._ran = False

    async def execute(self, input_data: Mapping[str, Any], context: OperatorContext) -> dict[str, NodeResult]:
        """Run every node; returns each node's NodeResult in the order the nodes were added.

        Raises OrchestrationLimitError when the graph has more nodes than the context may start,
        and OperatorCancelledError when the context is cancelled meanwhile.
        """
        graph = self.graph
        if not graph.nodes:
            raise GraphError("the graph has no nodes")
        context.require_child_slots(len(graph.nodes))
        base = dict(input_data)
        results: dict[str, NodeResult] = {}
        self.results = results
        self._ran = True
        waiting = {n: len(p) for n, p in graph._pred.items()}
        bound = asyncio.Semaphore(self.max_parallel)

        try:
            await self._run(graph, base, results, waiting, bound, context)
        except BaseExceptionGroup as eg:
            raise first_error(eg) from None
        return {n: results[n] for n in graph.nodes if n in results}

    async def _run(
        self,
        graph: ExecutionGraph,
        base: dict[str, Any],
        results: dict[str, NodeResult],
        waiting: dict[str, int],
        bound: asyncio.Semaphore,
        context: OperatorContext,
    ) -> None:
        async with asyncio.TaskGroup() as group:

            def resolve(node_id: str, outcome: NodeResult) -> None:
                todo = [(node_id, outcome)]
                while todo:
                    nid, out = todo.pop()
                    results[nid] = out
                    for nxt in graph._succ[nid]:
                        if nxt in results:
                            continue
                        if not out.success:
                            culprit = out.failed_node or nid
                            error = UpstreamFailedError(nxt, culprit, results[culprit].error)
                            todo.append((nxt, NodeResult(nxt, False, None, str(error), culprit, error)))
                            results[nxt] = todo[-1][1]  # claim it so another path does not redo it
                            continue
                        waiting[nxt] -= 1
                        if waiting[nxt] == 0:
                            group.create_task(run(nxt))

            async def run(node_id: str) -> None:
                node = graph.nodes[node_id]
                data = self._input_for(node, base, results)
                async with bound:
                    result = await context.run_child(node.operator, data, name=node_id)
                if result.success:
                    resolve(node_id, NodeResult(node_id, True, result))
                else:
                    resolve(
                        node_id,
                        NodeResult(node_id, False, result, result.error, node_id, result.exception),
                    )

            for node_id in graph.entry_nodes:
                group.create_task(run(node_id))

    def _input_for(
        self, node: GraphNode, base: dict[str, Any], results: Mapping[str, NodeResult]
    ) -> dict[str, Any]:
        edges = self.graph._pred[node.node_id]
        if node.input_mapper is not None:
            upstream = {e.source: results[e.source] for e in edges}
            return dict(node.input_mapper(base, upstream))
        if not edges:
            return base
        data = dict(base)
        data["inputs"] = {e.source: results[e.source].content for e in edges}
        for e in edges:
            if e.input_key is not None:
                data[e.input_key] = results[e.source].content
        return data

    def get_final_content(self) -> Any:
        """Content of the exit node (the node nothing depends on), None if it failed; with several
        exit nodes, ``{node_id: content}``."""
        if not self._ran:
            raise GraphError("get_final_content() needs execute() to have run")
        exits = self.graph.exit_nodes
        if len(exits) == 1:
            found = self.results.get(exits[0])
            return None if found is None or not found.success else found.content
        return {n: self.results[n].content for n in exits if n in self.results and self.results[n].success}

    @property
    def failed_nodes(self) -> list[str]:
        return [n for n, r in self.results.items() if not r.success]
