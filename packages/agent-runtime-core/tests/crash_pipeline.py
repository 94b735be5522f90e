"""Subprocess half of test_crash_resume.py: a three-step pipeline on a SQLite state store.

Usage: python crash_pipeline.py DB_PATH RUN_ID WORK_DIR MODE
Each step appends its name to WORK_DIR/executions.log before doing anything. In MODE "block", step 2
writes WORK_DIR/step2.blocking and then waits forever (the parent SIGKILLs the process); in MODE
"run", it completes. On success the results are printed as one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from agent_runtime_core.context import DefaultRunContext
from agent_runtime_core.events.memory import InMemoryEventBus
from agent_runtime_core.interfaces import RunContext
from agent_runtime_core.state.sqlite import SQLiteStateStore
from agent_runtime_core.steps import Step, StepExecutor


async def main(db_path: str, run_id: str, work_dir: Path, mode: str) -> None:
    log = work_dir / "executions.log"

    def record(name: str) -> None:
        with log.open("a") as f:
            f.write(name + "\n")
            f.flush()

    async def fetch(ctx: RunContext, state: dict[str, Any]) -> dict[str, Any]:
        record("fetch")
        state["items"] = [3, 1, 2]
        return {"count": 3}

    async def process(ctx: RunContext, state: dict[str, Any]) -> list[int]:
        record("process")
        if mode == "block":
            (work_dir / "step2.blocking").write_text("ready")
            await asyncio.Event().wait()
        state["sorted"] = sorted(state["items"])
        return [x * 10 for x in state["sorted"]]

    async def summarise(ctx: RunContext, state: dict[str, Any]) -> dict[str, Any]:
        record("summarise")
        return {"total": sum(state["sorted"]), "first": state["sorted"][0], "items": state["items"]}

    store = SQLiteStateStore(db_path=db_path)
    ctx = DefaultRunContext(run_id, [], event_bus=InMemoryEventBus(), state_store=store)
    results = await StepExecutor(ctx).run(
        [Step("fetch", fetch), Step("process", process), Step("summarise", summarise)],
        initial_state={"source": "test"},
    )
    await store.close()
    print(json.dumps(results, sort_keys=True), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4]))
