from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from llm_client import (
    BudgetExceededError,
    BudgetMiddleware,
    CancellationToken,
    CompletionResult,
    ExecutionEngine,
    IdempotencyTracker,
    MockProvider,
    MockResponse,
    ModelPrice,
    PricingTable,
    ProviderError,
    RequestCancelledError,
    RequestContext,
    RequestSpec,
    RequestTimeoutError,
    RetryMiddleware,
    RetryPolicy,
    StreamDone,
    StreamError,
    StreamInterruptedError,
    TextDelta,
    TimeoutMiddleware,
    Usage,
)
from llm_client.middleware import Middleware
from llm_client.providers.base import Provider


class NoSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


async def collect(stream) -> list:  # type: ignore[no-untyped-def]
    return [e async for e in stream]


async def test_complete_prices_usage_from_the_shipped_table() -> None:
    provider = MockProvider(
        [MockResponse.text("hi", usage=Usage(input_tokens=1_000_000, output_tokens=1_000_000))],
        model="gpt-4o-mini",
    )
    result = await ExecutionEngine(provider=provider).complete("hello")
    assert result.content == "hi"
    assert result.model == "gpt-4o-mini"
    assert result.usage.cost == Decimal("0.75")  # 0.15 in + 0.60 out per million


async def test_unknown_model_cost_is_none_not_zero() -> None:
    provider = MockProvider(["hi"], model="my-private-model")
    result = await ExecutionEngine(provider=provider).complete("hello")
    assert result.usage.cost is None


async def test_user_pricing_overrides_shipped_table() -> None:
    table = PricingTable({"my-private-model": ModelPrice.of(input="1", output="2")})
    provider = MockProvider(
        [MockResponse.text("x", usage=Usage(input_tokens=500_000, output_tokens=250_000))],
        model="my-private-model",
    )
    result = await ExecutionEngine(provider=provider, pricing=table).complete("hello")
    assert result.usage.cost == Decimal("1.0")


async def test_spec_model_defaults_to_provider_model_and_options_pass_through() -> None:
    provider = MockProvider(["ok"], model="m1")
    engine = ExecutionEngine(provider=provider)
    await engine.complete([{"role": "user", "content": "q"}], temperature=0.2, max_tokens=5)
    spec = provider.calls[0]
    assert spec.model == "m1" and spec.temperature == 0.2 and spec.max_tokens == 5


async def test_middleware_runs_outermost_first() -> None:
    order: list[str] = []

    class Tag(Middleware):
        def __init__(self, name: str) -> None:
            self.name = name

        async def complete(self, spec, context, call_next):  # type: ignore[no-untyped-def]
            order.append(f"{self.name}>")
            result = await call_next(spec, context)
            order.append(f"<{self.name}")
            return result

    engine = ExecutionEngine(provider=MockProvider(["ok"]), middleware=[Tag("a"), Tag("b")])
    await engine.complete("q")
    assert order == ["a>", "b>", "<b", "<a"]


async def test_retry_middleware_retries_provider_errors() -> None:
    sleep = NoSleep()
    provider = MockProvider([ProviderError("500"), ProviderError("500"), "third time lucky"])
    engine = ExecutionEngine(
        provider=provider, middleware=[RetryMiddleware(RetryPolicy(jitter=0), sleep=sleep)]
    )
    result = await engine.complete("q")
    assert result.content == "third time lucky"
    assert provider.call_count == 3
    assert sleep.delays == [0.5, 1.0]


async def test_stream_retried_only_before_output() -> None:
    sleep = NoSleep()
    provider = MockProvider([ProviderError("overloaded"), MockResponse.text("one two three")])
    engine = ExecutionEngine(provider=provider, middleware=[RetryMiddleware(sleep=sleep)])
    events = await collect(engine.stream("q"))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "one two three"
    assert isinstance(events[-1], StreamDone)
    assert provider.call_count == 2


async def test_stream_failure_after_output_is_not_retried() -> None:
    provider = MockProvider([MockResponse.text("one two three", stream_error_after=1), "never used"])
    engine = ExecutionEngine(provider=provider, middleware=[RetryMiddleware(sleep=NoSleep())])
    events = await collect(engine.stream("q"))
    assert isinstance(events[-1], StreamError)
    assert isinstance(events[-1].error, StreamInterruptedError)
    assert sum(isinstance(e, (StreamDone, StreamError)) for e in events) == 1
    assert provider.call_count == 1


async def test_timeout_middleware_bounds_a_hanging_call() -> None:
    never = asyncio.Event()

    async def hang(spec: RequestSpec) -> str:
        await never.wait()
        return "late"

    engine = ExecutionEngine(
        provider=MockProvider(handler=hang), middleware=[TimeoutMiddleware(timeout=0.05)]
    )
    with pytest.raises(RequestTimeoutError, match="timed out"):
        await engine.complete("q")


