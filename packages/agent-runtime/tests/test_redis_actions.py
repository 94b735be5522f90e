"""RedisActionStore: the in-memory store's behavioural contract (run against both), plus what is
Redis-specific: hashed tokens in the keyspace, Lua compare-and-set, TTL retention, pub/sub wake-ups."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from agent_runtime import (
    ActionFilter,
    ActionManager,
    ActionNotFoundError,
    ActionRecord,
    ActionSpec,
    ActionStatus,
    ActionStore,
    ActionType,
    ConcurrentModificationError,
    InMemoryActionStore,
    InvalidTransitionError,
    RedisActionStore,
    ValidationError,
)
from agent_runtime.actions import (
    ActionAlreadyResolvedError,
    ActionCancelledError,
    ActionExpiredError,
    InvalidResumeTokenError,
)
from agent_runtime.events.models import RuntimeEvent, RuntimeEventType

redis_asyncio = pytest.importorskip("redis.asyncio")


class FakeClock:
    """Epoch seconds that move only when the test says so: expiry without waiting."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Recorder:
    def __init__(self) -> None:
        self.events: list[RuntimeEvent] = []

    async def __call__(self, event: RuntimeEvent) -> None:
        self.events.append(event)

    def types(self) -> list[RuntimeEventType]:
        return [e.type for e in self.events]


def spec(job_id: str = "job-123", **kwargs: Any) -> ActionSpec:
    kwargs.setdefault("type", "confirm")
    kwargs.setdefault("payload", {"message": "Deploy?", "nested": {"n": [1, 2]}})
    kwargs.setdefault("timeout_seconds", 300)
    return ActionSpec(job_id=job_id, **kwargs)


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Any]:
    made = redis_asyncio.from_url(redis_url)
    try:
        yield made
    finally:
        await made.aclose()


@pytest.fixture
async def prefix(client: Any) -> AsyncIterator[str]:
    name = f"test-redis-actions-{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        keys = [key async for key in client.scan_iter(match=f"{name}*")]
        if keys:
            await client.delete(*keys)


StoreFactory = Callable[[], ActionStore]


@pytest.fixture(params=["memory", "redis"])
def make_store(request: pytest.FixtureRequest) -> StoreFactory:
    """The contract runs against the in-memory store and the Redis store alike."""
    if request.param == "memory":
        return InMemoryActionStore
    client = request.getfixturevalue("client")
    prefix = request.getfixturevalue("prefix")
    return lambda: RedisActionStore(client, prefix=prefix)


# -- the shared behavioural contract ------------------------------------------------------------


async def test_wrong_reused_cancelled_expired_and_other_job_tokens_are_refused(
    make_store: StoreFactory,
) -> None:
    recorder, clock = Recorder(), FakeClock()
    manager = ActionManager(make_store(), on_event=recorder, clock=clock)

    with pytest.raises(InvalidResumeTokenError, match="not valid"):
        await manager.resolve(resume_token="never-issued", resolution={})
    for malformed in ["", None, 42, "x" * 10_000]:
        with pytest.raises(InvalidResumeTokenError):
            await manager.resolve(resume_token=malformed, resolution={})  # type: ignore[arg-type]

    reused = await manager.require_action(spec())
    assert reused.resume_token is not None
    await manager.resolve(resume_token=reused.resume_token, resolution={"approved": True})
    with pytest.raises(ActionAlreadyResolvedError, match="already resolved"):
        await manager.resolve(resume_token=reused.resume_token, resolution={"approved": False})
    assert (await manager.get(reused.action_id)).resolution == {"approved": True}

    cancelled = await manager.require_action(spec())
    assert cancelled.resume_token is not None
    await manager.cancel(cancelled.action_id, reason="job cancelled")
    with pytest.raises(ActionCancelledError, match="job cancelled"):
        await manager.resolve(resume_token=cancelled.resume_token, resolution={"approved": True})

    other = await manager.require_action(spec(job_id="job-other"))
    assert other.resume_token is not None
    with pytest.raises(InvalidResumeTokenError):
        await manager.resolve(resume_token=other.resume_token, resolution={}, job_id="job-123")
    assert (await manager.get(other.action_id)).status is ActionStatus.PENDING
    ok = await manager.resolve(resume_token=other.resume_token, resolution={"a": 1}, job_id="job-other")
    assert ok.status is ActionStatus.RESOLVED

    expiring = await manager.require_action(spec(timeout_seconds=10))
    assert expiring.resume_token is not None
    clock.advance(10)
    with pytest.raises(ActionExpiredError):
        await manager.resolve(resume_token=expiring.resume_token, resolution={"approved": True})
    assert (await manager.get(expiring.action_id)).status is ActionStatus.EXPIRED
    assert RuntimeEventType.ACTION_EXPIRED in recorder.types()


