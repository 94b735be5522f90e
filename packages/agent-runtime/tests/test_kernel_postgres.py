"""RuntimeKernel on PostgreSQL: the seed's explicit constructor and Storage Adapters blocks, and a
job that waits for an action surviving a SIGKILL of its process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from agent_runtime import (
    ExecutionRequest,
    InMemoryEventBus,
    JobRecord,
    JobStatus,
    LedgerEventType,
    PluginRegistry,
    PolicyEngine,
    PostgresActionStore,
    PostgresJobStore,
    PostgresLedgerWriter,
    RuntimeKernel,
)
from llm_client import Agent, ExecutionEngine, MockProvider, MockResponse

asyncpg = pytest.importorskip("asyncpg")

WORKER = Path(__file__).with_name("kernel_restart_worker.py")


@pytest.fixture
async def pool(postgres_dsn: str) -> AsyncIterator[Any]:
    pool = await asyncpg.create_pool(postgres_dsn, min_size=1, max_size=8)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def prefix(pool: Any) -> AsyncIterator[str]:
    name = f"test_kernel_{uuid.uuid4().hex[:10]}"
    try:
        yield name
    finally:
        await pool.execute(
            f"DROP TABLE IF EXISTS {name}_jobs, {name}_actions, {name}_ledger, {name}_ledger_reservations, "
            f"{name}_ledger_totals"
        )


async def test_storage_adapters_block_and_explicit_constructor_with_postgres_stores(
    pool: Any, prefix: str
) -> None:
    job_store = PostgresJobStore(pool, table_name=f"{prefix}_jobs")
    action_store = PostgresActionStore(pool, table_name=f"{prefix}_actions")
    ledger_writer = PostgresLedgerWriter(pool, table_name=f"{prefix}_ledger")

    engine = ExecutionEngine(provider=MockProvider(["Hello from Postgres"], model="gpt-5-nano"))
    agent = Agent(engine=engine)
    kernel = RuntimeKernel(
        engine=engine,
        agent=agent,
        job_store=job_store,
        action_store=action_store,
        ledger_writer=ledger_writer,
        policy_engine=PolicyEngine(),
        event_bus=InMemoryEventBus(),
        plugin_registry=PluginRegistry(),
    )
    handle = await kernel.execute(ExecutionRequest(prompt="hi", scope_id="tenant-pg", idempotency_key="k-1"))
    result = await handle.result()
    assert result.status == "succeeded" and result.content == "Hello from Postgres"

    # Read back through fresh stores: the job, its result state and the ledger are in the database.
    job = await PostgresJobStore(pool, table_name=f"{prefix}_jobs").get(handle.job_id)
    assert job is not None and job.status is JobStatus.SUCCEEDED
    assert job.state["result"]["content"] == "Hello from Postgres"
    events = await PostgresLedgerWriter(pool, table_name=f"{prefix}_ledger").list_events(job_id=handle.job_id)
    assert [e.type for e in events] == [LedgerEventType.MODEL_USAGE]
    again = await kernel.execute(ExecutionRequest(prompt="hi", scope_id="tenant-pg", idempotency_key="k-1"))
    assert again.job_id == handle.job_id and (await again.result()).content == "Hello from Postgres"
    await kernel.aclose()


def _wait_for_file(path: Path, proc: subprocess.Popen[bytes], deadline_s: float = 60.0) -> None:
    """Bounded poll across processes: the worker writes ``path`` when it has paused."""
    give_up = time.monotonic() + deadline_s
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"worker exited with {proc.returncode} before writing {path.name}")
        if time.monotonic() > give_up:
            raise AssertionError(f"worker did not write {path.name} within {deadline_s}s")
        time.sleep(0.05)


async def test_waiting_job_survives_sigkill_and_resumes_in_a_new_process(
    postgres_dsn: str, pool: Any, prefix: str, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    first_log = tmp_path / "first.log"
    with first_log.open("wb") as log:
        first = subprocess.Popen(
            [sys.executable, str(WORKER), "pause", postgres_dsn, prefix, str(tmp_path)], stderr=log, env=env
        )
        try:
            _wait_for_file(tmp_path / "paused", first)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL
    job_id = (tmp_path / "paused").read_text(encoding="utf-8")
    token = (tmp_path / "token").read_text(encoding="utf-8")

    job = await PostgresJobStore(pool, table_name=f"{prefix}_jobs").get(job_id)
    assert job is not None and job.status is JobStatus.WAITING_ACTION
    assert set(job.state["completed"]) == {"c1"} and [p["id"] for p in job.state["pending"]] == ["c2"]

    second = subprocess.run(
        [sys.executable, str(WORKER), "resume", postgres_dsn, prefix, str(tmp_path)],
        capture_output=True,
        env=env,
        timeout=120,
    )
    assert second.returncode == 0, second.stderr.decode()[-3000:]
    outcome = json.loads((tmp_path / "result.json").read_text(encoding="utf-8"))
    assert (
        outcome["status"] == "succeeded" and outcome["content"] == "Rolled out v2." and outcome["turns"] == 2
    )
    # The new process called the model once, continuing from the saved conversation.
    assert outcome["model_calls"] == 1
    assert [m.get("tool_call_id") for m in outcome["messages"][-2:]] == ["c1", "c2"]
    assert outcome["messages"][-2]["content"] == "recorded v2"
    assert json.loads(outcome["messages"][-1]["content"]) == {"approved": True}

    job = await PostgresJobStore(pool, table_name=f"{prefix}_jobs").get(job_id)
    assert job is not None and job.status is JobStatus.SUCCEEDED
    writer = PostgresLedgerWriter(pool, table_name=f"{prefix}_ledger")
    model_usage = await writer.list_events(job_id=job_id, event_type=LedgerEventType.MODEL_USAGE)
    assert len(model_usage) == 2  # each model call recorded exactly once, across both processes
    assert (tmp_path / "ran").read_text(encoding="utf-8").splitlines() == ["v2"]  # the finished tool ran once

    # The resume token never appears in logs, events or reprs of either process.
    assert token
    texts = {
        "first process log": first_log.read_text(encoding="utf-8"),
        "second process log": second.stderr.decode(),
        "first process events": (tmp_path / "events-pause.jsonl").read_text(encoding="utf-8"),
        "second process events": (tmp_path / "events-resume.jsonl").read_text(encoding="utf-8"),
    }
    assert "action.required" in texts["first process events"]
    assert "action.resolved" in texts["second process events"]
    assert (
        "ExecutionHandle(" in texts["first process log"] and "ExecutionResult(" in texts["second process log"]
    )
    for where, text in texts.items():
        assert token not in text, f"resume token leaked into the {where}"


async def test_lost_jobs_are_failed_once_by_racing_kernels_and_live_ones_are_left(
    pool: Any, prefix: str
) -> None:
    gate = asyncio.Event()

    async def wait_for_gate() -> str:
        """Block until the test opens the gate."""
        await gate.wait()
        return "open"

    def kernel(script: list[Any]) -> RuntimeKernel:
        engine = ExecutionEngine(provider=MockProvider(script, model="gpt-5-nano"))
        return RuntimeKernel(
            engine=engine,
            agent=Agent(engine=engine, tools=[wait_for_gate]),
            job_store=PostgresJobStore(pool, table_name=f"{prefix}_jobs"),
            action_store=PostgresActionStore(pool, table_name=f"{prefix}_actions"),
            ledger_writer=PostgresLedgerWriter(pool, table_name=f"{prefix}_ledger"),
        )

    live_kernel = kernel([MockResponse.tool_call("wait_for_gate", {}, id="c1"), "done"])
    handle = await live_kernel.execute(ExecutionRequest(prompt="wait"))
    while (await handle.job()).status is not JobStatus.RUNNING:
        await asyncio.sleep(0)
    then = time.time() - 3600
    dead = await live_kernel.jobs.store.create(
        JobRecord(
            status=JobStatus.RUNNING, created_at=then, updated_at=then, state={"request": {"prompt": "x"}}
        )
    )
    first, second = kernel([]), kernel([])
    results = await asyncio.gather(
        first.recover_lost_jobs(stale_after=60), second.recover_lost_jobs(stale_after=60)
    )
    assert sorted(len(r) for r in results) == [0, 1] and [j.job_id for r in results for j in r] == [
        dead.job_id
    ]
    failed = await first.jobs.get(dead.job_id)
    assert (failed.status, failed.error_code) == (JobStatus.FAILED, "worker_lost")
    assert (await handle.job()).status is JobStatus.RUNNING  # written recently by its kernel: alive
    gate.set()
    assert (await handle.result()).content == "done"
