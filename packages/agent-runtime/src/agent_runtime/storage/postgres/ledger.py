"""PostgreSQL ledger: an append-only events table, a reservations table and running totals.

Atomic reserve: one transaction takes ``pg_advisory_xact_lock`` on every applicable budget (in a
fixed order, so two reserves never deadlock), then reads usage and live reservations in each window,
decides, and inserts the reservation. The lock is taken in a statement before the reads, so under
READ COMMITTED they see every reservation committed before the lock was granted. Settle updates the
totals, deletes the reservation and inserts the event in one transaction, so a concurrent reserve
sees the usage or the hold, never both or neither.

Running totals (``<table>_totals``): per budget identity, all-time, per UTC day and per UTC month
sums, updated in the transaction that writes a usage event. A check reads a few total rows instead
of summing the window's events, so it costs the same on the first day of the month as on the last
(the per-minute window still sums the last minute's events). Totals are kept only for identities a
budget has been checked for: the first check of an identity sums its events once, under a table
lock that orders it with concurrent writers (a writer's first statement updates the totals, so each
event is counted either by that backfill or by its writer, never by both).

Time comes from the caller (the Ledger's clock), not from ``now()``: windows and expiry then follow
one clock, which also makes them testable. Workers' clocks should be NTP-synchronised.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ...errors import ValidationError
from ...ledger.budget import (
    Budget,
    BudgetCheck,
    Reservation,
    Window,
    evaluate_budgets,
    identity_key,
    window_start,
)
from ...ledger.events import LedgerEvent, LedgerEventType, UsageRecord, to_epoch
from ...ledger.writer import (
    LedgerWriter,
    _check_limit,
    _check_ttl,
    _event_type,
    identities,
    new_reservation_id,
)
from ._base import check_identifier, ensure_schema, require_asyncpg

__all__ = ["PostgresLedgerWriter"]

_USAGE_TYPES = tuple(t.value for t in LedgerEventType if t.counts_as_usage)
_NOTHING = UsageRecord()
#: What budgets count of a set of event rows: tokens, cost, model requests, tool calls
_BUDGET_SUMS = """coalesce(sum(total_tokens), 0) AS tokens, coalesce(sum(cost), 0) AS cost,
    coalesce(sum(requests) FILTER (WHERE event_type = 'model_usage'), 0) AS requests,
    count(*) FILTER (WHERE event_type = 'tool_usage') AS tool_calls"""


def _ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class PostgresLedgerWriter(LedgerWriter):
    """Ledger on an asyncpg pool (not owned: ``close()`` leaves it open). Tables are created on first use:
    ``<table_name>`` for events, ``<table_name>_reservations`` and ``<table_name>_totals``.
    """

    def __init__(self, pool: Any, table_name: str = "runtime_ledger") -> None:
        require_asyncpg()
        if pool is None:
            raise ValidationError("PostgresLedgerWriter needs an asyncpg pool, got None")
        try:
            self.table_name = check_identifier(table_name)
            self.reservations_table = check_identifier(
                f"{table_name}_reservations", "table_name (plus '_reservations')"
            )
            self.totals_table = check_identifier(f"{table_name}_totals", "table_name (plus '_totals')")
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        self._pool = pool
        #: identities whose totals are known to exist (they are never dropped once created)
        self._tracked: set[str] = set()
        o = self.totals_table
        self._add_to_totals = f"""
            INSERT INTO {o} (identity, time_window, bucket, tokens, cost, requests, tool_calls)
            SELECT r.identity, w.time_window, w.bucket, $2, $3, $4, $5
            FROM {o} r CROSS JOIN (VALUES ('total', 0::float8), ('daily', $6::float8),
                                          ('monthly', $7::float8)) AS w (time_window, bucket)
            WHERE r.identity = ANY($1::text[]) AND r.time_window = 'total'
            ORDER BY r.identity, w.time_window
            ON CONFLICT (identity, time_window, bucket) DO UPDATE SET
                tokens = {o}.tokens + EXCLUDED.tokens, cost = {o}.cost + EXCLUDED.cost,
                requests = {o}.requests + EXCLUDED.requests,
                tool_calls = {o}.tool_calls + EXCLUDED.tool_calls"""

    async def _ready(self) -> None:
        t, r, o = self.table_name, self.reservations_table, self.totals_table
        ddl = f"""
        CREATE TABLE IF NOT EXISTS {t} (
            event_id text PRIMARY KEY,
            event_type text NOT NULL,
            occurred_at timestamptz NOT NULL,
            job_id text, run_id text, scope_id text, principal_id text, session_id text,
            provider text, model text, tool_name text,
            input_tokens bigint NOT NULL DEFAULT 0,
            output_tokens bigint NOT NULL DEFAULT 0,
            total_tokens bigint NOT NULL DEFAULT 0,
            cost numeric,
            requests integer NOT NULL DEFAULT 0,
            duration_ms double precision,
            metadata jsonb NOT NULL DEFAULT '{{}}'::jsonb
        );
        CREATE INDEX IF NOT EXISTS {t}_scope_time_idx ON {t} (scope_id, occurred_at);
        CREATE INDEX IF NOT EXISTS {t}_principal_time_idx ON {t} (principal_id, occurred_at);
        CREATE INDEX IF NOT EXISTS {t}_session_time_idx ON {t} (session_id, occurred_at);
        CREATE INDEX IF NOT EXISTS {t}_job_idx ON {t} (job_id);
        CREATE INDEX IF NOT EXISTS {t}_type_time_idx ON {t} (event_type, occurred_at);
        CREATE TABLE IF NOT EXISTS {r} (
            reservation_id text PRIMARY KEY,
            scope_id text, principal_id text, session_id text,
            tokens bigint NOT NULL, cost numeric NOT NULL, requests integer NOT NULL,
            tool_calls integer NOT NULL,
            created_at timestamptz NOT NULL,
            expires_at timestamptz NOT NULL
        );
        CREATE INDEX IF NOT EXISTS {r}_scope_exp_idx ON {r} (scope_id, expires_at);
        CREATE TABLE IF NOT EXISTS {o} (
            identity text NOT NULL,
            time_window text NOT NULL CHECK (time_window IN ('total', 'daily', 'monthly')),
            bucket double precision NOT NULL,
            tokens bigint NOT NULL, cost numeric NOT NULL, requests bigint NOT NULL,
            tool_calls bigint NOT NULL,
            PRIMARY KEY (identity, time_window, bucket)
        );
        """
        await ensure_schema(self._pool, f"agent_runtime.ledger:{t}", ddl)

    # -- events ----------------------------------------------------------------------------------

    async def write(self, event: LedgerEvent) -> None:
        await self._ready()
        async with self._pool.acquire() as conn, conn.transaction():
            await self._insert(conn, event)

    async def _insert(self, conn: Any, event: LedgerEvent) -> None:
        """Count ``event`` in the tracked totals, then append it (inside the caller's transaction)."""
        if not isinstance(event, LedgerEvent):
            raise ValidationError(f"write expects a LedgerEvent, got {type(event).__name__}")
        asyncpg = require_asyncpg()
        if event.type.counts_as_usage:
            usage = event.usage()
            stamp = _ts(event.timestamp).timestamp()  # as stored: microseconds, like a backfill sees it
            await conn.execute(
                self._add_to_totals,
                [
                    identity_key(*key)
                    for key in identities(event.scope_id, event.principal_id, event.session_id)
                ],
                usage.tokens,
                usage.cost,
                usage.requests,
                usage.tool_calls,
                window_start(Window.DAILY, stamp),
                window_start(Window.MONTHLY, stamp),
            )
        try:
            await conn.execute(
                f"""INSERT INTO {self.table_name} (event_id, event_type, occurred_at, job_id, run_id,
                    scope_id, principal_id, session_id, provider, model, tool_name, input_tokens,
                    output_tokens, total_tokens, cost, requests, duration_ms, metadata)
                VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18::jsonb)""",
                event.event_id,
                event.type.value,
                _ts(event.timestamp),
                event.job_id,
                event.run_id,
                event.scope_id,
                event.principal_id,
                event.session_id,
                event.provider,
                event.model,
                event.tool_name,
                event.input_tokens,
                event.output_tokens,
                event.total_tokens,
                event.cost_decimal,
                event.requests,
                event.duration_ms,
                json.dumps(dict(event.metadata), default=str),
            )
        except asyncpg.UniqueViolationError:
            raise ValidationError(f"ledger event {event.event_id!r} was already written") from None

    def _where(
        self, filters: dict[str, Any], since: datetime | float | None, until: datetime | float | None
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        for column, value in filters.items():
            if value is not None:
                args.append(value)
                clauses.append(f"{column} = ${len(args)}")
        lo, hi = to_epoch(since, "since"), to_epoch(until, "until")
        if lo is not None:
            args.append(_ts(lo))
            clauses.append(f"occurred_at >= ${len(args)}")
        if hi is not None:
            args.append(_ts(hi))
            clauses.append(f"occurred_at < ${len(args)}")
        return (" AND ".join(clauses) or "TRUE"), args

    async def get_usage(
        self,
        *,
        scope_id: str | None = None,
        principal_id: str | None = None,
        session_id: str | None = None,
        since: datetime | float | None = None,
        until: datetime | float | None = None,
    ) -> UsageRecord:
        await self._ready()
        where, args = self._where(
            {"scope_id": scope_id, "principal_id": principal_id, "session_id": session_id}, since, until
        )
        args.append(list(_USAGE_TYPES))
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"""SELECT {_SUMS} FROM {self.table_name}
                WHERE {where} AND event_type = ANY(${len(args)}::text[])""",
                *args,
            )
        return _usage_from(row)

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
        kind = None if event_type is None else _event_type(event_type).value
        await self._ready()
        where, args = self._where(
            {
                "scope_id": scope_id,
                "principal_id": principal_id,
                "session_id": session_id,
                "job_id": job_id,
                "run_id": run_id,
                "event_type": kind,
            },
            since,
            until,
        )
        args.append(limit)
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"""SELECT * FROM {self.table_name} WHERE {where}
                ORDER BY occurred_at DESC, event_id DESC LIMIT ${len(args)}""",
                *args,
            )
        return [_event_from(row) for row in rows]

    # -- reservations ----------------------------------------------------------------------------

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
        if not budgets:
            return evaluate_budgets(budgets, [], pending)
        await self._ready()
        ordered = sorted(budgets, key=lambda b: b.key)
        for b in ordered:
            if b.key not in self._tracked:
                await self._track(b)
        async with self._pool.acquire() as conn, conn.transaction():
            for b in ordered:
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext($1))",
                    f"agent_runtime.ledger:{self.table_name}:{b.key}",
                )
            usages = [await self._window_usage(conn, b, now) for b in ordered]
            check = evaluate_budgets(ordered, usages, pending)
            if not check.allowed:
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
            await conn.execute(
                f"""INSERT INTO {self.reservations_table} (reservation_id, scope_id, principal_id, session_id,
                    tokens, cost, requests, tool_calls, created_at, expires_at)
                VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)""",
                reservation.reservation_id,
                scope_id,
                principal_id,
                session_id,
                pending.tokens,
                pending.cost,
                pending.requests,
                pending.tool_calls,
                _ts(reservation.created_at),
                _ts(reservation.expires_at),
            )
            # Expired holds of this budget no longer count; clearing them here keeps the table small.
            await conn.execute(
                f"DELETE FROM {self.reservations_table} "
                "WHERE expires_at <= $1 AND scope_id IS NOT DISTINCT FROM $2",
                _ts(now),
                scope_id,
            )
        return BudgetCheck(check.decision, check.reason, reservation, check.exceeded, check.warnings)

    def _identity(self, budget: Budget) -> tuple[str, list[Any]]:
        """The WHERE clause (and its arguments) of the rows a budget counts."""
        ids = {
            "scope_id": budget.scope_id,
            "principal_id": budget.principal_id,
            "session_id": budget.session_id,
        }
        return self._where(ids, None, None)

    async def _track(self, budget: Budget) -> None:
        """Create the running totals of ``budget``'s identity from the events written so far."""
        key = budget.key
        where, args = self._identity(budget)
        n = len(args)
        sums = _BUDGET_SUMS
        events = f"FROM {self.table_name} WHERE {where} AND event_type = ANY(${n + 2}::text[])"
        day = "(floor(extract(epoch FROM occurred_at) / 86400) * 86400)::float8"
        month = "extract(epoch FROM date_trunc('month', occurred_at, 'UTC'))::float8"
        exists = f"SELECT 1 FROM {self.totals_table} WHERE identity = $1 AND time_window = 'total'"
        async with self._pool.acquire() as conn, conn.transaction():
            if await conn.fetchval(exists, key) is not None:  # another worker made them
                self._tracked.add(key)
                return
            # Waits for writers that already counted their event (or not) to commit, and holds
            # new ones back until the backfill is in: each event is counted exactly once.
            await conn.execute(f"LOCK TABLE {self.totals_table} IN SHARE ROW EXCLUSIVE MODE")
            if await conn.fetchval(exists, key) is not None:
                self._tracked.add(key)
                return
            await conn.execute(
                f"""INSERT INTO {self.totals_table} (identity, time_window, bucket, tokens, cost, requests,
                    tool_calls)
                SELECT ${n + 1}, 'total', 0, {sums} {events}
                UNION ALL SELECT ${n + 1}, 'daily', {day}, {sums} {events} GROUP BY 3
                UNION ALL SELECT ${n + 1}, 'monthly', {month}, {sums} {events} GROUP BY 3""",
                *args,
                key,
                list(_USAGE_TYPES),
            )
        self._tracked.add(key)

    async def _window_usage(self, conn: Any, budget: Budget, now: float) -> dict[Window, UsageRecord]:
        windows = sorted(budget.windows())
        if not windows:
            return {}
        key_clause, args = self._identity(budget)
        n = len(args)
        rows = await conn.fetch(
            f"""SELECT 'held' AS time_window, coalesce(sum(tokens), 0) AS tokens,
                coalesce(sum(cost), 0) AS cost, coalesce(sum(requests), 0) AS requests,
                coalesce(sum(tool_calls), 0) AS tool_calls
            FROM {self.reservations_table} WHERE {key_clause} AND expires_at > ${n + 1}
            UNION ALL
            SELECT time_window, sum(tokens), sum(cost), sum(requests), sum(tool_calls)
            FROM {self.totals_table}
            WHERE identity = ${n + 2} AND (time_window = 'total'
                OR (time_window = 'daily' AND bucket >= ${n + 3})
                OR (time_window = 'monthly' AND bucket >= ${n + 4}))
            GROUP BY time_window""",
            *args,
            _ts(now),
            budget.key,
            window_start(Window.DAILY, now),
            window_start(Window.MONTHLY, now),
        )
        sums = {row["time_window"]: _usage_from(row, budget_only=True) for row in rows}
        held = sums.pop("held")
        if Window.PER_MINUTE in windows:
            sums["per_minute"] = await self._last_minute(conn, key_clause, args, now)
        return {w: held + sums.get(w.value, _NOTHING) for w in windows}

    async def _last_minute(self, conn: Any, key_clause: str, args: list[Any], now: float) -> UsageRecord:
        start = window_start(Window.PER_MINUTE, now)
        assert start is not None
        n = len(args)
        row = await conn.fetchrow(
            f"""SELECT {_BUDGET_SUMS} FROM {self.table_name}
            WHERE {key_clause} AND occurred_at >= ${n + 1} AND event_type = ANY(${n + 2}::text[])""",
            *args,
            _ts(start),
            list(_USAGE_TYPES),
        )
        return _usage_from(row, budget_only=True)

    async def settle(self, reservation_id: str, event: LedgerEvent | None) -> bool:
        await self._ready()
        async with self._pool.acquire() as conn, conn.transaction():
            status = await conn.execute(
                f"DELETE FROM {self.reservations_table} WHERE reservation_id = $1", reservation_id
            )
            if event is not None:
                await self._insert(conn, event)
        return bool(status != "DELETE 0")


