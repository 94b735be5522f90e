"""Heartbeats and lost-worker recovery: a kernel stamps the jobs it runs as alive, and
``recover_lost_jobs`` fails kernel jobs that nobody has stamped for too long (their worker died)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from agent_runtime import (
    ActionSpec,
    ActionStatus,
    ActionType,
    ExecutionHandle,
    ExecutionRequest,
    JobRecord,
    JobStatus,
    RuntimeKernel,
    ValidationError,
)
from agent_runtime.jobs import InMemoryJobStore
from llm_client import Agent, ExecutionEngine, MockProvider, MockResponse

HOUR = 3600.0


class WatchedStore(InMemoryJobStore):
    """Signals every write of a RUNNING job that changed nothing but its stamp (a heartbeat)."""

    def __init__(self) -> None:
        super().__init__()
        self.beats = asyncio.Event()

    async def update(self, job: JobRecord) -> JobRecord:
        before = await self.get(job.job_id)
        written = await super().update(job)
        running = before is not None and before.status is written.status is JobStatus.RUNNING
        if running and before.progress == written.progress and before.state == written.state:
            self.beats.set()
        return written


def blocked_kernel(store: InMemoryJobStore, gate: asyncio.Event, **kwargs: Any) -> RuntimeKernel:
    async def wait_for_gate() -> str:
        """Block until the test opens the gate."""
        await gate.wait()
        return "open"

    provider = MockProvider([MockResponse.tool_call("wait_for_gate", {}, id="c1"), "done"])
    engine = ExecutionEngine(provider=provider)
    agent = Agent(engine=engine, tools=[wait_for_gate])
    return RuntimeKernel.create(engine=engine, agent=agent, job_store=store, **kwargs)


async def started(handle: ExecutionHandle) -> JobRecord:
    """The job once its task has started it (loop turns, not a timed wait)."""
    while (job := await handle.job()).status is JobStatus.QUEUED:
        await asyncio.sleep(0)
    return job


def lost_job(status: JobStatus = JobStatus.RUNNING, *, age: float = HOUR, **fields: Any) -> JobRecord:
    """A kernel job record as a dead worker left it: last written ``age`` seconds ago."""
    then = time.time() - age
    fields.setdefault("state", {"request": {"prompt": "hi"}})
    return JobRecord(status=status, created_at=then, updated_at=then, started_at=then, **fields)


async def test_the_kernel_stamps_its_running_jobs_while_they_run() -> None:
    store, gate = WatchedStore(), asyncio.Event()
    kernel = blocked_kernel(store, gate, heartbeat_interval=0.01)
    handle = await kernel.execute(ExecutionRequest(prompt="wait"))
    await asyncio.wait_for(store.beats.wait(), timeout=10)  # the timer fired while the tool waits
    job = await handle.job()
    assert job.status is JobStatus.RUNNING and job.version >= 3  # create, start, heartbeat(s)
    gate.set()
    result = await handle.result()  # the heartbeats' writes did not get in the job's way
    assert result.content == "done" and (await handle.job()).status is JobStatus.SUCCEEDED
    await kernel.aclose()


async def test_heartbeat_stamps_every_running_job_and_skips_finished_ones() -> None:
    store, gate = InMemoryJobStore(), asyncio.Event()
    kernel = blocked_kernel(store, gate)
    handle = await kernel.execute(ExecutionRequest(prompt="wait"))
    before = await started(handle)
    assert await kernel.heartbeat() == [handle.job_id]
    after = await handle.job()
    assert after.version == before.version + 1 and after.updated_at is not None
    assert before.updated_at is not None and after.updated_at >= before.updated_at
    gate.set()
    await handle.result()
    assert await kernel.heartbeat() == []


async def test_recover_lost_jobs_fails_only_the_kernel_jobs_nobody_stamps() -> None:
    store = InMemoryJobStore()
    kernel = blocked_kernel(store, asyncio.Event())
    lost = await store.create(lost_job())
    lost_queued = await store.create(lost_job(JobStatus.QUEUED))
    fresh = await store.create(lost_job(age=1.0))
    not_ours = await store.create(lost_job(state={}))  # e.g. an orchestration child
    waiting = await store.create(lost_job(JobStatus.WAITING_ACTION, state={"actions": {}, "messages": []}))
    action = await kernel.actions.require_action(ActionSpec(job_id=lost.job_id, type=ActionType.APPROVAL))

    failed = await kernel.recover_lost_jobs(stale_after=60)

    assert sorted(j.job_id for j in failed) == sorted([lost.job_id, lost_queued.job_id])
    for job_id in (lost.job_id, lost_queued.job_id):
        job = await kernel.jobs.get(job_id)
        assert job.status is JobStatus.FAILED and job.error_code == "worker_lost"
        assert job.error == "worker lost: no heartbeat for over 60s"
        kinds = [e.type.value for e in kernel.event_bus.history(job_id)]
        assert kinds[-2:] == ["final.error", "job.failed"]
    for record in (fresh, not_ours, waiting):
        assert (await kernel.jobs.get(record.job_id)).status is record.status
    assert (await kernel.actions.get(action.action_id)).status is ActionStatus.CANCELLED
    assert await kernel.recover_lost_jobs(stale_after=60) == []  # each job is failed once


async def test_a_job_this_kernel_runs_is_never_lost_and_the_default_window_is_three_beats() -> None:
    store, gate = InMemoryJobStore(), asyncio.Event()
    kernel = blocked_kernel(store, gate, heartbeat_interval=HOUR)
    handle = await kernel.execute(ExecutionRequest(prompt="wait"))
    assert (await started(handle)).status is JobStatus.RUNNING
    old = await store.create(lost_job(age=2 * HOUR))  # within 3 x 1 h: still presumed alive
    assert await kernel.recover_lost_jobs() == []
    assert (await kernel.jobs.get(old.job_id)).status is JobStatus.RUNNING
    failed = await kernel.recover_lost_jobs(stale_after=0.000001)  # everything is stale now...
    assert [j.job_id for j in failed] == [old.job_id]  # ...but the job this kernel runs is alive
    assert (await handle.job()).status is JobStatus.RUNNING
    gate.set()
    assert (await handle.result()).succeeded


@pytest.mark.parametrize("bad", [0, -1.0, True, "60"])
async def test_bad_windows_are_refused(bad: Any) -> None:
    kernel = blocked_kernel(InMemoryJobStore(), asyncio.Event())
    with pytest.raises(ValidationError, match="stale_after must be a number of seconds > 0"):
        await kernel.recover_lost_jobs(stale_after=bad)
    with pytest.raises(ValidationError, match="heartbeat_interval must be a number of seconds > 0"):
        blocked_kernel(InMemoryJobStore(), asyncio.Event(), heartbeat_interval=bad)


def test_a_kernel_used_from_a_second_event_loop_keeps_beating() -> None:
    """A timer armed on a closed loop never fires: the next loop gets its own."""
    store = WatchedStore()
    gates: dict[str, asyncio.Event] = {}

    async def wait_for_gate() -> str:
        """Block until the test opens the gate."""
        await gates["now"].wait()
        return "open"

    script: list[Any] = []
    for call_id in ("c1", "c2"):
        script += [MockResponse.tool_call("wait_for_gate", {}, id=call_id), "done"]
    engine = ExecutionEngine(provider=MockProvider(script))
    kernel = RuntimeKernel.create(
        engine=engine,
        agent=Agent(engine=engine, tools=[wait_for_gate]),
        job_store=store,
        heartbeat_interval=0.01,
    )

    async def one_job() -> None:
        gates["now"], store.beats = asyncio.Event(), asyncio.Event()  # bound to this loop
        handle = await kernel.execute(ExecutionRequest(prompt="wait"))
        await asyncio.wait_for(store.beats.wait(), timeout=10)
        gates["now"].set()
        assert (await handle.result()).content == "done"

    asyncio.run(one_job())
    asyncio.run(one_job())
