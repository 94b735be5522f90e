"""PostgreSQL ledger: an append-only events table and a reservations table.

Atomic reserve: one transaction takes ``pg_advisory_xact_lock`` on every applicable budget (in a
fixed order, so two reserves never deadlock), then sums usage and live reservations in each window,
decides, and inserts the reservation. The lock is taken in a statement before the sums, so under READ
COMMITTED the sums see every reservation committed before the lock was granted. Settle deletes the
reservation and inserts the event in one transaction, so a concurrent reserve sees both or neither.

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
from ...ledger.budget import Budget, BudgetCheck, Reservation, Window, evaluate_budgets, window_start
from ...ledger.events import LedgerEvent, LedgerEventType, UsageRecord, to_epoch
from ...ledger.writer import LedgerWriter, _check_limit, _check_ttl, _event_type, new_reservation_id
from ._base import check_identifier, ensure_schema, require_asyncpg

__all__ = ["PostgresLedgerWriter"]

_USAGE_TYPES = tuple(t.value for t in LedgerEventType if t.counts_as_usage)


def _ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class PostgresLedgerWriter(LedgerWriter):
    """Ledger on an asyncpg pool (not owned: ``close()`` leaves it open). Tables are created on first use:
    ``<table_name>`` for events and ``<table_name>_reservations``.
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
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        self._pool = pool

    async def _ready(self) -> None:
        t, r = self.table_name, self.reservations_table
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
        """
        await ensure_schema(self._pool, f"agent_runtime.ledger:{t}", ddl)

    # -- events ----------------------------------------------------------------------------------

    async def write(self, event: LedgerEvent) -> None:
        await self._ready()
        async with self._pool.acquire() as conn:
            await self._insert(conn, event)

    async def _insert(self, conn: Any, event: LedgerEvent) -> None:
        if not isinstance(event, LedgerEvent):
            raise ValidationError(f"write expects a LedgerEvent, got {type(event).__name__}")
        asyncpg = require_asyncpg()
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

    async def _window_usage(self, conn: Any, budget: Budget, now: float) -> dict[Window, UsageRecord]:
        windows = sorted(budget.windows())
        if not windows:
            return {}
        key_clause, args = self._where(
            {
                "scope_id": budget.scope_id,
                "principal_id": budget.principal_id,
                "session_id": budget.session_id,
            },
            None,
            None,
        )
        held_row = await conn.fetchrow(
            f"""SELECT coalesce(sum(tokens), 0) AS tokens, coalesce(sum(cost), 0) AS cost,
                coalesce(sum(requests), 0) AS requests, coalesce(sum(tool_calls), 0) AS tool_calls
            FROM {self.reservations_table} WHERE {key_clause} AND expires_at > ${len(args) + 1}""",
            *args,
            _ts(now),
        )
        held = UsageRecord(
            tokens=int(held_row["tokens"]),
            cost=Decimal(held_row["cost"]),
            requests=int(held_row["requests"]),
            tool_calls=int(held_row["tool_calls"]),
        )
        starts = {w: window_start(w, now) for w in windows}
        columns: list[str] = []
        event_args = list(args)
        for i, w in enumerate(windows):
            start = starts[w]
            if start is None:
                cond = "TRUE"
            else:
                event_args.append(_ts(start))
                cond = f"occurred_at >= ${len(event_args)}"
            columns += [
                f"coalesce(sum(total_tokens) FILTER (WHERE {cond}), 0) AS tokens_{i}",
                f"coalesce(sum(cost) FILTER (WHERE {cond}), 0) AS cost_{i}",
                f"coalesce(sum(requests) FILTER (WHERE {cond} AND event_type = 'model_usage'), 0)"
                f" AS requests_{i}",
                f"count(*) FILTER (WHERE {cond} AND event_type = 'tool_usage') AS tool_calls_{i}",
            ]
        lower = [s for s in starts.values() if s is not None]
        bound = ""
        if len(lower) == len(starts):
            event_args.append(_ts(min(lower)))
            bound = f" AND occurred_at >= ${len(event_args)}"
        event_args.append(list(_USAGE_TYPES))
        row = await conn.fetchrow(
            f"""SELECT {", ".join(columns)} FROM {self.table_name}
            WHERE {key_clause}{bound} AND event_type = ANY(${len(event_args)}::text[])""",
            *event_args,
        )
        return {
            w: held
            + UsageRecord(
                tokens=int(row[f"tokens_{i}"]),
                cost=Decimal(row[f"cost_{i}"]),
                requests=int(row[f"requests_{i}"]),
                tool_calls=int(row[f"tool_calls_{i}"]),
            )
            for i, w in enumerate(windows)
        }

    async def settle(self, reservation_id: str, event: LedgerEvent | None) -> bool:
        await self._ready()
        async with self._pool.acquire() as conn, conn.transaction():
            status = await conn.execute(
                f"DELETE FROM {self.reservations_table} WHERE reservation_id = $1", reservation_id
            )
            if event is not None:
                await self._insert(conn, event)
        return bool(status != "DELETE 0")


_SUMS = """coalesce(sum(total_tokens), 0) AS tokens, coalesce(sum(input_tokens), 0) AS input_tokens,
    coalesce(sum(output_tokens), 0) AS output_tokens, coalesce(sum(cost), 0) AS cost,
    coalesce(sum(requests) FILTER (WHERE event_type = 'model_usage'), 0) AS requests,
    count(*) FILTER (WHERE event_type = 'tool_usage') AS tool_calls,
    count(*) FILTER (WHERE event_type = 'model_usage' AND cost IS NULL) AS unpriced_events"""


def _usage_from(row: Any) -> UsageRecord:
    return UsageRecord(
        tokens=int(row["tokens"]),
        cost=Decimal(row["cost"]),
        requests=int(row["requests"]),
        tool_calls=int(row["tool_calls"]),
        input_tokens=int(row["input_tokens"]),
        output_tokens=int(row["output_tokens"]),
        unpriced_events=int(row["unpriced_events"]),
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
