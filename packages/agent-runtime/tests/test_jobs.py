"""Jobs: the status enum, the transition table, JobRecord, JobSpec/JobFilter, JobManager over the
in-memory store. The store contract shared with PostgreSQL is in test_postgres_jobs.py."""

from __future__ import annotations

import asyncio
import itertools
import time
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
    ValidationError,
)
from agent_runtime.jobs import TRANSITIONS, ConflictRetryPolicy, JobFinishedError
from llm_client import RetryPolicy

S = JobStatus
LEGAL = {
    S.QUEUED: {S.RUNNING, S.CANCELLED, S.FAILED, S.TIMED_OUT},
    S.RUNNING: {S.WAITING_ACTION, S.SUCCEEDED, S.FAILED, S.CANCELLED, S.TIMED_OUT},
    S.WAITING_ACTION: {S.RUNNING, S.CANCELLED, S.FAILED, S.TIMED_OUT},
    S.SUCCEEDED: set(),
    S.FAILED: set(),
    S.CANCELLED: set(),
    S.TIMED_OUT: set(),
}
LEGAL_PAIRS = [(a, b) for a, targets in LEGAL.items() for b in sorted(targets)]
ILLEGAL_PAIRS = [(a, b) for a, b in itertools.product(S, S) if b not in LEGAL[a]]


# -- JobStatus and the transition table --------------------------------------------------------


def test_status_properties() -> None:
    terminal = {S.SUCCEEDED, S.FAILED, S.CANCELLED, S.TIMED_OUT}
    for status in S:
        assert status.is_terminal is (status in terminal)
        assert status.is_active is (status not in terminal)
    assert S.WAITING_ACTION.value == "waiting_action"
    assert {s: set(t) for s, t in TRANSITIONS.items()} == LEGAL


@pytest.mark.parametrize("current, target", LEGAL_PAIRS)
def test_every_legal_transition(current: JobStatus, target: JobStatus) -> None:
    job = JobRecord(job_id="j", status=current)
    assert job.can_transition_to(target)
    moved = job.transition_to(target)
    assert moved.status is target and job.status is current  # a new record, the old one unchanged


@pytest.mark.parametrize("current, target", ILLEGAL_PAIRS)
def test_every_illegal_transition_names_the_allowed_targets(current: JobStatus, target: JobStatus) -> None:
    job = JobRecord(job_id="j", status=current)
    assert not job.can_transition_to(target)
    with pytest.raises(InvalidTransitionError) as info:
        job.transition_to(target)
    message = str(info.value)
    assert f"from {current.value} to {target.value}" in message
    if LEGAL[current]:
        assert all(t.value in message.split("allowed from")[1] for t in LEGAL[current])
    else:
        assert "none (terminal state)" in message
    assert (info.value.current, info.value.target) == (current.value, target.value)


def test_transitions_stamp_started_and_finished() -> None:
    job = JobRecord(job_id="j", created_at=100.0)
    running = job.transition_to(S.RUNNING, now=110.0)
    assert running.started_at == 110.0 and running.finished_at is None and running.updated_at == 110.0
    waiting = running.transition_to(S.WAITING_ACTION, now=120.0)
    resumed = waiting.transition_to(S.RUNNING, now=130.0)
    assert resumed.started_at == 110.0  # the first start counts
    done = resumed.transition_to(S.SUCCEEDED, now=140.0)
    assert done.finished_at == 140.0


# -- JobRecord ----------------------------------------------------------------------------------


