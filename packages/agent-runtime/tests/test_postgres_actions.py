"""PostgresActionStore against a real PostgreSQL: hashing, atomic resolution, LISTEN/NOTIFY wake-ups."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from agent_runtime import (
    ActionFilter,
    ActionManager,
    ActionNotFoundError,
    ActionRecord,
    ActionSpec,
    ActionStatus,
    ActionType,
    ConcurrentModificationError,
    InvalidTransitionError,
    PostgresActionStore,
    ValidationError,
)
from agent_runtime.actions import (
    ActionAlreadyResolvedError,
    ActionCancelledError,
    ActionExpiredError,
    InvalidResumeTokenError,
)
from agent_runtime.events.models import RuntimeEvent, RuntimeEventType

asyncpg = pytest.importorskip("asyncpg")


@pytest.fixture
async def pools(postgres_dsn: str) -> AsyncIterator[tuple[Any, Any]]:
    """Two independent pools: two 'processes' sharing one database."""
    first = await asyncpg.create_pool(postgres_dsn, min_size=1, max_size=12)
    second = await asyncpg.create_pool(postgres_dsn, min_size=1, max_size=4)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


@pytest.fixture
async def table(pools: tuple[Any, Any]) -> AsyncIterator[str]:
    name = f"test_actions_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        await pools[0].execute(f"DROP TABLE IF EXISTS {name}")


class SignallingStore(PostgresActionStore):
    """Sets ``read`` after each read by id, so a test acts while the waiter is waiting."""

    def __init__(self, pool: Any, table_name: str) -> None:
        super().__init__(pool, table_name=table_name)
        self.read = asyncio.Event()

    async def get(self, action_id: str) -> ActionRecord | None:
        record = await super().get(action_id)
        self.read.set()
        return record


def spec(job_id: str = "job-123", **kwargs: Any) -> ActionSpec:
    kwargs.setdefault("type", "confirm")
    kwargs.setdefault("payload", {"message": "Deploy to production?", "nested": {"n": [1, 2]}})
    kwargs.setdefault("timeout_seconds", 300)
    return ActionSpec(job_id=job_id, **kwargs)


async def test_seed_construction_and_schema(pools: tuple[Any, Any], table: str) -> None:
    pool = pools[0]
    action_store = PostgresActionStore(pool, table_name=table)
    await action_store.migrate()
    await action_store.migrate()  # idempotent
    indexes = {
        row["indexname"]: row["indexdef"]
        for row in await pool.fetch("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = $1", table)
    }
    assert any("UNIQUE" in d and "(token_hash)" in d for d in indexes.values())
    for column in ("job_id", "status", "expires_at"):
        assert any(f"({column}" in d for d in indexes.values()), column
    assert PostgresActionStore(pool).table_name == "runtime_actions"  # the documented default
    with pytest.raises(ValueError, match="plain SQL identifier"):
        PostgresActionStore(pool, table_name="actions; DROP TABLE x")
    with pytest.raises(ValidationError, match="pool"):
        PostgresActionStore(None)


async def test_round_trip_and_token_stored_only_hashed(pools: tuple[Any, Any], table: str) -> None:
    pool = pools[0]
    manager = ActionManager(PostgresActionStore(pool, table_name=table))
    action = await manager.require_action(spec(metadata={"tool": "deploy"}))
    token = action.resume_token
    assert token is not None
    stored = await manager.get(action.action_id)
    assert stored == action  # same record, minus the plaintext (not compared)
    assert stored.resume_token is None
    assert stored.payload == {"message": "Deploy to production?", "nested": {"n": [1, 2]}}
    rows = await pool.fetch(f"SELECT t::text AS line, token_hash FROM {table} t")
    assert len(rows) == 1
    assert token not in rows[0]["line"]
    assert rows[0]["token_hash"] == hashlib.sha256(token.encode()).hexdigest()

    resolved = await manager.resolve(resume_token=token, resolution={"approved": True})
    assert resolved.version == 1 and resolved.resolution == {"approved": True}
    row = await pool.fetchrow(f"SELECT t::text AS line FROM {table} t")
    assert token not in row["line"]


async def test_token_refusals(pools: tuple[Any, Any], table: str) -> None:
    clock_offset = [0.0]
    events: list[RuntimeEvent] = []
    manager = ActionManager(
        PostgresActionStore(pools[0], table_name=table),
        on_event=events.append,
        clock=lambda: time.time() + clock_offset[0],
    )
    with pytest.raises(InvalidResumeTokenError):
        await manager.resolve(resume_token="nope", resolution={})

    used = await manager.require_action(spec())
    assert used.resume_token is not None
    await manager.resolve(resume_token=used.resume_token, resolution={"approved": True})
    with pytest.raises(ActionAlreadyResolvedError):
        await manager.resolve(resume_token=used.resume_token, resolution={"approved": False})

    cancelled = await manager.require_action(spec())
    assert cancelled.resume_token is not None
    await manager.cancel(cancelled.action_id, reason="User cancelled")
    with pytest.raises(ActionCancelledError, match="User cancelled"):
        await manager.resolve(resume_token=cancelled.resume_token, resolution={"approved": True})

    other = await manager.require_action(spec(job_id="job-other"))
    assert other.resume_token is not None
    with pytest.raises(InvalidResumeTokenError):
        await manager.resolve(resume_token=other.resume_token, resolution={}, job_id="job-123")
    assert (await manager.get(other.action_id)).status is ActionStatus.PENDING

    expiring = await manager.require_action(spec(timeout_seconds=60))
    assert expiring.resume_token is not None
    clock_offset[0] = 61
    with pytest.raises(ActionExpiredError):
        await manager.resolve(resume_token=expiring.resume_token, resolution={"approved": True})
    assert (await manager.get(expiring.action_id)).status is ActionStatus.EXPIRED
    assert [e.data["action_id"] for e in events if e.type is RuntimeEventType.ACTION_EXPIRED] == [
        expiring.action_id
    ]
    for event in events:
        for secret in (used.resume_token, cancelled.resume_token, other.resume_token, expiring.resume_token):
            assert secret not in event.to_json()


async def test_concurrent_resolution_exactly_one_wins(pools: tuple[Any, Any], table: str) -> None:
    first, second = pools
    store_a = PostgresActionStore(first, table_name=table)
    store_b = PostgresActionStore(second, table_name=table)
    creator = ActionManager(store_a)
    action = await creator.require_action(spec())
    token = action.resume_token
    assert token is not None
    managers = [ActionManager(store_a if i % 2 else store_b) for i in range(12)]
    results = await asyncio.gather(
        *(m.resolve(resume_token=token, resolution={"by": i}) for i, m in enumerate(managers)),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, ActionRecord)]
    assert len(winners) == 1
    assert all(isinstance(r, ActionAlreadyResolvedError) for r in results if r not in winners)
    assert (await creator.get(action.action_id)).resolution == winners[0].resolution


async def test_wait_wakes_via_listen_notify_from_another_pool(pools: tuple[Any, Any], table: str) -> None:
    first, second = pools
    waiting_store = SignallingStore(first, table)
    waiter_manager = ActionManager(waiting_store)
    resolver_manager = ActionManager(PostgresActionStore(second, table_name=table))
    action = await waiter_manager.require_action(spec())
    assert action.resume_token is not None
    waiting_store.read.clear()

    started = time.monotonic()
    waiter = asyncio.create_task(waiter_manager.wait_for_resolution(action.action_id, poll_interval=30))
    await asyncio.wait_for(waiting_store.read.wait(), 10)
    await resolver_manager.resolve(resume_token=action.resume_token, resolution={"approved": True})
    resolved = await asyncio.wait_for(waiter, 10)
    assert time.monotonic() - started < 10  # woken by NOTIFY, far below poll_interval=30
    assert resolved.resolution == {"approved": True}
    assert action.resolution == {"approved": True}  # the Quick Start read-through, across processes
    # The LISTEN connection went back to the pool once nobody waited.
    assert waiting_store._listener is None


async def test_wait_wakes_on_cancel_and_expiry_from_another_pool(pools: tuple[Any, Any], table: str) -> None:
    first, second = pools
    waiting_store = SignallingStore(first, table)
    waiter_manager = ActionManager(waiting_store)
    offset = [0.0]
    other_events: list[RuntimeEvent] = []
    other = ActionManager(
        PostgresActionStore(second, table_name=table),
        on_event=other_events.append,
        clock=lambda: time.time() + offset[0],
    )
    to_cancel = await waiter_manager.require_action(spec())
    to_expire = await waiter_manager.require_action(spec(timeout_seconds=100))

    waiting_store.read.clear()
    cancel_waiter = asyncio.create_task(
        waiter_manager.wait_for_resolution(to_cancel.action_id, poll_interval=30)
    )
    await asyncio.wait_for(waiting_store.read.wait(), 10)
    await other.cancel(to_cancel.action_id, reason="job cancelled")
    with pytest.raises(ActionCancelledError):
        await asyncio.wait_for(cancel_waiter, 10)

    waiting_store.read.clear()
    expire_waiter = asyncio.create_task(
        waiter_manager.wait_for_resolution(to_expire.action_id, poll_interval=30)
    )
    await asyncio.wait_for(waiting_store.read.wait(), 10)
    offset[0] = 101
    expired = await other.expire_due()  # the sweeper of another process; nobody there waits
    assert [r.action_id for r in expired] == [to_expire.action_id]
    with pytest.raises(ActionExpiredError):
        await asyncio.wait_for(expire_waiter, 10)
    assert [e.type for e in other_events] == [
        RuntimeEventType.ACTION_CANCELLED,
        RuntimeEventType.ACTION_EXPIRED,
    ]


async def test_wait_timeout_expires_the_row(pools: tuple[Any, Any], table: str) -> None:
    manager = ActionManager(PostgresActionStore(pools[0], table_name=table))
    action = await manager.require_action(spec())
    with pytest.raises(TimeoutError):
        await manager.wait_for_resolution(action.action_id, timeout=0.05, poll_interval=30)
    row = await pools[0].fetchrow(f"SELECT status FROM {table} WHERE action_id = $1", action.action_id)
    assert row["status"] == "expired"


async def test_store_queries_and_compare_and_set(pools: tuple[Any, Any], table: str) -> None:
    store = PostgresActionStore(pools[0], table_name=table)
    for i in range(5):
        await store.create(
            ActionRecord(
                action_id=f"a{i}",
                job_id="j1" if i % 2 else "j2",
                type=ActionType.INPUT if i < 3 else ActionType.UPLOAD,
                created_at=1000.0 + i,
                expires_at=1010.0 + i,
                resume_token=f"token-{i}",
            )
        )
    assert [r.action_id for r in await store.list()] == ["a0", "a1", "a2", "a3", "a4"]
    assert [r.action_id for r in await store.list(ActionFilter(job_id="j1"))] == ["a1", "a3"]
    assert [r.action_id for r in await store.list(ActionFilter(type="upload", status="pending"))] == [
        "a3",
        "a4",
    ]
    assert [r.action_id for r in await store.list(ActionFilter(limit=2, offset=1))] == ["a1", "a2"]
    assert [r.action_id for r in await store.list_expired(now=1012.0)] == ["a0", "a1", "a2"]
    assert [r.action_id for r in await store.list_pending_for_job("j2")] == ["a0", "a2", "a4"]

    with pytest.raises(ValidationError, match="same id"):
        await store.create(ActionRecord(action_id="a0", job_id="j", type=ActionType.CONFIRM))
    with pytest.raises(ValidationError, match="same resume token"):
        await store.create(
            ActionRecord(action_id="b", job_id="j", type=ActionType.CONFIRM, resume_token="token-1")
        )

    original = await store.get("a4")
    assert original is not None
    cancelled = await store.update(original.cancel("stop"))
    assert cancelled.version == 1 and cancelled.cancel_reason == "stop"
    with pytest.raises(ConcurrentModificationError):
        await store.update(original.expire())
    with pytest.raises(InvalidTransitionError):
        await store.update(dataclasses.replace(cancelled, status=ActionStatus.PENDING))
    with pytest.raises(ActionNotFoundError):
        await store.update(ActionRecord(action_id="missing", job_id="j", type=ActionType.CONFIRM))
    assert await store.get_by_resume_token("token-4") == cancelled
    assert await store.get_by_resume_token("token-x") is None
    assert await store.delete("a4") is True and await store.delete("a4") is False
    assert await store.get("a4") is None


async def test_concurrent_sweepers_expire_each_action_once(pools: tuple[Any, Any], table: str) -> None:
    first, second = pools
    later = time.time() + 1000
    events: list[RuntimeEvent] = []
    creator = ActionManager(PostgresActionStore(first, table_name=table))
    created = [await creator.require_action(spec(timeout_seconds=10)) for _ in range(6)]
    sweepers = [
        ActionManager(
            PostgresActionStore(pool, table_name=table), on_event=events.append, clock=lambda: later
        )
        for pool in (first, second, first, second)
    ]
    results = await asyncio.gather(*(s.expire_due() for s in sweepers))
    expired_ids = [r.action_id for batch in results for r in batch]
    assert sorted(expired_ids) == sorted(a.action_id for a in created)
    assert len(events) == 6 and {e.type for e in events} == {RuntimeEventType.ACTION_EXPIRED}
    assert await creator.list_pending(job_id="job-123") == []
