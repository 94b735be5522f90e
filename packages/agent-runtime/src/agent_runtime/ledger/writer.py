"""Where ledger events live, and the atomic reserve / settle primitives budgets rely on.

Reserve-then-settle: a check that lets an operation proceed holds its estimated amount as a
reservation, inside the same atomic section that summed the usage, so concurrent checks see each
other's in-flight work and cannot all pass on the same remaining budget. Settling deletes the
reservation and writes the real usage together. Reservations expire, so a worker that crashed
mid-call frees its hold after the TTL.
"""

from __future__ import annotations

import abc
from collections import deque
from collections.abc import Sequence
from datetime import datetime

from llm_client.context import new_request_id

from ..errors import ValidationError
from .budget import Budget, BudgetCheck, Reservation, Window, evaluate_budgets, window_start
from .events import LedgerEvent, LedgerEventType, UsageRecord, to_epoch

__all__ = ["LedgerWriter", "InMemoryLedgerWriter", "new_reservation_id"]


_ZERO = UsageRecord()


def new_reservation_id() -> str:
    return f"rsv-{new_request_id()}"


def _check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValidationError(f"limit must be a positive integer, got {limit!r}")
    return limit


def _check_ttl(ttl_seconds: float) -> float:
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, (int, float)) or not ttl_seconds > 0:
        raise ValidationError(f"ttl_seconds must be > 0, got {ttl_seconds!r}")
    return float(ttl_seconds)


class LedgerWriter(abc.ABC):
    """Storage of the ledger. Implementations must make ``reserve`` atomic with respect to every other
    ``reserve`` touching one of the same budgets, and ``settle`` atomic (reservation gone and event
    written, or neither).
    """

    @abc.abstractmethod
    async def write(self, event: LedgerEvent) -> None:
        """Append ``event``. Writing an event_id twice raises ValidationError (the ledger is append-only)."""

    @abc.abstractmethod
    async def get_usage(
        self,
        *,
        scope_id: str | None = None,
        principal_id: str | None = None,
        session_id: str | None = None,
        since: datetime | float | None = None,
        until: datetime | float | None = None,
    ) -> UsageRecord:
        """Recorded consumption (reservations excluded) matching every given filter, since <= t < until."""

    @abc.abstractmethod
    async def list_events(
        self,
        *,
        scope_id: str | None = None,
        event_type: LedgerEventType | str | None = None,
        limit: int = 100,
        principal_id: str | None = None,
        session_id: str | None = None,
        job_id: str | None = None,
        run_id: str | None = None,
        since: datetime | float | None = None,
        until: datetime | float | None = None,
    ) -> list[LedgerEvent]:
        """Matching events, newest first, at most ``limit``."""

    @abc.abstractmethod
    async def reserve(
        self,
        budgets: Sequence[Budget],
        pending: UsageRecord,
        *,
        now: float,
        ttl_seconds: float,
        scope_id: str | None = None,
        principal_id: str | None = None,
        session_id: str | None = None,
        reservation_id: str | None = None,
    ) -> BudgetCheck:
        """Atomically: sum usage and live reservations for each budget, decide with
        :func:`evaluate_budgets`, and unless the decision is DENY hold ``pending`` as a reservation.
        """

    @abc.abstractmethod
    async def settle(self, reservation_id: str, event: LedgerEvent | None) -> bool:
        """Drop the reservation and write ``event`` (if any) atomically. The event is written even when
        the reservation is gone (expired or already settled): real usage is never lost. Returns
        whether the reservation was still held.
        """

    async def release(self, reservation_id: str) -> bool:
        """Give a reservation back without usage (the operation failed or was cancelled)."""
        return await self.settle(reservation_id, None)

    async def close(self) -> None:
        """Release resources the writer owns (the Postgres writer does not own its pool)."""


def _matches(
    obj: LedgerEvent | Reservation, scope_id: str | None, principal_id: str | None, session_id: str | None
) -> bool:
    return (
        (scope_id is None or obj.scope_id == scope_id)
        and (principal_id is None or obj.principal_id == principal_id)
        and (session_id is None or obj.session_id == session_id)
    )


