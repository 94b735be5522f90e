"""The Redis backends against a real server: the in-memory contracts, plus what only a shared
server can show (several processes, several clients, a consumer killed mid-message)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from agent_runtime_core.events import Event, RedisEventBus
from agent_runtime_core.queue import RedisQueue
from agent_runtime_core.state import RedisStateStore


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    """A key namespace of this test's own, deleted afterwards."""
    name = f"test:{uuid.uuid4().hex}"
    yield name
    client = aioredis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{name}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def _take(agen: AsyncIterator[Event], count: int, started: asyncio.Event | None = None) -> list[Event]:
    out: list[Event] = []
    try:
        async for event in agen:
            out.append(event)
            if started is not None:
                started.set()
            if len(out) == count:
                break
    finally:
        await agen.aclose()  # type: ignore[attr-defined]
    return out


# --- event bus ----------------------------------------------------------------------------------------


async def test_publish_and_get_events(redis_url: str, prefix: str) -> None:
    bus = RedisEventBus(redis_url=redis_url, prefix=prefix)
    try:
        e1 = await bus.publish("r", "run.started", {"a": 1})
        e2 = await bus.publish("r", "assistant.delta", {"delta": "x"})
        await bus.publish("other", "run.started", {})
        assert (e1.seq, e2.seq) == (1, 2)
        events = await bus.get_events("r")
        assert [(e.seq, e.event_type, e.payload) for e in events] == [
            (1, "run.started", {"a": 1}),
            (2, "assistant.delta", {"delta": "x"}),
        ]
        assert events[0].timestamp == e1.timestamp
        assert [e.seq for e in await bus.get_events("r", from_seq=1)] == [2]
        assert [e.seq for e in await bus.get_events("r", limit=1)] == [1]
        assert await bus.get_events("missing") == []
    finally:
        await bus.close()


async def test_late_subscriber_catches_up_from_seq_then_follows_live(redis_url: str, prefix: str) -> None:
    bus = RedisEventBus(redis_url=redis_url, prefix=prefix)
    try:
        for i in range(1, 6):
            await bus.publish("r", "progress.update", {"i": i})
        started = asyncio.Event()
        task = asyncio.create_task(_take(bus.subscribe("r", from_seq=2), 5, started))
        await asyncio.wait_for(started.wait(), 5)
        for i in range(6, 8):
            await bus.publish("r", "progress.update", {"i": i})
        events = await asyncio.wait_for(task, 5)
        assert [e.seq for e in events] == [3, 4, 5, 6, 7]
        assert [e.payload["i"] for e in events] == [3, 4, 5, 6, 7]
    finally:
        await bus.close()


async def test_subscribe_during_a_burst_has_no_gaps_or_duplicates(redis_url: str, prefix: str) -> None:
    bus = RedisEventBus(redis_url=redis_url, prefix=prefix)
    try:
        publishing = asyncio.Event()

        async def publisher() -> None:
            for i in range(200):
                await bus.publish("r", "assistant.delta", {"i": i})
                if i == 20:
                    publishing.set()

        pub = asyncio.create_task(publisher())
        await publishing.wait()  # subscribe while events are still being published
        events = await asyncio.wait_for(_take(bus.subscribe("r"), 200), 10)
        await pub
        assert [e.seq for e in events] == list(range(1, 201))
    finally:
        await bus.close()


async def test_two_publishers_get_unique_consecutive_seqs(redis_url: str, prefix: str) -> None:
    a = RedisEventBus(redis_url=redis_url, prefix=prefix)
    b = RedisEventBus(client=aioredis.from_url(redis_url), prefix=prefix)
    try:

        async def burst(bus: RedisEventBus, who: str) -> list[int]:
            return [(await bus.publish("r", "x", {"who": who})).seq for _ in range(50)]

        seqs_a, seqs_b = await asyncio.gather(burst(a, "a"), burst(b, "b"))
        assert sorted(seqs_a + seqs_b) == list(range(1, 101))
        history = await a.get_events("r")
        assert [e.seq for e in history] == list(range(1, 101))
        assert [e.seq for e in history if e.payload["who"] == "a"] == seqs_a
    finally:
        await a.close()
        await b._conn.client().aclose()


async def test_lost_live_message_is_filled_from_history(redis_url: str, prefix: str) -> None:
    bus = RedisEventBus(redis_url=redis_url, prefix=prefix)
    raw = aioredis.from_url(redis_url)
    try:
        started = asyncio.Event()
        task = asyncio.create_task(_take(bus.subscribe("r"), 3, started))
        await bus.publish("r", "x", {"n": 1})
        await asyncio.wait_for(started.wait(), 5)
        # Event 2 reaches the history but its PUBLISH is lost (as when a pub/sub connection drops).
        seq_key, history_key, _ = bus._keys("r")
        seq = await raw.incr(seq_key)
        await raw.rpush(history_key, f'{{"seq":{seq},"run_id":"r","event_type":"x","payload":{{"n":2}}}}')
        await bus.publish("r", "x", {"n": 3})
        events = await asyncio.wait_for(task, 5)
        assert [(e.seq, e.payload["n"]) for e in events] == [(1, 1), (2, 2), (3, 3)]
    finally:
        await raw.aclose()
        await bus.close()


