"""The values the policy engine speaks in: what is asked (PolicyContext) and what is answered.

Decisions are ordered by severity so that combining the answers of many rules never depends on the
order the rules were added: the most severe answer wins.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from ..errors import AgentRuntimeError, ValidationError

__all__ = ["PolicyDecision", "PolicyContext", "PolicyResult", "PolicyDenied", "to_decimal"]


class PolicyDecision(enum.StrEnum):
    """ALLOW < WARN < REQUIRE_APPROVAL < DENY: combining results keeps the most severe."""

    ALLOW = "allow"
    WARN = "warn"
    REQUIRE_APPROVAL = "require_approval"
    DENY = "deny"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    @classmethod
    def parse(cls, value: PolicyDecision | str, what: str = "decision") -> PolicyDecision:
        """Rules take ``decision="deny"`` as well as the enum; a typo must not silently mean allow."""
        if isinstance(value, PolicyDecision):
            return value
        if isinstance(value, str):
            try:
                return cls(value.strip().lower())
            except ValueError:
                pass
        choices = ", ".join(repr(d.value) for d in cls)
        raise ValidationError(f"{what} must be one of {choices}, got {value!r}")


_SEVERITY = {
    PolicyDecision.ALLOW: 0,
    PolicyDecision.WARN: 1,
    PolicyDecision.REQUIRE_APPROVAL: 2,
    PolicyDecision.DENY: 3,
}


def to_decimal(value: Decimal | int | float | str | None, what: str) -> Decimal | None:
    """Money is Decimal; floats go through ``str`` so ``1.1`` means 1.1, not 1.100000000000000088."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValidationError(f"{what} must be a number, got {value!r}")
    try:
        result = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValidationError(f"{what} must be a number, got {value!r}") from None
    if not result.is_finite():
        raise ValidationError(f"{what} must be finite, got {value!r}")
    if result < 0:
        raise ValidationError(f"{what} must be >= 0, got {value!r}")
    return result


def check_count(value: int | None, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{what} must be an integer, got {value!r}")
    if value < 0:
        raise ValidationError(f"{what} must be >= 0, got {value!r}")
    return value


class _ContextLike(Protocol):
    @property
    def scope_id(self) -> str | None: ...

    @property
    def principal_id(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class PolicyContext:
    """Everything a rule may look at. Fields a check does not concern stay ``None``."""

    scope_id: str | None = None
    principal_id: str | None = None
    tool_name: str | None = None
    model: str | None = None
    requested_tokens: int | None = None
    requested_cost: Decimal | None = None
    tool_calls_this_turn: int = 0
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_count(self.requested_tokens, "requested_tokens")
        object.__setattr__(self, "requested_cost", to_decimal(self.requested_cost, "requested_cost"))
        check_count(self.tool_calls_this_turn, "tool_calls_this_turn")

    def with_tool(self, tool_name: str) -> PolicyContext:
        return self if self.tool_name == tool_name else replace(self, tool_name=tool_name)

    def with_model(self, model: str) -> PolicyContext:
        return self if self.model == model else replace(self, model=model)

    @classmethod
    def from_context(cls, ctx: _ContextLike, **fields: Any) -> PolicyContext:
        """Build from an ExecutionContext (or anything with scope_id/principal_id) plus the request."""
        return cls(scope_id=ctx.scope_id, principal_id=ctx.principal_id, **fields)


@dataclass(frozen=True, slots=True)
class PolicyResult:
    """One answer: a rule's, or the engine's combination of every rule that applied.

    ``violations`` names what was breached ("<rule>: <what>"); ``applied_rules`` names every rule that
    had an opinion, so an audit log shows why a call went through as well as why it did not.
    """

    decision: PolicyDecision = PolicyDecision.ALLOW
    reason: str = ""
    violations: list[str] = field(default_factory=list)
    applied_rules: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "decision", PolicyDecision.parse(self.decision))
        object.__setattr__(self, "violations", list(self.violations))
        object.__setattr__(self, "applied_rules", list(self.applied_rules))

    @property
    def allowed(self) -> bool:
        """True unless denied or waiting on a human: WARN lets the call proceed."""
        return self.decision in (PolicyDecision.ALLOW, PolicyDecision.WARN)

    def raise_if_denied(self) -> PolicyResult:
        if self.decision is PolicyDecision.DENY:
            raise PolicyDenied(self.reason, violations=self.violations)
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision.value,
            "reason": self.reason,
            "violations": list(self.violations),
            "applied_rules": list(self.applied_rules),
            "metadata": dict(self.metadata),
        }


class PolicyDenied(AgentRuntimeError, PermissionError):
    """A policy refused the operation; ``violations`` says which rules and why."""

    def __init__(self, reason: str, violations: Sequence[str] | None = None) -> None:
        super().__init__(reason or "denied by policy")
        self.reason = reason
        self.violations: list[str] = list(violations or [])