def test_job_record_seed_block() -> None:
    job = JobRecord(
        job_id="job-123",
        scope_id="tenant-123",
        principal_id="user-456",
        session_id="session-789",
        run_id="run-abc",
        parent_job_id=None,  # For child jobs
        idempotency_key="unique-key",  # For deduplication
        status=JobStatus.QUEUED,
        deadline=time.time() + 300,  # Absolute timeout
        budgets=BudgetSpec(max_tokens=1000),
        policy_ref=PolicyRef(name="production"),
        metadata={"source": "api"},
        tags={"priority": "high"},
    )

    # State transitions
    job = job.transition_to(JobStatus.RUNNING)
    job = job.with_progress(0.5, turn=3)
    job = job.with_error("Something failed", error_code="E001")
    job = job.with_result("result-ref-123")

    # Validation
    assert job.can_transition_to(JobStatus.SUCCEEDED)  # True

    assert job.status is JobStatus.RUNNING  # with_error records, it does not fail the job
    assert (job.progress, job.turn, job.error, job.error_code, job.result_ref) == (
        0.5,
        3,
        "Something failed",
        "E001",
        "result-ref-123",
    )
    assert job.started_at is not None and not job.is_past_deadline()
    assert job.is_past_deadline(now=job.deadline)


def test_transition_methods_refuse_bad_values_and_keep_every_other_field() -> None:
    job = JobRecord(scope_id="t", metadata={"a": 1}, tags={"k": "v"}, budgets=BudgetSpec(max_turns=3))
    with pytest.raises(ValidationError, match="error_code must be a string"):
        job.with_error("boom", error_code=7)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="result_ref must be a string"):
        job.with_result(42)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="state must be a mapping"):
        job.with_state(["not", "a", "mapping"])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="progress"):
        job.with_progress(1.5)
    moved = job.transition_to(JobStatus.RUNNING).with_state({"x": 1}).with_result("r")
    assert moved == JobRecord(
        **{
            **job.to_dict(),
            "budgets": job.budgets,
            "status": JobStatus.RUNNING,
            "state": {"x": 1},
            "result_ref": "r",
            "updated_at": moved.updated_at,
            "started_at": moved.started_at,
        }
    )
    assert job.status is JobStatus.QUEUED and job.state == {}  # the original is untouched


def test_job_record_defaults() -> None:
    job = JobRecord()
    assert job.job_id.startswith("job-") and job.job_id != JobRecord().job_id
    assert job.status is S.QUEUED and job.version == 0 and job.progress == 0.0 and job.turn == 0
    assert job.updated_at == job.created_at and job.state == {}


def test_with_progress_keeps_turn_unless_given() -> None:
    job = JobRecord(job_id="j").with_progress(0.2, turn=2).with_progress(0.4)
    assert (job.progress, job.turn) == (0.4, 2)


@pytest.mark.parametrize("progress", [-0.1, 1.01, float("nan"), "half", True])
def test_with_progress_rejects_out_of_range(progress: Any) -> None:
    with pytest.raises(ValidationError, match="progress"):
        JobRecord(job_id="j").with_progress(progress)


def test_with_progress_rejects_negative_turn() -> None:
    with pytest.raises(ValidationError, match="turn"):
        JobRecord(job_id="j").with_progress(0.1, turn=-1)