async def test_context_timeout_wins_over_middleware_default() -> None:
    never = asyncio.Event()

    async def hang(spec: RequestSpec) -> str:
        await never.wait()
        return "late"

    engine = ExecutionEngine(
        provider=MockProvider(handler=hang), middleware=[TimeoutMiddleware(timeout=3600)]
    )
    with pytest.raises(RequestTimeoutError):
        await engine.complete("q", context=RequestContext(timeout=0.05))


async def test_budget_refuses_a_call_that_would_exceed_tokens() -> None:
    provider = MockProvider(["never"])
    engine = ExecutionEngine(provider=provider, middleware=[BudgetMiddleware()])
    with pytest.raises(BudgetExceededError, match="token budget"):
        await engine.complete("x" * 4000, context=RequestContext(max_tokens=100))
    assert provider.call_count == 0


async def test_budget_accumulates_across_calls_sharing_a_context() -> None:
    provider = MockProvider([MockResponse.text("a", usage=Usage(input_tokens=40, output_tokens=30))] * 3)
    engine = ExecutionEngine(provider=provider, middleware=[BudgetMiddleware()])
    ctx = RequestContext(max_tokens=100)
    await engine.complete("hi", context=ctx)
    assert ctx.budget is not None and ctx.budget.spent_tokens == 70
    with pytest.raises(BudgetExceededError):
        await engine.complete("hi", context=ctx.child(), max_tokens=50)
    assert provider.call_count == 1


