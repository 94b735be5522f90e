"""PostgresJobStore against a real PostgreSQL, and the JobStore contract run on both stores.

Each test uses its own table (a random name) and drops it afterwards; nothing else is touched.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from agent_runtime import (
    BudgetSpec,
    ConcurrentModificationError,
    InMemoryJobStore,
    InvalidTransitionError,
    JobFilter,
    JobManager,
    JobNotFoundError,
    JobRecord,
    JobSpec,
    JobStatus,
    JobStore,
    PolicyRef,
    PostgresJobStore,
    ValidationError,
)
from agent_runtime.jobs import DuplicateJobError

S = JobStatus


@pytest.fixture
async def pool(postgres_dsn: str) -> AsyncIterator[Any]:
    asyncpg = pytest.importorskip("asyncpg")
    pool = await asyncpg.create_pool(postgres_dsn, min_size=1, max_size=25)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def table(pool: Any) -> AsyncIterator[str]:
    name = f"test_jobs_{uuid.uuid4().hex[:16]}"
    try:
        yield name
    finally:
        async with pool.acquire() as conn:
            await conn.execute(f"DROP TABLE IF EXISTS {name}")


@pytest.fixture
async def pg_store(pool: Any, table: str) -> PostgresJobStore:
    return PostgresJobStore(pool, table_name=table)


@pytest.fixture(params=["memory", "postgres"])
def store(request: pytest.FixtureRequest) -> JobStore:
    if request.param == "memory":
        return InMemoryJobStore()
    pg: JobStore = request.getfixturevalue("pg_store")
    return pg


def full_job(**changes: Any) -> JobRecord:
    job = JobRecord(
        job_id=f"job-{uuid.uuid4().hex}",
        scope_id="tenant-1",
        principal_id="user-1",
        session_id="session-1",
        run_id="run-1",
        parent_job_id="parent-1",
        idempotency_key=None,
        deadline=1_900_000_000.123456,
        budgets=BudgetSpec(
            max_tokens=100, max_cost="0.30", max_tool_calls=3, max_turns=4, max_runtime_seconds=9.5
        ),
        policy_ref=PolicyRef("production", "v1", {"allow_web": True}),
        metadata={"source": "api", "nested": {"list": [1, 2.5, None, "x"]}},
        tags={"priority": "high", "team": "ml"},
        state={"messages": [{"role": "user", "content": "héllo ✓"}], "turn": 0},
    )
    return replace(job, **changes)


# -- the contract, on both stores -------------------------------------------------------------------


async def test_create_get_round_trip(store: JobStore) -> None:
    job = full_job()
    created = await store.create(job)
    assert created == replace(job, version=1)
    fetched = await store.get(job.job_id)
    assert fetched == created
    assert fetched is not None and fetched.budgets.max_cost == Decimal("0.30")
    assert await store.get("missing") is None


async def test_update_bumps_version_and_refuses_stale_writes(store: JobStore) -> None:
    created = await store.create(full_job())
    running = await store.update(created.transition_to(S.RUNNING).with_progress(0.25, turn=2))
    assert (running.status, running.version, running.progress, running.turn) == (S.RUNNING, 2, 0.25, 2)
    assert running.started_at is not None
    with pytest.raises(ConcurrentModificationError, match="stored version 2"):
        await store.update(created.with_progress(0.5))  # read at version 1
    assert await store.get(created.job_id) == running


async def test_update_applies_the_transition_table(store: JobStore) -> None:
    created = await store.create(full_job())
    forged = replace(created, status=S.SUCCEEDED)  # skipping RUNNING, built by hand
    with pytest.raises(InvalidTransitionError, match="from queued to succeeded"):
        await store.update(forged)


@pytest.mark.parametrize("field_name", ["scope_id", "principal_id", "parent_job_id", "idempotency_key"])
async def test_update_cannot_change_identity(store: JobStore, field_name: str) -> None:
    created = await store.create(full_job())
    with pytest.raises(ValidationError, match=f"{field_name} is fixed at creation"):
        changes: dict[str, Any] = {field_name: "someone-else"}
        await store.update(replace(created, **changes))


async def test_update_and_delete_of_missing_jobs(store: JobStore) -> None:
    with pytest.raises(JobNotFoundError):
        await store.update(full_job(version=1))
    created = await store.create(full_job())
    assert await store.delete(created.job_id) is True
    assert await store.delete(created.job_id) is False
    assert await store.get(created.job_id) is None


async def test_duplicate_job_id(store: JobStore) -> None:
    job = await store.create(full_job())
    with pytest.raises(DuplicateJobError, match=job.job_id):
        await store.create(full_job(job_id=job.job_id))


async def test_idempotency_per_scope(store: JobStore) -> None:
    first = await store.create(full_job(idempotency_key="k"))
    same = await store.create(full_job(idempotency_key="k", metadata={"second": True}))
    other_scope = await store.create(full_job(idempotency_key="k", scope_id="tenant-2"))
    no_scope = await store.create(full_job(idempotency_key="k", scope_id=None))
    no_scope_again = await store.create(full_job(idempotency_key="k", scope_id=None))
    assert same == first
    assert no_scope_again == no_scope
    assert len({first.job_id, other_scope.job_id, no_scope.job_id}) == 3
    assert await store.get_by_idempotency_key("k", scope_id="tenant-1") == first
    assert await store.get_by_idempotency_key("k", scope_id="tenant-2") == other_scope
    assert await store.get_by_idempotency_key("k") == no_scope
    assert await store.get_by_idempotency_key("other", scope_id="tenant-1") is None
    assert await store.count() == 3
    # Deleting the job frees its key.
    await store.delete(first.job_id)
    fresh = await store.create(full_job(idempotency_key="k"))
    assert fresh.job_id != first.job_id


async def test_twenty_concurrent_creates_with_one_key(store: JobStore) -> None:
    manager = JobManager(store)
    jobs = await asyncio.gather(
        *(manager.create(JobSpec(scope_id="tenant-1", idempotency_key="once")) for _ in range(20))
    )
    assert len({j.job_id for j in jobs}) == 1
    assert await store.count(JobFilter(scope_id="tenant-1")) == 1


async def test_list_and_count_with_filters(store: JobStore) -> None:
    jobs = []
    for i in range(6):
        job = full_job(
            job_id=f"job-{i}",
            scope_id="a" if i < 4 else "b",
            principal_id=f"user-{i % 2}",
            session_id="s1" if i < 3 else "s2",
            parent_job_id="p" if i % 3 == 0 else None,
            tags={"n": str(i), "kind": "even" if i % 2 == 0 else "odd"},
            created_at=1000.0 + i,
        )
        jobs.append(await store.create(job))
    await store.update(jobs[1].transition_to(S.RUNNING))
    await store.update(jobs[2].transition_to(S.CANCELLED))

    async def ids(f: JobFilter | None = None) -> list[str]:
        return [j.job_id for j in await store.list(f)]

    assert await ids() == [f"job-{i}" for i in (5, 4, 3, 2, 1, 0)]  # newest first
    assert await ids(JobFilter(scope_id="a")) == ["job-3", "job-2", "job-1", "job-0"]
    assert await ids(JobFilter(principal_id="user-1")) == ["job-5", "job-3", "job-1"]
    assert await ids(JobFilter(session_id="s2")) == ["job-5", "job-4", "job-3"]
    assert await ids(JobFilter(parent_job_id="p")) == ["job-3", "job-0"]
    assert await ids(JobFilter(status=S.RUNNING)) == ["job-1"]
    assert await ids(JobFilter(status={S.RUNNING, S.CANCELLED})) == ["job-2", "job-1"]
    assert await ids(JobFilter(tags={"kind": "even"})) == ["job-4", "job-2", "job-0"]
    assert await ids(JobFilter(tags={"kind": "even", "n": "2"})) == ["job-2"]
    assert await ids(JobFilter(created_after=1001.0, created_before=1004.0)) == ["job-3", "job-2"]
    assert await ids(JobFilter(scope_id="a", status=S.QUEUED, tags={"kind": "odd"})) == ["job-3"]
    assert await ids(JobFilter(limit=2)) == ["job-5", "job-4"]
    assert await ids(JobFilter(limit=2, offset=3)) == ["job-2", "job-1"]
    assert await ids(JobFilter(offset=5)) == ["job-0"]
    assert await ids(JobFilter(limit=0)) == []
    assert await store.count() == 6
    assert await store.count(JobFilter(scope_id="a", limit=1)) == 4  # count ignores paging
    assert await store.count(JobFilter(status=S.QUEUED)) == 4
    assert await store.count(JobFilter(scope_id="nobody")) == 0


async def test_non_json_state_is_refused(store: JobStore) -> None:
    with pytest.raises(ValidationError, match="not JSON-serialisable"):
        await store.create(full_job(state={"when": object()}))
    created = await store.create(full_job())
    with pytest.raises(ValidationError, match="not JSON-serialisable"):
        await store.update(created.with_state({"x": {1, 2}}))


async def test_returned_records_do_not_alias_the_stored_ones(store: JobStore) -> None:
    created = await store.create(full_job())
    created.state["messages"].append({"role": "assistant", "content": "sneaky"})
    fetched = await store.get(created.job_id)
    assert fetched is not None and len(fetched.state["messages"]) == 1


async def test_job_manager_seed_flow_on_each_store(store: JobStore) -> None:
    manager = JobManager(store)
    job = await manager.create(
        JobSpec(
            scope_id="tenant-123",
            principal_id="user-456",
            idempotency_key="unique-key",
            budgets=BudgetSpec(max_tokens=10000),
        )
    )
    job = await manager.start(job.job_id)
    job = await manager.update_progress(job.job_id, 0.5, turn=3)
    job = await manager.wait_for_action(job.job_id)
    job = await manager.resume(job.job_id)
    job = await manager.set_state(job.job_id, {"messages": ["m1"]})
    job = await manager.complete(job.job_id, result_ref="result-123")
    assert (job.status, job.result_ref, job.turn, job.state, job.version) == (
        S.SUCCEEDED,
        "result-123",
        3,
        {"messages": ["m1"]},
        7,
    )
    assert job.finished_at is not None and job.started_at is not None
    assert await manager.get_by_idempotency_key("unique-key", scope_id="tenant-123") == job
    assert await manager.list(JobFilter(scope_id="tenant-123", status=JobStatus.RUNNING)) == []


# -- PostgreSQL specifics -------------------------------------------------------------------------------


async def test_two_managers_racing_the_same_transition(pool: Any, table: str) -> None:
    # Two stores (as two workers would have) on one table.
    a = JobManager(PostgresJobStore(pool, table_name=table))
    b = JobManager(PostgresJobStore(pool, table_name=table))
    for _ in range(5):
        job = await a.start((await a.create(JobSpec(scope_id="t"))).job_id)
        results = await asyncio.gather(
            a.complete(job.job_id, result_ref="from-a"),
            b.fail(job.job_id, "from-b"),
            return_exceptions=True,
        )
        winners = [r for r in results if isinstance(r, JobRecord)]
        losers = [r for r in results if isinstance(r, (InvalidTransitionError, ConcurrentModificationError))]
        assert len(winners) == 1 and len(losers) == 1, results
        stored = await b.get(job.job_id)
        assert stored == winners[0] and stored.version == 3


async def test_many_workers_racing_start_exactly_one_wins(pool: Any, table: str) -> None:
    managers = [JobManager(PostgresJobStore(pool, table_name=table)) for _ in range(10)]
    job = await managers[0].create(JobSpec())
    results = await asyncio.gather(*(m.start(job.job_id) for m in managers), return_exceptions=True)
    assert sum(isinstance(r, JobRecord) for r in results) == 1
    assert all(isinstance(r, (JobRecord, InvalidTransitionError)) for r in results), results


async def test_concurrent_progress_updates_all_land(pool: Any, table: str) -> None:
    manager = JobManager(PostgresJobStore(pool, table_name=table))
    job = await manager.start((await manager.create(JobSpec())).job_id)
    await asyncio.gather(*(manager.update_progress(job.job_id, i / 10, turn=i) for i in range(1, 8)))
    final = await manager.get(job.job_id)
    assert final.version == 2 + 7  # every update was retried until it landed, none lost


async def test_schema_indexes_and_explicit_migrate(pool: Any, table: str) -> None:
    store = PostgresJobStore(pool, table_name=table)
    await store.migrate()
    await store.migrate()  # idempotent
    async with pool.acquire() as conn:
        indexes = {
            r["indexname"]: r["indexdef"]
            for r in await conn.fetch(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = $1", table
            )
        }
        types = {
            r["column_name"]: r["data_type"]
            for r in await conn.fetch(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1", table
            )
        }
    unique = indexes[f"{table}_idem_uq"]
    assert "UNIQUE" in unique and "COALESCE(scope_id" in unique and "idempotency_key" in unique
    assert f"{table}_scope_idx" in indexes and f"{table}_status_idx" in indexes
    assert {types[c] for c in ("budgets", "policy_ref", "metadata", "tags", "state")} == {"jsonb"}


async def test_jsonb_is_queryable_in_sql(pool: Any, pg_store: PostgresJobStore, table: str) -> None:
    job = await pg_store.create(full_job())
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            f"SELECT budgets->>'max_cost' AS cost, tags->>'team' AS team, state->'turn' AS turn "
            f"FROM {table} WHERE job_id = $1",
            job.job_id,
        )
    assert (row["cost"], row["team"], row["turn"]) == ("0.30", "ml", "0")


async def test_works_with_a_jsonb_codec_on_the_pool(postgres_dsn: str, table: str, pool: Any) -> None:
    asyncpg = pytest.importorskip("asyncpg")

    async def init(conn: Any) -> None:
        await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")

    codec_pool = await asyncpg.create_pool(postgres_dsn, min_size=1, max_size=2, init=init)
    try:
        store = PostgresJobStore(codec_pool, table_name=table)
        created = await store.create(full_job())
        assert await store.get(created.job_id) == created
        assert [j.job_id for j in await store.list(JobFilter(tags={"team": "ml"}))] == [created.job_id]
    finally:
        await codec_pool.close()


async def test_timestamps_round_trip_exactly(pg_store: PostgresJobStore) -> None:
    job = full_job(created_at=1_700_000_000.123456789)
    created = await pg_store.create(job)
    assert created.created_at == job.created_at


@pytest.mark.parametrize("name", ["runtime-jobs", "jobs; DROP TABLE x", "1jobs", "", "a" * 64])
def test_bad_table_name(name: str) -> None:
    with pytest.raises(ValidationError, match="plain SQL identifier"):
        PostgresJobStore(object(), table_name=name)


def test_needs_a_pool() -> None:
    with pytest.raises(ValidationError, match="needs an asyncpg pool"):
        PostgresJobStore(None)


def test_default_table_name_is_the_seeds() -> None:
    assert PostgresJobStore(object()).table_name == "runtime_jobs"


async def test_long_table_names_get_distinct_index_names(pool: Any) -> None:
    name = f"t{uuid.uuid4().hex}" + "x" * 30  # 63 characters: every suffixed index name is too long
    assert len(name) == 63
    store = PostgresJobStore(pool, table_name=name)
    try:
        await store.migrate()
        async with pool.acquire() as conn:
            count = await conn.fetchval("SELECT count(*) FROM pg_indexes WHERE tablename = $1", name)
        assert count == 6  # primary key + 5, none lost to truncation
    finally:
        async with pool.acquire() as conn:
            await conn.execute(f"DROP TABLE IF EXISTS {name}")