async def test_cancelled_subscriber_unsubscribes(redis_url: str, prefix: str) -> None:
    bus = RedisEventBus(redis_url=redis_url, prefix=prefix)
    raw = aioredis.from_url(redis_url)
    _, _, channel = bus._keys("r")
    try:
        started = asyncio.Event()
        task = asyncio.create_task(_take(bus.subscribe("r"), 10, started))
        await bus.publish("r", "x", {})
        await asyncio.wait_for(started.wait(), 5)
        assert (await raw.pubsub_numsub(channel))[0][1] == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await raw.pubsub_numsub(channel))[0][1] == 0
    finally:
        await raw.aclose()
        await bus.close()


async def test_event_payload_must_be_json(redis_url: str, prefix: str) -> None:
    bus = RedisEventBus(redis_url=redis_url, prefix=prefix)
    try:
        with pytest.raises(TypeError, match=r"tool\.result"):
            await bus.publish("r", "tool.result", {"value": object()})
        assert await bus.get_events("r") == []
        assert (await bus.publish("r", "tool.result", {})).seq == 1  # nothing was consumed
    finally:
        await bus.close()


async def test_history_ttl_is_applied(redis_url: str, prefix: str) -> None:
    bus = RedisEventBus(redis_url=redis_url, prefix=prefix, history_ttl=60)
    raw = aioredis.from_url(redis_url)
    try:
        await bus.publish("r", "x", {})
        _, history_key, _ = bus._keys("r")
        assert 0 < await raw.pttl(history_key) <= 60_000
        with pytest.raises(ValueError, match="history_ttl"):
            RedisEventBus(redis_url=redis_url, history_ttl=0)
    finally:
        await raw.aclose()
        await bus.close()


# --- queue --------------------------------------------------------------------------------------------


async def test_queue_fifo_ack_size(redis_url: str, prefix: str) -> None:
    q = RedisQueue(redis_url=redis_url, prefix=prefix)
    try:
        first = await q.enqueue({"n": 1})
        await q.enqueue({"n": 2}, message_id="second")
        assert await q.size() == 2
        msg = await q.dequeue()
        assert msg is not None and (msg.id, msg.payload, msg.attempts) == (first, {"n": 1}, 1)
        assert msg.receipt
        await q.ack(msg)
        assert await q.size() == 1
        msg2 = await q.dequeue()
        assert msg2 is not None and msg2.id == "second"
        await q.ack(msg2)
        assert await q.size() == 0
        assert await q.dequeue() is None
    finally:
        await q.close()


async def test_redelivery_after_visibility_timeout_and_stale_receipt(redis_url: str, prefix: str) -> None:
    q = RedisQueue(redis_url=redis_url, prefix=prefix)
    try:
        await q.enqueue({"job": 1})
        stale = await q.dequeue(visibility_timeout=0.2)
        assert stale is not None and stale.attempts == 1
        assert await q.dequeue() is None  # hidden while in flight
        fresh = await q.dequeue(timeout=5, visibility_timeout=30)  # waits for the deadline to pass
        assert fresh is not None and fresh.id == stale.id and fresh.attempts == 2
        await q.ack(stale)
        await q.nack(stale)
        assert await q.size() == 1
        assert await q.dequeue() is None
        await q.ack(fresh)
        assert await q.size() == 0
    finally:
        await q.close()


async def test_nack_delay_and_delayed_enqueue(redis_url: str, prefix: str) -> None:
    q = RedisQueue(redis_url=redis_url, prefix=prefix)
    try:
        await q.enqueue({"later": True}, delay=0.2)
        assert await q.dequeue() is None
        msg = await q.dequeue(timeout=5)
        assert msg is not None and msg.payload == {"later": True}
        await q.nack(msg, delay=0.2)
        assert await q.dequeue() is None
        again = await q.dequeue(timeout=5)
        assert again is not None and again.attempts == 2
        await q.nack(again)
        assert (await q.dequeue()) is not None  # nack without delay: visible at once
    finally:
        await q.close()


async def test_blocking_dequeue_wakes_on_enqueue_from_another_client(redis_url: str, prefix: str) -> None:
    consumer = RedisQueue(redis_url=redis_url, prefix=prefix)
    producer = RedisQueue(redis_url=redis_url, prefix=prefix)
    try:
        assert await consumer.dequeue(timeout=0.05) is None
        waiter = asyncio.create_task(consumer.dequeue(timeout=10))
        await asyncio.sleep(0)
        await producer.enqueue({"n": 1})
        msg = await asyncio.wait_for(waiter, 5)
        assert msg is not None and msg.payload == {"n": 1}
    finally:
        await consumer.close()
        await producer.close()


