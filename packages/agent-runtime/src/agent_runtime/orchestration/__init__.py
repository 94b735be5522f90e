"""Multi-agent orchestration: operators, routing and execution graphs over the kernel's jobs.

Every child an operator starts goes through :meth:`OperatorContext.run_child`, which is where the
OrchestrationConfig limits, budget inheritance through the ledger, child jobs (``parent_job_id``)
and cancellation propagation are enforced, once, for every pattern.
"""

from __future__ import annotations

from .base import (
    AgentLike,
    AgentOperator,
    AgentRole,
    Operator,
    OperatorLike,
    OperatorResult,
    OrchestrationConfig,
    as_operator,
)
from .context import OperatorContext
from .errors import (
    ChildBudgetExceededError,
    ChildTimeoutError,
    GraphCycleError,
    GraphError,
    MaxChildJobsError,
    MaxDepthError,
    OperatorCancelledError,
    OperatorFailedError,
    OrchestrationError,
    OrchestrationLimitError,
    PlanParseError,
    RoutingError,
    UpstreamFailedError,
)
from .graph import ExecutionGraph, GraphEdge, GraphExecutor, GraphNode, NodeResult
from .operators import (
    ChainOperator,
    DebateOperator,
    MapReduceOperator,
    ParallelOperator,
    PlannerExecutorOperator,
    Subtask,
    parse_plan,
)
from .routing import DefaultRouter, Router, RoutingDecision, RoutingRule

__all__ = [
    "AgentLike",
    "AgentOperator",
    "AgentRole",
    "ChainOperator",
    "ChildBudgetExceededError",
    "ChildTimeoutError",
    "DebateOperator",
    "DefaultRouter",
    "ExecutionGraph",
    "GraphCycleError",
    "GraphEdge",
    "GraphError",
    "GraphExecutor",
    "GraphNode",
    "MapReduceOperator",
    "MaxChildJobsError",
    "MaxDepthError",
    "NodeResult",
    "Operator",
    "OperatorCancelledError",
    "OperatorContext",
    "OperatorFailedError",
    "OperatorLike",
    "OperatorResult",
    "OrchestrationConfig",
    "OrchestrationError",
    "OrchestrationLimitError",
    "ParallelOperator",
    "PlanParseError",
    "PlannerExecutorOperator",
    "Router",
    "RoutingDecision",
    "RoutingError",
    "RoutingRule",
    "Subtask",
    "UpstreamFailedError",
    "as_operator",
    "parse_plan",
]
