"""Ledger and budgets on the in-memory writer: the seed's examples, windows, strategies, reservations."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from decimal import Decimal

import llm_client
import pytest
from agent_runtime import (
    AgentRuntimeError,
    Budget,
    BudgetDecision,
    BudgetExceededError,
    ExecutionContext,
    InMemoryLedgerWriter,
    Ledger,
    LedgerEvent,
    LedgerEventType,
    LedgerWriter,
    UsageRecord,
    ValidationError,
)
from agent_runtime.ledger import Window, window_start
from llm_client import Usage


class Clock:
    """A settable clock: windows and expiry are tested without sleeping."""

    def __init__(self, when: datetime) -> None:
        self.now = when.timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_seed_ledger_event() -> None:
    event = LedgerEvent(
        event_id="evt-123",
        type=LedgerEventType.MODEL_USAGE,
        timestamp=time.time(),
        job_id="job-456",
        run_id="run-789",
        scope_id="tenant-123",
        principal_id="user-456",
        provider="openai",
        model="gpt-4",
        input_tokens=1000,
        output_tokens=500,
        total_tokens=1500,
        cost="0.045",  # Decimal as string
        duration_ms=1234.5,
        metadata={},
    )
    assert event.cost == "0.045" and event.cost_decimal == Decimal("0.045")
    assert event.usage() == UsageRecord(
        tokens=1500, cost=Decimal("0.045"), requests=1, input_tokens=1000, output_tokens=500
    )
    assert LedgerEvent.from_dict(event.to_dict()) == event


def test_from_llm_usage_reads_real_usage() -> None:
    usage = Usage(input_tokens=1000, output_tokens=500, cached_tokens=200, cost=Decimal("0.0075"))
    event = LedgerEvent.from_llm_usage(
        usage,
        job_id="job-123",
        scope_id="tenant-123",
        provider="openai",
        model="gpt-4",
    )
    assert event.type is LedgerEventType.MODEL_USAGE
    assert (event.input_tokens, event.output_tokens, event.total_tokens) == (1000, 500, 1500)
    assert event.cost == "0.0075"
    assert event.metadata["cached_tokens"] == 200
    assert event.job_id == "job-123" and event.scope_id == "tenant-123" and event.model == "gpt-4"

    unpriced = LedgerEvent.from_llm_usage(Usage(input_tokens=10, output_tokens=5), model="my-finetune")
    assert unpriced.cost is None  # unknown price stays unknown, never "0"
    assert unpriced.usage().unpriced_events == 1 and unpriced.usage().cost == Decimal(0)


def test_ledger_event_bad_input() -> None:
    with pytest.raises(ValidationError, match="cost"):
        LedgerEvent(type=LedgerEventType.MODEL_USAGE, cost="-1")
    with pytest.raises(ValidationError, match="cost"):
        LedgerEvent(type=LedgerEventType.MODEL_USAGE, cost="abc")
    with pytest.raises(ValidationError, match="input_tokens"):
        LedgerEvent(type=LedgerEventType.MODEL_USAGE, input_tokens=-1)
    with pytest.raises(ValidationError, match="event type"):
        LedgerEvent(type="bogus")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="unknown LedgerEvent fields"):
        LedgerEvent.from_dict({"type": "model_usage", "colour": "red"})


async def test_seed_ledger_writer_interface() -> None:
    writer: LedgerWriter = InMemoryLedgerWriter()
    base = 1_700_000_000.0
    for i in range(3):
        await writer.write(
            LedgerEvent(
                type=LedgerEventType.MODEL_USAGE,
                timestamp=base + i,
                scope_id="tenant-123",
                principal_id="user-456",
                input_tokens=100,
                output_tokens=50,
                cost="0.01",
            )
        )
    await writer.write(
        LedgerEvent(type=LedgerEventType.TOOL_USAGE, timestamp=base + 3, scope_id="tenant-123")
    )
    await writer.write(LedgerEvent(type=LedgerEventType.MODEL_USAGE, scope_id="other", input_tokens=7))

    usage = await writer.get_usage(
        scope_id="tenant-123",
        principal_id="user-456",
    )
    assert usage == UsageRecord(
        tokens=450, cost=Decimal("0.03"), requests=3, input_tokens=300, output_tokens=150
    )
    assert (await writer.get_usage(scope_id="tenant-123")).tool_calls == 1
    windowed = await writer.get_usage(scope_id="tenant-123", since=base + 1, until=utc(2100, 1, 1))
    assert windowed.requests == 2

    events = await writer.list_events(
        scope_id="tenant-123",
        event_type=LedgerEventType.MODEL_USAGE,
        limit=100,
    )
    assert [e.timestamp for e in events] == [base + 2, base + 1, base]  # newest first
    assert len(await writer.list_events(scope_id="tenant-123", limit=2)) == 2

    with pytest.raises(ValidationError, match="already written"):
        await writer.write(events[0])
    with pytest.raises(ValidationError, match="limit"):
        await writer.list_events(limit=0)
    with pytest.raises(ValidationError, match="timezone"):
        await writer.get_usage(since=datetime(2024, 1, 1))
    with pytest.raises(ValidationError, match="event type"):
        await writer.list_events(event_type="nope")


def test_seed_budget_and_bad_limits() -> None:
    budget = Budget(
        scope_id="tenant-123",
        principal_id="user-456",
        # Token limits
        max_tokens_per_request=10000,
        max_tokens_daily=1000000,
        max_tokens_monthly=10000000,
        max_tokens_total=100000000,
        # Cost limits
        max_cost_per_request=Decimal("1.00"),
        max_cost_daily=Decimal("100.00"),
        max_cost_monthly=Decimal("1000.00"),
        # Request limits
        max_requests_per_minute=60,
        max_requests_daily=10000,
        # Tool limits
        max_tool_calls_per_request=10,
        max_tool_calls_daily=1000,
        # Behavior
        warning_threshold=0.8,
        exceed_strategy="deny",  # deny, degrade, warn
    )
    assert len(budget.limits()) == 11
    assert budget.windows() == {Window.DAILY, Window.MONTHLY, Window.TOTAL, Window.PER_MINUTE}
    assert Budget(max_cost_daily=1.1).max_cost_daily == Decimal("1.1")  # type: ignore[arg-type]
    for bad in (
        {"max_tokens_daily": -1},
        {"max_cost_monthly": Decimal("-0.01")},
        {"max_requests_per_minute": -5},
        {"max_tool_calls_total": -1},
        {"max_tokens_daily": 1.5},
        {"warning_threshold": 0},
        {"warning_threshold": 1.5},
        {"exceed_strategy": "explode"},
    ):
        with pytest.raises(ValidationError):
            Budget(**bad)


async def test_seed_ledger_flow() -> None:
    writer = InMemoryLedgerWriter()
    ledger = Ledger(writer)
    ledger.set_budget(
        Budget(
            scope_id="tenant-123",
            max_tokens_daily=1000000,
            max_cost_daily=Decimal("100.00"),
            max_requests_daily=10000,
            warning_threshold=0.8,  # Warn at 80%
            exceed_strategy="deny",  # deny, degrade, warn
        )
    )
    ctx = ExecutionContext(scope_id="tenant-123", principal_id="user-456", job_id="job-1")
    decision, reason = await ledger.check_budget(
        ctx,
        pending_tokens=5000,
        pending_cost=Decimal("0.15"),
    )
    if decision == BudgetDecision.DENY:
        raise BudgetExceededError(reason)
    assert decision == BudgetDecision.ALLOW and reason == "within budget"
    assert len(writer.reservations) == 1

    usage = Usage(input_tokens=3000, output_tokens=1000, cost=Decimal("0.12"))
    event = await ledger.record_model_usage(ctx, usage)
    tool_event = await ledger.record_tool_usage(ctx, tool_name="search", duration_ms=123.4)
    assert writer.reservations == []  # the estimate was replaced by the real usage
    assert event.job_id == "job-1" and event.run_id == ctx.run_id and event.principal_id == "user-456"
    assert tool_event.tool_name == "search" and tool_event.type is LedgerEventType.TOOL_USAGE
    total = await writer.get_usage(scope_id="tenant-123")
    assert (total.tokens, total.cost, total.requests, total.tool_calls) == (4000, Decimal("0.12"), 1, 1)


async def test_budget_exceeded_error_is_both_hierarchies() -> None:
    err = BudgetExceededError("daily tokens exceeded")
    assert isinstance(err, AgentRuntimeError)
    assert isinstance(err, llm_client.BudgetExceededError)
    assert "daily tokens exceeded" in str(err)


async def test_deny_when_limit_would_be_passed_and_events_recorded() -> None:
    writer = InMemoryLedgerWriter()
    ledger = Ledger(writer)
    ledger.set_budget(Budget(scope_id="t", max_tokens_daily=100, warning_threshold=None))
    ctx = ExecutionContext(scope_id="t")
    await ledger.record_model_usage(ctx, Usage(input_tokens=90))
    assert (await ledger.check_budget(ctx, pending_tokens=10))[0] == BudgetDecision.ALLOW
    await ledger.record_model_usage(ctx, Usage(input_tokens=10))
    decision, reason = await ledger.check_budget(ctx, pending_tokens=1)
    assert decision == BudgetDecision.DENY
    assert "daily tokens exceeded" in reason and "100 used + 1 pending" in reason
    # Exhausted budget: even a caller that cannot estimate is refused.
    assert (await ledger.check_budget(ctx))[0] == BudgetDecision.DENY
    exceeded = await writer.list_events(event_type=LedgerEventType.BUDGET_EXCEEDED)
    assert len(exceeded) == 2 and exceeded[0].metadata["decision"] == "deny"
    assert (await writer.get_usage(scope_id="t")).tokens == 100  # audit events are not usage
    with pytest.raises(BudgetExceededError):
        (await ledger.reserve(ctx, pending_tokens=1)).raise_if_denied()


async def test_per_request_limits() -> None:
    ledger = Ledger()
    ledger.set_budget(
        Budget(max_tokens_per_request=100, max_cost_per_request=Decimal("0.50"), max_tool_calls_per_request=2)
    )
    ctx = ExecutionContext()
    assert (await ledger.check_budget(ctx, pending_tokens=100))[0] == BudgetDecision.WARN
    assert (await ledger.check_budget(ctx, pending_tokens=101))[0] == BudgetDecision.DENY
    assert (await ledger.check_budget(ctx, pending_cost="0.51"))[0] == BudgetDecision.DENY
    assert (await ledger.check_budget(ctx, pending_tool_calls=3))[0] == BudgetDecision.DENY
    assert (await ledger.check_budget(ctx, pending_tokens=10))[0] == BudgetDecision.ALLOW


async def test_warning_threshold_gives_warn_and_a_warning_event() -> None:
    writer = InMemoryLedgerWriter()
    ledger = Ledger(writer)
    ledger.set_budget(Budget(scope_id="t", max_cost_daily=Decimal("10"), warning_threshold=0.8))
    ctx = ExecutionContext(scope_id="t")
    assert (await ledger.check_budget(ctx, pending_cost=Decimal("7.99")))[0] == BudgetDecision.ALLOW
    await ledger.release(ctx=ctx)
    decision, reason = await ledger.check_budget(ctx, pending_cost=Decimal("8"))
    assert decision == BudgetDecision.WARN and "80%" in reason
    warnings = await writer.list_events(event_type="budget_warning")
    assert len(warnings) == 1 and warnings[0].scope_id == "t"


@pytest.mark.parametrize(
    ("strategy", "expected", "event_type"),
    [
        ("degrade", BudgetDecision.DEGRADE, LedgerEventType.BUDGET_DEGRADED),
        ("warn", BudgetDecision.WARN, LedgerEventType.BUDGET_EXCEEDED),
        ("deny", BudgetDecision.DENY, LedgerEventType.BUDGET_EXCEEDED),
    ],
)
async def test_exceed_strategies(
    strategy: str, expected: BudgetDecision, event_type: LedgerEventType
) -> None:
    writer = InMemoryLedgerWriter()
    ledger = Ledger(writer)
    ledger.set_budget(Budget(scope_id="t", max_requests_daily=1, exceed_strategy=strategy))  # type: ignore[arg-type]
    ctx = ExecutionContext(scope_id="t")
    await ledger.record_model_usage(ctx, Usage(input_tokens=1))
    check = await ledger.reserve(ctx, pending_tokens=1)
    assert check.decision == expected
    assert (check.reservation is None) == (expected == BudgetDecision.DENY)
    assert len(await writer.list_events(event_type=event_type)) == 1


async def test_most_severe_of_several_budgets_wins() -> None:
    ledger = Ledger()
    ledger.set_budget(Budget(max_tokens_daily=1000, exceed_strategy="warn"))  # global
    ledger.set_budget(Budget(scope_id="a", max_tokens_daily=10))
    ledger.set_budget(Budget(scope_id="b", max_tokens_daily=10, exceed_strategy="degrade"))
    assert len(ledger.budgets) == 3
    assert (await ledger.check_budget(ExecutionContext(scope_id="a"), pending_tokens=20))[
        0
    ] == BudgetDecision.DENY
    b = await ledger.check_budget(ExecutionContext(scope_id="b"), pending_tokens=20)
    assert b[0] == BudgetDecision.DEGRADE
    # set_budget replaces the budget with the same identity.
    ledger.set_budget(Budget(scope_id="a", max_tokens_daily=100))
    assert len(ledger.budgets) == 3
    assert ledger.remove_budget(scope_id="a") and not ledger.remove_budget(scope_id="zzz")


async def test_per_minute_window_is_rolling() -> None:
    clock = Clock(utc(2024, 5, 1, 12, 0, 30))
    ledger = Ledger(clock=clock)
    ledger.set_budget(Budget(principal_id="u", max_requests_per_minute=2, warning_threshold=None))
    ctx = ExecutionContext(principal_id="u")
    for _ in range(2):
        assert (await ledger.check_budget(ctx, pending_tokens=1))[0] == BudgetDecision.ALLOW
        await ledger.record_model_usage(ctx, Usage(input_tokens=1))
        clock.advance(20)
    assert (await ledger.check_budget(ctx, pending_tokens=1))[0] == BudgetDecision.DENY
    clock.advance(21)  # the first request is now 61 s old: rolling, not calendar minute
    assert (await ledger.check_budget(ctx, pending_tokens=1))[0] == BudgetDecision.ALLOW


async def test_daily_and_monthly_windows_are_utc_calendar_windows() -> None:
    clock = Clock(utc(2024, 3, 15, 23, 59, 0))
    ledger = Ledger(clock=clock)
    ledger.set_budget(
        Budget(scope_id="t", max_tokens_daily=100, max_tokens_monthly=150, warning_threshold=None)
    )
    ctx = ExecutionContext(scope_id="t")
    await ledger.record_model_usage(ctx, Usage(input_tokens=100))
    assert (await ledger.check_budget(ctx, pending_tokens=1))[0] == BudgetDecision.DENY
    clock.advance(61)  # 00:00:01 UTC on the 16th: a new day, the same month
    assert (await ledger.check_budget(ctx, pending_tokens=50))[0] == BudgetDecision.ALLOW
    await ledger.record_model_usage(ctx, Usage(input_tokens=50))
    decision, reason = await ledger.check_budget(ctx, pending_tokens=1)
    assert decision == BudgetDecision.DENY and "monthly" in reason
    clock.now = utc(2024, 4, 1, 0, 0, 0).timestamp()
    assert (await ledger.check_budget(ctx, pending_tokens=100))[0] == BudgetDecision.ALLOW


def test_window_start_is_utc() -> None:
    now = utc(2024, 2, 29, 17, 45, 12).timestamp()
    assert window_start(Window.DAILY, now) == utc(2024, 2, 29).timestamp()
    assert window_start(Window.MONTHLY, now) == utc(2024, 2, 1).timestamp()
    assert window_start(Window.PER_MINUTE, now) == now - 60
    assert window_start(Window.TOTAL, now) is None


def test_window_start_matches_the_calendar_at_day_and_month_edges() -> None:
    for when in (
        utc(2024, 1, 1),
        utc(2024, 2, 29, 23, 59, 59),
        utc(2024, 3, 1),
        utc(2023, 12, 31, 23, 59, 59),
        utc(1969, 12, 31, 12),  # before the epoch: still the calendar day
        utc(2038, 1, 19, 3, 14, 8),
    ):
        for ts in (when.timestamp(), when.timestamp() + 0.999):
            day = datetime.fromtimestamp(ts, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            assert window_start(Window.DAILY, ts) == day.timestamp()
            assert window_start(Window.MONTHLY, ts) == day.replace(day=1).timestamp()


async def test_budgets_set_after_usage_see_the_usage_already_written() -> None:
    """Totals are kept per identity a budget names, built from the events on its first check."""
    clock = Clock(utc(2024, 5, 1, 12))
    ledger = Ledger(clock=clock)
    alice, bob = (
        ExecutionContext(scope_id="t", principal_id="alice"),
        ExecutionContext(scope_id="t", principal_id="bob"),
    )
    await ledger.record_model_usage(alice, Usage(input_tokens=60))
    await ledger.record_model_usage(bob, Usage(input_tokens=30))
    ledger.set_budget(Budget(scope_id="t", max_tokens_daily=100, warning_threshold=None))
    assert (await ledger.check_budget(alice, pending_tokens=11))[0] == BudgetDecision.DENY  # 90 used
    await ledger.release(ctx=alice)
    ledger.set_budget(Budget(scope_id="t", principal_id="bob", max_tokens_total=40, warning_threshold=None))
    assert (await ledger.check_budget(bob, pending_tokens=10))[0] == BudgetDecision.ALLOW  # 30 of 40
    await ledger.record_model_usage(bob, Usage(input_tokens=10))  # both tracked totals move
    decision, reason = await ledger.check_budget(bob, pending_tokens=1)
    assert decision == BudgetDecision.DENY and "total tokens" in reason
    decision, reason = await ledger.check_budget(alice, pending_tokens=1)
    assert decision == BudgetDecision.DENY and "daily tokens exceeded (100 used" in reason


async def _check_then_record(
    ledger: Ledger, ctx: ExecutionContext, gate: asyncio.Event, checked: list[int], n: int
) -> bool:
    decision, _ = await ledger.check_budget(ctx, pending_tokens=10, pending_cost=Decimal("0.01"))
    checked.append(1)
    if len(checked) == n:
        gate.set()
    await gate.wait()  # every check happens while all others are still in flight
    if decision == BudgetDecision.DENY:
        return False
    await ledger.record_model_usage(ctx, Usage(input_tokens=6, output_tokens=4, cost=Decimal("0.01")))
    return True


async def test_200_concurrent_checks_never_overshoot_in_memory() -> None:
    writer = InMemoryLedgerWriter()
    ledger = Ledger(writer)
    ledger.set_budget(Budget(scope_id="t", max_tokens_daily=1000, max_cost_daily=Decimal("0.995")))
    gate, checked = asyncio.Event(), list[int]()
    contexts = [ExecutionContext(scope_id="t", principal_id=f"u{i}") for i in range(200)]
    allowed = await asyncio.gather(*(_check_then_record(ledger, c, gate, checked, 200) for c in contexts))
    usage = await writer.get_usage(scope_id="t")
    assert sum(allowed) == 99  # the cost limit binds first: 99 x 0.01 <= 0.995 < 100 x 0.01
    assert usage.tokens == 10 * sum(allowed) and usage.cost == Decimal("0.01") * sum(allowed)
    assert usage.tokens <= 1000 and usage.cost <= Decimal("0.995")
    assert writer.reservations == []


async def test_reservation_expires_after_ttl() -> None:
    clock = Clock(utc(2024, 1, 10, 8))
    writer = InMemoryLedgerWriter()
    ledger = Ledger(writer, reservation_ttl=30, clock=clock)
    ledger.set_budget(Budget(scope_id="t", max_tokens_total=100))
    crashed = ExecutionContext(scope_id="t")
    assert (await ledger.check_budget(crashed, pending_tokens=100))[0] != BudgetDecision.DENY
    other = ExecutionContext(scope_id="t")
    assert (await ledger.check_budget(other, pending_tokens=1))[0] == BudgetDecision.DENY  # held
    clock.advance(30)
    assert (await ledger.check_budget(other, pending_tokens=1))[0] == BudgetDecision.ALLOW
    # The crashed worker's late record still writes its real usage.
    event = await ledger.record_model_usage(crashed, Usage(input_tokens=42))
    assert (await writer.get_usage(scope_id="t")).tokens == 42 and event.total_tokens == 42


async def test_explicit_reserve_settle_release() -> None:
    writer = InMemoryLedgerWriter()
    ledger = Ledger(writer)
    ledger.set_budget(Budget(scope_id="t", max_tool_calls_daily=2, warning_threshold=None))
    ctx = ExecutionContext(scope_id="t")
    first = await ledger.reserve(ctx, pending_tool_calls=1)
    second = await ledger.reserve(ctx, pending_tool_calls=1)
    assert first.reservation is not None and second.reservation is not None
    assert first.reservation.amounts.requests == 0  # a pure tool check is not a model request
    assert (await ledger.reserve(ctx, pending_tool_calls=1)).decision == BudgetDecision.DENY
    assert await ledger.release(second.reservation)
    assert not await ledger.release(second.reservation.reservation_id)  # already given back
    await ledger.record_tool_usage(ctx, tool_name="calc", reservation=first.reservation)
    assert writer.reservations == []
    assert (await ledger.reserve(ctx, pending_tool_calls=1)).decision == BudgetDecision.ALLOW
    assert (await ledger.reserve(ctx, pending_tool_calls=1)).decision == BudgetDecision.DENY
    assert await ledger.get_usage(scope_id="t") == UsageRecord(tool_calls=1)


async def test_check_budget_tracks_reservations_per_context() -> None:
    writer = InMemoryLedgerWriter()
    ledger = Ledger(writer)
    ledger.set_budget(Budget(scope_id="t", max_tokens_daily=1000))
    a, b = ExecutionContext(scope_id="t"), ExecutionContext(scope_id="t")
    await ledger.check_budget(a, pending_tokens=100)
    await ledger.check_budget(a, pending_tokens=200)
    await ledger.check_budget(b, pending_tokens=300)
    await ledger.record_model_usage(a, Usage(input_tokens=90))  # settles a's oldest (100)
    held = sorted(r.amounts.tokens for r in writer.reservations)
    assert held == [200, 300]
    assert await ledger.release(ctx=b)
    assert not await ledger.release(ctx=b)
    assert [r.amounts.tokens for r in writer.reservations] == [200]
    with pytest.raises(ValidationError):
        await ledger.release()


async def test_no_budget_means_allow_without_reservation() -> None:
    writer = InMemoryLedgerWriter()
    ledger = Ledger(writer)
    assert await ledger.check_budget(ExecutionContext(), pending_tokens=10**9) == (
        BudgetDecision.ALLOW,
        "no budget applies",
    )
    assert writer.reservations == []


async def test_ledger_bad_input() -> None:
    ledger = Ledger()
    ctx = ExecutionContext()
    with pytest.raises(ValidationError, match="pending_tokens"):
        await ledger.check_budget(ctx, pending_tokens=-1)
    with pytest.raises(ValidationError, match="pending_cost"):
        await ledger.check_budget(ctx, pending_cost=Decimal("-0.01"))
    with pytest.raises(ValidationError, match="tool_name"):
        await ledger.record_tool_usage(ctx, tool_name="")
    with pytest.raises(ValidationError, match="reservation_ttl"):
        Ledger(reservation_ttl=0)
    with pytest.raises(ValidationError, match="Budget"):
        ledger.set_budget({"max_tokens_daily": 1})  # type: ignore[arg-type]
