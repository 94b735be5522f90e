from __future__ import annotations

import asyncio

import pytest
from llm_client import IdempotencyConflictError, IdempotencyTracker, ProviderError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_concurrent_calls_with_one_key_run_once() -> None:
    tracker = IdempotencyTracker(request_timeout=60)
    gate = asyncio.Event()
    runs = 0

    async def call() -> str:
        nonlocal runs
        runs += 1
        await gate.wait()
        return f"result-{runs}"

    first = asyncio.create_task(tracker.run("k", "fp", call))
    await asyncio.sleep(0)
    second = asyncio.create_task(tracker.run("k", "fp", call))
    await asyncio.sleep(0)
    assert tracker.in_flight("k")
    gate.set()
    assert await first == await second == "result-1"
    assert runs == 1


async def test_completed_key_returns_stored_result_until_ttl() -> None:
    clock = Clock()
    tracker = IdempotencyTracker(ttl=10, clock=clock)
    runs = 0

    async def call() -> int:
        nonlocal runs
        runs += 1
        return runs

    assert await tracker.run("k", "fp", call) == 1
    clock.now += 9
    assert await tracker.run("k", "fp", call) == 1
    clock.now += 2
    assert await tracker.run("k", "fp", call) == 2


async def test_failed_call_releases_key_and_joiners_see_the_error() -> None:
    tracker = IdempotencyTracker()
    gate = asyncio.Event()

    async def fail() -> str:
        await gate.wait()
        raise ProviderError("upstream down")

    first = asyncio.create_task(tracker.run("k", "fp", fail))
    await asyncio.sleep(0)
    joiner = asyncio.create_task(tracker.run("k", "fp", fail))
    await asyncio.sleep(0)
    gate.set()
    for task in (first, joiner):
        with pytest.raises(ProviderError):
            await task
    assert not tracker.in_flight("k") and len(tracker) == 0

    async def ok() -> str:
        return "second try ran"

    assert await tracker.run("k", "fp", ok) == "second try ran"


async def test_cancelled_owner_releases_key_and_joiner_takes_over() -> None:
    tracker = IdempotencyTracker()
    started = asyncio.Event()
    runs = 0

    async def slow() -> str:
        nonlocal runs
        runs += 1
        if runs == 1:
            started.set()
            await asyncio.Event().wait()  # never finishes: the owner is cancelled
        return "taken over"

    owner = asyncio.create_task(tracker.run("k", "fp", slow))
    await started.wait()
    joiner = asyncio.create_task(tracker.run("k", "fp", slow))
    await asyncio.sleep(0)
    owner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await owner
    assert await joiner == "taken over"
    assert runs == 2


async def test_same_key_different_request_is_a_conflict() -> None:
    tracker = IdempotencyTracker()

    async def call() -> str:
        return "x"

    await tracker.run("k", "fingerprint-a", call)
    with pytest.raises(IdempotencyConflictError, match="different request"):
        await tracker.run("k", "fingerprint-b", call)


async def test_abandoned_in_flight_call_is_taken_over_after_request_timeout() -> None:
    clock = Clock()
    tracker = IdempotencyTracker(request_timeout=5, clock=clock)
    started = asyncio.Event()

    async def hang() -> str:
        started.set()
        await asyncio.Event().wait()
        return "never"

    stuck = asyncio.create_task(tracker.run("k", "fp", hang))
    await started.wait()
    clock.now += 6

    async def fresh() -> str:
        return "fresh"

    assert await tracker.run("k", "fp", fresh) == "fresh"
    stuck.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stuck


async def test_max_entries_evicts_oldest_completed() -> None:
    tracker = IdempotencyTracker(max_entries=2)

    async def call() -> str:
        return "v"

    for key in ("a", "b", "c"):
        await tracker.run(key, "fp", call)
    assert len(tracker) == 2


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        IdempotencyTracker(request_timeout=0)
