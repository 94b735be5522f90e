"""The policy engine: asks every relevant rule and keeps the most severe answer.

Combination is order-independent (DENY > REQUIRE_APPROVAL > WARN > ALLOW), so adding rules in a
different order can never turn a deny into an allow. When no rule speaks about a subject (the tool or
model being checked) or no rule applies at all, ``default_decision`` answers: ALLOW by default (a
blocklist); pass ``default_decision="deny"`` for an allowlist. A rule that raises propagates its
exception: the call does not proceed (fail closed) and the error stays visible.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import ValidationError
from .rules import PolicyRule
from .types import PolicyContext, PolicyDecision, PolicyResult

__all__ = ["PolicyEngine"]


class PolicyEngine:
    def __init__(
        self,
        rules: Iterable[PolicyRule] = (),
        *,
        default_decision: PolicyDecision | str = PolicyDecision.ALLOW,
    ) -> None:
        self.default_decision = PolicyDecision.parse(default_decision, "default_decision")
        self._rules: dict[str, PolicyRule] = {}
        for rule in rules:
            self.add_rule(rule)

    @property
    def rules(self) -> list[PolicyRule]:
        return list(self._rules.values())

    def add_rule(self, rule: PolicyRule) -> PolicyRule:
        if not isinstance(rule, PolicyRule):
            raise ValidationError(f"add_rule expects a PolicyRule, got {type(rule).__name__}")
        if rule.name in self._rules:
            raise ValidationError(
                f"a rule named {rule.name!r} is already registered; pass name= to tell rules apart"
            )
        self._rules[rule.name] = rule
        return rule

    def remove_rule(self, name: str) -> bool:
        return self._rules.pop(name, None) is not None

    async def check_tool(self, name: str, ctx: PolicyContext | None = None) -> PolicyResult:
        ctx = (ctx or PolicyContext()).with_tool(name)
        return await self._run(ctx, kinds={"tool"}, subjects={"tool": name})

    async def check_model(self, model: str, ctx: PolicyContext | None = None) -> PolicyResult:
        ctx = (ctx or PolicyContext()).with_model(model)
        return await self._run(ctx, kinds={"model"}, subjects={"model": model})

    async def check_constraints(self, ctx: PolicyContext) -> PolicyResult:
        return await self._run(ctx, kinds={"constraint"}, subjects={})

    async def evaluate(self, ctx: PolicyContext) -> PolicyResult:
        """Every rule, plus the default for a tool or model in ``ctx`` that no rule spoke about."""
        subjects = {k: v for k, v in (("tool", ctx.tool_name), ("model", ctx.model)) if v is not None}
        return await self._run(ctx, kinds=None, subjects=subjects)

    async def _run(
        self, ctx: PolicyContext, kinds: set[str] | None, subjects: dict[str, str]
    ) -> PolicyResult:
        results: list[PolicyResult] = []
        spoken: set[str] = set()
        for rule in list(self._rules.values()):
            if kinds is not None and rule.kind not in kinds:
                continue
            result = await rule.evaluate(ctx)
            if result is not None:
                results.append(result)
                spoken.add(rule.kind)
        for kind, value in subjects.items():
            if kind not in spoken:
                results.append(self._default(f"no rule matched {kind} {value!r}"))
        if not results:
            results.append(self._default("no policy rule applies"))
        return _combine(results)

    def _default(self, why: str) -> PolicyResult:
        decision = self.default_decision
        violation = decision is not PolicyDecision.ALLOW
        reason = f"{why}; default decision is {decision.value}"
        return PolicyResult(
            decision=decision,
            reason=reason,
            violations=[f"default: {reason}"] if violation else [],
            metadata={"default": True},
        )


def _combine(results: list[PolicyResult]) -> PolicyResult:
    worst = max(r.decision.severity for r in results)
    winners = [r for r in results if r.decision.severity == worst]
    decision = winners[0].decision
    if decision is PolicyDecision.ALLOW and len(results) > 1:
        reason = "all policies passed"
    else:
        reason = "; ".join(dict.fromkeys(r.reason for r in winners if r.reason))
    decisions: dict[str, str] = {}
    for r in results:
        for name in r.applied_rules:
            decisions[name] = r.decision.value
    return PolicyResult(
        decision=decision,
        reason=reason,
        violations=[v for r in results for v in r.violations],
        applied_rules=[n for r in results for n in r.applied_rules],
        metadata={"decisions": decisions, "default": any(r.metadata.get("default") for r in results)},
    )