_Key = tuple[str | None, str | None, str | None]


def identities(scope_id: str | None, principal_id: str | None, session_id: str | None) -> list[_Key]:
    """Every identity a budget could name that this (scope, principal, session) falls under."""
    scopes = (None,) if scope_id is None else (None, scope_id)
    principals = (None,) if principal_id is None else (None, principal_id)
    sessions = (None,) if session_id is None else (None, session_id)
    return [(s, p, q) for s in scopes for p in principals for q in sessions]


class _Totals:
    """Running usage of one identity: all time, per UTC day, per UTC month, and the last minute."""

    __slots__ = ("daily", "monthly", "recent", "total")

    def __init__(self) -> None:
        self.total = _ZERO
        self.daily: dict[float, UsageRecord] = {}
        self.monthly: dict[float, UsageRecord] = {}
        self.recent: deque[tuple[float, UsageRecord]] = deque()

    def add(self, usage: UsageRecord, ts: float, day: float, month: float) -> None:
        self.total = self.total + usage
        self.daily[day] = self.daily.get(day, _ZERO) + usage
        self.monthly[month] = self.monthly.get(month, _ZERO) + usage
        recent = self.recent
        recent.append((ts, usage))
        while recent[0][0] < ts - 120.0:  # only the last minute is ever asked for (plus slack)
            recent.popleft()

    def recorded(self, window: Window, now: float) -> UsageRecord:
        start = window_start(window, now)
        if start is None:
            return self.total
        if window is Window.PER_MINUTE:
            recent = self.recent
            while recent and recent[0][0] < start - 60.0:  # keep a minute of slack for late writes
                recent.popleft()
            return UsageRecord.sum(u for t, u in recent if t >= start)
        buckets = self.daily if window is Window.DAILY else self.monthly
        return UsageRecord.sum(u for bucket, u in buckets.items() if bucket >= start)


