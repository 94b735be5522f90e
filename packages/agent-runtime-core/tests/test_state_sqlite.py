"""SQLiteStateStore on a real file: the state contract, WAL mode, and two writer processes at once."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from agent_runtime_core.state import SQLiteStateStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStateStore]:
    s = SQLiteStateStore(db_path=str(tmp_path / "agent_state.db"))
    yield s
    await s.close()


async def test_checkpoints_and_values(store: SQLiteStateStore) -> None:
    assert await store.get_checkpoint("r") is None
    assert await store.save_checkpoint("r", {"step": 1}) == 1
    assert await store.save_checkpoint("r", {"step": 2, "messages": [{"role": "user"}]}) == 2
    assert await store.save_checkpoint("other", {"step": 9}) == 1
    assert await store.get_checkpoint("r") == {"step": 2, "messages": [{"role": "user"}]}
    assert await store.list_checkpoints("r") == [{"step": 1}, {"step": 2, "messages": [{"role": "user"}]}]
    await store.delete_checkpoints("r")
    assert await store.list_checkpoints("r") == []
    assert await store.get_checkpoint("other") == {"step": 9}
    await store.set("k", {"a": 1})
    await store.set("k", [1, 2])  # overwrite
    assert await store.get("k") == [1, 2]
    await store.delete("k")
    assert await store.get("k") is None


async def test_data_survives_a_new_store_on_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    first = SQLiteStateStore(path)
    await first.save_checkpoint("r", {"step": 1})
    await first.set("k", "v")
    await first.close()
    second = SQLiteStateStore(path)
    try:
        assert await second.get_checkpoint("r") == {"step": 1}
        assert await second.get("k") == "v"
        assert await second.save_checkpoint("r", {"step": 2}) == 2
    finally:
        await second.close()


async def test_wal_mode_is_on(store: SQLiteStateStore) -> None:
    await store.set("k", 1)
    assert await store.journal_mode() == "wal"
    conn = sqlite3.connect(store.db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent in the file
    finally:
        conn.close()


async def test_ttl_expires_values(store: SQLiteStateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    import agent_runtime_core.state.sqlite as mod

    now = [1_000_000.0]
    monkeypatch.setattr(mod.time, "time", lambda: now[0])
    await store.set("short", "x", ttl=10)
    await store.set("forever", "y")
    assert await store.get("short") == "x"
    now[0] += 11
    assert await store.get("short") is None
    assert await store.get("forever") == "y"
    with pytest.raises(ValueError, match="ttl"):
        await store.set("k", 1, ttl=-1)


async def test_refuses_non_json_before_writing(store: SQLiteStateStore) -> None:
    with pytest.raises(TypeError, match="checkpoint of run 'r'"):
        await store.save_checkpoint("r", {"bad": object()})
    with pytest.raises(TypeError, match="'k'"):
        await store.set("k", {1})
    assert await store.list_checkpoints("r") == []
    assert await store.get("k") is None


async def test_concurrent_tasks_in_one_process_get_distinct_seqs(store: SQLiteStateStore) -> None:
    seqs = await asyncio.gather(*(store.save_checkpoint("r", {"i": i}) for i in range(30)))
    assert sorted(seqs) == list(range(1, 31))


_WRITER = """
import asyncio, sys
from agent_runtime_core.state import SQLiteStateStore

async def main():
    path, who, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = SQLiteStateStore(db_path=path)
    sys.stdin.readline()  # start together
    for i in range(n):
        await store.save_checkpoint("shared", {"who": who, "i": i})
        await store.save_checkpoint(f"own-{who}", {"i": i})
        await store.set(f"{who}:{i}", {"i": i})
    await store.close()

asyncio.run(main())
"""


@pytest.mark.slow
async def test_two_processes_write_concurrently_without_losing_data(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    n = 150
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, path, who, str(n)],
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for who in ("a", "b")
    ]
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    errors = []
    for p in procs:
        _, err = await asyncio.to_thread(p.communicate, timeout=60)
        errors.append((p.returncode, err))
    assert errors == [(0, ""), (0, "")]

    store = SQLiteStateStore(path)
    try:
        shared = await store.list_checkpoints("shared")
        assert len(shared) == 2 * n
        for who in ("a", "b"):
            assert [c["i"] for c in shared if c["who"] == who] == list(range(n))  # each writer's order kept
            assert [c["i"] for c in await store.list_checkpoints(f"own-{who}")] == list(range(n))
            assert [await store.get(f"{who}:{i}") for i in range(n)] == [{"i": i} for i in range(n)]
        assert await store.journal_mode() == "wal"
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    try:
        seqs = [
            r[0] for r in conn.execute("SELECT seq FROM checkpoints WHERE run_id = 'shared' ORDER BY seq")
        ]
        assert seqs == list(range(1, 2 * n + 1))
    finally:
        conn.close()


async def test_in_memory_database_works(tmp_path: Path) -> None:
    s = SQLiteStateStore(":memory:")
    try:
        assert await s.save_checkpoint("r", {}) == 1
        assert await s.get_checkpoint("r") == {}
    finally:
        await s.close()
