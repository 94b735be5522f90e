"""Budgets: limits on tokens, cost, model requests and tool calls over several windows.

Windows: ``per_request`` (the pending amount alone), ``per_minute`` (rolling: the last 60 seconds),
``daily`` and ``monthly`` (calendar windows in UTC: since 00:00 UTC today, since 00:00 UTC on the 1st
of this month), ``total`` (all time). A budget applies to a request when every identity it names
(scope, principal, session) equals the request's; a budget naming none applies to everything.

The decision logic lives here, once; each LedgerWriter only supplies the usage it sees inside its
own atomic section (see ``LedgerWriter.reserve``).
"""

from __future__ import annotations

import enum
import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from llm_client.errors import BudgetExceededError as _LLMBudgetExceededError

from ..errors import AgentRuntimeError, ValidationError
from ..policy.types import check_count, to_decimal
from .events import UsageRecord

__all__ = [
    "Budget",
    "BudgetDecision",
    "BudgetCheck",
    "BudgetExceededError",
    "Reservation",
    "Window",
    "METRICS",
    "window_start",
    "identity_key",
    "evaluate_budgets",
]

METRICS: tuple[str, ...] = ("tokens", "cost", "requests", "tool_calls")


class BudgetDecision(enum.StrEnum):
    """ALLOW < WARN < DEGRADE < DENY; several budgets combine to the most severe."""

    ALLOW = "allow"
    WARN = "warn"
    DEGRADE = "degrade"
    DENY = "deny"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {
    BudgetDecision.ALLOW: 0,
    BudgetDecision.WARN: 1,
    BudgetDecision.DEGRADE: 2,
    BudgetDecision.DENY: 3,
}


class Window(enum.StrEnum):
    PER_REQUEST = "per_request"
    PER_MINUTE = "per_minute"
    DAILY = "daily"
    MONTHLY = "monthly"
    TOTAL = "total"


_DAY = 86400.0


def identity_key(scope_id: str | None, principal_id: str | None, session_id: str | None) -> str:
    """The text a budget's identity is stored and locked under (``None`` parts are wildcards)."""
    return json.dumps([scope_id, principal_id, session_id])


def window_start(window: Window, now: float) -> float | None:
    """Epoch seconds where ``window`` begins at ``now``; ``None`` for all time (and per request)."""
    if window is Window.PER_MINUTE:
        return now - 60.0
    if window is Window.DAILY:
        return now - now % _DAY  # epoch time has no leap seconds: every UTC day is 86,400 s
    if window is Window.MONTHLY:
        return _month_start(now - now % _DAY)
    return None


@functools.lru_cache(maxsize=64)
def _month_start(day_start: float) -> float:
    day = datetime.fromtimestamp(day_start, UTC)
    return day.replace(day=1).timestamp()


class BudgetExceededError(AgentRuntimeError, _LLMBudgetExceededError):
    """A budget denied the operation. Also an ``llm_client.BudgetExceededError``, so one ``except``
    catches both the in-process per-request budget and the ledger's durable budgets.
    """

    def __init__(
        self,
        reason: str,
        *,
        decision: BudgetDecision = BudgetDecision.DENY,
        violations: Sequence[str] = (),
    ) -> None:
        super().__init__(reason or "budget exceeded")
        self.reason = reason
        self.decision = decision
        self.violations = list(violations)


_STRATEGIES = ("deny", "degrade", "warn")


@dataclass(frozen=True, slots=True)
class Budget:
    """Limits for one scope / principal / session. ``None`` means no limit.

    ``warning_threshold`` (0 < t <= 1, or None to disable) turns the decision to WARN once usage plus
    the pending amount reaches that fraction of a limit. ``exceed_strategy`` says what passing a limit
    yields: ``"deny"`` (DENY, nothing reserved), ``"degrade"`` (DEGRADE: proceed, e.g. on a cheaper
    model) or ``"warn"`` (WARN: proceed and record it).
    """

    scope_id: str | None = None
    principal_id: str | None = None
    session_id: str | None = None

    max_tokens_per_request: int | None = None
    max_tokens_per_minute: int | None = None
    max_tokens_daily: int | None = None
    max_tokens_monthly: int | None = None
    max_tokens_total: int | None = None

    max_cost_per_request: Decimal | None = None
    max_cost_per_minute: Decimal | None = None
    max_cost_daily: Decimal | None = None
    max_cost_monthly: Decimal | None = None
    max_cost_total: Decimal | None = None

    max_requests_per_minute: int | None = None
    max_requests_daily: int | None = None
    max_requests_monthly: int | None = None
    max_requests_total: int | None = None

    max_tool_calls_per_request: int | None = None
    max_tool_calls_per_minute: int | None = None
    max_tool_calls_daily: int | None = None
    max_tool_calls_monthly: int | None = None
    max_tool_calls_total: int | None = None

    warning_threshold: float | None = 0.8
    exceed_strategy: Literal["deny", "degrade", "warn"] = "deny"
    name: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    #: (metric, window, limit) of every limit set, worked out once: checks read it on every call
    _limits: tuple[tuple[str, Window, int | Decimal], ...] = field(
        init=False, repr=False, compare=False, default=()
    )
    _threshold: Decimal | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        for f in fields(self):
            if not f.name.startswith("max_"):
                continue
            value = getattr(self, f.name)
            if f.name.startswith("max_cost_"):
                object.__setattr__(self, f.name, to_decimal(value, f.name))
            else:
                check_count(value, f.name)
        t = self.warning_threshold
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t <= 1):
            raise ValidationError(f"warning_threshold must be in (0, 1] or None, got {t!r}")
        if self.exceed_strategy not in _STRATEGIES:
            raise ValidationError(
                f"exceed_strategy must be one of {_STRATEGIES}, got {self.exceed_strategy!r}"
            )
        limits = []
        for metric in METRICS:
            for window in Window:
                value = getattr(self, f"max_{metric}_{_SUFFIX[window]}", None)
                if value is not None:
                    limits.append((metric, window, value))
        object.__setattr__(self, "_limits", tuple(limits))
        object.__setattr__(self, "_threshold", None if t is None else Decimal(str(t)))

    @property
    def key(self) -> str:
        """Identity of the budget: ``Ledger.set_budget`` replaces a budget with the same key."""
        return identity_key(self.scope_id, self.principal_id, self.session_id)

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        parts = [
            f"{k}={v}"
            for k, v in (
                ("scope", self.scope_id),
                ("principal", self.principal_id),
                ("session", self.session_id),
            )
            if v is not None
        ]
        return "budget(" + (", ".join(parts) or "global") + ")"

    def limits(self) -> list[tuple[str, Window, int | Decimal]]:
        """Every limit set, as (metric, window, limit)."""
        return list(self._limits)

    def windows(self) -> set[Window]:
        """The time windows whose usage a check must sum (per-request needs none)."""
        return {w for _, w, _ in self._limits if w is not Window.PER_REQUEST}

    def applies_to(self, scope_id: str | None, principal_id: str | None, session_id: str | None) -> bool:
        return (
            (self.scope_id is None or self.scope_id == scope_id)
            and (self.principal_id is None or self.principal_id == principal_id)
            and (self.session_id is None or self.session_id == session_id)
        )


