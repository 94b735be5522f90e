"""ExecutionContext, BudgetSpec, PolicyRef, RunVersions: the seed's blocks as written, and their promises."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from decimal import Decimal

import agent_runtime
import llm_client
import pytest
from agent_runtime import BudgetSpec, ExecutionContext, PolicyRef, RunVersions, ValidationError
from llm_client import (
    Agent,
    BudgetExceededError,
    CancellationToken,
    ExecutionEngine,
    MockProvider,
    RequestCancelledError,
    RequestContext,
    default_middleware,
)


def seed_context() -> ExecutionContext:
    # The seed's "ExecutionContext" block, as written.
    ctx = ExecutionContext(
        # Identity
        scope_id="tenant-123",  # Multi-tenant isolation
        principal_id="user-456",  # Actor identity
        session_id="session-789",  # Conversation bucket
        run_id="run-abc",  # Single execution ID
        job_id="job-def",  # Job lifecycle ID
        # Tracing
        trace_id="trace-ghi",
        span_id="span-jkl",
        # Budgets
        budgets=BudgetSpec(
            max_tokens=100000,
            max_cost=10.0,
            max_tool_calls=100,
            max_turns=20,
            max_runtime_seconds=300.0,
        ),
        # Policy
        policy_ref=PolicyRef(name="production", version="v1"),
        # Versions (for replay)
        versions=RunVersions(
            runtime_version="1.0.0",
            llm_client_version="0.2.0",
            model_version="gpt-4-0125",
        ),
        # Metadata
        metadata={"env": "production"},
    )
    return ctx


def test_seed_construction_keeps_every_field() -> None:
    ctx = seed_context()
    assert (ctx.scope_id, ctx.principal_id, ctx.session_id, ctx.run_id, ctx.job_id) == (
        "tenant-123",
        "user-456",
        "session-789",
        "run-abc",
        "job-def",
    )
    assert (ctx.trace_id, ctx.span_id, ctx.parent_span_id) == ("trace-ghi", "span-jkl", None)
    assert ctx.budgets.max_cost == Decimal("10.0")
    assert isinstance(ctx.budgets.max_cost, Decimal)
    assert ctx.budgets.max_runtime_seconds == 300.0
    assert ctx.policy_ref == PolicyRef(name="production", version="v1", overrides={})
    assert ctx.versions.model_version == "gpt-4-0125"
    assert ctx.versions.operator_version is None
    assert ctx.versions.schema_version == 1
    assert ctx.metadata == {"env": "production"}
    assert isinstance(ctx.cancellation_token, CancellationToken)
    assert not ctx.is_cancelled


def test_seed_key_methods_block() -> None:
    ctx = seed_context()
    # Create child context for nested operations
    child_ctx = ctx.child(new_span=True)
    # Add job correlation
    job_ctx = ctx.with_job("job-xyz")
    # Convert to llm-client RequestContext
    request_ctx = ctx.to_request_context()
    # Serialization
    data = ctx.to_dict()
    ctx2 = ExecutionContext.from_dict(data)

    assert child_ctx.trace_id == ctx.trace_id
    assert child_ctx.span_id != ctx.span_id
    assert child_ctx.parent_span_id == "span-jkl"
    assert job_ctx.job_id == "job-xyz" and ctx.job_id == "job-def"
    assert isinstance(request_ctx, RequestContext)
    assert ctx2 == ctx


def test_generated_ids_have_trace_formats_and_are_unique() -> None:
    a, b = ExecutionContext(), ExecutionContext()
    assert re.fullmatch(r"[0-9a-f]{32}", a.trace_id)
    assert re.fullmatch(r"[0-9a-f]{16}", a.span_id)
    assert re.fullmatch(r"[0-9a-f-]{36}", a.run_id)
    assert len({a.run_id, b.run_id}) == len({a.trace_id, b.trace_id}) == len({a.span_id, b.span_id}) == 2
    assert a.job_id is None and a.parent_span_id is None
    assert a.budgets == BudgetSpec() and a.budgets.is_unlimited
    assert a.request_budget is None  # nothing to enforce
    # Default versions record what is installed, so even a casual context is replayable.
    assert a.versions.runtime_version == agent_runtime.__version__
    assert a.versions.llm_client_version == llm_client.__version__


def test_child_shares_trace_token_and_budget() -> None:
    ctx = ExecutionContext(budgets=BudgetSpec(max_tokens=1000))
    child = ctx.child()
    grandchild = child.child()
    assert grandchild.trace_id == ctx.trace_id
    assert grandchild.parent_span_id == child.span_id and child.parent_span_id == ctx.span_id
    assert grandchild.cancellation_token is ctx.cancellation_token
    assert grandchild.budgets == ctx.budgets
    assert grandchild.request_budget is ctx.request_budget is not None
    ctx.cancellation_token.cancel("stop")
    assert grandchild.is_cancelled


def test_child_without_new_span_stays_in_span_and_accepts_changes() -> None:
    ctx = ExecutionContext(span_id="s1", parent_span_id="s0")
    same = ctx.child(new_span=False)
    assert (same.span_id, same.parent_span_id) == ("s1", "s0")
    tagged = ctx.child(metadata={"step": "tool"})
    assert tagged.metadata == {"step": "tool"} and ctx.metadata == {}
    with pytest.raises(TypeError):
        ctx.child(no_such_field=1)


def test_with_job_rejects_empty_ids() -> None:
    with pytest.raises(ValidationError, match="job_id"):
        ExecutionContext().with_job("")


def test_to_request_context_carries_identity_limits_and_token() -> None:
    ctx = seed_context()
    rc = ctx.to_request_context()
    assert (rc.scope_id, rc.principal_id, rc.session_id, rc.run_id, rc.job_id) == (
        "tenant-123",
        "user-456",
        "session-789",
        "run-abc",
        "job-def",
    )
    assert (rc.trace_id, rc.span_id, rc.parent_span_id) == ("trace-ghi", "span-jkl", None)
    assert rc.max_tokens == 100000 and rc.max_cost == Decimal("10.0")
    assert rc.timeout == 300.0
    assert rc.cancellation_token is ctx.cancellation_token
    assert dict(rc.metadata) == {"env": "production"}
    # One budget for the whole run: every conversion (and every child's) shares it.
    assert rc.budget is ctx.to_request_context().budget is ctx.child().to_request_context().budget
    assert ExecutionContext().to_request_context().timeout is None


def test_replacing_budgets_gets_a_budget_for_the_new_limits() -> None:
    ctx = ExecutionContext(budgets=BudgetSpec(max_tokens=10))
    wider = replace(ctx, budgets=BudgetSpec(max_tokens=20))
    assert wider.request_budget is not None and wider.request_budget.max_tokens == 20
    assert ctx.request_budget is not None and ctx.request_budget.max_tokens == 10


async def test_integration_with_llm_client_agent() -> None:
    # The seed's "Context Propagation" block, with a scripted model instead of a real one.
    agent = Agent(engine=ExecutionEngine(provider=MockProvider(["Hi there"])))
    exec_ctx = ExecutionContext(
        scope_id="tenant-123",
        principal_id="user-456",
        job_id="job-789",
    )
    request_ctx = exec_ctx.to_request_context()
    result = await agent.run("Hello", context=request_ctx)
    assert result.content == "Hi there"


async def test_budget_reaches_the_model_call() -> None:
    engine = ExecutionEngine(provider=MockProvider(["unused"]), middleware=default_middleware())
    ctx = ExecutionContext(scope_id="t", budgets=BudgetSpec(max_tokens=50))
    with pytest.raises(BudgetExceededError):
        await engine.complete("a long prompt " * 100, context=ctx.to_request_context())


async def test_cancellation_reaches_the_model_call() -> None:
    engine = ExecutionEngine(provider=MockProvider(["unused"]))
    ctx = ExecutionContext()
    ctx.child().cancellation_token.cancel("user pressed stop")
    with pytest.raises(RequestCancelledError, match="user pressed stop"):
        await engine.complete("hi", context=ctx.to_request_context())


def test_round_trip_is_json_and_leaves_the_token_out() -> None:
    ctx = seed_context().child()
    data = json.loads(json.dumps(ctx.to_dict()))
    assert "cancellation_token" not in data and "request_budget" not in data
    assert data["budgets"]["max_cost"] == "10.0"
    assert data["versions"]["model_version"] == "gpt-4-0125"
    assert data["policy_ref"] == {"name": "production", "version": "v1", "overrides": {}}
    back = ExecutionContext.from_dict(data)
    assert back == ctx
    assert back.parent_span_id == ctx.parent_span_id
    assert back.cancellation_token is not ctx.cancellation_token
    token = CancellationToken()
    assert ExecutionContext.from_dict(data, cancellation_token=token).cancellation_token is token


def test_from_dict_keeps_stored_versions_and_ignores_unknown_keys() -> None:
    data = ExecutionContext(versions=RunVersions(runtime_version="0.0.1", llm_client_version=None)).to_dict()
    data["added_by_a_newer_writer"] = True
    back = ExecutionContext.from_dict(data)
    assert back.versions.runtime_version == "0.0.1" and back.versions.llm_client_version is None
    assert RunVersions.from_dict({}).runtime_version is None  # history, not today's version


@pytest.mark.parametrize(
    "data, match",
    [
        ({"budgets": [1, 2]}, "budgets must be a mapping"),
        ({"budgets": {"max_tokenz": 1}}, "unknown budget field"),
        ({"budgets": {"max_tokens": -1}}, "max_tokens must be >= 0"),
        ({"policy_ref": {"version": "v1"}}, "needs a 'name'"),
        ({"scope_id": 42}, "scope_id"),
        ({"metadata": "x"}, "metadata must be a mapping"),
    ],
)
def test_from_dict_rejects_bad_input(data: dict[str, object], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        ExecutionContext.from_dict(data)
    with pytest.raises(ValidationError, match="mapping"):
        ExecutionContext.from_dict([])  # type: ignore[arg-type]


def test_budget_spec_seed_block_and_cost_types() -> None:
    spec = BudgetSpec(
        max_tokens=100000,  # Total tokens (input + output)
        max_cost=10.0,  # Maximum cost in dollars
        max_tool_calls=100,  # Maximum tool invocations
        max_turns=20,  # Maximum conversation turns
        max_runtime_seconds=300.0,  # Maximum execution time
    )
    assert spec.max_cost == Decimal("10.0") and not spec.is_unlimited
    assert BudgetSpec(max_cost=0.1).max_cost == Decimal("0.1")  # not 0.1000000000000000055...
    assert BudgetSpec(max_cost="2.50").max_cost == Decimal("2.50")
    assert BudgetSpec(max_cost=Decimal("3")).max_cost == Decimal("3")
    assert BudgetSpec(max_tokens=0).max_tokens == 0
    assert BudgetSpec.from_dict(spec.to_dict()) == spec
    assert BudgetSpec.from_dict(None) == BudgetSpec()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_tokens": -1}, "max_tokens must be >= 0"),
        ({"max_cost": -0.01}, "max_cost must be >= 0"),
        ({"max_cost": "-1"}, "max_cost must be >= 0"),
        ({"max_tool_calls": -5}, "max_tool_calls must be >= 0"),
        ({"max_turns": -1}, "max_turns must be >= 0"),
        ({"max_runtime_seconds": -1.0}, "max_runtime_seconds must be > 0"),
        ({"max_runtime_seconds": 0}, "max_runtime_seconds must be > 0"),
        ({"max_cost": "ten dollars"}, "max_cost must be a number"),
        ({"max_cost": float("nan")}, "max_cost must be finite"),
        ({"max_tokens": 1.5}, "max_tokens must be an int"),
        ({"max_turns": True}, "max_turns must be an int"),
        ({"max_cost": [1]}, "max_cost must be a Decimal"),
    ],
)
def test_budget_spec_rejects_bad_values(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        BudgetSpec(**kwargs)  # type: ignore[arg-type]


def test_policy_ref_seed_block_and_validation() -> None:
    ref = PolicyRef(
        name="production",  # Policy name
        version="v1",  # Optional version
        overrides={"allow_web": True},  # Local overrides
    )
    assert ref.overrides == {"allow_web": True}
    assert PolicyRef.from_dict(ref.to_dict()) == ref
    assert PolicyRef("p").version is None and PolicyRef("p").overrides == {}
    with pytest.raises(ValidationError, match="policy name"):
        PolicyRef(name="")
    with pytest.raises(ValidationError, match="overrides must be a mapping"):
        PolicyRef(name="p", overrides=["allow_web"])  # type: ignore[arg-type]


def test_run_versions_seed_block_and_validation() -> None:
    versions = RunVersions(
        runtime_version="1.0.0",
        llm_client_version="0.2.0",
        operator_version="1.0.0",
        model_version="gpt-4-0125",
        schema_version=1,
    )
    assert RunVersions.from_dict(versions.to_dict()) == versions
    with pytest.raises(ValidationError, match="schema_version must be >= 1"):
        RunVersions(schema_version=0)
    with pytest.raises(ValidationError, match="model_version"):
        RunVersions(model_version=4)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"scope_id": ""}, "scope_id"),
        ({"principal_id": 7}, "principal_id"),
        ({"run_id": None}, "run_id cannot be None"),
        ({"budgets": {"max_tokens": 1}}, "budgets must be a BudgetSpec"),
        ({"policy_ref": "production"}, "policy_ref must be a PolicyRef"),
        ({"cancellation_token": object()}, "cancellation_token"),
    ],
)
def test_execution_context_rejects_bad_fields(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        ExecutionContext(**kwargs)  # type: ignore[arg-type]


def test_metadata_is_copied_so_the_callers_dict_cannot_change_the_context() -> None:
    meta = {"env": "prod"}
    ctx = ExecutionContext(metadata=meta)
    meta["env"] = "dev"
    assert ctx.metadata == {"env": "prod"}