async def test_concurrent_consumers_never_share_a_delivery(redis_url: str, prefix: str) -> None:
    q = RedisQueue(redis_url=redis_url, prefix=prefix)
    try:
        for i in range(40):
            await q.enqueue({"i": i})

        async def drain() -> list[int]:
            got = []
            while (msg := await q.dequeue()) is not None:
                got.append(msg.payload["i"])
                await q.ack(msg)
            return got

        results = await asyncio.gather(*(drain() for _ in range(4)))
        everything = [i for r in results for i in r]
        assert sorted(everything) == list(range(40))
    finally:
        await q.close()


async def test_queue_rejects_bad_input(redis_url: str, prefix: str) -> None:
    q = RedisQueue(redis_url=redis_url, prefix=prefix)
    try:
        with pytest.raises(TypeError, match="queue message payload"):
            await q.enqueue({"x": object()})
        with pytest.raises(ValueError, match="delay"):
            await q.enqueue({}, delay=-1)
        with pytest.raises(ValueError, match="visibility_timeout"):
            await q.dequeue(visibility_timeout=0)
        assert await q.size() == 0
        with pytest.raises(ValueError, match="redis_url"):
            RedisQueue()
    finally:
        await q.close()


_CONSUMER = """
import asyncio, sys
from agent_runtime_core.queue import RedisQueue

async def main():
    q = RedisQueue(redis_url=sys.argv[1], prefix=sys.argv[2])
    msg = await q.dequeue(timeout=10, visibility_timeout=1.0)
    print(msg.id, msg.attempts, flush=True)
    sys.stdin.read()  # hold the message, unacknowledged, until killed

asyncio.run(main())
"""


@pytest.mark.slow
async def test_message_of_a_killed_consumer_is_redelivered(redis_url: str, prefix: str) -> None:
    q = RedisQueue(redis_url=redis_url, prefix=prefix)
    proc = subprocess.Popen(
        [sys.executable, "-c", _CONSUMER, redis_url, prefix],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        mid = await q.enqueue({"run_id": "r1"})
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 20)
        assert line.split() == [mid, "1"]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert await q.dequeue() is None  # still within its visibility timeout
        msg = await q.dequeue(timeout=10)
        assert msg is not None and msg.id == mid and msg.attempts == 2 and msg.payload == {"run_id": "r1"}
        await q.ack(msg)
        assert await q.size() == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        await q.close()


# --- state --------------------------------------------------------------------------------------------


async def test_state_checkpoints_and_values(redis_url: str, prefix: str) -> None:
    s = RedisStateStore(redis_url=redis_url, prefix=prefix)
    try:
        assert await s.get_checkpoint("r") is None
        assert await s.save_checkpoint("r", {"step": 1}) == 1
        assert await s.save_checkpoint("r", {"step": 2}) == 2
        assert await s.get_checkpoint("r") == {"step": 2}
        assert await s.list_checkpoints("r") == [{"step": 1}, {"step": 2}]
        await s.delete_checkpoints("r")
        assert await s.list_checkpoints("r") == []
        await s.set("k", {"a": [1, None]})
        assert await s.get("k") == {"a": [1, None]}
        await s.delete("k")
        assert await s.get("k") is None
    finally:
        await s.close()


async def test_state_ttls(redis_url: str, prefix: str) -> None:
    s = RedisStateStore(redis_url=redis_url, prefix=prefix, checkpoint_ttl=60)
    raw = aioredis.from_url(redis_url)
    try:
        await s.set("short", 1, ttl=30)
        await s.set("forever", 2)
        await s.save_checkpoint("r", {})
        assert 0 < await raw.pttl(f"{prefix}:kv:short") <= 30_000
        assert await raw.pttl(f"{prefix}:kv:forever") == -1
        assert 0 < await raw.pttl(f"{prefix}:checkpoints:r") <= 60_000
        with pytest.raises(ValueError, match="ttl"):
            await s.set("k", 1, ttl=0)
    finally:
        await raw.aclose()
        await s.close()


async def test_state_refuses_non_json(redis_url: str, prefix: str) -> None:
    s = RedisStateStore(redis_url=redis_url, prefix=prefix)
    try:
        with pytest.raises(TypeError, match="checkpoint of run 'r'"):
            await s.save_checkpoint("r", {"bad": object()})
        with pytest.raises(TypeError, match="'k'"):
            await s.set("k", {1, 2})
        assert await s.list_checkpoints("r") == []
    finally:
        await s.close()


def test_one_backend_serves_several_event_loops(redis_url: str) -> None:
    """A cached backend used from successive loops (async_to_sync, tests) gets a client per loop."""
    name = f"test:{uuid.uuid4().hex}"
    s = RedisStateStore(redis_url=redis_url, prefix=name)

    async def write(value: Any) -> None:
        await s.set("k", value)

    async def read_and_clean() -> Any:
        try:
            return await s.get("k")
        finally:
            await s.delete("k")
            await s.close()

    asyncio.run(write(1))
    asyncio.run(write(2))
    assert asyncio.run(read_and_clean()) == 2