_SUFFIX = {
    Window.PER_REQUEST: "per_request",
    Window.PER_MINUTE: "per_minute",
    Window.DAILY: "daily",
    Window.MONTHLY: "monthly",
    Window.TOTAL: "total",
}
_WINDOW_TEXT = {
    Window.PER_REQUEST: "per-request",
    Window.PER_MINUTE: "per-minute",
    Window.DAILY: "daily",
    Window.MONTHLY: "monthly",
    Window.TOTAL: "total",
}


@dataclass(frozen=True, slots=True)
class Reservation:
    """Budget held for an in-flight operation until it is settled, released, or expires."""

    reservation_id: str
    amounts: UsageRecord
    created_at: float
    expires_at: float
    scope_id: str | None = None
    principal_id: str | None = None
    session_id: str | None = None

    def live(self, now: float) -> bool:
        return now < self.expires_at


@dataclass(frozen=True, slots=True)
class BudgetCheck:
    """The answer of a budget check; ``reservation`` is set whenever the operation may proceed and
    at least one budget applies.
    """

    decision: BudgetDecision
    reason: str
    reservation: Reservation | None = None
    exceeded: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return self.decision is not BudgetDecision.DENY

    def raise_if_denied(self) -> BudgetCheck:
        if self.decision is BudgetDecision.DENY:
            raise BudgetExceededError(self.reason, decision=self.decision, violations=self.exceeded)
        return self


def _fmt(metric: str, value: int | Decimal) -> str:
    return f"${value}" if metric == "cost" else str(value)


def _what(budget: Budget, metric: str, window: Window) -> str:
    return f"{budget.label}: {_WINDOW_TEXT[window]} {metric.replace('_', ' ')}"


def _detail(metric: str, used: int | Decimal, pending: int | Decimal, limit: int | Decimal) -> str:
    return f"{_fmt(metric, used)} used + {_fmt(metric, pending)} pending, limit {_fmt(metric, limit)}"


def evaluate_budgets(
    budgets: Sequence[Budget], usages: Sequence[Mapping[Window, UsageRecord]], pending: UsageRecord
) -> BudgetCheck:
    """Decide from each budget's usage per window (events plus live reservations) and the pending amount.

    A limit is passed when used + pending > limit. For tokens and cost, whose pending amount is an
    estimate, a budget already used up (used >= limit) also counts as passed when nothing is pending,
    so a caller that cannot estimate does not slip through on an exhausted budget.
    """
    if not budgets:
        return BudgetCheck(BudgetDecision.ALLOW, "no budget applies")
    worst = BudgetDecision.ALLOW
    exceeded_all: list[str] = []
    warnings_all: list[str] = []
    for budget, usage in zip(budgets, usages, strict=True):
        exceeded: list[str] = []
        warnings: list[str] = []
        threshold = budget._threshold
        for metric, window, limit in budget._limits:
            pend: int | Decimal = getattr(pending, metric)
            used: int | Decimal = 0 if window is Window.PER_REQUEST else getattr(usage[window], metric)
            value = used + pend
            exhausted = window is not Window.PER_REQUEST and metric in ("tokens", "cost") and not pend
            if value > limit or (exhausted and used >= limit):
                detail = _detail(metric, used, pend, limit)
                exceeded.append(f"{_what(budget, metric, window)} exceeded ({detail})")
            elif threshold is not None and value > 0 and value >= threshold * limit:
                warnings.append(
                    f"{_what(budget, metric, window)} at {value / limit:.0%} of limit "
                    f"({_detail(metric, used, pend, limit)})"
                )
        if exceeded:
            decision = {
                "deny": BudgetDecision.DENY,
                "degrade": BudgetDecision.DEGRADE,
                "warn": BudgetDecision.WARN,
            }[budget.exceed_strategy]
        elif warnings:
            decision = BudgetDecision.WARN
        else:
            decision = BudgetDecision.ALLOW
        if decision.severity > worst.severity:
            worst = decision
        exceeded_all += exceeded
        warnings_all += warnings
    reason = "; ".join(exceeded_all + warnings_all) or "within budget"
    return BudgetCheck(worst, reason, exceeded=exceeded_all, warnings=warnings_all)