@pytest.mark.parametrize("status", [S.SUCCEEDED, S.FAILED, S.CANCELLED, S.TIMED_OUT])
def test_progress_of_a_finished_job_is_final(status: JobStatus) -> None:
    with pytest.raises(JobFinishedError, match=f"is {status.value} \\(terminal\\)") as info:
        JobRecord(job_id="j", status=status).with_progress(0.9)
    assert isinstance(info.value, InvalidTransitionError)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"job_id": ""}, "job_id"),
        ({"status": "paused"}, "status must be a JobStatus"),
        ({"scope_id": ""}, "scope_id"),
        ({"tags": {"priority": 1}}, "tags must map str to str"),
        ({"progress": 2}, "progress"),
        ({"turn": -1}, "turn"),
        ({"deadline": "tomorrow"}, "deadline"),
        ({"budgets": {"max_tokens": 5}}, "budgets must be a BudgetSpec"),
        ({"metadata": ["a"]}, "metadata must be a mapping"),
        ({"version": -1}, "version"),
        ({"error": 500}, "error"),
    ],
)
def test_job_record_rejects_bad_fields(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        JobRecord(**kwargs)


def test_status_given_as_its_value_is_accepted() -> None:
    assert JobRecord(job_id="j", status="running").status is S.RUNNING  # type: ignore[arg-type]


def test_job_record_round_trip() -> None:
    job = JobRecord(
        job_id="j",
        scope_id="t",
        budgets=BudgetSpec(max_cost="1.25", max_turns=3),
        policy_ref=PolicyRef("p", "v2", {"allow_web": False}),
        metadata={"a": [1, 2]},
        tags={"k": "v"},
        state={"messages": [{"role": "user", "content": "hi"}]},
        deadline=123.5,
        version=4,
    ).transition_to(S.RUNNING)
    assert JobRecord.from_dict(job.to_dict()) == job
    with pytest.raises(ValidationError, match="unknown job field"):
        JobRecord.from_dict({**job.to_dict(), "colour": "blue"})


# -- JobSpec and JobFilter -----------------------------------------------------------------------


def test_job_spec_timeout_becomes_deadline() -> None:
    record = JobSpec(timeout_seconds=30).to_record(now=1000.0)
    assert record.deadline == 1030.0 and record.status is S.QUEUED and record.created_at == 1000.0
    assert JobSpec(job_id="mine").to_record().job_id == "mine"
    with pytest.raises(ValidationError, match="either deadline or timeout_seconds"):
        JobSpec(deadline=1.0, timeout_seconds=1.0)
    with pytest.raises(ValidationError, match="timeout_seconds must be > 0"):
        JobSpec(timeout_seconds=0)


def test_job_filter_normalises_status_and_matches() -> None:
    one = JobFilter(status=S.RUNNING)
    many = JobFilter(status={S.RUNNING, S.QUEUED})
    assert one.statuses == frozenset({S.RUNNING})
    assert many.statuses == frozenset({S.RUNNING, S.QUEUED})
    job = JobRecord(job_id="j", scope_id="t", status=S.QUEUED, tags={"a": "1", "b": "2"}, created_at=50.0)
    assert many.matches(job) and not one.matches(job)
    assert JobFilter(tags={"a": "1"}).matches(job) and not JobFilter(tags={"a": "2"}).matches(job)
    assert JobFilter(created_after=49.0, created_before=51.0).matches(job)
    assert not JobFilter(created_after=50.0).matches(job)  # bounds are exclusive
    assert not JobFilter(scope_id="other").matches(job)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"status": "paused"}, "status must be a JobStatus"),
        ({"limit": -1}, "limit"),
        ({"offset": -1}, "offset"),
        ({"tags": {"a": 1}}, "tags"),
        ({"created_after": "yesterday"}, "created_after"),
    ],
)
def test_job_filter_rejects_bad_input(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        JobFilter(**kwargs)


# -- JobManager ------------------------------------------------------------------------------------


async def test_job_manager_seed_block() -> None:
    store = InMemoryJobStore()
    manager = JobManager(store)

    # Create a job
    job = await manager.create(
        JobSpec(
            scope_id="tenant-123",
            principal_id="user-456",
            idempotency_key="unique-key",
            budgets=BudgetSpec(max_tokens=10000),
        )
    )
    assert job.status is S.QUEUED and job.version == 1

    # Lifecycle operations (the seed lists them one after another; complete, fail and cancel are
    # alternative endings, so each ending gets its own job: a finished job's outcome is final).
    job = await manager.start(job.job_id)
    assert job.status is S.RUNNING
    job = await manager.update_progress(job.job_id, 0.5, turn=3)
    assert (job.progress, job.turn) == (0.5, 3)
    job = await manager.wait_for_action(job.job_id)
    assert job.status is S.WAITING_ACTION
    job = await manager.resume(job.job_id)
    assert job.status is S.RUNNING
    job = await manager.complete(job.job_id, result_ref="result-123")
    assert (job.status, job.result_ref, job.progress) == (S.SUCCEEDED, "result-123", 1.0)
    assert job.version == 6  # one write per operation, starting at 1

    other = await manager.start((await manager.create(JobSpec(scope_id="tenant-123"))).job_id)
    other = await manager.fail(other.job_id, "Error message", error_code="E001")
    assert (other.status, other.error, other.error_code) == (S.FAILED, "Error message", "E001")
    third = await manager.create(JobSpec(scope_id="tenant-123"))
    third = await manager.cancel(third.job_id, reason="User cancelled")
    assert (third.status, third.error, third.error_code) == (S.CANCELLED, "User cancelled", "cancelled")
    with pytest.raises(InvalidTransitionError):
        await manager.fail(job.job_id, "Error message", error_code="E001")

    # Query
    running = await manager.start((await manager.create(JobSpec(scope_id="tenant-123"))).job_id)
    job = await manager.get(job.job_id)
    assert job.status is S.SUCCEEDED
    jobs = await manager.list(JobFilter(scope_id="tenant-123", status=JobStatus.RUNNING))
    assert [j.job_id for j in jobs] == [running.job_id]
    # The seed rebinds `job` to an Optional lookup; fine at runtime, flagged by a type checker.
    job = await manager.get_by_idempotency_key("unique-key", scope_id="tenant-123")  # type: ignore[assignment]
    assert job is not None and job.status is S.SUCCEEDED
    assert await manager.count(JobFilter(scope_id="tenant-123")) == 4


async def test_start_and_resume_check_where_the_job_is() -> None:
    manager = JobManager(InMemoryJobStore())
    job = await manager.create(JobSpec())
    with pytest.raises(InvalidTransitionError, match=r"resume\(\) needs a waiting_action job"):
        await manager.resume(job.job_id)
    await manager.start(job.job_id)
    await manager.wait_for_action(job.job_id)
    with pytest.raises(InvalidTransitionError, match=r"start\(\) needs a queued job; .* is waiting_action"):
        await manager.start(job.job_id)
    with pytest.raises(InvalidTransitionError, match="from waiting_action to succeeded"):
        await manager.complete(job.job_id)


async def test_timeout_and_expire_overdue() -> None:
    manager = JobManager(InMemoryJobStore())
    late = await manager.create(JobSpec(deadline=100.0))
    later = await manager.start((await manager.create(JobSpec(deadline=200.0))).job_id)
    fine = await manager.create(JobSpec(deadline=10_000.0))
    done = await manager.start((await manager.create(JobSpec(deadline=100.0))).job_id)
    await manager.complete(done.job_id)

    expired = await manager.expire_overdue(now=500.0)
    assert sorted(j.job_id for j in expired) == sorted([late.job_id, later.job_id])
    assert all(j.status is S.TIMED_OUT and j.error_code == "timeout" for j in expired)
    assert (await manager.get(fine.job_id)).status is S.QUEUED
    assert (await manager.get(done.job_id)).status is S.SUCCEEDED
    assert await manager.expire_overdue(now=500.0) == []


async def test_set_state_persists_and_does_not_move_the_job() -> None:
    manager = JobManager(InMemoryJobStore())
    job = await manager.start((await manager.create(JobSpec(state={"turn": 0}))).job_id)
    conversation = {"messages": [{"role": "user", "content": "hi"}], "turn": 1}
    saved = await manager.set_state(job.job_id, conversation)
    conversation["turn"] = 99  # the caller's dict is not the stored one
    again = await manager.get(job.job_id)
    assert again.state == {"messages": [{"role": "user", "content": "hi"}], "turn": 1}
    assert saved.status is again.status is S.RUNNING
    with pytest.raises(ValidationError, match="state must be a mapping"):
        await manager.set_state(job.job_id, ["not", "a", "mapping"])  # type: ignore[arg-type]


async def test_dicts_of_a_returned_record_are_not_the_stored_ones() -> None:
    store = InMemoryJobStore()
    manager = JobManager(store)
    created = await manager.create(JobSpec(metadata={"a": 1}, tags={"team": "x"}, state={"n": 0}))
    started = await manager.start(created.job_id)
    for record in (created, started):
        record.metadata["a"] = 2  # type: ignore[index]
        record.tags["team"] = "y"  # type: ignore[index]
        record.state["n"] = 5  # type: ignore[index]
    stored = await manager.get(created.job_id)
    assert (stored.metadata, stored.tags, stored.state) == ({"a": 1}, {"team": "x"}, {"n": 0})
    assert [j.job_id for j in await manager.list(JobFilter(tags={"team": "x"}))] == [created.job_id]
    assert await manager.list(JobFilter(tags={"team": "y"})) == []


@pytest.mark.parametrize(
    "operation",
    [
        lambda m: m.get("nope"),
        lambda m: m.start("nope"),
        lambda m: m.update_progress("nope", 0.5),
        lambda m: m.wait_for_action("nope"),
        lambda m: m.resume("nope"),
        lambda m: m.complete("nope", result_ref="r"),
        lambda m: m.fail("nope", "boom"),
        lambda m: m.cancel("nope", reason="x"),
        lambda m: m.timeout("nope"),
        lambda m: m.set_state("nope", {}),
    ],
)
async def test_unknown_job_id(operation: Any) -> None:
    with pytest.raises(JobNotFoundError, match="'nope'") as info:
        await operation(JobManager(InMemoryJobStore()))
    assert info.value.job_id == "nope"


async def test_manager_rejects_bad_arguments() -> None:
    with pytest.raises(ValidationError, match="store must be a JobStore"):
        JobManager({})  # type: ignore[arg-type]
    manager = JobManager(InMemoryJobStore())
    with pytest.raises(ValidationError, match="takes a JobSpec"):
        await manager.create({"scope_id": "t"})  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="idempotency key"):
        await manager.get_by_idempotency_key("")
    job = await manager.start((await manager.create(JobSpec())).job_id)
    with pytest.raises(ValidationError, match="progress"):
        await manager.update_progress(job.job_id, 1.5)
    with pytest.raises(JobFinishedError):
        await manager.update_progress((await manager.complete(job.job_id)).job_id, 0.5)