async def test_concurrent_resolutions_of_one_token_exactly_one_wins(make_store: StoreFactory) -> None:
    recorder = Recorder()
    manager = ActionManager(make_store(), on_event=recorder)
    action = await manager.require_action(spec())
    token = action.resume_token
    assert token is not None
    results = await asyncio.gather(
        *(manager.resolve(resume_token=token, resolution={"by": i}) for i in range(20)),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, ActionRecord)]
    losers = [r for r in results if not isinstance(r, ActionRecord)]
    assert len(winners) == 1
    assert len(losers) == 19 and all(isinstance(e, ActionAlreadyResolvedError) for e in losers)
    assert (await manager.get(action.action_id)).resolution == winners[0].resolution
    assert recorder.types().count(RuntimeEventType.ACTION_RESOLVED) == 1


async def test_store_update_is_a_versioned_compare_and_set(make_store: StoreFactory) -> None:
    store = make_store()
    created = await store.create(
        ActionRecord(action_id="a1", job_id="j", type=ActionType.CONFIRM, resume_token="t")
    )
    assert created.resume_token is None and created.version == 0
    with pytest.raises(ValidationError, match="already exists"):
        await store.create(ActionRecord(action_id="a1", job_id="j", type=ActionType.CONFIRM))
    with pytest.raises(ValidationError, match="resume token"):
        await store.create(
            ActionRecord(action_id="a2", job_id="j", type=ActionType.CONFIRM, resume_token="t")
        )
    first = await store.update(created.resolve({"ok": True}))
    assert first.version == 1 and first.resume_token_hash == created.resume_token_hash
    with pytest.raises(ConcurrentModificationError, match="reload"):
        await store.update(created.cancel())  # based on the stale version 0
    with pytest.raises(InvalidTransitionError):
        await store.update(dataclasses.replace(first, status=ActionStatus.PENDING))
    with pytest.raises(ActionNotFoundError):
        await store.update(ActionRecord(action_id="zz", job_id="j", type=ActionType.CONFIRM))
    assert await store.get_by_resume_token("t") == first
    assert await store.get("a1") == first
    assert await store.delete("a1") is True and await store.delete("a1") is False
    assert await store.get_by_resume_token("t") is None and await store.get("a1") is None


async def test_store_list_filters_and_pages(make_store: StoreFactory) -> None:
    store = make_store()
    for i in range(5):
        await store.create(
            ActionRecord(
                action_id=f"a{i}",
                job_id="j1" if i % 2 else "j2",
                type=ActionType.INPUT if i < 3 else ActionType.UPLOAD,
                created_at=1000.0 + i,
                expires_at=1010.0 + i,
            )
        )
    assert [r.action_id for r in await store.list()] == ["a0", "a1", "a2", "a3", "a4"]
    assert [r.action_id for r in await store.list(ActionFilter(job_id="j1"))] == ["a1", "a3"]
    assert [r.action_id for r in await store.list(ActionFilter(type="upload"))] == ["a3", "a4"]
    assert [r.action_id for r in await store.list(ActionFilter(limit=2, offset=1))] == ["a1", "a2"]
    assert [r.action_id for r in await store.list_expired(now=1012.0)] == ["a0", "a1", "a2"]
    assert [r.action_id for r in await store.list_pending_for_job("j2")] == ["a0", "a2", "a4"]
    await store.update((await store.get("a2")).cancel())  # type: ignore[union-attr]
    assert [r.action_id for r in await store.list(ActionFilter(status="pending"))] == ["a0", "a1", "a3", "a4"]
    assert [r.action_id for r in await store.list(ActionFilter(status="cancelled"))] == ["a2"]
    assert [r.action_id for r in await store.list_expired(now=1012.0)] == ["a0", "a1"]