#: Everything a UsageRecord holds: what budgets count, plus the token split and unpriced calls
_SUMS = f"""{_BUDGET_SUMS}, coalesce(sum(input_tokens), 0) AS input_tokens,
    coalesce(sum(output_tokens), 0) AS output_tokens,
    count(*) FILTER (WHERE event_type = 'model_usage' AND cost IS NULL) AS unpriced_events"""


def _usage_from(row: Any, *, budget_only: bool = False) -> UsageRecord:
    """A UsageRecord from a row of ``_SUMS`` columns (of ``_BUDGET_SUMS`` ones with ``budget_only``)."""
    split: dict[str, int] = {}
    if not budget_only:
        split = {k: int(row[k]) for k in ("input_tokens", "output_tokens", "unpriced_events")}
    return UsageRecord(
        tokens=int(row["tokens"]),
        cost=Decimal(row["cost"]),
        requests=int(row["requests"]),
        tool_calls=int(row["tool_calls"]),
        **split,
    )


def _event_from(row: Any) -> LedgerEvent:
    metadata = row["metadata"]
    return LedgerEvent(
        event_id=row["event_id"],
        type=LedgerEventType(row["event_type"]),
        timestamp=row["occurred_at"].timestamp(),
        job_id=row["job_id"],
        run_id=row["run_id"],
        scope_id=row["scope_id"],
        principal_id=row["principal_id"],
        session_id=row["session_id"],
        provider=row["provider"],
        model=row["model"],
        tool_name=row["tool_name"],
        input_tokens=int(row["input_tokens"]),
        output_tokens=int(row["output_tokens"]),
        total_tokens=int(row["total_tokens"]),
        cost=None if row["cost"] is None else str(row["cost"]),
        requests=int(row["requests"]),
        duration_ms=row["duration_ms"],
        metadata=json.loads(metadata) if isinstance(metadata, str) else dict(metadata or {}),
    )