# -- idempotency -----------------------------------------------------------------------------------


async def test_idempotency_is_per_scope() -> None:
    manager = JobManager(InMemoryJobStore())
    first = await manager.create(JobSpec(scope_id="a", idempotency_key="k", metadata={"n": 1}))
    again = await manager.create(JobSpec(scope_id="a", idempotency_key="k", metadata={"n": 2}))
    other_scope = await manager.create(JobSpec(scope_id="b", idempotency_key="k"))
    no_scope = await manager.create(JobSpec(idempotency_key="k"))
    no_scope_again = await manager.create(JobSpec(idempotency_key="k"))
    assert again == first and again.metadata == {"n": 1}
    assert len({first.job_id, other_scope.job_id, no_scope.job_id}) == 3
    assert no_scope_again.job_id == no_scope.job_id
    assert (await manager.get_by_idempotency_key("k", scope_id="b")) == other_scope
    assert (await manager.get_by_idempotency_key("k")) == no_scope
    assert await manager.get_by_idempotency_key("k", scope_id="c") is None
    assert await manager.count() == 3


async def test_idempotency_returns_the_job_even_after_it_finished() -> None:
    manager = JobManager(InMemoryJobStore())
    job = await manager.start((await manager.create(JobSpec(idempotency_key="k"))).job_id)
    await manager.complete(job.job_id, result_ref="r")
    again = await manager.create(JobSpec(idempotency_key="k"))
    assert (again.job_id, again.status, again.result_ref) == (job.job_id, S.SUCCEEDED, "r")


