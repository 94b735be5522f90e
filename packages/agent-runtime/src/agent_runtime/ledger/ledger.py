"""The Ledger: budgets checked before an operation, usage recorded after it.

``check_budget(ctx, ...)`` reserves the pending amount and remembers the reservation under the
context's identity (scope, principal, session, job, run); the next ``record_model_usage`` /
``record_tool_usage`` with the same identity settles the oldest such reservation, replacing the
estimate with the real usage. That keeps the seed's two-call pattern safe under concurrency. For work
that crosses processes, or several operations in flight under one context, use the explicit
``reserve()`` -> ``BudgetCheck.reservation`` -> ``record_*(reservation=...)`` / ``release()`` API.
The per-context tracking is process-local; the reservations themselves live in the writer.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, TypedDict

from ..errors import ValidationError
from ..policy.types import check_count, to_decimal
from .budget import Budget, BudgetCheck, BudgetDecision, Reservation
from .events import LedgerEvent, LedgerEventType, UsageRecord
from .writer import InMemoryLedgerWriter, LedgerWriter

if TYPE_CHECKING:
    from llm_client import Usage

__all__ = ["Ledger", "LedgerContext"]


class LedgerContext(Protocol):
    """What the ledger reads from an ExecutionContext (any object with these attributes works)."""

    @property
    def scope_id(self) -> str | None: ...

    @property
    def principal_id(self) -> str | None: ...

    @property
    def session_id(self) -> str | None: ...

    @property
    def job_id(self) -> str | None: ...

    @property
    def run_id(self) -> str | None: ...


_Key = tuple[str | None, str | None, str | None, str | None, str | None]


class _Ids(TypedDict):
    scope_id: str | None
    principal_id: str | None
    session_id: str | None
    job_id: str | None
    run_id: str | None


def _ids(ctx: LedgerContext) -> _Ids:
    return _Ids(
        scope_id=getattr(ctx, "scope_id", None),
        principal_id=getattr(ctx, "principal_id", None),
        session_id=getattr(ctx, "session_id", None),
        job_id=getattr(ctx, "job_id", None),
        run_id=getattr(ctx, "run_id", None),
    )


def _key(ctx: LedgerContext) -> _Key:
    i = _ids(ctx)
    return (i["scope_id"], i["principal_id"], i["session_id"], i["job_id"], i["run_id"])


_EVENT_FOR = {
    BudgetDecision.DENY: LedgerEventType.BUDGET_EXCEEDED,
    BudgetDecision.DEGRADE: LedgerEventType.BUDGET_DEGRADED,
}


class Ledger:
    """Budgets plus a writer. ``clock`` (epoch seconds) is injectable so windows can be tested."""

    def __init__(
        self,
        writer: LedgerWriter | None = None,
        *,
        reservation_ttl: float = 300.0,
        clock: Callable[[], float] = time.time,
        record_budget_events: bool = True,
    ) -> None:
        if not reservation_ttl > 0:
            raise ValidationError(f"reservation_ttl must be > 0 seconds, got {reservation_ttl!r}")
        self.writer: LedgerWriter = writer if writer is not None else InMemoryLedgerWriter()
        self.reservation_ttl = float(reservation_ttl)
        self.clock = clock
        self.record_budget_events = record_budget_events
        self._budgets: dict[str, Budget] = {}
        self._held: dict[_Key, deque[Reservation]] = {}

    # -- budgets ---------------------------------------------------------------------------------

    def set_budget(self, budget: Budget) -> Budget:
        """Add ``budget``, replacing the one with the same scope/principal/session (if any)."""
        if not isinstance(budget, Budget):
            raise ValidationError(f"set_budget expects a Budget, got {type(budget).__name__}")
        self._budgets[budget.key] = budget
        return budget

    def remove_budget(
        self, scope_id: str | None = None, principal_id: str | None = None, session_id: str | None = None
    ) -> bool:
        return self._budgets.pop(Budget(scope_id, principal_id, session_id).key, None) is not None

    @property
    def budgets(self) -> list[Budget]:
        return list(self._budgets.values())

    def budgets_for(self, ctx: LedgerContext) -> list[Budget]:
        i = _ids(ctx)
        return [
            b
            for b in self._budgets.values()
            if b.applies_to(i["scope_id"], i["principal_id"], i["session_id"])
        ]

    # -- checking --------------------------------------------------------------------------------

    async def reserve(
        self,
        ctx: LedgerContext,
        pending_tokens: int = 0,
        pending_cost: Decimal | int | float | str = Decimal(0),
        pending_tool_calls: int = 0,
        pending_requests: int | None = None,
    ) -> BudgetCheck:
        """Check every applicable budget and, unless denied, hold the pending amount.

        ``pending_requests`` defaults to 1 (one model call) unless only tool calls are pending.
        The caller owns the returned reservation: settle it via ``record_*(reservation=...)`` or
        give it back with ``release(reservation)``.
        """
        if pending_requests is None:
            pending_requests = 0 if pending_tool_calls and not pending_tokens else 1
        pending = UsageRecord(
            tokens=check_count(pending_tokens, "pending_tokens") or 0,
            cost=to_decimal(pending_cost, "pending_cost") or Decimal(0),
            requests=check_count(pending_requests, "pending_requests") or 0,
            tool_calls=check_count(pending_tool_calls, "pending_tool_calls") or 0,
        )
        i = _ids(ctx)
        check = await self.writer.reserve(
            self.budgets_for(ctx),
            pending,
            now=self.clock(),
            ttl_seconds=self.reservation_ttl,
            scope_id=i["scope_id"],
            principal_id=i["principal_id"],
            session_id=i["session_id"],
        )
        if self.record_budget_events and check.decision is not BudgetDecision.ALLOW:
            kind = _EVENT_FOR.get(check.decision)
            if kind is None:
                kind = LedgerEventType.BUDGET_EXCEEDED if check.exceeded else LedgerEventType.BUDGET_WARNING
            await self.writer.write(
                LedgerEvent(
                    type=kind,
                    timestamp=self.clock(),
                    requests=0,
                    metadata={
                        "decision": check.decision.value,
                        "reason": check.reason,
                        "pending": pending.to_dict(),
                    },
                    **i,
                )
            )
        return check

    async def check_budget(
        self,
        ctx: LedgerContext,
        pending_tokens: int = 0,
        pending_cost: Decimal | int | float | str = Decimal(0),
        pending_tool_calls: int = 0,
        pending_requests: int | None = None,
    ) -> tuple[BudgetDecision, str]:
        """``reserve`` for the seed's call pattern: the reservation is tracked under ``ctx`` and settled
        by the next ``record_*`` call (or ``release(ctx=ctx)``) for the same context.
        """
        check = await self.reserve(ctx, pending_tokens, pending_cost, pending_tool_calls, pending_requests)
        if check.reservation is not None:
            self._held.setdefault(_key(ctx), deque()).append(check.reservation)
        return check.decision, check.reason

    # -- recording -------------------------------------------------------------------------------

    async def record_model_usage(
        self,
        ctx: LedgerContext,
        usage: Usage,
        *,
        provider: str | None = None,
        model: str | None = None,
        duration_ms: float | None = None,
        metadata: Mapping[str, Any] | None = None,
        reservation: Reservation | str | None = None,
    ) -> LedgerEvent:
        event = LedgerEvent.from_llm_usage(
            usage,
            provider=provider,
            model=model,
            duration_ms=duration_ms,
            timestamp=self.clock(),
            metadata=metadata,
            **_ids(ctx),
        )
        await self.settle(self._pick(ctx, reservation), event)
        return event

    async def record_tool_usage(
        self,
        ctx: LedgerContext,
        *,
        tool_name: str,
        duration_ms: float | None = None,
        cost: Decimal | int | float | str | None = None,
        metadata: Mapping[str, Any] | None = None,
        reservation: Reservation | str | None = None,
    ) -> LedgerEvent:
        if not tool_name:
            raise ValidationError("tool_name must not be empty")
        price = to_decimal(cost, "cost")
        event = LedgerEvent(
            type=LedgerEventType.TOOL_USAGE,
            timestamp=self.clock(),
            tool_name=tool_name,
            duration_ms=duration_ms,
            cost=None if price is None else str(price),
            requests=0,
            metadata=dict(metadata or {}),
            **_ids(ctx),
        )
        await self.settle(self._pick(ctx, reservation), event)
        return event

    async def settle(self, reservation: Reservation | str | None, event: LedgerEvent) -> bool:
        """Write ``event``, dropping ``reservation`` in the same atomic step. Returns whether it was held."""
        if reservation is None:
            await self.writer.write(event)
            return False
        rid = reservation if isinstance(reservation, str) else reservation.reservation_id
        self._forget(rid)
        return await self.writer.settle(rid, event)

    async def release(
        self, reservation: Reservation | str | None = None, *, ctx: LedgerContext | None = None
    ) -> bool:
        """Give back a reservation (or the oldest one tracked for ``ctx``) when the operation did not run."""
        if reservation is None:
            if ctx is None:
                raise ValidationError("release needs a reservation or ctx=")
            reservation = self._pick(ctx, None)
            if reservation is None:
                return False
        rid = reservation if isinstance(reservation, str) else reservation.reservation_id
        self._forget(rid)
        return await self.writer.release(rid)

    async def get_usage(self, **filters: Any) -> UsageRecord:
        return await self.writer.get_usage(**filters)

    def _pick(self, ctx: LedgerContext, reservation: Reservation | str | None) -> Reservation | str | None:
        if reservation is not None:
            return reservation
        queue = self._held.get(_key(ctx))
        if not queue:
            return None
        found = queue.popleft()
        if not queue:
            del self._held[_key(ctx)]
        return found

    def _forget(self, reservation_id: str) -> None:
        for key, queue in list(self._held.items()):
            for r in queue:
                if r.reservation_id == reservation_id:
                    queue.remove(r)
                    if not queue:
                        del self._held[key]
                    return