async def test_budget_holds_under_concurrency() -> None:
    gate = asyncio.Event()

    async def slow(spec: RequestSpec) -> MockResponse:
        await gate.wait()
        return MockResponse.text("ok", usage=Usage(input_tokens=10, output_tokens=10))

    provider = MockProvider(handler=slow)
    engine = ExecutionEngine(provider=provider, middleware=[BudgetMiddleware()])
    ctx = RequestContext(max_tokens=100)
    # each call reserves ~5 prompt tokens + 15 answer tokens = 20: five fit in 100
    tasks = [asyncio.create_task(engine.complete("hi", context=ctx, max_tokens=15)) for _ in range(50)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    ok = [r for r in results if isinstance(r, CompletionResult)]
    refused = [r for r in results if isinstance(r, BudgetExceededError)]
    assert len(ok) + len(refused) == 50
    assert provider.call_count == len(ok) <= 5
    assert ctx.budget is not None and ctx.budget.spent_tokens <= 100


async def test_cost_budget_refuses_when_spent() -> None:
    provider = MockProvider(
        [MockResponse.text("a", usage=Usage(input_tokens=1_000_000, output_tokens=0))] * 2, model="gpt-4o"
    )
    engine = ExecutionEngine(provider=provider, middleware=[BudgetMiddleware()])
    ctx = RequestContext(max_cost=Decimal("2.00"))
    await engine.complete("hi", context=ctx)  # costs $2.50, passing the limit once
    with pytest.raises(BudgetExceededError, match="cost budget"):
        await engine.complete("hi", context=ctx)


async def test_idempotency_key_through_engine_runs_once() -> None:
    provider = MockProvider(["first", "second"])
    engine = ExecutionEngine(provider=provider, idempotency_tracker=IdempotencyTracker(request_timeout=60.0))
    spec = RequestSpec.build("hello")
    a = await engine.complete(spec, idempotency_key="job-1")
    b = await engine.complete(spec, idempotency_key="job-1")
    assert a.content == b.content == "first"
    assert provider.call_count == 1
    c = await engine.complete(spec, idempotency_key="job-2")
    assert c.content == "second"


async def test_cancellation_token_interrupts_a_call() -> None:
    token = CancellationToken()
    entered = asyncio.Event()

    async def hang(spec: RequestSpec) -> str:
        entered.set()
        await asyncio.Event().wait()
        return "never"

    engine = ExecutionEngine(provider=MockProvider(handler=hang))
    task = asyncio.create_task(engine.complete("q", context=RequestContext(cancellation_token=token)))
    await entered.wait()
    token.cancel("user pressed stop")
    with pytest.raises(RequestCancelledError, match="user pressed stop"):
        await task


async def test_cancelled_token_refuses_new_calls_and_streams_end_with_error() -> None:
    token = CancellationToken()
    token.cancel("stop")
    engine = ExecutionEngine(provider=MockProvider(["unused"]))
    with pytest.raises(RequestCancelledError):
        await engine.complete("q", context=RequestContext(cancellation_token=token))
    events = await collect(engine.stream("q", context=RequestContext(cancellation_token=token)))
    assert len(events) == 1 and isinstance(events[0], StreamError)
    assert isinstance(events[0].error, RequestCancelledError)


async def test_asyncio_cancellation_propagates() -> None:
    entered = asyncio.Event()

    async def hang(spec: RequestSpec) -> str:
        entered.set()
        await asyncio.Event().wait()
        return "never"

    engine = ExecutionEngine(
        provider=MockProvider(handler=hang), middleware=[RetryMiddleware(), TimeoutMiddleware()]
    )
    task = asyncio.create_task(engine.complete("q"))
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_stream_always_ends_with_one_terminal_event() -> None:
    engine = ExecutionEngine(provider=MockProvider(["a b c", ProviderError("down")]))
    ok = await collect(engine.stream("q"))
    failed = await collect(engine.stream("q"))
    for events in (ok, failed):
        terminals = [e for e in events if isinstance(e, (StreamDone, StreamError))]
        assert len(terminals) == 1 and events[-1] is terminals[0]
    assert isinstance(ok[-1], StreamDone) and ok[-1].result.content == "a b c"
    assert isinstance(failed[-1], StreamError) and isinstance(failed[-1].error, ProviderError)


async def test_stream_done_is_priced() -> None:
    provider = MockProvider(
        [MockResponse.text("a", usage=Usage(input_tokens=1_000_000, output_tokens=0))], model="gpt-4o-mini"
    )
    events = await collect(ExecutionEngine(provider=provider).stream("q"))
    assert isinstance(events[-1], StreamDone)
    assert events[-1].result.usage.cost == Decimal("0.15")


async def test_budget_error_in_stream_is_a_terminal_event() -> None:
    engine = ExecutionEngine(provider=MockProvider(["x"]), middleware=[BudgetMiddleware()])
    events = await collect(engine.stream("x" * 4000, context=RequestContext(max_tokens=10)))
    assert len(events) == 1 and isinstance(events[0].error, BudgetExceededError)


def test_engine_rejects_a_non_provider() -> None:
    with pytest.raises(TypeError, match="Provider"):
        ExecutionEngine(provider=object())  # type: ignore[arg-type]


def test_complete_sync() -> None:
    engine = ExecutionEngine(provider=MockProvider(["sync ok"]))
    assert engine.complete_sync("q").content == "sync ok"


class ScriptedStream(Provider):
    """Streams deltas with awaits the test controls: a model that stalls, or one that is slow."""

    name = "scripted"
    model = "scripted"

    def __init__(self, deltas: int, *, stall_after: int | None = None, gap: float = 0.0) -> None:
        self.deltas = deltas
        self.stall_after = stall_after
        self.gap = gap

    async def complete(self, spec: RequestSpec) -> CompletionResult:
        raise NotImplementedError

    async def stream(self, spec: RequestSpec):  # type: ignore[no-untyped-def,override]
        for i in range(self.deltas):
            if self.stall_after is not None and i == self.stall_after:
                await asyncio.Event().wait()
            if self.gap:
                await asyncio.sleep(self.gap)  # the model's own pace, not synchronisation
            yield TextDelta("x")
        yield StreamDone(CompletionResult(content="x" * self.deltas))


async def test_stream_that_stalls_before_output_times_out() -> None:
    engine = ExecutionEngine(provider=ScriptedStream(3, stall_after=0), middleware=[TimeoutMiddleware(0.05)])
    events = await collect(engine.stream("q"))
    assert len(events) == 1 and isinstance(events[0].error, RequestTimeoutError)


async def test_stream_that_stalls_after_output_is_interrupted() -> None:
    engine = ExecutionEngine(provider=ScriptedStream(3, stall_after=2), middleware=[TimeoutMiddleware(0.05)])
    events = await collect(engine.stream("q"))
    assert [type(e).__name__ for e in events] == ["TextDelta", "TextDelta", "StreamError"]
    assert isinstance(events[-1].error, StreamInterruptedError)


async def test_stream_timeout_is_per_event_not_total() -> None:
    # 8 deltas 20 ms apart take longer than the 60 ms limit in total, but never stall that long.
    engine = ExecutionEngine(provider=ScriptedStream(8, gap=0.02), middleware=[TimeoutMiddleware(0.06)])
    events = await collect(engine.stream("q"))
    assert isinstance(events[-1], StreamDone)


async def test_a_slow_consumer_does_not_count_as_a_stalled_stream() -> None:
    engine = ExecutionEngine(provider=ScriptedStream(3), middleware=[TimeoutMiddleware(0.03)])
    got = []
    async for event in engine.stream("q"):
        got.append(event)
        await asyncio.sleep(0.05)  # the consumer is busy for longer than the limit
    assert isinstance(got[-1], StreamDone) and len(got) == 4


async def test_cancelling_the_consumer_of_a_timed_stream_propagates() -> None:
    engine = ExecutionEngine(provider=ScriptedStream(3, stall_after=1), middleware=[TimeoutMiddleware(30)])
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in engine.stream("q"):
            first.set()

    task = asyncio.create_task(consume())
    await first.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