async def test_twenty_concurrent_creates_make_one_job() -> None:
    manager = JobManager(InMemoryJobStore())
    jobs = await asyncio.gather(
        *(manager.create(JobSpec(scope_id="t", idempotency_key="once")) for _ in range(20))
    )
    assert len({j.job_id for j in jobs}) == 1
    assert await manager.count() == 1


# -- optimistic concurrency in the manager ----------------------------------------------------------


class InterferingStore(InMemoryJobStore):
    """Before the first ``interfere`` updates, someone else writes the job (as a second worker would)."""

    def __init__(self, interference: Any, interfere: int = 1) -> None:
        super().__init__()
        self.interference = interference
        self.remaining = interfere
        self.update_calls = 0

    async def update(self, job: JobRecord) -> JobRecord:
        self.update_calls += 1
        if self.remaining > 0:
            self.remaining -= 1
            fresh = await self.get(job.job_id)
            assert fresh is not None
            await super().update(self.interference(fresh))
        return await super().update(job)


FAST = RetryPolicy(max_attempts=4, initial_delay=0.0, max_delay=0.0, jitter=0.0)


async def test_lost_write_is_retried_against_the_fresh_record() -> None:
    store = InterferingStore(lambda fresh: fresh.with_progress(0.3, turn=1))
    manager = JobManager(store, retry_policy=FAST)
    job = await manager.create(JobSpec())
    started = await manager.start(job.job_id)
    assert started.status is S.RUNNING
    assert (started.progress, started.turn) == (0.3, 1)  # the other writer's change survives
    assert store.update_calls == 2 and started.version == 3


