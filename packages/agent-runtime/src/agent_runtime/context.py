"""ExecutionContext: the one carrier of identity, tracing, limits, policy and cancellation in the kernel.

Every kernel operation (jobs, actions, policy, ledger, events) takes the same context, so a tenant,
a trace or a budget never has to be threaded through as loose arguments. It converts into llm-client's
:class:`~llm_client.RequestContext` rather than duplicating it, so limits and cancellation reach the
model call unchanged; the cancellation token *is* llm-client's token, the one primitive of the stack.

Ids: ``run_id`` is a UUID string (what agent-runtime-core maps runs by); ``trace_id`` is 32 hex digits
and ``span_id`` 16, the W3C / OpenTelemetry formats, so an OTel exporter can use them as they are.
"""

from __future__ import annotations

import functools
import math
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from llm_client import CancellationToken, RequestBudget, RequestContext

from .errors import ValidationError

__all__ = [
    "BudgetSpec",
    "ExecutionContext",
    "PolicyRef",
    "RunVersions",
    "new_run_id",
    "new_span_id",
    "new_trace_id",
]


def new_run_id() -> str:
    return str(uuid.uuid4())


def new_trace_id() -> str:
    return secrets.token_hex(16)


def new_span_id() -> str:
    return secrets.token_hex(8)


def _check_id(name: str, value: object) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ValidationError(f"{name} must be a non-empty string or None, got {value!r}")


def _check_count(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{name} must be an int or None, got {value!r}")
    if value < 0:
        raise ValidationError(f"{name} must be >= 0, got {value}")
    return value


def _to_decimal(name: str, value: object) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, float, str)):
        raise ValidationError(f"{name} must be a Decimal, int, float or numeric string, got {value!r}")
    try:
        # str() first: Decimal(0.1) would carry the binary float's 55 digits into every cost sum.
        result = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise ValidationError(f"{name} must be a number, got {value!r}") from None
    if not result.is_finite():
        raise ValidationError(f"{name} must be finite, got {value!r}")
    if result < 0:
        raise ValidationError(f"{name} must be >= 0, got {value}")
    return result


def _require_instance(name: str, value: object, cls: type, *, optional: bool = False) -> None:
    if (value is None and optional) or isinstance(value, cls):
        return
    expected = f"a {cls.__name__}" + (" or None" if optional else "")
    raise ValidationError(f"{name} must be {expected}, got {type(value).__name__}")


