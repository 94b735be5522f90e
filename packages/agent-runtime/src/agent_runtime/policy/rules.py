"""Policy rules: each one answers for the requests it concerns and abstains (``None``) otherwise.

Abstaining matters: the engine's ``default_decision`` applies only to what no rule spoke about, so
an allowlist (``PolicyEngine(default_decision="deny")`` plus allow rules) works as expected.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import ClassVar

from ..errors import ValidationError
from .types import PolicyContext, PolicyDecision, PolicyResult, check_count, to_decimal

__all__ = ["PolicyRule", "ToolPolicy", "ModelPolicy", "ConstraintPolicy", "validate_patterns"]


class PolicyRule(abc.ABC):
    """Base of every rule. Subclass it for custom rules; ``evaluate`` is async so a rule may do I/O.

    ``kind`` says which engine check runs the rule: ``"tool"`` (check_tool), ``"model"``
    (check_model), ``"constraint"`` (check_constraints); every rule runs in ``evaluate``.
    """

    kind: ClassVar[str] = "custom"

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """Unique within an engine; it appears in ``applied_rules`` and ``violations``."""

    @abc.abstractmethod
    async def evaluate(self, ctx: PolicyContext) -> PolicyResult | None:
        """The rule's answer for ``ctx``, or ``None`` when the rule does not concern it."""

    def _result(self, decision: PolicyDecision, reason: str, violation: bool) -> PolicyResult:
        return PolicyResult(
            decision=decision,
            reason=reason,
            violations=[f"{self.name}: {reason}"] if violation else [],
            applied_rules=[self.name],
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def _check_pattern(pattern: object, what: str) -> str:
    if not isinstance(pattern, str):
        raise ValidationError(f"{what} must be strings, got {pattern!r}")
    if not pattern.strip():
        raise ValidationError(f"{what} must not contain an empty pattern")
    # fnmatch silently treats an unclosed "[" as a literal character, so "file_[ab" would never match
    # what its author meant. Reject it instead, using fnmatch's own bracket rules.
    i, n = 0, len(pattern)
    while i < n:
        if pattern[i] == "[":
            j = i + 1
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                raise ValidationError(f"{what}: pattern {pattern!r} has an unclosed '[' at position {i}")
            i = j
        i += 1
    return pattern


def validate_patterns(patterns: Iterable[str] | str, what: str) -> tuple[str, ...]:
    """A single string is one pattern (not a sequence of one-character patterns)."""
    items: Iterable[object] = [patterns] if isinstance(patterns, str) else patterns
    try:
        result = tuple(_check_pattern(p, what) for p in items)
    except TypeError:
        raise ValidationError(f"{what} must be a list of glob patterns, got {patterns!r}") from None
    if not result:
        raise ValidationError(f"{what} must name at least one pattern")
    return result


def _matches(patterns: Sequence[str], value: str) -> bool:
    # Case-sensitive on every OS: fnmatch.fnmatch would follow the filesystem's case rules.
    return any(fnmatchcase(value, p) for p in patterns)


class ToolPolicy(PolicyRule):
    """Allow or deny tools whose name matches a glob pattern (``fnmatch``: ``*``, ``?``, ``[..]``).

    An allow rule with ``allowed_scopes`` allows the tool only in those scopes and denies it in every
    other scope (including a request with no scope).
    """

    kind: ClassVar[str] = "tool"

    def __init__(
        self,
        tool_patterns: Iterable[str] | str,
        decision: PolicyDecision | str = "allow",
        reason: str | None = None,
        allowed_scopes: Iterable[str] | None = None,
        *,
        name: str | None = None,
    ) -> None:
        self.tool_patterns = validate_patterns(tool_patterns, "tool_patterns")
        self.decision = PolicyDecision.parse(decision)
        self.reason = reason
        if isinstance(allowed_scopes, str):
            raise ValidationError("allowed_scopes must be a list of scope ids, not a single string")
        self.allowed_scopes = None if allowed_scopes is None else frozenset(allowed_scopes)
        self._name = name or f"tool:{self.decision.value}:{','.join(self.tool_patterns)}"

    @property
    def name(self) -> str:
        return self._name

    async def evaluate(self, ctx: PolicyContext) -> PolicyResult | None:
        tool = ctx.tool_name
        if tool is None or not _matches(self.tool_patterns, tool):
            return None
        scopes = self.allowed_scopes
        if self.decision is not PolicyDecision.DENY and scopes is not None and ctx.scope_id not in scopes:
            return self._result(
                PolicyDecision.DENY,
                f"tool {tool!r} is allowed only in scopes [{', '.join(sorted(scopes))}], "
                f"not in {ctx.scope_id!r}",
                violation=True,
            )
        reason = self.reason or f"tool {tool!r}: {self.decision.value}"
        return self._result(self.decision, reason, violation=self.decision is not PolicyDecision.ALLOW)


class ModelPolicy(PolicyRule):
    """Rules for models matching a glob: deny, require human approval, or cap tokens per request."""

    kind: ClassVar[str] = "model"

    def __init__(
        self,
        model_patterns: Iterable[str] | str,
        require_approval: bool = False,
        max_tokens_per_request: int | None = None,
        decision: PolicyDecision | str = "allow",
        reason: str | None = None,
        *,
        name: str | None = None,
    ) -> None:
        self.model_patterns = validate_patterns(model_patterns, "model_patterns")
        self.require_approval = bool(require_approval)
        self.max_tokens_per_request = check_count(max_tokens_per_request, "max_tokens_per_request")
        self.decision = PolicyDecision.parse(decision)
        self.reason = reason
        self._name = name or f"model:{','.join(self.model_patterns)}"

    @property
    def name(self) -> str:
        return self._name

    async def evaluate(self, ctx: PolicyContext) -> PolicyResult | None:
        model = ctx.model
        if model is None or not _matches(self.model_patterns, model):
            return None
        if self.decision is PolicyDecision.DENY:
            return self._result(PolicyDecision.DENY, self.reason or f"model {model!r} is denied", True)
        limit = self.max_tokens_per_request
        if limit is not None and ctx.requested_tokens is not None and ctx.requested_tokens > limit:
            return self._result(
                PolicyDecision.DENY,
                f"model {model!r} allows at most {limit} tokens per request, "
                f"{ctx.requested_tokens} requested",
                True,
            )
        if self.require_approval:
            reason = self.reason or f"model {model!r} requires approval"
            return self._result(PolicyDecision.REQUIRE_APPROVAL, reason, True)
        reason = self.reason or f"model {model!r}: {self.decision.value}"
        return self._result(self.decision, reason, self.decision is not PolicyDecision.ALLOW)


class ConstraintPolicy(PolicyRule):
    """Per-request limits. A breach yields ``decision`` (DENY by default; WARN for soft limits).

    A limit the context gives no value for (e.g. ``requested_cost=None``) is not checked: unknown is
    not treated as zero, and not as a breach either.
    """

    kind: ClassVar[str] = "constraint"

    def __init__(
        self,
        max_cost_per_request: Decimal | float | int | str | None = None,
        max_tokens_per_request: int | None = None,
        max_tool_calls_per_turn: int | None = None,
        *,
        decision: PolicyDecision | str = "deny",
        name: str | None = None,
    ) -> None:
        self.max_cost_per_request = to_decimal(max_cost_per_request, "max_cost_per_request")
        self.max_tokens_per_request = check_count(max_tokens_per_request, "max_tokens_per_request")
        self.max_tool_calls_per_turn = check_count(max_tool_calls_per_turn, "max_tool_calls_per_turn")
        self.decision = PolicyDecision.parse(decision)
        if self.decision is PolicyDecision.ALLOW:
            raise ValidationError("ConstraintPolicy decision is what a breach yields; it cannot be 'allow'")
        self._name = name or "constraints"

    @property
    def name(self) -> str:
        return self._name

    async def evaluate(self, ctx: PolicyContext) -> PolicyResult | None:
        breaches: list[str] = []
        if (
            self.max_cost_per_request is not None
            and ctx.requested_cost is not None
            and ctx.requested_cost > self.max_cost_per_request
        ):
            breaches.append(f"cost {ctx.requested_cost} exceeds {self.max_cost_per_request} per request")
        if (
            self.max_tokens_per_request is not None
            and ctx.requested_tokens is not None
            and ctx.requested_tokens > self.max_tokens_per_request
        ):
            breaches.append(f"{ctx.requested_tokens} tokens exceed {self.max_tokens_per_request} per request")
        max_calls = self.max_tool_calls_per_turn
        if max_calls is not None and ctx.tool_calls_this_turn > max_calls:
            breaches.append(f"{ctx.tool_calls_this_turn} tool calls exceed {max_calls} per turn")
        if not breaches:
            return self._result(PolicyDecision.ALLOW, "within constraints", violation=False)
        return PolicyResult(
            decision=self.decision,
            reason="; ".join(breaches),
            violations=[f"{self.name}: {b}" for b in breaches],
            applied_rules=[self.name],
        )
