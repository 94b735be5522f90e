"""The in-memory backends keep the contracts the durable ones keep (they stand in for them in tests)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from agent_runtime_core.events import Event, InMemoryEventBus
from agent_runtime_core.queue import InMemoryQueue
from agent_runtime_core.state import InMemoryStateStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _collect(
    bus: InMemoryEventBus, run_id: str, from_seq: int, count: int, started: asyncio.Event
) -> list[Event]:
    out: list[Event] = []
    agen = bus.subscribe(run_id, from_seq=from_seq)
    try:
        async for event in agen:
            out.append(event)
            started.set()
            if len(out) == count:
                break
    finally:
        await agen.aclose()  # type: ignore[attr-defined]
    return out


# --- event bus ----------------------------------------------------------------------------------------


async def test_publish_assigns_consecutive_seqs_per_run() -> None:
    bus = InMemoryEventBus()
    a1 = await bus.publish("a", "run.started", {})
    b1 = await bus.publish("b", "run.started", {})
    a2 = await bus.publish("a", "assistant.delta", {"delta": "hi"})
    assert (a1.seq, a2.seq, b1.seq) == (1, 2, 1)
    assert [e.seq for e in await bus.get_events("a")] == [1, 2]
    assert [e.seq for e in await bus.get_events("a", from_seq=1)] == [2]
    assert [e.seq for e in await bus.get_events("a", limit=1)] == [1]
    assert (await bus.get_events("a", from_seq=1))[0].payload == {"delta": "hi"}


async def test_subscribe_replays_after_from_seq_then_follows_live_without_gaps_or_duplicates() -> None:
    bus = InMemoryEventBus()
    for i in range(1, 4):
        await bus.publish("r", "progress.update", {"i": i})
    started = asyncio.Event()
    task = asyncio.create_task(_collect(bus, "r", 1, 5, started))
    await started.wait()  # the subscriber has replayed history and is now following
    for i in range(4, 7):
        await bus.publish("r", "progress.update", {"i": i})
    events = await asyncio.wait_for(task, 5)
    assert [e.seq for e in events] == [2, 3, 4, 5, 6]
    assert [e.payload["i"] for e in events] == [2, 3, 4, 5, 6]


async def test_subscriber_waiting_before_any_event_gets_the_first_one() -> None:
    bus = InMemoryEventBus()
    started = asyncio.Event()
    task = asyncio.create_task(_collect(bus, "r", 0, 1, started))
    await asyncio.sleep(0)  # let it reach its wait; correctness doesn't depend on it
    await bus.publish("r", "run.started", {})
    assert [e.seq for e in await asyncio.wait_for(task, 5)] == [1]


async def test_slow_subscriber_does_not_block_publisher_or_lose_events() -> None:
    bus = InMemoryEventBus()
    release = asyncio.Event()
    got: list[int] = []

    async def slow() -> None:
        async for event in bus.subscribe("r"):
            got.append(event.seq)
            if len(got) == 1:
                await release.wait()  # stuck on the first event while the publisher goes on
            if len(got) == 100:
                return

    task = asyncio.create_task(slow())
    await bus.publish("r", "progress.update", {"i": 0})
    for i in range(1, 100):
        await asyncio.wait_for(bus.publish("r", "progress.update", {"i": i}), 1)
    assert got == [1]
    release.set()
    await asyncio.wait_for(task, 5)
    assert got == list(range(1, 101))


async def test_event_payload_must_be_json_and_is_copied() -> None:
    bus = InMemoryEventBus()
    with pytest.raises(TypeError, match=r"tool\.call"):
        await bus.publish("r", "tool.call", {"x": object()})
    assert await bus.get_events("r") == []
    payload: dict[str, Any] = {"items": [1]}
    await bus.publish("r", "tool.call", payload)
    payload["items"].append(2)
    assert (await bus.get_events("r"))[0].payload == {"items": [1]}


async def test_bounded_history_keeps_seq_numbers_and_rejects_zero() -> None:
    bus = InMemoryEventBus(max_events_per_run=2)
    for _ in range(5):
        await bus.publish("r", "x", {})
    assert [e.seq for e in await bus.get_events("r")] == [4, 5]
    assert (await bus.publish("r", "x", {})).seq == 6
    with pytest.raises(ValueError, match="max_events_per_run"):
        InMemoryEventBus(max_events_per_run=0)


# --- queue --------------------------------------------------------------------------------------------


async def test_queue_fifo_ack_and_size() -> None:
    q = InMemoryQueue()
    first = await q.enqueue({"n": 1})
    await q.enqueue({"n": 2})
    assert await q.size() == 2
    msg = await q.dequeue()
    assert msg is not None and msg.id == first and msg.payload == {"n": 1} and msg.attempts == 1
    assert await q.size() == 2  # in flight still counts
    await q.ack(msg)
    assert await q.size() == 1


async def test_unacked_message_is_redelivered_after_visibility_timeout() -> None:
    clock = FakeClock()
    q = InMemoryQueue(visibility_timeout=30, clock=clock)
    await q.enqueue({"job": 1})
    first = await q.dequeue()
    assert first is not None and first.attempts == 1
    assert await q.dequeue() is None  # hidden while in flight
    clock.now += 29
    assert await q.dequeue() is None
    clock.now += 2
    second = await q.dequeue()
    assert second is not None and second.id == first.id and second.attempts == 2
    assert second.receipt != first.receipt


async def test_stale_receipt_cannot_ack_or_nack_a_redelivered_message() -> None:
    clock = FakeClock()
    q = InMemoryQueue(visibility_timeout=10, clock=clock)
    await q.enqueue({"job": 1})
    stale = await q.dequeue()
    clock.now += 11
    fresh = await q.dequeue()
    assert stale is not None and fresh is not None
    await q.ack(stale)
    await q.nack(stale)
    assert await q.size() == 1
    assert await q.dequeue() is None  # still held by the fresh delivery
    await q.ack(fresh)
    assert await q.size() == 0


async def test_nack_with_delay_and_delayed_enqueue() -> None:
    clock = FakeClock()
    q = InMemoryQueue(clock=clock)
    await q.enqueue({"later": True}, delay=5)
    assert await q.dequeue() is None
    clock.now += 5
    msg = await q.dequeue()
    assert msg is not None
    await q.nack(msg, delay=3)
    assert await q.dequeue() is None
    clock.now += 3
    again = await q.dequeue()
    assert again is not None and again.attempts == 2


async def test_blocking_dequeue_wakes_on_enqueue_and_times_out() -> None:
    q = InMemoryQueue()
    assert await q.dequeue(timeout=0.05) is None
    waiter = asyncio.create_task(q.dequeue(timeout=10))
    await asyncio.sleep(0)
    await q.enqueue({"n": 1})
    msg = await asyncio.wait_for(waiter, 5)
    assert msg is not None and msg.payload == {"n": 1}


async def test_queue_payload_must_be_json() -> None:
    q = InMemoryQueue()
    with pytest.raises(TypeError, match="queue message payload"):
        await q.enqueue({"when": {1, 2}})
    assert await q.size() == 0


# --- state --------------------------------------------------------------------------------------------


async def test_state_checkpoints_and_values() -> None:
    s = InMemoryStateStore()
    assert await s.get_checkpoint("r") is None
    assert await s.save_checkpoint("r", {"step": 1}) == 1
    assert await s.save_checkpoint("r", {"step": 2}) == 2
    assert await s.get_checkpoint("r") == {"step": 2}
    assert await s.list_checkpoints("r") == [{"step": 1}, {"step": 2}]
    await s.delete_checkpoints("r")
    assert await s.list_checkpoints("r") == []
    await s.set("k", {"a": [1]})
    assert await s.get("k") == {"a": [1]}
    await s.delete("k")
    assert await s.get("k") is None


async def test_state_refuses_non_json_before_writing() -> None:
    s = InMemoryStateStore()
    with pytest.raises(TypeError, match="checkpoint of run 'r'"):
        await s.save_checkpoint("r", {"bad": object()})
    with pytest.raises(TypeError, match="'k'"):
        await s.set("k", b"bytes")
    assert await s.list_checkpoints("r") == []
    assert await s.get("k") is None


async def test_the_bus_forgets_the_oldest_runs_beyond_max_runs() -> None:
    bus = InMemoryEventBus(max_runs=3)
    for i in range(5):
        await bus.publish(f"run-{i}", "run.started", {})
    assert await bus.get_events("run-0") == [] and await bus.get_events("run-1") == []
    assert [e.run_id for e in await bus.get_events("run-4")] == ["run-4"]
    await bus.delete_run("run-4")
    assert await bus.get_events("run-4") == []


async def test_a_long_run_keeps_exactly_its_last_events_and_reads_from_any_seq() -> None:
    bus = InMemoryEventBus(max_events_per_run=100)
    for i in range(1, 1001):
        await bus.publish("r", "assistant.delta", {"i": i})
    events = await bus.get_events("r")
    assert [e.seq for e in events] == list(range(901, 1001))
    assert [e.seq for e in await bus.get_events("r", from_seq=990, limit=5)] == [991, 992, 993, 994, 995]
    assert await bus.get_events("r", from_seq=1000) == []
