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
            await conn.execute(f"DROP TABLE IF EXISTS {table}, {table}_reservations")
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
