"""PostgresLedgerWriter against a real PostgreSQL: the writer interface, windows, expiry, and 200
concurrent check+record from two pools (two "workers") that never overshoot a budget.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from agent_runtime import (
    Budget,
    BudgetDecision,
    ExecutionContext,
    Ledger,
    LedgerEvent,
    LedgerEventType,
    PostgresLedgerWriter,
    UsageRecord,
    ValidationError,
)
from llm_client import Usage

asyncpg = pytest.importorskip("asyncpg")


@pytest.fixture
async def pools(postgres_dsn: str) -> AsyncIterator[tuple[Any, Any, str]]:
    table = f"ledger_test_{uuid.uuid4().hex[:12]}"
    first = await asyncpg.create_pool(postgres_dsn, min_size=1, max_size=10)
    second = await asyncpg.create_pool(postgres_dsn, min_size=1, max_size=10)
    try:
        yield first, second, table
    finally:
        async with first.acquire() as conn:
            await conn.execute(f"DROP TABLE IF EXISTS {table}, {table}_reservations, {table}_totals")
        await first.close()
        await second.close()


class Clock:
    def __init__(self, when: datetime) -> None:
        self.now = when.timestamp()

    def __call__(self) -> float:
        return self.now


async def test_writer_interface_roundtrip(pools: tuple[Any, Any, str]) -> None:
    pool, _, table = pools
    writer = PostgresLedgerWriter(pool, table_name=table)
    base = 1_700_000_000.0
    event = LedgerEvent(
        event_id="evt-123",
        type=LedgerEventType.MODEL_USAGE,
        timestamp=base,
        job_id="job-456",
        run_id="run-789",
        scope_id="tenant-123",
        principal_id="user-456",
        provider="openai",
        model="gpt-4",
        input_tokens=1000,
        output_tokens=500,
        total_tokens=1500,
        cost="0.045",
        duration_ms=1234.5,
        metadata={"k": [1, 2]},
    )
    await writer.write(event)
    await writer.write(
        LedgerEvent.from_llm_usage(Usage(input_tokens=10), scope_id="tenant-123", timestamp=base + 1)
    )
    await writer.write(
        LedgerEvent(
            type=LedgerEventType.TOOL_USAGE, tool_name="search", scope_id="tenant-123", timestamp=base + 2
        )
    )
    await writer.write(
        LedgerEvent(type=LedgerEventType.BUDGET_WARNING, scope_id="tenant-123", timestamp=base + 3)
    )

    events = await writer.list_events(
        scope_id="tenant-123", event_type=LedgerEventType.MODEL_USAGE, limit=100
    )
    assert [e.timestamp for e in events] == [base + 1, base]
    assert events[1] == event  # every field, cost string and metadata included, survives the round trip
    assert events[0].cost is None  # unpriced stays unpriced
    assert len(await writer.list_events(scope_id="tenant-123", limit=3)) == 3
    assert [e.event_id for e in await writer.list_events(job_id="job-456")] == ["evt-123"]

    usage = await writer.get_usage(scope_id="tenant-123")
    assert usage == UsageRecord(
        tokens=1510,
        cost=Decimal("0.045"),
        requests=2,
        tool_calls=1,
        input_tokens=1010,
        output_tokens=500,
        unpriced_events=1,
    )
    assert (await writer.get_usage(scope_id="tenant-123", principal_id="user-456")).tokens == 1500
    since = datetime.fromtimestamp(base + 1, UTC)
    assert (await writer.get_usage(scope_id="tenant-123", since=since)).tokens == 10
    assert (await writer.get_usage(scope_id="nobody")) == UsageRecord()

    with pytest.raises(ValidationError, match="already written"):
        await writer.write(event)


def test_table_name_must_be_an_identifier() -> None:
    with pytest.raises(ValueError, match="identifier"):
        PostgresLedgerWriter(object(), table_name="ledger; DROP TABLE x")
    with pytest.raises(ValueError):
        PostgresLedgerWriter(object(), table_name="x" * 60)  # the reservations table name would not fit


async def _check_then_record(
    ledger: Ledger, ctx: ExecutionContext, gate: asyncio.Event, checked: list[int], n: int
) -> bool:
    decision, _ = await ledger.check_budget(ctx, pending_tokens=10, pending_cost=Decimal("0.01"))
    checked.append(1)
    if len(checked) == n:
        gate.set()
    await gate.wait()
    if decision == BudgetDecision.DENY:
        return False
    await ledger.record_model_usage(ctx, Usage(input_tokens=6, output_tokens=4, cost=Decimal("0.01")))
    return True


async def test_200_concurrent_checks_from_two_workers_never_overshoot(pools: tuple[Any, Any, str]) -> None:
    first, second, table = pools
    budget = Budget(scope_id="t", max_tokens_daily=1000, max_requests_per_minute=150)
    workers = [Ledger(PostgresLedgerWriter(p, table_name=table)) for p in (first, second)]
    for ledger in workers:
        ledger.set_budget(budget)
        ledger.set_budget(Budget(max_cost_total=Decimal("100")))  # a global budget is locked too
    gate, checked = asyncio.Event(), list[int]()
    tasks = [
        _check_then_record(
            workers[i % 2], ExecutionContext(scope_id="t", principal_id=f"u{i}"), gate, checked, 200
        )
        for i in range(200)
    ]
    allowed = await asyncio.gather(*tasks)
    usage = await workers[0].writer.get_usage(scope_id="t")
    assert sum(allowed) == 100
    assert usage.tokens == 10 * sum(allowed) == 1000
    assert usage.requests == sum(allowed)
    async with first.acquire() as conn:
        assert await conn.fetchval(f"SELECT count(*) FROM {table}_reservations") == 0


async def test_windows_and_expiry_in_postgres(pools: tuple[Any, Any, str]) -> None:
    pool, _, table = pools
    clock = Clock(datetime(2024, 3, 31, 23, 59, 50, tzinfo=UTC))
    writer = PostgresLedgerWriter(pool, table_name=table)
    ledger = Ledger(writer, clock=clock, reservation_ttl=30)
    ledger.set_budget(
        Budget(scope_id="t", max_tokens_daily=100, max_tokens_monthly=1000, warning_threshold=None)
    )
    ctx = ExecutionContext(scope_id="t")
    await ledger.record_model_usage(ctx, Usage(input_tokens=95))
    assert (await ledger.check_budget(ctx, pending_tokens=5))[0] == BudgetDecision.ALLOW  # held, not recorded
    other = ExecutionContext(scope_id="t")
    decision, reason = await ledger.check_budget(other, pending_tokens=1)
    assert decision == BudgetDecision.DENY and "100 used + 1 pending" in reason
    clock.now += 15  # 00:00:05 on April 1st: new day and month, but the live hold still counts
    check = await ledger.reserve(other, pending_tokens=96)
    assert check.decision == BudgetDecision.DENY and "5 used + 96 pending" in check.reason
    clock.now += 15  # the hold has expired
    check = await ledger.reserve(other, pending_tokens=100)
    assert check.decision == BudgetDecision.ALLOW and check.reservation is not None
    assert await ledger.release(check.reservation)
    # The first context settles late: its hold is gone, its real usage is still written.
    await ledger.record_model_usage(ctx, Usage(input_tokens=3))
    assert (await writer.get_usage(scope_id="t")).tokens == 98
    exceeded = await writer.list_events(scope_id="t", event_type=LedgerEventType.BUDGET_EXCEEDED)
    assert len(exceeded) == 2


async def test_a_budget_set_after_usage_sees_it_in_every_window(pools: tuple[Any, Any, str]) -> None:
    """Running totals of an identity are built from its events on its first check."""
    pool, second, table = pools
    clock = Clock(datetime(2024, 5, 31, 12, tzinfo=UTC))
    ledger = Ledger(PostgresLedgerWriter(pool, table_name=table), clock=clock)
    ctx = ExecutionContext(scope_id="t", principal_id="alice")
    await ledger.record_model_usage(ctx, Usage(input_tokens=40))  # May 31st
    clock.now += 86_400  # June 1st: a new day and a new month
    await ledger.record_model_usage(ctx, Usage(input_tokens=25))
    await ledger.record_model_usage(ExecutionContext(scope_id="other"), Usage(input_tokens=1000))
    budget = Budget(
        scope_id="t",
        max_tokens_daily=30,
        max_tokens_monthly=1000,
        max_tokens_total=66,
        warning_threshold=None,
    )
    checker = Ledger(PostgresLedgerWriter(second, table_name=table), clock=clock)  # another worker
    checker.set_budget(budget)
    decision, reason = await checker.check_budget(ctx, pending_tokens=6)
    assert decision == BudgetDecision.DENY and "daily tokens exceeded (25 used + 6 pending" in reason
    assert "total tokens exceeded (65 used + 6 pending" in reason and "monthly" not in reason
    await checker.release(ctx=ctx)
    await ledger.record_model_usage(ctx, Usage(input_tokens=1))  # counted by the first worker's writer
    decision, reason = await checker.check_budget(ctx, pending_tokens=1)
    assert decision == BudgetDecision.DENY and "total tokens exceeded (66 used + 1 pending" in reason


async def test_totals_built_while_usage_is_written_count_every_event_once(
    pools: tuple[Any, Any, str],
) -> None:
    pool, second, table = pools
    writer, checker = (
        PostgresLedgerWriter(pool, table_name=table),
        PostgresLedgerWriter(second, table_name=table),
    )
    now = datetime(2024, 5, 1, 12, tzinfo=UTC).timestamp()

    async def use(principal: str, n: int) -> None:
        for _ in range(n):
            await writer.write(
                LedgerEvent(
                    type=LedgerEventType.MODEL_USAGE,
                    scope_id="t",
                    principal_id=principal,
                    total_tokens=1,
                    timestamp=now,
                )
            )

    budgets = [Budget(scope_id="t", principal_id=f"p{i}", max_tokens_total=10**9) for i in range(4)]
    budgets.append(Budget(scope_id="t", max_tokens_daily=10**9))
    # Each budget's first check builds its totals while 4 writers are adding events.
    checks = [checker.reserve([b], UsageRecord(tokens=1), now=now, ttl_seconds=60) for b in budgets]
    await asyncio.gather(*(use(f"p{i}", 40) for i in range(4)), *checks)
    async with pool.acquire() as conn:
        rows = await conn.fetch(f"SELECT identity, time_window, tokens FROM {table}_totals ORDER BY 1, 2")
    totals = {(r["identity"], r["time_window"]): r["tokens"] for r in rows}
    for i in range(4):
        assert (
            totals[(budgets[i].key, "total")] == 40 == (await writer.get_usage(principal_id=f"p{i}")).tokens
        )
    assert totals[(budgets[4].key, "daily")] == totals[(budgets[4].key, "total")] == 160
