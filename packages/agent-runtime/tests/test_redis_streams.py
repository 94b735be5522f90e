"""RedisStreamsAdapter against the real Redis: bus -> per-topic streams, ranges, consumer groups."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from agent_runtime import (
    InMemoryEventBus,
    RedisStreamsAdapter,
    RedisStreamsConfig,
    RuntimeEvent,
    RuntimeEventType,
    ValidationError,
)
from agent_runtime.queues import StreamEntryDecodeError

redis_asyncio = pytest.importorskip("redis.asyncio")

T = RuntimeEventType


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Any]:
    made = redis_asyncio.from_url(redis_url)
    try:
        yield made
    finally:
        await made.aclose()


@pytest.fixture
async def prefix(redis_client: Any) -> AsyncIterator[str]:
    name = f"test-redis-streams-{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        keys = [key async for key in redis_client.scan_iter(match=f"{name}*")]
        if keys:
            await redis_client.delete(*keys)


def config(prefix: str, **kwargs: Any) -> RedisStreamsConfig:
    kwargs.setdefault("consumer_group", "workers")
    return RedisStreamsConfig(stream_prefix=prefix, **kwargs)


def job_events(job_id: str, n: int) -> list[RuntimeEvent]:
    return [
        RuntimeEvent(type=T.PROGRESS if i % 2 else T.JOB_STARTED, job_id=job_id, data={"i": i})
        for i in range(n)
    ]


# -- seed blocks ------------------------------------------------------------------------------------


async def test_seed_redis_streams_block_runs_as_written(redis_client: Any) -> None:
    stale = [key async for key in redis_client.scan_iter(match="myapp:events:*")]
    if stale:
        await redis_client.delete(*stale)
    event_bus = InMemoryEventBus()
    started = RuntimeEvent(type=T.JOB_STARTED, job_id="job-1", data={"n": 1})
    completed = RuntimeEvent(type=T.JOB_COMPLETED, job_id="job-1", data={"n": 2})
    tool = RuntimeEvent(type=T.TOOL_START, job_id="job-1", data={"tool": "search"})
    printed: list[RuntimeEvent] = []
    both = asyncio.Event()

    def print(event: RuntimeEvent) -> None:  # the seed prints; we keep what it printed
        printed.append(event)
        if len(printed) == 2:
            both.set()

    async def stop_after_two() -> None:  # the seed's loop runs until the adapter stops
        await both.wait()
        await adapter.stop()

    stopper = asyncio.create_task(stop_after_two())
    try:
        # --- seed ---
        config = RedisStreamsConfig(
            stream_prefix="myapp:events",
            max_len=100000,
            consumer_group="workers",
            consumer_name="worker-1",
        )

        adapter = RedisStreamsAdapter(redis_client, event_bus, config)
        await adapter.start()
        for event in (started, tool, completed):  # (the job's events, published by the kernel)
            await event_bus.publish(event)

        # Read events
        async for event in adapter.read_events("myapp:events:job"):
            print(event)

        # Read range
        events = await adapter.read_range(
            "myapp:events:job",
            start="-",  # Oldest
            end="+",  # Newest
            count=100,
        )

        await adapter.stop()
        # --- end of seed ---
        await stopper
        assert printed == [started, completed]
        assert events == [started, completed]
        assert await adapter.read_range("myapp:events:tool") == [tool]
        assert await adapter.pending_count("myapp:events:job") == 0  # the loop acknowledged both
    finally:
        stopper.cancel()
        await event_bus.close()
        keys = [key async for key in redis_client.scan_iter(match="myapp:events:*")]
        if keys:
            await redis_client.delete(*keys)


def test_seed_config_reference_block() -> None:
    config = RedisStreamsConfig(
        stream_prefix="agent:events",
        default_stream="all",
        max_len=100000,
        approximate_trim=True,
        consumer_group="default",
        consumer_name="worker-1",
        block_ms=5000,
    )
    assert config == RedisStreamsConfig()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"stream_prefix": ""}, "stream_prefix"),
        ({"default_stream": "a b"}, "default_stream"),
        ({"max_len": 0}, "max_len"),
        ({"approximate_trim": "yes"}, "approximate_trim"),
        ({"consumer_group": ""}, "consumer_group"),
        ({"block_ms": -1}, "block_ms"),
        ({"read_count": 0}, "read_count"),
        ({"claim_min_idle_ms": True}, "claim_min_idle_ms"),
    ],
)
def test_config_validation(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        RedisStreamsConfig(**kwargs)


# -- publishing -------------------------------------------------------------------------------------


async def test_bus_events_land_in_per_topic_streams_and_the_default_stream(
    redis_client: Any, prefix: str
) -> None:
    bus = InMemoryEventBus()
    adapter = RedisStreamsAdapter(redis_client, bus, config(prefix))
    published = [
        RuntimeEvent(type=T.JOB_STARTED, job_id="j1"),
        RuntimeEvent(type=T.TOOL_START, job_id="j1", data={"tool": "search"}),
        RuntimeEvent(type=T.ACTION_REQUIRED, job_id="j1", data={"action_id": "a1"}),
        RuntimeEvent(type=T.PROGRESS, job_id="j1", data={"progress": 0.5}),
        RuntimeEvent(type=T.MODEL_TOKEN, job_id="j1", data={"token": "hi"}),
        RuntimeEvent(type=T.JOB_COMPLETED, job_id="j1"),
    ]
    async with adapter:
        for event in published:
            await bus.publish(event)
    # stop() flushed everything the bus had handed over
    assert adapter.published == len(published) and adapter.failed == 0
    assert await adapter.read_range(f"{prefix}:job") == [published[0], published[5]]
    for topic, index in (("tool", 1), ("action", 2), ("progress", 3), ("model", 4)):
        assert await adapter.read_range(f"{prefix}:{topic}") == [published[index]]
    assert await adapter.read_range() == published  # the default stream: every event, in order
    await bus.publish(RuntimeEvent(type=T.JOB_STARTED, job_id="j2"))  # after stop: not forwarded
    assert await adapter.length(f"{prefix}:job") == 2
    await bus.close()


async def test_without_a_default_stream_events_go_to_their_topic_only(redis_client: Any, prefix: str) -> None:
    adapter = RedisStreamsAdapter(redis_client, None, config(prefix, default_stream=None))
    entry_id = await adapter.publish(RuntimeEvent(type=T.FINAL_RESULT, job_id="j"))
    assert [e.entry_id for e in await adapter.range_entries(f"{prefix}:final")] == [entry_id]
    assert await redis_client.exists(f"{prefix}:all") == 0
    with pytest.raises(ValidationError, match="default_stream"):
        await adapter.read_range()


async def test_read_range_bounds_and_paging(redis_client: Any, prefix: str) -> None:
    adapter = RedisStreamsAdapter(redis_client, None, config(prefix))
    events = job_events("j", 10)
    for event in events:
        await adapter.publish(event)
    entries = await adapter.range_entries(count=4)
    assert [e.event for e in entries] == events[:4]
    following = await adapter.range_entries(start=f"({entries[-1].entry_id}", count=4)
    assert [e.event for e in following] == events[4:8]
    assert await adapter.read_range(start=entries[1].entry_id, end=entries[2].entry_id) == events[1:3]
    assert await adapter.read_range(f"{prefix}:nothing") == []


async def test_max_len_trims_exactly_or_approximately(redis_client: Any, prefix: str) -> None:
    exact = RedisStreamsAdapter(
        redis_client, None, config(f"{prefix}:exact", max_len=5, approximate_trim=False, default_stream=None)
    )
    events = job_events("j", 12)
    for event in events:
        await exact.publish(event)
    assert await exact.length(f"{prefix}:exact:job") + await exact.length(f"{prefix}:exact:progress") == 10
    assert (
        await exact.read_range(f"{prefix}:exact:job") == [e for e in events if e.type is T.JOB_STARTED][-5:]
    )

    rough = RedisStreamsAdapter(redis_client, None, config(f"{prefix}:rough", max_len=10))
    for i in range(600):
        await rough.publish(RuntimeEvent(type=T.PROGRESS, data={"i": i}))
    length = await rough.length(f"{prefix}:rough:progress")
    assert 10 <= length < 600  # whole nodes were freed; a few more than max_len may remain
    newest = await rough.read_range(f"{prefix}:rough:progress", start="-", end="+")
    assert newest[-1].data == {"i": 599}


# -- consumer groups --------------------------------------------------------------------------------


async def test_group_read_and_ack(redis_client: Any, prefix: str) -> None:
    adapter = RedisStreamsAdapter(redis_client, None, config(prefix, block_ms=0))
    events = job_events("j", 3)
    for event in events:
        await adapter.publish(event)
    batch = await adapter.read_group()
    assert [e.event for e in batch] == events
    assert await adapter.read_group() == []  # delivered once per group
    assert await adapter.pending_count() == 3
    assert await adapter.ack(None, *(e.entry_id for e in batch[:2])) == 2
    assert [e.event for e in await adapter.read_group(pending=True)] == events[2:]
    assert await adapter.ack(None, batch[2].entry_id) == 1 and await adapter.pending_count() == 0
    other_group = RedisStreamsAdapter(redis_client, None, config(prefix, consumer_group="audit", block_ms=0))
    assert [e.event for e in await other_group.read_group()] == events  # groups are independent


async def test_a_dead_consumers_pending_entries_are_claimed(redis_client: Any, prefix: str) -> None:
    dead = RedisStreamsAdapter(redis_client, None, config(prefix, consumer_name="worker-dead", block_ms=0))
    alive = RedisStreamsAdapter(
        redis_client, None, config(prefix, consumer_name="worker-alive", block_ms=0, claim_min_idle_ms=0)
    )
    events = job_events("j", 4)
    for event in events:
        await dead.publish(event)
    taken = await dead.read_group(count=3)  # ... and then the worker dies without acknowledging
    assert len(taken) == 3
    assert await alive.claim_stale(min_idle_ms=60_000) == []  # not idle long enough yet
    received = [event async for event in alive.read_events()]  # claims the 3, then reads the 4th
    assert sorted(e.event_id for e in received) == sorted(e.event_id for e in events)
    assert await alive.pending_count() == 0


async def test_read_events_redelivers_what_the_loop_did_not_finish(redis_client: Any, prefix: str) -> None:
    adapter = RedisStreamsAdapter(redis_client, None, config(prefix, block_ms=0))
    events = job_events("j", 3)
    for event in events:
        await adapter.publish(event)
    seen: list[RuntimeEvent] = []
    reader = adapter.read_events()
    async for event in reader:
        seen.append(event)
        if len(seen) == 2:
            break  # crashed while handling the second event
    await reader.aclose()
    # The first was acknowledged; the second (unfinished) and third (read in the same batch) were not.
    assert await adapter.pending_count() == 2
    rest = [event async for event in adapter.read_events()]  # restart: own pending first
    assert seen == events[:2] and rest == events[1:]
    assert await adapter.pending_count() == 0


async def test_stop_ends_a_blocked_reader_promptly(redis_client: Any, prefix: str) -> None:
    adapter = RedisStreamsAdapter(redis_client, None, config(prefix, block_ms=30_000))
    await adapter.ensure_group()
    await adapter.ensure_group()  # idempotent (BUSYGROUP)
    started = time.monotonic()
    got_one = asyncio.Event()

    async def consume() -> list[RuntimeEvent]:
        received = []
        async for event in adapter.read_events():
            received.append(event)
            got_one.set()
        return received

    reader = asyncio.create_task(consume())
    event = RuntimeEvent(type=T.JOB_STARTED, job_id="j")
    await adapter.publish(event)
    await got_one.wait()  # the reader is now back in a (capped, 4 s) blocking XREADGROUP
    await adapter.stop()
    assert await reader == [event]
    assert time.monotonic() - started < 15  # did not sit out the 30 s block


async def test_blocking_reads_stay_under_the_clients_socket_timeout(redis_url: str, prefix: str) -> None:
    client = redis_asyncio.from_url(redis_url, socket_timeout=0.5)
    adapter = RedisStreamsAdapter(client, None, config(prefix, block_ms=30_000))
    started = time.monotonic()
    assert await adapter.read_group() == []  # BLOCK 250 ms instead of a client-side TimeoutError
    assert time.monotonic() - started < 15
    await client.aclose()


async def test_a_deleted_stream_gets_its_group_back(redis_client: Any, prefix: str) -> None:
    adapter = RedisStreamsAdapter(redis_client, None, config(prefix, block_ms=0))
    await adapter.publish(RuntimeEvent(type=T.JOB_STARTED))
    assert len(await adapter.read_group()) == 1
    await redis_client.delete(f"{prefix}:all")  # the group goes with it
    event = RuntimeEvent(type=T.JOB_COMPLETED)
    await adapter.publish(event)
    assert [e.event for e in await adapter.read_group()] == [event]


async def test_foreign_entries_raise_a_typed_error(redis_client: Any, prefix: str) -> None:
    adapter = RedisStreamsAdapter(redis_client, None, config(prefix, block_ms=0))
    entry_id = (await redis_client.xadd(f"{prefix}:all", {"something": "else"})).decode()
    with pytest.raises(StreamEntryDecodeError, match="no 'event' field") as caught:
        await adapter.read_range()
    assert caught.value.entry_id == entry_id
    await redis_client.xadd(f"{prefix}:all", {"event": "{not json"})
    with pytest.raises(StreamEntryDecodeError):
        await adapter.read_group()
    assert await adapter.pending_count() == 2  # left for an operator, not silently acknowledged


async def test_transient_publish_failures_are_retried(redis_client: Any, prefix: str) -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    class Flaky(RedisStreamsAdapter):
        failures = 1

        async def publish(self, event: RuntimeEvent) -> str:
            if self.failures:
                self.failures -= 1
                raise RedisConnectionError("connection reset")
            return await super().publish(event)

    bus = InMemoryEventBus()
    adapter = Flaky(redis_client, bus, config(prefix))
    async with adapter:
        await bus.publish(RuntimeEvent(type=T.JOB_STARTED))
    assert adapter.published == 1 and adapter.failed == 0 and await adapter.length() == 1
    await bus.close()


def test_adapter_argument_errors(redis_client: Any) -> None:
    with pytest.raises(ValidationError, match="EventBus"):
        RedisStreamsAdapter(redis_client, object())  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="RedisStreamsConfig"):
        RedisStreamsAdapter(redis_client, None, {"stream_prefix": "x"})  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="client"):
        RedisStreamsAdapter(None, None)
