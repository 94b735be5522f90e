from __future__ import annotations

import pytest
from llm_client import (
    AuthenticationError,
    ProviderError,
    RateLimitError,
    RetryPolicy,
    StreamInterruptedError,
)
from llm_client.retry import retry_async


class FakeSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def failing(errors: list[Exception], result: str = "ok"):
    calls = {"n": 0}

    async def call() -> str:
        calls["n"] += 1
        if errors:
            raise errors.pop(0)
        return result

    return call, calls


async def test_retries_retryable_errors_then_succeeds() -> None:
    sleep = FakeSleep()
    call, calls = failing([ProviderError("boom"), ProviderError("boom")])
    policy = RetryPolicy(max_attempts=3, initial_delay=1.0, multiplier=2.0, jitter=0.0)
    assert await retry_async(call, policy, sleep=sleep) == "ok"
    assert calls["n"] == 3
    assert sleep.delays == [1.0, 2.0]


async def test_gives_up_after_max_attempts_with_the_typed_error() -> None:
    sleep = FakeSleep()
    call, calls = failing([ProviderError("a"), ProviderError("b"), ProviderError("c")])
    with pytest.raises(ProviderError, match="c"):
        await retry_async(call, RetryPolicy(max_attempts=3, jitter=0.0), sleep=sleep)
    assert calls["n"] == 3
    assert len(sleep.delays) == 2


async def test_non_retryable_error_is_raised_at_once() -> None:
    sleep = FakeSleep()
    call, calls = failing([AuthenticationError("bad key")])
    with pytest.raises(AuthenticationError):
        await retry_async(call, RetryPolicy(), sleep=sleep)
    assert calls["n"] == 1
    assert sleep.delays == []


async def test_retry_after_is_a_floor() -> None:
    sleep = FakeSleep()
    call, _ = failing([RateLimitError("slow down", retry_after=7.5)])
    await retry_async(call, RetryPolicy(initial_delay=0.1, jitter=0.0), sleep=sleep)
    assert sleep.delays == [7.5]


async def test_retry_after_beyond_total_time_gives_up() -> None:
    sleep = FakeSleep()
    call, calls = failing([RateLimitError("slow down", retry_after=500)])
    with pytest.raises(RateLimitError):
        await retry_async(call, RetryPolicy(max_total_time=60), sleep=sleep)
    assert calls["n"] == 1


async def test_stream_interrupted_is_never_retried() -> None:
    call, calls = failing([StreamInterruptedError("dropped", partial_text="hel")])
    with pytest.raises(StreamInterruptedError):
        await retry_async(call, RetryPolicy(), sleep=FakeSleep())
    assert calls["n"] == 1


def test_jitter_keeps_delay_within_bounds() -> None:
    policy = RetryPolicy(initial_delay=2.0, multiplier=3.0, max_delay=10.0, jitter=0.5)
    for attempt, base in ((1, 2.0), (2, 6.0), (3, 10.0), (4, 10.0)):
        for _ in range(50):
            d = policy.delay_for(attempt)
            assert base * 0.5 <= d <= base


@pytest.mark.parametrize("kwargs", [{"max_attempts": 0}, {"jitter": 2.0}, {"initial_delay": -1}])
def test_invalid_policy(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
