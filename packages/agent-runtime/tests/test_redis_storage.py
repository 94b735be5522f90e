"""Redis signal channel and job cache against the real Redis (the ``redis_url`` fixture)."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from agent_runtime import (
    ConcurrentModificationError,
    InMemoryJobStore,
    JobManager,
    JobRecord,
    JobSpec,
    JobStatus,
    JobStore,
    RedisActionStore,
    RedisJobCache,
    RedisSignalChannel,
    SignalMessage,
    ValidationError,
)
from agent_runtime.actions import ActionStatus, hash_resume_token, new_resume_token
from agent_runtime.storage.redis import SignalChannelClosedError, SignalTimeoutError
from service_helpers import free_loopback_port

redis_asyncio = pytest.importorskip("redis.asyncio")


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Any]:
    made = redis_asyncio.from_url(redis_url)
    try:
        yield made
    finally:
        await made.aclose()


@pytest.fixture
async def prefix(client: Any) -> AsyncIterator[str]:
    """A key prefix of this test alone; every key under it is deleted afterwards."""
    name = f"test-redis-{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        keys = [key async for key in client.scan_iter(match=f"{name}*")]
        if keys:
            await client.delete(*keys)


class CountingStore(InMemoryJobStore):
    """Counts primary reads, and can hold a read after it fetched (to interleave a writer)."""

    def __init__(self) -> None:
        super().__init__()
        self.gets = 0
        self.gate: asyncio.Event | None = None
        self.fetched = asyncio.Event()

    async def get(self, job_id: str) -> JobRecord | None:
        self.gets += 1
        record = await super().get(job_id)
        if self.gate is not None:
            self.fetched.set()
            await self.gate.wait()
        return record


# -- the seed block -----------------------------------------------------------------------------


async def test_seed_redis_block_runs_as_written(redis_url: str) -> None:
    import redis.asyncio as redis  # the seed's own import

    postgres_job_store = InMemoryJobStore()  # any JobStore; the seed's is PostgreSQL
    job_id = (await postgres_job_store.create(JobRecord())).job_id
    action_id = f"action-{uuid.uuid4().hex}"
    # Another process answers the action; whether before or after the wait starts, it is not lost.
    other = redis.from_url(redis_url)
    resolver = asyncio.create_task(
        RedisSignalChannel(other).signal(action_id, SignalMessage(action_id=action_id, status="resolved"))
    )

    # --- seed (the URL is the test server's; "redis://localhost" names the same one) ---
    client = await redis.from_url(redis_url)

    # Fast action signaling via pub/sub
    signal_channel = RedisSignalChannel(client)
    await signal_channel.start()

    # Wait for action resolution (non-polling)
    signal = await signal_channel.wait(action_id, timeout=300)

    # Signal action resolution
    await signal_channel.signal(
        action_id,
        SignalMessage(
            action_id=action_id,
            resume_token="...",
            status="resolved",
            resolution={"approved": True},
        ),
    )

    # Job cache (read-through)
    job_cache = RedisJobCache(client, primary_store=postgres_job_store)
    job = await job_cache.get(job_id)  # Hits Redis first

    # Redis action store
    action_store = RedisActionStore(client)
    # --- end of seed ---

    try:
        await resolver
        assert signal.action_id == action_id and signal.status is ActionStatus.RESOLVED
        latest = await signal_channel.last(action_id)
        assert latest is not None and latest.resolution == {"approved": True}
        assert latest.matches_token("...") and latest.resume_token is None
        assert job is not None and job.job_id == job_id
        assert await job_cache.cached(job_id) == job
        assert isinstance(action_store, RedisActionStore) and await action_store.get("nope") is None
    finally:
        await signal_channel.stop()
        await client.delete(signal_channel.key(action_id), job_cache.key(job_id))
        await client.aclose()
        await other.aclose()


# -- SignalMessage ------------------------------------------------------------------------------


def test_signal_message_keeps_only_the_token_hash() -> None:
    token = new_resume_token()
    message = SignalMessage(action_id="a1", resume_token=token, resolution={"ok": 1})
    assert message.resume_token is None
    assert message.resume_token_hash == hash_resume_token(token)
    assert token not in repr(message) and token not in str(message.to_dict())
    assert message.matches_token(token) and not message.matches_token(new_resume_token())
    back = SignalMessage.from_dict(message.to_dict())
    assert back == message and back.status is ActionStatus.RESOLVED


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"action_id": ""}, "action_id"),
        ({"action_id": "a", "status": "maybe"}, "unknown action status"),
        ({"action_id": "a", "resolution": {"x": object()}}, "JSON"),
        ({"action_id": "a", "resume_token": "t", "resume_token_hash": "0" * 64}, "does not match"),
        ({"action_id": "a", "sent_at": float("nan")}, "finite"),
    ],
)
def test_signal_message_validation(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        SignalMessage(**kwargs)


# -- RedisSignalChannel ---------------------------------------------------------------------------


class ReadSignallingChannel(RedisSignalChannel):
    """Sets ``checked`` once a waiter has read the stored signal and found none: from then on only
    the subscription can wake it."""

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self.checked = asyncio.Event()

    async def last(self, action_id: str) -> SignalMessage | None:
        found = await super().last(action_id)
        if found is None:
            self.checked.set()
        return found


async def test_signal_wakes_a_waiting_process_promptly(client: Any, redis_url: str, prefix: str) -> None:
    waiter_side = ReadSignallingChannel(client, prefix=prefix)
    other_client = redis_asyncio.from_url(redis_url)  # the resolver: another connection, another "process"
    resolver_side = RedisSignalChannel(other_client, prefix=prefix)
    async with waiter_side:
        started = time.monotonic()
        waiting = asyncio.create_task(waiter_side.wait("act-1", timeout=30))
        await waiter_side.checked.wait()
        receivers = await resolver_side.signal(
            "act-1", SignalMessage(action_id="act-1", status=ActionStatus.CANCELLED, metadata={"by": "ops"})
        )
        message = await waiting
        elapsed = time.monotonic() - started
    await other_client.aclose()
    assert receivers == 1  # delivered live, over the subscription
    assert message.status is ActionStatus.CANCELLED and message.metadata == {"by": "ops"}
    assert elapsed < 10  # woke on the signal, far before its 30 s timeout (no polling)


async def test_signal_sent_before_the_waiter_subscribed_is_not_lost(client: Any, prefix: str) -> None:
    channel = RedisSignalChannel(client, prefix=prefix, signal_ttl=60)
    assert await channel.signal("act-2", SignalMessage(action_id="act-2", resolution={"v": 2})) == 0
    ttl = await client.pttl(channel.key("act-2"))
    assert 0 < ttl <= 60_000  # the stored copy expires on its own
    async with channel:
        message = await channel.wait("act-2", timeout=30)
    assert message.resolution == {"v": 2}
    assert await channel.clear("act-2") is True and await channel.last("act-2") is None


async def test_many_waiters_of_one_action_all_wake(client: Any, prefix: str) -> None:
    channel = ReadSignallingChannel(client, prefix=prefix)
    async with channel:
        waiters = [asyncio.create_task(channel.wait("act-3", timeout=30)) for _ in range(5)]
        await channel.checked.wait()
        await channel.signal("act-3")
        results = await asyncio.gather(*waiters)
    assert {m.action_id for m in results} == {"act-3"}


async def test_wait_times_out_with_a_typed_timeout_error(client: Any, prefix: str) -> None:
    async with RedisSignalChannel(client, prefix=prefix) as channel:
        with pytest.raises(SignalTimeoutError, match="act-4") as caught:
            await channel.wait("act-4", timeout=0.05)
    assert isinstance(caught.value, TimeoutError) and caught.value.action_id == "act-4"


async def test_wait_needs_a_started_channel_and_stop_releases_waiters(client: Any, prefix: str) -> None:
    channel = ReadSignallingChannel(client, prefix=prefix)
    with pytest.raises(SignalChannelClosedError, match="start"):
        await channel.wait("act-5", timeout=1)
    await channel.start()
    await channel.start()  # idempotent
    waiting = asyncio.create_task(channel.wait("act-5", timeout=30))
    await channel.checked.wait()
    await channel.stop()
    with pytest.raises(SignalChannelClosedError, match="stopped"):
        await waiting
    await channel.stop()  # idempotent


async def test_signal_argument_errors(client: Any, prefix: str) -> None:
    channel = RedisSignalChannel(client, prefix=prefix)
    with pytest.raises(ValidationError, match="not 'b'"):
        await channel.signal("b", SignalMessage(action_id="a"))
    with pytest.raises(ValidationError, match="SignalMessage"):
        await channel.signal("a", {"action_id": "a"})  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="timeout"):
        await channel.wait("a", timeout=0)
    with pytest.raises(ValidationError, match="action_id"):
        await channel.last("")
    with pytest.raises(ValidationError, match="signal_ttl"):
        RedisSignalChannel(client, signal_ttl=-1)
    with pytest.raises(ValidationError, match="prefix"):
        RedisSignalChannel(client, prefix="")
    with pytest.raises(ValidationError, match="client"):
        RedisSignalChannel()
    with pytest.raises(ValidationError, match="not both"):
        RedisSignalChannel(client, redis_url="redis://127.0.0.1")


async def test_redis_url_clients_work_too(redis_url: str, client: Any, prefix: str) -> None:
    channel = RedisSignalChannel(redis_url=redis_url, prefix=prefix)
    await channel.signal("act-6")
    assert (await channel.last("act-6")) is not None
    await channel.close()


def test_missing_redis_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from agent_runtime.queues import RedisStreamsAdapter

    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    for build in (
        lambda: RedisSignalChannel(redis_url="redis://127.0.0.1:6379"),
        lambda: RedisActionStore(redis_url="redis://127.0.0.1:6379"),
        lambda: RedisJobCache(redis_url="redis://127.0.0.1:6379", primary_store=InMemoryJobStore()),
        lambda: RedisStreamsAdapter(None, None, redis_url="redis://127.0.0.1:6379"),
    ):
        with pytest.raises(ImportError, match=r"agent-runtime\[redis\]"):
            build()


# -- RedisJobCache ----------------------------------------------------------------------------------


async def test_job_cache_reads_through_and_refreshes_on_writes(client: Any, prefix: str) -> None:
    primary = CountingStore()
    cache = RedisJobCache(client, primary_store=primary, prefix=prefix, ttl=120)
    assert isinstance(cache, JobStore)
    job = await primary.create(JobRecord(tags={"team": "a"}))

    first = await cache.get(job.job_id)
    assert first == job and primary.gets == 1 and cache.misses == 1
    again = await cache.get(job.job_id)
    assert again == job and primary.gets == 1 and cache.hits == 1  # served by Redis
    assert 0 < await client.pttl(cache.key(job.job_id)) <= 120_000

    manager = JobManager(cache)
    running = await manager.start(job.job_id)  # read (a hit) -> write primary -> refresh the cache
    assert running.status is JobStatus.RUNNING and running.version == 2
    assert await cache.cached(job.job_id) == running
    assert await cache.get(job.job_id) == running and primary.gets == 1

    await manager.update_progress(job.job_id, 0.5, turn=1)
    done = await manager.complete(job.job_id, result_ref="artifact-1")
    assert await cache.get(job.job_id) == done == await primary.get(job.job_id)
    assert done.status is JobStatus.SUCCEEDED and done.result_ref == "artifact-1"
    assert await manager.count() == 1 and await manager.list() == [done]


async def test_job_manager_over_the_cache_creates_idempotently(client: Any, prefix: str) -> None:
    primary = CountingStore()
    manager = JobManager(RedisJobCache(client, primary_store=primary, prefix=prefix))
    created = await manager.create(JobSpec(idempotency_key="k1", scope_id="s"))
    again = await manager.create(JobSpec(idempotency_key="k1", scope_id="s"))
    assert again.job_id == created.job_id
    assert await manager.get(created.job_id) == created and primary.gets == 0  # create filled the cache
    assert await manager.get_by_idempotency_key("k1", scope_id="s") == created


async def test_a_writer_that_bypassed_the_cache_is_recovered_from(client: Any, prefix: str) -> None:
    primary = CountingStore()
    cache = RedisJobCache(client, primary_store=primary, prefix=prefix)
    manager = JobManager(cache)
    job = await manager.create(JobSpec())
    running = await manager.start(job.job_id)
    await primary.update(running.with_progress(0.9))  # straight to the primary: the cache is stale
    with pytest.raises(ConcurrentModificationError):
        await cache.update(running.with_progress(0.1))  # based on the stale copy ...
    assert await cache.cached(job.job_id) is None  # ... which the conflict invalidated
    done = await manager.complete(job.job_id)  # re-reads the primary and succeeds
    assert done.progress == 1.0 and done.version == 4


async def test_a_slow_reader_never_overwrites_a_newer_version(client: Any, prefix: str) -> None:
    primary = CountingStore()
    cache = RedisJobCache(client, primary_store=primary, prefix=prefix)
    job = await primary.create(JobRecord())
    primary.gate = asyncio.Event()
    reader = asyncio.create_task(cache.get(job.job_id))  # misses, fetches version 1, then stalls
    await primary.fetched.wait()
    newer = await cache.update(job.transition_to(JobStatus.RUNNING))  # version 2 lands in the cache
    primary.gate.set()
    assert (await reader).version == 1  # the reader returns what it read ...
    cached = await cache.cached(job.job_id)
    assert cached is not None and cached == newer and cached.version == 2  # ... but cannot cache it


async def test_delete_leaves_a_tombstone_against_resurrection(client: Any, prefix: str) -> None:
    primary = CountingStore()
    cache = RedisJobCache(client, primary_store=primary, prefix=prefix, tombstone_ttl=60)
    job = await primary.create(JobRecord())
    primary.gate = asyncio.Event()
    reader = asyncio.create_task(cache.get(job.job_id))  # read before the delete, cached after it
    await primary.fetched.wait()
    assert await cache.delete(job.job_id) is True
    primary.gate.set()
    assert (await reader) == job
    primary.gate = None
    assert await cache.cached(job.job_id) is None
    assert await cache.get(job.job_id) is None
    assert 0 < await client.pttl(cache.key(job.job_id)) <= 60_000
    assert await cache.delete(job.job_id) is False


async def test_job_cache_falls_back_to_the_primary_when_redis_is_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    dead = redis_asyncio.Redis(
        host="127.0.0.1", port=free_loopback_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    primary = CountingStore()
    manager = JobManager(RedisJobCache(dead, primary_store=primary))
    job = await manager.create(JobSpec())
    running = await manager.start(job.job_id)
    assert (await manager.get(job.job_id)) == running and primary.gets >= 1
    assert "job cache read failed" in caplog.text
    await dead.aclose()


def test_job_cache_constructor_errors(client: Any) -> None:
    with pytest.raises(ValidationError, match="primary_store"):
        RedisJobCache(client)
    with pytest.raises(ValidationError, match="already a RedisJobCache"):
        RedisJobCache(client, primary_store=RedisJobCache(client, primary_store=InMemoryJobStore()))
    with pytest.raises(ValidationError, match="ttl"):
        RedisJobCache(client, primary_store=InMemoryJobStore(), ttl=0)
