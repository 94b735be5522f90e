"""Crash and resume: a step pipeline killed with SIGKILL mid-step resumes in a new process.

The pipeline (tests/crash_pipeline.py) runs in a subprocess on a SQLite state store in a temporary
file. Step 2 announces itself with a marker file and blocks; the parent waits for the marker (a
bounded poll: it is another process), kills the child with SIGKILL and starts a new process with the
same run id and database. Step 1 must not run again, steps 2 and 3 must, and the results must equal
those of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).with_name("crash_pipeline.py")


def start(db: Path, run_id: str, work: Path, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), str(db), run_id, str(work), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def executions(work: Path) -> list[str]:
    return (work / "executions.log").read_text().split()


def test_a_killed_pipeline_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    # An uninterrupted run, for reference.
    reference_dir = tmp_path / "reference"
    reference_dir.mkdir()
    expected = finish(start(tmp_path / "reference.db", "run-ref", reference_dir, "run"))
    assert executions(reference_dir) == ["fetch", "process", "summarise"]

    work = tmp_path / "crash"
    work.mkdir()
    db = tmp_path / "state.db"
    proc = start(db, "run-crash", work, "block")
    deadline = time.monotonic() + 30
    try:
        while not (work / "step2.blocking").exists():
            if proc.poll() is not None:
                pytest.fail(f"the pipeline exited early: {proc.communicate()[1]}")
            if time.monotonic() > deadline:
                pytest.fail("step 2 never started")
            time.sleep(0.01)  # polling another process's marker file, with a deadline
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert executions(work) == ["fetch", "process"]

    resumed = finish(start(db, "run-crash", work, "run"))
    assert executions(work) == ["fetch", "process", "process", "summarise"]  # fetch ran once
    assert resumed == expected
    assert resumed == {
        "fetch": {"count": 3},
        "process": [10, 20, 30],
        "summarise": {"first": 1, "items": [3, 1, 2], "total": 6},
    }
