"""Orchestration errors: one type per refusal or failure a caller may want to handle differently.

Operators report failures of their *work* as a failed :class:`OperatorResult` (the error kept in
``result.exception``) rather than raising, so one failed child cannot tear down siblings that are
still running; ``OperatorResult.raise_for_error()`` turns it back into these exceptions. Only
cancellation propagates as an exception, because a cancelled parent must stop, not aggregate.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import AgentRuntimeError, ValidationError
from ..ledger.budget import BudgetDecision, BudgetExceededError

__all__ = [
    "OrchestrationError",
    "OrchestrationLimitError",
    "MaxChildJobsError",
    "MaxDepthError",
    "ChildBudgetExceededError",
    "OperatorCancelledError",
    "ChildTimeoutError",
    "OperatorFailedError",
    "PlanParseError",
    "GraphError",
    "GraphCycleError",
    "UpstreamFailedError",
    "RoutingError",
]


class OrchestrationError(AgentRuntimeError):
    """Base class of the orchestration layer's errors."""


class OrchestrationLimitError(OrchestrationError):
    """An OrchestrationConfig limit refused to start a child (nothing ran, no job was created)."""


class MaxChildJobsError(OrchestrationLimitError):
    def __init__(self, parent: str, limit: int, wanted: int = 1) -> None:
        super().__init__(
            f"{parent} may start at most {limit} child job(s) (OrchestrationConfig.max_child_jobs); "
            f"starting {wanted} more would pass it"
        )
        self.limit = limit


class MaxDepthError(OrchestrationLimitError):
    def __init__(self, operator: str, depth: int, limit: int) -> None:
        super().__init__(
            f"operator {operator!r} would run at nesting depth {depth}, past "
            f"OrchestrationConfig.max_depth={limit}"
        )
        self.depth = depth
        self.limit = limit


class ChildBudgetExceededError(OrchestrationError, BudgetExceededError):
    """The parent's budget cannot cover the child: refused before the child ran.

    Also a ledger ``BudgetExceededError`` (and so an ``llm_client.BudgetExceededError``): code that
    already handles budget refusals handles this one without knowing about orchestration.
    """

    def __init__(self, operator: str, reason: str, violations: Sequence[str] = ()) -> None:
        BudgetExceededError.__init__(
            self,
            f"child operator {operator!r} refused: {reason}",
            decision=BudgetDecision.DENY,
            violations=violations,
        )
        self.operator = operator


class OperatorCancelledError(OrchestrationError):
    """The parent's cancellation token fired while this operator (or its children) ran."""

    def __init__(self, operator: str, reason: str | None) -> None:
        super().__init__(f"operator {operator!r} cancelled: {reason or 'no reason given'}")
        self.operator = operator
        self.reason = reason


class ChildTimeoutError(OrchestrationError, TimeoutError):
    def __init__(self, operator: str, seconds: float) -> None:
        super().__init__(
            f"operator {operator!r} timed out after {seconds:g}s (OrchestrationConfig.timeout_seconds)"
        )
        self.operator = operator
        self.seconds = seconds


class OperatorFailedError(OrchestrationError):
    """A failed OperatorResult turned into an exception (see ``OperatorResult.raise_for_error``)."""

    def __init__(self, operator: str, error: str | None) -> None:
        super().__init__(f"operator {operator!r} failed: {error or 'no error message'}")
        self.operator = operator


class PlanParseError(OrchestrationError, ValueError):
    """The planner's answer holds no usable list of subtasks."""

    def __init__(self, reason: str, output: object) -> None:
        shown = str(output)
        if len(shown) > 200:
            shown = shown[:200] + "..."
        super().__init__(f"planner output could not be parsed as subtasks: {reason}; output was {shown!r}")
        self.output = output


class GraphError(OrchestrationError, ValidationError):
    """An ExecutionGraph that cannot be built as asked (unknown or duplicate node, bad edge)."""


class GraphCycleError(GraphError):
    def __init__(self, cycle: Sequence[str]) -> None:
        super().__init__(f"edge would create a cycle: {' -> '.join(cycle)}")
        self.cycle = list(cycle)


class UpstreamFailedError(OrchestrationError):
    """A graph node did not run because a node it depends on failed."""

    def __init__(self, node_id: str, failed_node: str, error: str | None) -> None:
        super().__init__(
            f"node {node_id!r} not run: upstream node {failed_node!r} failed: {error or 'unknown error'}"
        )
        self.node_id = node_id
        self.failed_node = failed_node


class RoutingError(OrchestrationError, LookupError):
    """No rule matched and no usable default operator was configured."""