def _mapping(name: str, value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError(f"{name} must be a mapping, got {type(value).__name__}")
    return dict(value)


@dataclass(frozen=True, slots=True, init=False)
class BudgetSpec:
    """Resource limits of one execution; ``None`` means unlimited.

    ``max_cost`` is in dollars and always a :class:`~decimal.Decimal` once stored (llm-client prices
    usage in Decimal, so comparisons are exact); floats and strings are accepted for convenience.
    ``max_runtime_seconds`` must be positive: a zero-second run cannot do anything.
    """

    max_tokens: int | None
    max_cost: Decimal | None
    max_tool_calls: int | None
    max_turns: int | None
    max_runtime_seconds: float | None

    def __init__(
        self,
        max_tokens: int | None = None,
        max_cost: Decimal | float | str | None = None,
        max_tool_calls: int | None = None,
        max_turns: int | None = None,
        max_runtime_seconds: float | None = None,
    ) -> None:
        runtime: float | None = None
        if max_runtime_seconds is not None:
            if isinstance(max_runtime_seconds, bool) or not isinstance(max_runtime_seconds, (int, float)):
                raise ValidationError(f"max_runtime_seconds must be a number, got {max_runtime_seconds!r}")
            runtime = float(max_runtime_seconds)
            if not math.isfinite(runtime) or runtime <= 0:
                raise ValidationError(
                    f"max_runtime_seconds must be > 0 and finite, got {max_runtime_seconds}"
                )
        object.__setattr__(self, "max_tokens", _check_count("max_tokens", max_tokens))
        object.__setattr__(self, "max_cost", _to_decimal("max_cost", max_cost))
        object.__setattr__(self, "max_tool_calls", _check_count("max_tool_calls", max_tool_calls))
        object.__setattr__(self, "max_turns", _check_count("max_turns", max_turns))
        object.__setattr__(self, "max_runtime_seconds", runtime)

    @property
    def is_unlimited(self) -> bool:
        return all(
            v is None
            for v in (
                self.max_tokens,
                self.max_cost,
                self.max_tool_calls,
                self.max_turns,
                self.max_runtime_seconds,
            )
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the cost is a string so no precision is lost to a float."""
        return {
            "max_tokens": self.max_tokens,
            "max_cost": None if self.max_cost is None else str(self.max_cost),
            "max_tool_calls": self.max_tool_calls,
            "max_turns": self.max_turns,
            "max_runtime_seconds": self.max_runtime_seconds,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> BudgetSpec:
        if data is None:
            return cls()
        data = _mapping("budgets", data)
        unknown = set(data) - {"max_tokens", "max_cost", "max_tool_calls", "max_turns", "max_runtime_seconds"}
        if unknown:
            raise ValidationError(f"unknown budget field(s): {', '.join(sorted(unknown))}")
        return cls(**data)


@dataclass(frozen=True, slots=True)
class PolicyRef:
    """Names the policy a run is evaluated under; ``overrides`` are run-local tweaks of it."""

    name: str
    version: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValidationError(f"policy name must be a non-empty string, got {self.name!r}")
        if self.version is not None and not isinstance(self.version, str):
            raise ValidationError(f"policy version must be a string or None, got {self.version!r}")
        object.__setattr__(self, "overrides", _mapping("policy overrides", self.overrides))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "overrides": dict(self.overrides)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PolicyRef:
        data = _mapping("policy_ref", data)
        if "name" not in data:
            raise ValidationError("policy_ref needs a 'name'")
        return cls(name=data["name"], version=data.get("version"), overrides=data.get("overrides") or {})


def _runtime_version() -> str:
    from . import __version__

    return __version__


def _llm_client_version() -> str:
    import llm_client

    return str(llm_client.__version__)


@dataclass(frozen=True, slots=True)
class RunVersions:
    """What produced a run, recorded so a replay can tell whether it runs under the same code and model.

    ``runtime_version`` and ``llm_client_version`` default to the installed packages, so a context
    created without thinking about versions still records them.
    """

    runtime_version: str | None = field(default_factory=_runtime_version)
    llm_client_version: str | None = field(default_factory=_llm_client_version)
    operator_version: str | None = None
    model_version: str | None = None
    schema_version: int = 1

    def __post_init__(self) -> None:
        for name in ("runtime_version", "llm_client_version", "operator_version", "model_version"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ValidationError(f"{name} must be a string or None, got {value!r}")
        if isinstance(self.schema_version, bool) or not isinstance(self.schema_version, int):
            raise ValidationError(f"schema_version must be an int, got {self.schema_version!r}")
        if self.schema_version < 1:
            raise ValidationError(f"schema_version must be >= 1, got {self.schema_version}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "runtime_version": self.runtime_version,
            "llm_client_version": self.llm_client_version,
            "operator_version": self.operator_version,
            "model_version": self.model_version,
            "schema_version": self.schema_version,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunVersions:
        """Missing keys stay missing (None), not today's versions: a stored run keeps its history."""
        data = _mapping("versions", data)
        return cls(
            runtime_version=data.get("runtime_version"),
            llm_client_version=data.get("llm_client_version"),
            operator_version=data.get("operator_version"),
            model_version=data.get("model_version"),
            schema_version=data.get("schema_version", 1),
        )


@functools.cache
def _installed_versions() -> RunVersions:
    """The versions of this process (frozen, so every context can share the one instance)."""
    return RunVersions()


_ID_FIELDS = (
    "scope_id",
    "principal_id",
    "session_id",
    "run_id",
    "job_id",
    "trace_id",
    "span_id",
    "parent_span_id",
)


@dataclass(frozen=True, slots=True)
class ExecutionContext:
    """Identity, tracing, budgets, policy, versions and cancellation of one execution.

    Immutable: derive with :meth:`child` and :meth:`with_job`. Derived contexts share the
    cancellation token and the live :class:`~llm_client.RequestBudget` (``request_budget``), so
    cancelling, or spending, anywhere in a run is seen everywhere in it. Neither is serialised:
    :meth:`from_dict` starts a fresh token and budget (the durable record of spending is the ledger).
    Equality ignores both.
    """

    scope_id: str | None = None
    principal_id: str | None = None
    session_id: str | None = None
    run_id: str = field(default_factory=new_run_id)
    job_id: str | None = None
    trace_id: str = field(default_factory=new_trace_id)
    span_id: str = field(default_factory=new_span_id)
    parent_span_id: str | None = None
    budgets: BudgetSpec = field(default_factory=BudgetSpec)
    policy_ref: PolicyRef | None = None
    versions: RunVersions = field(default_factory=lambda: _installed_versions())
    metadata: Mapping[str, Any] = field(default_factory=dict)
    cancellation_token: CancellationToken = field(
        default_factory=CancellationToken, compare=False, repr=False
    )
    request_budget: RequestBudget | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in _ID_FIELDS:
            _check_id(name, getattr(self, name))
        for name in ("run_id", "trace_id", "span_id"):
            if getattr(self, name) is None:
                raise ValidationError(f"{name} cannot be None (leave it out to generate one)")
        _require_instance("budgets", self.budgets, BudgetSpec)
        _require_instance("policy_ref", self.policy_ref, PolicyRef, optional=True)
        _require_instance("versions", self.versions, RunVersions)
        _require_instance("cancellation_token", self.cancellation_token, CancellationToken)
        object.__setattr__(self, "metadata", _mapping("metadata", self.metadata))
        # The live budget must describe *these* limits: a replace(budgets=...) gets a new one.
        budget = self.request_budget
        limits = (self.budgets.max_tokens, self.budgets.max_cost)
        if budget is not None and (budget.max_tokens, budget.max_cost) != limits:
            budget = None
        if budget is None and limits != (None, None):
            budget = RequestBudget(*limits)
        object.__setattr__(self, "request_budget", budget)

    @property
    def is_cancelled(self) -> bool:
        return self.cancellation_token.is_cancelled

    def child(self, new_span: bool = True, **changes: Any) -> ExecutionContext:
        """A context for a nested operation: same trace, token and budgets.

        With ``new_span`` the child gets a new span whose parent is this context's span (what a
        tracer needs to draw the nesting); without it, the child stays in this span. ``changes``
        override any other field (e.g. ``metadata``).
        """
        if new_span:
            changes.setdefault("span_id", new_span_id())
            changes.setdefault("parent_span_id", self.span_id)
        return replace(self, **changes)

    def with_job(self, job_id: str) -> ExecutionContext:
        if not isinstance(job_id, str) or not job_id:
            raise ValidationError(f"job_id must be a non-empty string, got {job_id!r}")
        return replace(self, job_id=job_id)

    def to_request_context(self, **overrides: Any) -> RequestContext:
        """The llm-client view of this context, for ``agent.run(..., context=...)``.

        Every RequestContext made from this context (or its children) shares one RequestBudget, so
        the token and cost limits hold across all model calls of the run. ``timeout`` is
        ``max_runtime_seconds``: no single model call may outlast the whole run.
        """
        values: dict[str, Any] = {
            "scope_id": self.scope_id,
            "principal_id": self.principal_id,
            "session_id": self.session_id,
            "run_id": self.run_id,
            "job_id": self.job_id,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_span_id": self.parent_span_id,
            "max_tokens": self.budgets.max_tokens,
            "max_cost": self.budgets.max_cost,
            "timeout": self.budgets.max_runtime_seconds,
            "budget": self.request_budget,
            "cancellation_token": self.cancellation_token,
            "metadata": dict(self.metadata),
        }
        values.update(overrides)
        return RequestContext(**values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; the cancellation token and the live budget are process-local and left out."""
        data: dict[str, Any] = {name: getattr(self, name) for name in _ID_FIELDS}
        data["budgets"] = self.budgets.to_dict()
        data["policy_ref"] = None if self.policy_ref is None else self.policy_ref.to_dict()
        data["versions"] = self.versions.to_dict()
        data["metadata"] = dict(self.metadata)
        return data

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, cancellation_token: CancellationToken | None = None
    ) -> ExecutionContext:
        """Rebuild a context, e.g. after a restart; pass ``cancellation_token`` to bind it to a live one.

        Unknown keys are ignored (a newer writer may add fields); missing generated ids are
        generated, as in the constructor.
        """
        data = _mapping("execution context", data)
        kwargs: dict[str, Any] = {name: data[name] for name in _ID_FIELDS if data.get(name) is not None}
        kwargs["budgets"] = BudgetSpec.from_dict(data.get("budgets"))
        if data.get("policy_ref") is not None:
            kwargs["policy_ref"] = PolicyRef.from_dict(data["policy_ref"])
        if data.get("versions") is not None:
            kwargs["versions"] = RunVersions.from_dict(data["versions"])
        kwargs["metadata"] = data.get("metadata") or {}
        if cancellation_token is not None:
            kwargs["cancellation_token"] = cancellation_token
        return cls(**kwargs)