class InMemoryLedgerWriter(LedgerWriter):
    """Process-local ledger for tests and single-process deployments.

    ``reserve`` and ``settle`` contain no ``await`` between reading and writing, so on one event loop
    they are atomic without a lock. Budget checks read running totals (all time, per UTC day, per
    UTC month, the last minute) kept for each identity a budget has been checked for: the first
    check of an identity sums the events once, every event written afterwards updates its totals,
    so a check costs the same after a million events as after one, and writing an event costs one
    update per such identity, not one per identity it could fall under.
    """

    def __init__(self) -> None:
        self._events: list[LedgerEvent] = []
        self._ids: set[str] = set()
        self._reservations: dict[str, Reservation] = {}
        self._totals: dict[_Key, _Totals] = {}

    @property
    def reservations(self) -> list[Reservation]:
        return list(self._reservations.values())

    async def write(self, event: LedgerEvent) -> None:
        self._append(event)

    def _append(self, event: LedgerEvent) -> None:
        if not isinstance(event, LedgerEvent):
            raise ValidationError(f"write expects a LedgerEvent, got {type(event).__name__}")
        if event.event_id in self._ids:
            raise ValidationError(f"ledger event {event.event_id!r} was already written")
        self._ids.add(event.event_id)
        self._events.append(event)
        if event.type.counts_as_usage and self._totals:
            tracked = [
                totals
                for key in identities(event.scope_id, event.principal_id, event.session_id)
                if (totals := self._totals.get(key)) is not None
            ]
            if tracked:
                _count(tracked, event)

    def _totals_for(self, key: _Key) -> _Totals:
        totals = self._totals.get(key)
        if totals is None:
            totals = self._totals[key] = _Totals()
            for event in self._events:
                if event.type.counts_as_usage and _matches(event, *key):
                    _count([totals], event)
        return totals

    async def get_usage(
        self,
        *,
        scope_id: str | None = None,
        principal_id: str | None = None,
        session_id: str | None = None,
        since: datetime | float | None = None,
        until: datetime | float | None = None,
    ) -> UsageRecord:
        lo, hi = to_epoch(since, "since"), to_epoch(until, "until")
        return UsageRecord.sum(
            e.usage()
            for e in self._events
            if _matches(e, scope_id, principal_id, session_id)
            and (lo is None or e.timestamp >= lo)
            and (hi is None or e.timestamp < hi)
        )

    async def list_events(
        self,
        *,
        scope_id: str | None = None,
        event_type: LedgerEventType | str | None = None,
        limit: int = 100,
        principal_id: str | None = None,
        session_id: str | None = None,
        job_id: str | None = None,
        run_id: str | None = None,
        since: datetime | float | None = None,
        until: datetime | float | None = None,
    ) -> list[LedgerEvent]:
        _check_limit(limit)
        kind = None if event_type is None else _event_type(event_type)
        lo, hi = to_epoch(since, "since"), to_epoch(until, "until")
        found = [
            e
            for e in self._events
            if _matches(e, scope_id, principal_id, session_id)
            and (kind is None or e.type is kind)
            and (job_id is None or e.job_id == job_id)
            and (run_id is None or e.run_id == run_id)
            and (lo is None or e.timestamp >= lo)
            and (hi is None or e.timestamp < hi)
        ]
        # Stable sort on timestamp, newest first; among equal timestamps the later write comes first.
        found.reverse()
        found.sort(key=lambda e: e.timestamp, reverse=True)
        return found[:limit]

    async def reserve(
        self,
        budgets: Sequence[Budget],
        pending: UsageRecord,
        *,
        now: float,
        ttl_seconds: float,
        scope_id: str | None = None,
        principal_id: str | None = None,
        session_id: str | None = None,
        reservation_id: str | None = None,
    ) -> BudgetCheck:
        ttl = _check_ttl(ttl_seconds)
        for rid in [rid for rid, r in self._reservations.items() if not r.live(now)]:
            del self._reservations[rid]
        usages = [self._window_usage(b, now) for b in budgets]
        check = evaluate_budgets(budgets, usages, pending)
        if not check.allowed or not budgets:
            return check
        reservation = Reservation(
            reservation_id=reservation_id or new_reservation_id(),
            amounts=pending,
            created_at=now,
            expires_at=now + ttl,
            scope_id=scope_id,
            principal_id=principal_id,
            session_id=session_id,
        )
        if reservation.reservation_id in self._reservations:
            raise ValidationError(f"reservation {reservation.reservation_id!r} already exists")
        self._reservations[reservation.reservation_id] = reservation
        return BudgetCheck(check.decision, check.reason, reservation, check.exceeded, check.warnings)

    def _window_usage(self, budget: Budget, now: float) -> dict[Window, UsageRecord]:
        held = UsageRecord.sum(
            r.amounts
            for r in self._reservations.values()
            if r.live(now) and _matches(r, budget.scope_id, budget.principal_id, budget.session_id)
        )
        totals = self._totals_for((budget.scope_id, budget.principal_id, budget.session_id))
        if not held.tokens and not held.cost and not held.requests and not held.tool_calls:
            return {window: totals.recorded(window, now) for window in budget.windows()}
        return {window: held + totals.recorded(window, now) for window in budget.windows()}

    async def settle(self, reservation_id: str, event: LedgerEvent | None) -> bool:
        if event is not None and event.event_id in self._ids:
            raise ValidationError(f"ledger event {event.event_id!r} was already written")
        held = self._reservations.pop(reservation_id, None) is not None
        if event is not None:
            self._append(event)
        return held


def _count(totals: Sequence[_Totals], event: LedgerEvent) -> None:
    usage, ts = event.usage(), event.timestamp
    day = window_start(Window.DAILY, ts)
    month = window_start(Window.MONTHLY, ts)
    assert day is not None and month is not None
    for t in totals:
        t.add(usage, ts, day, month)


def _event_type(value: LedgerEventType | str) -> LedgerEventType:
    try:
        return LedgerEventType(value)
    except ValueError:
        raise ValidationError(f"unknown ledger event type {value!r}") from None
