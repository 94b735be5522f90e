"""Ledger events (the audit trail) and UsageRecord (their sum).

Cost is kept as a decimal string on the event so it serialises without float rounding, and stays
``None`` when the price is unknown: an unpriced call is reported as unpriced, never as free.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from llm_client.context import new_request_id

from ..errors import ValidationError
from ..policy.types import to_decimal

if TYPE_CHECKING:
    from llm_client import Usage

__all__ = ["LedgerEventType", "LedgerEvent", "UsageRecord", "to_epoch"]


class LedgerEventType(enum.StrEnum):
    MODEL_USAGE = "model_usage"
    TOOL_USAGE = "tool_usage"
    BUDGET_WARNING = "budget_warning"
    BUDGET_EXCEEDED = "budget_exceeded"
    BUDGET_DEGRADED = "budget_degraded"
    POLICY_DENIED = "policy_denied"
    ADJUSTMENT = "adjustment"
    CUSTOM = "custom"

    @property
    def counts_as_usage(self) -> bool:
        """Only consumption counts against budgets; warnings and denials are audit records.

        ADJUSTMENT is consumption too (a manual correction; negative amounts are not allowed, so it
        can only add usage).
        """
        return self in _USAGE_TYPES


_USAGE_TYPES = frozenset(
    {LedgerEventType.MODEL_USAGE, LedgerEventType.TOOL_USAGE, LedgerEventType.ADJUSTMENT}
)


def to_epoch(value: datetime | float | int | None, what: str) -> float | None:
    """Queries take an aware datetime or epoch seconds; a naive datetime is ambiguous, so refused."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValidationError(f"{what} must be timezone-aware (e.g. datetime.now(timezone.utc))")
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(f"{what} must be a datetime or epoch seconds, got {value!r}")
    return float(value)


def _count(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"{what} must be a non-negative integer, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class LedgerEvent:
    """One line of the ledger. ``requests`` counts model calls (a summed agent run may hold several);
    a TOOL_USAGE event counts as one tool call.
    """

    type: LedgerEventType
    event_id: str = field(default_factory=lambda: f"evt-{new_request_id()}")
    timestamp: float = field(default_factory=time.time)
    job_id: str | None = None
    run_id: str | None = None
    scope_id: str | None = None
    principal_id: str | None = None
    session_id: str | None = None
    provider: str | None = None
    model: str | None = None
    tool_name: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cost: str | None = None
    requests: int = 1
    duration_ms: float | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "type", LedgerEventType(self.type))
        except ValueError:
            raise ValidationError(f"unknown ledger event type {self.type!r}") from None
        if not self.event_id:
            raise ValidationError("event_id must not be empty")
        for name in ("input_tokens", "output_tokens", "total_tokens", "requests"):
            _count(getattr(self, name), name)
        if not self.total_tokens and (self.input_tokens or self.output_tokens):
            object.__setattr__(self, "total_tokens", self.input_tokens + self.output_tokens)
        cost = to_decimal(self.cost, "cost")
        object.__setattr__(self, "cost", None if cost is None else str(cost))
        object.__setattr__(self, "timestamp", to_epoch(self.timestamp, "timestamp"))
        if self.duration_ms is not None and self.duration_ms < 0:
            raise ValidationError(f"duration_ms must be >= 0, got {self.duration_ms!r}")

    @property
    def cost_decimal(self) -> Decimal | None:
        return None if self.cost is None else Decimal(self.cost)

    @property
    def occurred_at(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp, UTC)

    def usage(self) -> UsageRecord:
        """What this event adds to a usage total (zero for audit-only types)."""
        if not self.type.counts_as_usage:
            return UsageRecord()
        is_model = self.type is LedgerEventType.MODEL_USAGE
        return UsageRecord(
            tokens=self.total_tokens,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cost=self.cost_decimal or Decimal(0),
            requests=self.requests if is_model else 0,
            tool_calls=1 if self.type is LedgerEventType.TOOL_USAGE else 0,
            unpriced_events=1 if self.cost is None and is_model else 0,
        )

    @classmethod
    def from_llm_usage(
        cls,
        usage: Usage,
        *,
        job_id: str | None = None,
        run_id: str | None = None,
        scope_id: str | None = None,
        principal_id: str | None = None,
        session_id: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        duration_ms: float | None = None,
        timestamp: float | None = None,
        event_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> LedgerEvent:
        """A MODEL_USAGE event from llm-client's ``Usage``; its cache and reasoning tokens go to metadata."""
        extra: dict[str, Any] = {
            k: v
            for k, v in (
                ("cached_tokens", usage.cached_tokens),
                ("cache_write_tokens", usage.cache_write_tokens),
                ("reasoning_tokens", usage.reasoning_tokens),
            )
            if v
        }
        extra.update(metadata or {})
        kwargs: dict[str, Any] = {}
        if event_id is not None:
            kwargs["event_id"] = event_id
        if timestamp is not None:
            kwargs["timestamp"] = timestamp
        return cls(
            type=LedgerEventType.MODEL_USAGE,
            job_id=job_id,
            run_id=run_id,
            scope_id=scope_id,
            principal_id=principal_id,
            session_id=session_id,
            provider=provider,
            model=model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            total_tokens=usage.total_tokens,
            cost=None if usage.cost is None else str(usage.cost),
            requests=usage.requests,
            duration_ms=duration_ms,
            metadata=extra,
            **kwargs,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "type": self.type.value,
            "timestamp": self.timestamp,
            "job_id": self.job_id,
            "run_id": self.run_id,
            "scope_id": self.scope_id,
            "principal_id": self.principal_id,
            "session_id": self.session_id,
            "provider": self.provider,
            "model": self.model,
            "tool_name": self.tool_name,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "cost": self.cost,
            "requests": self.requests,
            "duration_ms": self.duration_ms,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LedgerEvent:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValidationError(f"unknown LedgerEvent fields: {sorted(unknown)}")
        return cls(**data)


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """Summed usage. ``cost`` counts priced events only; ``unpriced_events`` says how many model
    calls had no known price, so a reader can tell "cost 0" from "cost unknown".
    """

    tokens: int = 0
    cost: Decimal = Decimal(0)
    requests: int = 0
    tool_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    unpriced_events: int = 0

    def __add__(self, other: UsageRecord) -> UsageRecord:
        if not isinstance(other, UsageRecord):
            return NotImplemented
        return UsageRecord(
            tokens=self.tokens + other.tokens,
            cost=self.cost + other.cost,
            requests=self.requests + other.requests,
            tool_calls=self.tool_calls + other.tool_calls,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            unpriced_events=self.unpriced_events + other.unpriced_events,
        )

    @property
    def total_tokens(self) -> int:
        return self.tokens

    @classmethod
    def sum(cls, records: Iterable[UsageRecord]) -> UsageRecord:
        total: UsageRecord | None = None
        for r in records:
            total = r if total is None else total + r
        return cls() if total is None else total

    def to_dict(self) -> dict[str, Any]:
        return {
            "tokens": self.tokens,
            "cost": str(self.cost),
            "requests": self.requests,
            "tool_calls": self.tool_calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "unpriced_events": self.unpriced_events,
        }