async def test_expire_due_emits_the_event_exactly_once(make_store: StoreFactory) -> None:
    recorder, clock = Recorder(), FakeClock()
    store = make_store()
    manager = ActionManager(store, on_event=recorder, clock=clock)
    rival = ActionManager(store, on_event=recorder, clock=clock)  # a second sweeper, same store
    soon = await manager.require_action(spec(timeout_seconds=10))
    later = await manager.require_action(spec(timeout_seconds=100))
    forever = await manager.require_action(spec(timeout_seconds=None))
    assert await manager.expire_due() == []
    clock.advance(10)
    first, second = await asyncio.gather(manager.expire_due(), rival.expire_due())
    assert [r.action_id for r in first + second] == [soon.action_id]
    expired = [e for e in recorder.events if e.type is RuntimeEventType.ACTION_EXPIRED]
    assert [e.data["action_id"] for e in expired] == [soon.action_id]
    clock.advance(1000)
    assert {r.action_id for r in await manager.expire_due()} == {later.action_id}
    assert (await manager.get(forever.action_id)).status is ActionStatus.PENDING


def signal_reads(store: ActionStore) -> asyncio.Event:
    """An event set after each read by id: the waiter has read PENDING and is about to wait."""
    read = asyncio.Event()
    original = store.get

    async def get(action_id: str) -> ActionRecord | None:
        record = await original(action_id)
        read.set()
        return record

    store.get = get  # type: ignore[method-assign]
    return read


async def test_wait_for_resolution_wakes_on_resolve_without_polling(make_store: StoreFactory) -> None:
    waiter_store, resolver_store = make_store(), make_store()
    if isinstance(waiter_store, InMemoryActionStore):
        resolver_store = waiter_store  # in memory there is only one process
    waiter = ActionManager(waiter_store)
    action = await waiter.require_action(spec())
    assert action.resume_token is not None
    read = signal_reads(waiter_store)
    started = time.monotonic()
    waiting = asyncio.create_task(waiter.wait_for_resolution(action.action_id, timeout=30, poll_interval=30))
    await read.wait()
    resolved = await ActionManager(resolver_store).resolve(action.resume_token, {"approved": True})
    result = await waiting
    assert result.status is ActionStatus.RESOLVED and result == resolved
    assert action.resolution == {"approved": True}
    assert time.monotonic() - started < 10  # woke on the change, far before the 30 s poll


async def test_wait_for_resolution_timeout_expires_the_action(make_store: StoreFactory) -> None:
    recorder = Recorder()
    manager = ActionManager(make_store(), on_event=recorder)
    action = await manager.require_action(spec())
    with pytest.raises(ActionExpiredError):
        await manager.wait_for_resolution(action.action_id, timeout=0.05)
    assert (await manager.get(action.action_id)).status is ActionStatus.EXPIRED
    assert recorder.types()[-1] is RuntimeEventType.ACTION_EXPIRED


# -- Redis specifics ---------------------------------------------------------------------------------


async def dump_keyspace(client: Any, prefix: str) -> list[str]:
    """Every key name and every value under ``prefix``, as text."""
    seen: list[str] = []
    async for raw in client.scan_iter(match=f"{prefix}*"):
        key = raw.decode()
        seen.append(key)
        kind = (await client.type(key)).decode()
        if kind == "string":
            seen.append((await client.get(key)).decode())
        elif kind == "hash":
            seen.extend(f"{k.decode()}={v.decode()}" for k, v in (await client.hgetall(key)).items())
        elif kind == "zset":
            seen.extend(m.decode() for m in await client.zrange(key, 0, -1))
    return seen


async def test_only_token_hashes_reach_redis(client: Any, prefix: str) -> None:
    manager = ActionManager(RedisActionStore(client, prefix=prefix))
    action = await manager.require_action(spec())
    token = action.resume_token
    assert token is not None and action.resume_token_hash is not None
    await manager.resolve(token, {"approved": True})
    keyspace = await dump_keyspace(client, prefix)
    assert f"{prefix}:token:{action.resume_token_hash}" in keyspace
    assert not any(token in item for item in keyspace)


