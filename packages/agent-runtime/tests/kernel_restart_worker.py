"""A worker process for test_kernel_postgres.py's restart test (not a test module itself).

``python kernel_restart_worker.py pause DSN TABLES_PREFIX WORKDIR`` runs a job on PostgreSQL stores
until it waits for an action, writes the job id to ``WORKDIR/paused`` and then waits forever (the
test kills it with SIGKILL). ``... resume DSN TABLES_PREFIX WORKDIR`` is the process after the
restart: it resolves the action with the token the first process handed out, resumes the job and
writes the outcome to ``WORKDIR/result.json``. Both log at DEBUG to stderr and append every runtime
event to ``WORKDIR/events-<phase>.jsonl``, so the test can check the token appears in neither.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import asyncpg
from agent_runtime import (
    ActionRequiredError,
    ActionSpec,
    InMemoryEventBus,
    PostgresActionStore,
    PostgresJobStore,
    PostgresLedgerWriter,
    RuntimeEvent,
    RuntimeKernel,
    current_execution,
)
from agent_runtime.kernel import ExecutionRequest
from llm_client import Agent, ExecutionEngine, MockProvider, ToolCall


async def main(phase: str, dsn: str, prefix: str, workdir: Path) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    kernel: RuntimeKernel

    def record_change(change: str) -> str:
        """Record a change (the test counts the lines: it must run once)."""
        with (workdir / "ran").open("a", encoding="utf-8") as f:
            f.write(change + "\n")
        return f"recorded {change}"

    async def confirm(question: str) -> str:
        """Ask a human; the job waits, durably, for the answer."""
        ctx = current_execution()
        assert ctx is not None and ctx.job_id is not None
        action = await kernel.actions.require_action(
            ActionSpec(job_id=ctx.job_id, type="confirm", payload={"question": question})
        )
        assert action.resume_token is not None
        tmp = workdir / "token.tmp"
        tmp.write_text(action.resume_token, encoding="utf-8")
        tmp.replace(workdir / "token")  # the trusted channel to the human
        raise ActionRequiredError(action)

    if phase == "pause":
        script: list[Any] = [
            [
                ToolCall("c1", "record_change", '{"change": "v2"}'),
                ToolCall("c2", "confirm", '{"question": "go?"}'),
            ],
        ]
    else:
        script = ["Rolled out v2."]
    provider = MockProvider(script, model="gpt-5-nano")
    engine = ExecutionEngine(provider=provider)
    agent = Agent(engine=engine, tools=[record_change, confirm])
    bus = InMemoryEventBus()
    kernel = RuntimeKernel(
        engine=engine,
        agent=agent,
        job_store=PostgresJobStore(pool, table_name=f"{prefix}_jobs"),
        action_store=PostgresActionStore(pool, table_name=f"{prefix}_actions"),
        ledger_writer=PostgresLedgerWriter(pool, table_name=f"{prefix}_ledger"),
        event_bus=bus,
    )
    events = (workdir / f"events-{phase}.jsonl").open("a", encoding="utf-8")

    def keep(event: RuntimeEvent) -> None:
        events.write(event.to_json() + "\n")
        events.flush()

    await bus.subscribe(keep)

    if phase == "pause":
        handle = await kernel.execute(ExecutionRequest(prompt="roll out v2", scope_id="tenant-restart"))
        async for event in handle.events():
            if event.type.value == "job.status_changed" and event.data.get("status") == "waiting_action":
                break
        print(repr(handle), repr(kernel), repr(await handle.job()), file=sys.stderr)
        (workdir / "paused").write_text(handle.job_id, encoding="utf-8")
        await asyncio.Event().wait()  # killed here

    job_id = (workdir / "paused").read_text(encoding="utf-8")
    token = (workdir / "token").read_text(encoding="utf-8")
    resolved = await kernel.actions.resolve(token, {"approved": True}, job_id=job_id)
    handle = await kernel.resume(job_id)
    result = await handle.result()
    await bus.flush()
    print(repr(handle), repr(kernel), repr(resolved), repr(result), repr(await handle.job()), file=sys.stderr)
    out = {
        "status": result.status,
        "content": result.content,
        "turns": result.turns,
        "model_calls": provider.call_count,
        "messages": list(provider.calls[0].messages),
    }
    (workdir / "result.json").write_text(json.dumps(out), encoding="utf-8")
    await kernel.aclose()
    await pool.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(name)s %(levelname)s %(message)s")
    os.environ.setdefault("PYTHONASYNCIODEBUG", "0")
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])))