async def test_lost_write_is_not_retried_when_the_change_became_illegal() -> None:
    store = InterferingStore(lambda fresh: fresh.transition_to(S.CANCELLED))
    manager = JobManager(store, retry_policy=FAST)
    job = await manager.create(JobSpec())
    with pytest.raises(InvalidTransitionError, match="is cancelled"):
        await manager.start(job.job_id)
    # One write, which lost; the re-read showed a cancelled job, so nothing was written again.
    assert store.update_calls == 1
    assert (await manager.get(job.job_id)).status is S.CANCELLED


async def test_endless_conflicts_give_up_with_concurrent_modification() -> None:
    store = InterferingStore(lambda fresh: fresh.with_progress(0.1), interfere=100)
    manager = JobManager(store, retry_policy=FAST)
    job = await manager.create(JobSpec())
    with pytest.raises(ConcurrentModificationError):
        await manager.update_progress(job.job_id, 0.9)
    assert store.update_calls == FAST.max_attempts


def test_retry_policy_only_ever_retries_conflicts() -> None:
    policy = ConflictRetryPolicy()
    assert policy.is_retryable(ConcurrentModificationError("x"))
    assert not policy.is_retryable(InvalidTransitionError("job", "j", "a", "b", []))
    assert not policy.is_retryable(JobNotFoundError("j"))


async def test_two_managers_racing_one_start() -> None:
    store = InMemoryJobStore()
    a, b = JobManager(store), JobManager(store)
    job = await a.create(JobSpec())
    results = await asyncio.gather(a.start(job.job_id), b.start(job.job_id), return_exceptions=True)
    assert sum(isinstance(r, JobRecord) for r in results) == 1
    assert sum(isinstance(r, InvalidTransitionError) for r in results) == 1


async def test_cancelling_the_caller_propagates() -> None:
    class SlowStore(InMemoryJobStore):
        def __init__(self) -> None:
            super().__init__()
            self.entered = asyncio.Event()

        async def update(self, job: JobRecord) -> JobRecord:
            self.entered.set()
            await asyncio.Event().wait()  # never returns: only cancellation ends it
            raise AssertionError("unreachable")

    store = SlowStore()
    manager = JobManager(store)
    job = await manager.create(JobSpec())
    task = asyncio.create_task(manager.start(job.job_id))
    await store.entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await manager.get(job.job_id)).status is S.QUEUED


# -- JobStore interface ------------------------------------------------------------------------------


def test_job_store_interface_is_exactly_the_seed_methods() -> None:
    abstract = set(JobStore.__abstractmethods__)
    assert abstract == {"create", "get", "update", "delete", "list", "get_by_idempotency_key", "count"}

    class Partial(JobStore):
        async def get(self, job_id: str) -> JobRecord | None:
            return None

    with pytest.raises(TypeError):
        Partial()  # type: ignore[abstract]