async def test_ttls_retain_data_for_the_retention_period(client: Any, prefix: str) -> None:
    store = RedisActionStore(client, prefix=prefix, retention=3600)
    manager = ActionManager(store)
    timed = await manager.require_action(spec(timeout_seconds=600))
    open_ended = await manager.require_action(spec(timeout_seconds=None))
    record_key = f"{prefix}:action:{timed.action_id}"
    token_key = f"{prefix}:token:{timed.resume_token_hash}"
    assert 3_600_000 < await client.pttl(record_key) <= 4_200_000  # deadline + retention
    assert 3_600_000 < await client.pttl(token_key) <= 4_200_000
    assert await client.pttl(f"{prefix}:action:{open_ended.action_id}") == -1  # waits indefinitely
    assert await client.pttl(f"{prefix}:job:job-123") == -1  # outlives every record it lists
    assert timed.resume_token is not None
    await manager.resolve(timed.resume_token, {"approved": True})
    assert 0 < await client.pttl(record_key) <= 3_600_000  # retention after the end
    assert 0 < await client.pttl(token_key) <= 3_600_000
    keep = RedisActionStore(client, prefix=f"{prefix}:keep", retention=None)
    kept = await ActionManager(keep).require_action(spec(timeout_seconds=5))
    assert await client.pttl(f"{prefix}:keep:action:{kept.action_id}") == -1


async def test_index_entries_of_records_gone_by_ttl_are_dropped(client: Any, prefix: str) -> None:
    store = RedisActionStore(client, prefix=prefix)
    clock = FakeClock()
    manager = ActionManager(store, clock=clock)
    gone = await manager.require_action(spec(timeout_seconds=5))
    kept = await manager.require_action(spec(timeout_seconds=5))
    await client.delete(f"{prefix}:action:{gone.action_id}")  # what the TTL does eventually
    assert [r.action_id for r in await store.list()] == [kept.action_id]
    clock.advance(5)
    assert [r.action_id for r in await store.list_expired(now=clock())] == [kept.action_id]
    for index in ("index", "due", "pending"):
        assert await client.zscore(f"{prefix}:{index}", gone.action_id) is None
    assert gone.resume_token is not None
    with pytest.raises(InvalidResumeTokenError):
        await manager.resolve(gone.resume_token, {})


async def test_update_keeps_the_stored_token_hash(client: Any, prefix: str) -> None:
    store = RedisActionStore(client, prefix=prefix)
    created = await store.create(ActionRecord(action_id="a1", job_id="j", type="input", resume_token="tok"))
    bare = dataclasses.replace(created, resume_token_hash=None)  # a hand-built record without it
    updated = await store.update(bare.cancel("nope"))
    assert updated.resume_token_hash == created.resume_token_hash
    assert await store.get_by_resume_token("tok") == updated


async def test_cancelling_a_job_wakes_waiters_in_another_process(
    client: Any, redis_url: str, prefix: str
) -> None:
    other_client = redis_asyncio.from_url(redis_url)
    waiter_store = RedisActionStore(client, prefix=prefix)
    waiter = ActionManager(waiter_store)
    action = await waiter.require_action(spec())
    read = signal_reads(waiter_store)
    waiting = asyncio.create_task(waiter.wait_for_resolution(action.action_id, timeout=30, poll_interval=30))
    await read.wait()
    await ActionManager(RedisActionStore(other_client, prefix=prefix)).cancel(action.action_id, "job gone")
    with pytest.raises(ActionCancelledError, match="job gone"):
        await waiting
    await other_client.aclose()


async def test_constructor_errors(client: Any) -> None:
    with pytest.raises(ValidationError, match="retention"):
        RedisActionStore(client, retention=0)
    with pytest.raises(ValidationError, match="prefix"):
        RedisActionStore(client, prefix="has space")
    with pytest.raises(ValidationError, match="ActionRecord"):
        await RedisActionStore(client).create({"action_id": "x"})  # type: ignore[arg-type]
