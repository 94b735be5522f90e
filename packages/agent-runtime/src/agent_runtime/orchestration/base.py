"""The operator contract: what every orchestration building block takes and returns.

An :class:`Operator` turns an input mapping into an :class:`OperatorResult` under an
:class:`~agent_runtime.orchestration.OperatorContext`. Composite operators never call a child's
``execute`` themselves: they go through ``context.run_child`` so that every child becomes a job,
is counted against the limits, draws from the parent's budget and stops when the parent is
cancelled. Anything with ``async run(prompt)`` returning an object with ``.content`` (an llm-client
``Agent`` in particular) can stand where an operator is expected; :func:`as_operator` adapts it.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from llm_client import Agent, Usage

from ..errors import ValidationError
from .errors import OperatorFailedError

if TYPE_CHECKING:
    from .context import OperatorContext

__all__ = [
    "AgentRole",
    "AgentLike",
    "AgentOperator",
    "Operator",
    "OperatorLike",
    "OperatorResult",
    "OrchestrationConfig",
    "as_operator",
    "sum_usage",
]


class AgentRole(StrEnum):
    """What part an operator plays; recorded on results and child jobs, never used for control flow."""

    GENERALIST = "generalist"
    SPECIALIST = "specialist"
    COORDINATOR = "coordinator"
    PLANNER = "planner"
    EXECUTOR = "executor"
    SYNTHESIZER = "synthesizer"
    CRITIC = "critic"
    DEBATER = "debater"
    MODERATOR = "moderator"
    ROUTER = "router"


def _limit(name: str, value: object, *, minimum: int, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        extra = " or None" if optional else ""
        raise ValidationError(f"{name} must be an int >= {minimum}{extra}, got {value!r}")
    return value


def positive_int(name: str, value: object) -> int:
    """``value`` as a count of at least 1, or a ValidationError naming ``name``."""
    checked = _limit(name, value, minimum=1)
    assert checked is not None
    return checked


@dataclass(frozen=True, slots=True)
class OrchestrationConfig:
    """Limits every composite operator obeys; one config governs a whole operator tree.

    ``max_child_jobs`` is per parent (``None``: unlimited), ``max_depth`` counts nesting below the
    context the caller created, ``timeout_seconds`` bounds each child (``None``: no bound),
    ``max_parallel`` bounds the children of one parent running at once, and ``parallel_execution``
    False makes every fan-out sequential (useful against rate limits and for debugging).
    """

    max_child_jobs: int | None = 10
    max_depth: int = 5
    timeout_seconds: float | None = 300.0
    inherit_budgets: bool = True
    propagate_cancellation: bool = True
    parallel_execution: bool = True
    max_parallel: int = 5

    def __post_init__(self) -> None:
        _limit("max_child_jobs", self.max_child_jobs, minimum=0, optional=True)
        _limit("max_depth", self.max_depth, minimum=1)
        _limit("max_parallel", self.max_parallel, minimum=1)
        t = self.timeout_seconds
        if t is not None and (
            isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0
        ):
            raise ValidationError(f"timeout_seconds must be a number > 0 or None, got {t!r}")
        for name in ("inherit_budgets", "propagate_cancellation", "parallel_execution"):
            if not isinstance(getattr(self, name), bool):
                raise ValidationError(f"{name} must be a bool, got {getattr(self, name)!r}")


@dataclass(slots=True)
class OperatorResult:
    """What an operator produced, or why it failed.

    ``content`` is whatever the operator returns (text from an agent, an aggregator's dict).
    ``usage`` covers the operator's whole subtree, so a caller sees what a composite cost in one
    place; the ledger is charged once per model call regardless (see ``OperatorContext.run_child``).
    ``children`` holds the results of the children a composite ran, in the order it ran them.
    ``exception`` keeps the typed error behind ``error`` for ``raise_for_error``.
    """

    content: Any = None
    success: bool = True
    operator_name: str = ""
    role: AgentRole | None = None
    error: str | None = None
    usage: Usage | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    children: list[OperatorResult] = field(default_factory=list, repr=False)
    job_id: str | None = None
    duration_ms: float | None = None
    exception: BaseException | None = field(default=None, repr=False, compare=False)

    @property
    def error_type(self) -> str | None:
        if self.exception is not None:
            return type(self.exception).__name__
        return None if self.success else "OperatorFailedError"

    @classmethod
    def failure(
        cls,
        operator_name: str,
        error: str | BaseException,
        *,
        role: AgentRole | None = None,
        **fields: Any,
    ) -> OperatorResult:
        """A failed result; given an exception, its message becomes ``error`` and it is kept."""
        if isinstance(error, BaseException):
            return cls(
                success=False,
                operator_name=operator_name,
                role=role,
                error=str(error) or type(error).__name__,
                exception=error,
                **fields,
            )
        return cls(success=False, operator_name=operator_name, role=role, error=error, **fields)

    def raise_for_error(self) -> OperatorResult:
        """Return self when successful; otherwise raise the typed error behind the failure."""
        if self.success:
            return self
        if self.exception is not None:
            raise self.exception
        raise OperatorFailedError(self.operator_name, self.error)


class Operator(ABC):
    """One step of an orchestration. Subclasses implement ``name`` and ``execute``.

    ``execute`` may raise: when the operator runs as a child, ``OperatorContext.run_child`` turns
    the exception into a failed result and the child's job into FAILED. ``estimate_tokens`` is what
    the parent's budget must still be able to cover before the operator may start (0: only refuse
    once the budget is used up).
    """

    @property
    @abstractmethod
    def name(self) -> str: ...

    @property
    def role(self) -> AgentRole:
        return AgentRole.GENERALIST

    @property
    def description(self) -> str:
        return ""

    @abstractmethod
    async def execute(self, input_data: dict[str, Any], context: OperatorContext) -> OperatorResult: ...

    def estimate_tokens(self, input_data: Mapping[str, Any]) -> int:
        return 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


@runtime_checkable
class AgentLike(Protocol):
    """Anything with ``async run(prompt)`` whose result has ``.content`` (an llm-client Agent, say)."""

    async def run(self, prompt: str) -> Any: ...


OperatorLike = Operator | AgentLike

_PROMPT_KEYS = ("prompt", "text", "task", "topic", "input", "query")

PromptBuilder = str | Callable[[Mapping[str, Any]], str]


def default_prompt(input_data: Mapping[str, Any]) -> str:
    """The first text-like input field, else the whole input as JSON: never an empty prompt."""
    for key in _PROMPT_KEYS:
        value = input_data.get(key)
        if isinstance(value, str) and value:
            return value
    return json.dumps(dict(input_data), default=str, sort_keys=True)


class AgentOperator(Operator):
    """An agent as an operator: builds a prompt from the input, runs the agent, reports its usage.

    ``prompt`` is a ``str.format`` template over the input, or a function of it; by default the
    input's ``prompt``/``text``/``task``/``topic``/``input``/``query`` field is sent. An llm-client
    ``Agent`` runs with the child's RequestContext, so the child's cancellation token interrupts a
    model call in flight and llm-client's budget middleware (if installed) sees the run's budget.
    """

    def __init__(
        self,
        agent: AgentLike,
        *,
        name: str | None = None,
        role: AgentRole = AgentRole.SPECIALIST,
        description: str = "",
        prompt: PromptBuilder | None = None,
    ) -> None:
        if not callable(getattr(agent, "run", None)):
            raise ValidationError(f"agent must have an async run(prompt) method, got {type(agent).__name__}")
        self.agent = agent
        self._name = name or getattr(agent, "name", None) or type(agent).__name__
        self._role = role
        self._description = description
        self._prompt = prompt

    @property
    def name(self) -> str:
        return str(self._name)

    @property
    def role(self) -> AgentRole:
        return self._role

    @property
    def description(self) -> str:
        return self._description

    def build_prompt(self, input_data: Mapping[str, Any]) -> str:
        if self._prompt is None:
            return default_prompt(input_data)
        if isinstance(self._prompt, str):
            return self._prompt.format_map(dict(input_data))
        return self._prompt(input_data)

    def estimate_tokens(self, input_data: Mapping[str, Any]) -> int:
        # The same rough measure as llm-client's budget middleware: about four characters a token.
        return len(self.build_prompt(input_data)) // 4 + 4

    async def execute(self, input_data: dict[str, Any], context: OperatorContext) -> OperatorResult:
        prompt = self.build_prompt(input_data)
        if isinstance(self.agent, Agent):
            out: Any = await self.agent.run(prompt, context=context.execution.to_request_context())
        else:
            out = await self.agent.run(prompt)
        content = out if isinstance(out, str) else getattr(out, "content", out)
        usage = getattr(out, "usage", None)
        return OperatorResult(
            content=content,
            operator_name=self.name,
            role=self.role,
            usage=usage if isinstance(usage, Usage) else None,
        )


def as_operator(
    value: OperatorLike, *, name: str | None = None, role: AgentRole = AgentRole.SPECIALIST
) -> Operator:
    """An Operator as is; an agent wrapped in an AgentOperator (named ``name``)."""
    if isinstance(value, Operator):
        return value
    if callable(getattr(value, "run", None)):
        return AgentOperator(value, name=name, role=role)
    raise ValidationError(
        f"expected an Operator or an agent with async run(prompt), got {type(value).__name__}"
    )


def operators_of(
    values: Iterable[OperatorLike], what: str, *, prefix: str, role: AgentRole
) -> list[Operator]:
    """Adapt a list of operators/agents, naming unnamed agents ``{prefix}_{i}`` so results are traceable."""
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise ValidationError(f"{what} must be a list of operators or agents, got {type(values).__name__}")
    out = [
        as_operator(v, name=None if isinstance(v, Operator) else f"{prefix}_{i}", role=role)
        for i, v in enumerate(values, 1)
    ]
    if not out:
        raise ValidationError(f"{what} must not be empty")
    return out


def sum_usage(results: Iterable[OperatorResult]) -> Usage | None:
    """Total usage of ``results``; None when none reported any (so "unknown" is not shown as zero)."""
    total: Usage | None = None
    for r in results:
        if r.usage is not None:
            total = r.usage if total is None else total + r.usage
    return total


def usage_minus(total: Usage | None, part: Usage | None) -> Usage | None:
    """``total - part`` clamped at zero: the usage of a subtree not already charged by its children."""
    if total is None:
        return None
    if part is None:
        return total

    def sub(a: int, b: int) -> int:
        return max(a - b, 0)

    cost: Decimal | None = None
    if total.cost is not None:
        cost = max(total.cost - (part.cost or Decimal(0)), Decimal(0))
    return Usage(
        input_tokens=sub(total.input_tokens, part.input_tokens),
        output_tokens=sub(total.output_tokens, part.output_tokens),
        total_tokens=sub(total.total_tokens, part.total_tokens),
        cached_tokens=sub(total.cached_tokens, part.cached_tokens),
        cache_write_tokens=sub(total.cache_write_tokens, part.cache_write_tokens),
        reasoning_tokens=sub(total.reasoning_tokens, part.reasoning_tokens),
        cost=cost,
        requests=sub(total.requests, part.requests),
    )
