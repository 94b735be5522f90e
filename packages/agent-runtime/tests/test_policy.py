"""Policy engine: the seed's examples, deny-wins under every rule order, defaults and bad input."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from agent_runtime import (
    ConstraintPolicy,
    ModelPolicy,
    PolicyContext,
    PolicyDecision,
    PolicyDenied,
    PolicyEngine,
    PolicyResult,
    PolicyRule,
    ToolPolicy,
    ValidationError,
)


def seed_engine() -> PolicyEngine:
    engine = PolicyEngine()
    engine.add_rule(
        ToolPolicy(
            tool_patterns=["file_*", "shell_*"],  # Glob patterns
            decision="deny",
            reason="Dangerous tools not allowed",
        )
    )
    engine.add_rule(
        ToolPolicy(
            tool_patterns=["search_*"],
            allowed_scopes=["internal", "admin"],  # Scope-based access
            decision="allow",
        )
    )
    engine.add_rule(
        ModelPolicy(
            model_patterns=["gpt-4*", "claude-3*"],
            require_approval=True,
            max_tokens_per_request=10000,
        )
    )
    engine.add_rule(
        ConstraintPolicy(
            max_cost_per_request=1.0,
            max_tokens_per_request=50000,
            max_tool_calls_per_turn=5,
        )
    )
    return engine


async def test_seed_policy_evaluation() -> None:
    engine = seed_engine()
    policy_ctx = PolicyContext(
        scope_id="tenant-123",
        principal_id="user-456",
        tool_name="file_read",
        model="gpt-4",
        requested_tokens=5000,
    )
    tool_result = await engine.check_tool("file_read", policy_ctx)
    model_result = await engine.check_model("gpt-4", policy_ctx)
    constraint_result = await engine.check_constraints(policy_ctx)
    assert tool_result.decision == PolicyDecision.DENY
    assert tool_result.reason == "Dangerous tools not allowed"
    assert model_result.decision == PolicyDecision.REQUIRE_APPROVAL
    assert constraint_result.decision == PolicyDecision.ALLOW

    result = await engine.evaluate(policy_ctx)
    assert result.decision == PolicyDecision.DENY
    with pytest.raises(PolicyDenied) as info:
        if result.decision == PolicyDecision.DENY:
            raise PolicyDenied(result.reason, violations=result.violations)
    assert info.value.reason == "Dangerous tools not allowed"
    assert any("Dangerous tools not allowed" in v for v in info.value.violations)
    assert any("requires approval" in v for v in result.violations)
    assert set(result.applied_rules) == {"tool:deny:file_*,shell_*", "model:gpt-4*,claude-3*", "constraints"}


def test_policy_result_seed_shape() -> None:
    result = PolicyResult(
        decision=PolicyDecision.ALLOW,
        reason="All policies passed",
        violations=[],
        applied_rules=["rule1", "rule2"],
        metadata={},
    )
    assert result.allowed
    assert result.raise_if_denied() is result
    assert result.to_dict()["decision"] == "allow"
    denied = PolicyResult(decision="deny", reason="no", violations=["r: no"])  # type: ignore[arg-type]
    assert denied.decision is PolicyDecision.DENY and not denied.allowed
    with pytest.raises(PolicyDenied, match="no"):
        denied.raise_if_denied()


async def test_scope_restricted_allow_denies_other_scopes() -> None:
    engine = seed_engine()
    inside = await engine.check_tool("search_web", PolicyContext(scope_id="internal"))
    outside = await engine.check_tool("search_web", PolicyContext(scope_id="tenant-123"))
    nobody = await engine.check_tool("search_web")
    assert inside.decision == PolicyDecision.ALLOW
    assert outside.decision == PolicyDecision.DENY
    assert "internal" in outside.reason and "tenant-123" in outside.reason
    assert nobody.decision == PolicyDecision.DENY


async def test_model_token_cap_denies_and_unmatched_model_defaults() -> None:
    engine = seed_engine()
    over = await engine.check_model("claude-3-opus", PolicyContext(requested_tokens=20000))
    assert over.decision == PolicyDecision.DENY and "10000" in over.reason
    other = await engine.check_model("llama-3", PolicyContext(requested_tokens=20000))
    assert other.decision == PolicyDecision.ALLOW
    assert other.metadata["default"] is True


async def test_constraint_breaches_are_listed() -> None:
    engine = seed_engine()
    ctx = PolicyContext(requested_cost=Decimal("1.50"), requested_tokens=60000, tool_calls_this_turn=6)
    result = await engine.check_constraints(ctx)
    assert result.decision == PolicyDecision.DENY
    assert len(result.violations) == 3
    soft = PolicyEngine([ConstraintPolicy(max_tool_calls_per_turn=1, decision="warn")])
    warned = await soft.check_constraints(PolicyContext(tool_calls_this_turn=2))
    assert warned.decision == PolicyDecision.WARN and warned.allowed


RULES = [
    ToolPolicy(["search_*"], decision="allow"),
    ToolPolicy(["search_secret*"], decision="deny", reason="secret"),
    ToolPolicy(["search_s*"], decision="warn"),
    ToolPolicy(["*"], decision="require_approval"),
]


@pytest.mark.parametrize("order", list(itertools.permutations(range(len(RULES)))))
async def test_deny_wins_in_every_rule_order(order: tuple[int, ...]) -> None:
    engine = PolicyEngine([RULES[i] for i in order])
    secret = await engine.check_tool("search_secret_docs")
    assert secret.decision == PolicyDecision.DENY
    assert secret.reason == "secret"
    # Without the deny, require-approval outranks warn and allow.
    assert (await engine.check_tool("search_stuff")).decision == PolicyDecision.REQUIRE_APPROVAL
    engine.remove_rule(RULES[3].name)
    assert (await engine.check_tool("search_stuff")).decision == PolicyDecision.WARN
    assert (await engine.check_tool("search_web")).decision == PolicyDecision.ALLOW


async def test_default_decision_allowlist() -> None:
    engine = PolicyEngine(default_decision="deny")
    engine.add_rule(ToolPolicy(["calc"], decision="allow"))
    assert (await engine.check_tool("calc")).decision == PolicyDecision.ALLOW
    unknown = await engine.check_tool("rm_rf")
    assert unknown.decision == PolicyDecision.DENY and "no rule matched tool 'rm_rf'" in unknown.reason
    # evaluate applies the default to a model no rule spoke about, even though the tool is allowed.
    both = await engine.evaluate(PolicyContext(tool_name="calc", model="gpt-4"))
    assert both.decision == PolicyDecision.DENY
    assert (await PolicyEngine().evaluate(PolicyContext())).decision == PolicyDecision.ALLOW


async def test_custom_rule_runs_in_evaluate_only() -> None:
    seen: list[PolicyContext] = []

    class Business(PolicyRule):
        @property
        def name(self) -> str:
            return "business-hours"

        async def evaluate(self, ctx: PolicyContext) -> PolicyResult | None:
            seen.append(ctx)
            if ctx.metadata.get("after_hours"):
                return PolicyResult(PolicyDecision.REQUIRE_APPROVAL, "after hours", ["business-hours: late"])
            return None

    engine = PolicyEngine([Business()])
    await engine.check_tool("x")
    assert seen == []
    result = await engine.evaluate(PolicyContext(metadata={"after_hours": True}))
    assert result.decision == PolicyDecision.REQUIRE_APPROVAL and len(seen) == 1


@pytest.mark.parametrize("patterns", [[], [""], ["  "], ["file_[ab"], ["ok", "[!"], [3]])
def test_malformed_patterns_are_rejected(patterns: list[object]) -> None:
    with pytest.raises(ValidationError):
        ToolPolicy(patterns)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        ModelPolicy(patterns)  # type: ignore[arg-type]


async def test_valid_bracket_patterns_and_single_string() -> None:
    engine = PolicyEngine(
        [ToolPolicy("file_[]ab]*", decision="deny"), ToolPolicy(["x[!y]"], decision="deny")]
    )
    assert (await engine.check_tool("file_]z")).decision == PolicyDecision.DENY
    assert (await engine.check_tool("xz")).decision == PolicyDecision.DENY
    assert (await engine.check_tool("xy")).decision == PolicyDecision.ALLOW
    assert (await engine.check_tool("FILE_a")).decision == PolicyDecision.ALLOW  # case-sensitive


def test_bad_arguments_raise_validation_error() -> None:
    with pytest.raises(ValidationError, match="decision"):
        ToolPolicy(["a"], decision="maybe")
    with pytest.raises(ValidationError, match="max_cost_per_request"):
        ConstraintPolicy(max_cost_per_request=-1)
    with pytest.raises(ValidationError, match="max_tokens_per_request"):
        ModelPolicy(["a"], max_tokens_per_request=-5)
    with pytest.raises(ValidationError):
        ConstraintPolicy(max_tool_calls_per_turn=1, decision="allow")
    with pytest.raises(ValidationError, match="allowed_scopes"):
        ToolPolicy(["a"], allowed_scopes="admin")
    with pytest.raises(ValidationError, match="requested_tokens"):
        PolicyContext(requested_tokens=-1)
    with pytest.raises(ValidationError, match="default_decision"):
        PolicyEngine(default_decision="nope")
    engine = PolicyEngine()
    engine.add_rule(ToolPolicy(["a"]))
    with pytest.raises(ValidationError, match="already registered"):
        engine.add_rule(ToolPolicy(["a"]))
    with pytest.raises(ValidationError, match="PolicyRule"):
        engine.add_rule("a")  # type: ignore[arg-type]


def test_policy_denied_is_typed() -> None:
    err = PolicyDenied("nope", violations=["r: nope"])
    assert isinstance(err, PermissionError)
    assert str(err) == "nope" and err.violations == ["r: nope"]
    assert PolicyDenied("x").violations == []
