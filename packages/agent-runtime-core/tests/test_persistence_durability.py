"""Crash safety of the file stores (atomic replace) and clear errors for files that are damaged."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from agent_runtime_core.persistence import (
    CorruptStoreError,
    FileMemoryStore,
    FileTaskStore,
    PersistenceError,
    Scope,
    Task,
    _files,
)


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    return {"project_dir": tmp_path / "project", "global_dir": tmp_path / "global"}


async def test_failed_rename_keeps_the_previous_file_and_cleans_up(
    dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = FileMemoryStore(**dirs)
    await memory.set("k", "before")
    path = memory.path(Scope.PROJECT)
    assert path is not None
    before = path.read_bytes()

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(_files.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        await memory.set("k", "after")
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert await memory.get("k") == "before"
    assert sorted(p.name for p in path.parent.iterdir()) == ["memory.json"]


@pytest.mark.parametrize("die_in", ["fsync", "replace"])
def test_process_killed_mid_write_leaves_the_previous_file_readable(tmp_path: Path, die_in: str) -> None:
    """The writer process dies (os._exit: no cleanup, no finally) between writing the temporary file
    and the rename; the store must still read the last complete version."""
    script = textwrap.dedent(
        f"""
        import asyncio, os, sys
        from agent_runtime_core.persistence import FileMemoryStore
        from agent_runtime_core.persistence import _files

        store = FileMemoryStore(project_dir=sys.argv[1], global_dir=sys.argv[2])
        asyncio.run(store.set("k", "before"))

        def die(*args, **kwargs):
            os._exit(17)

        _files.os.{die_in} = die
        asyncio.run(store.set("k", "after"))
        """
    )
    project, glob = tmp_path / "project", tmp_path / "global"
    done = subprocess.run(
        [sys.executable, "-c", script, str(project), str(glob)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 17, done.stderr

    leftovers = [p.name for p in (project / ".agent_runtime").iterdir() if p.name != "memory.json"]
    assert len(leftovers) == 1 and leftovers[0].endswith(".tmp")  # the torn write, never renamed
    data = json.loads((project / ".agent_runtime" / "memory.json").read_text())
    assert data["collections"]["memory"]["k"] == "before"

    async def read() -> object:
        return await FileMemoryStore(project_dir=project, global_dir=glob).get("k")

    assert asyncio.run(read()) == "before"


def test_atomic_write_text_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "doc.json"
    _files.atomic_write_text(target, "first")
    _files.atomic_write_text(target, "second")
    assert target.read_text() == "second"
    assert os.listdir(target.parent) == ["doc.json"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"version": 1, "collections": {"memory": {"k": ', "invalid JSON at line 1 column"),
        (b"\xff\xfe\x00garbage", "not UTF-8 text"),
        (b"[1, 2]", "expected an object with a 'collections' object"),
        (b'{"version": 99, "collections": {}}', "unsupported format version 99"),
        (b'{"version": 1, "collections": {"memory": []}}', "collection 'memory' is not an object"),
    ],
)
async def test_corrupt_file_is_a_clear_error_naming_the_file(
    dirs: dict[str, Path], content: bytes, reason: str
) -> None:
    memory = FileMemoryStore(**dirs)
    path = memory.path(Scope.PROJECT)
    assert path is not None
    path.parent.mkdir(parents=True)
    path.write_bytes(content)

    with pytest.raises(CorruptStoreError) as caught:
        await memory.get("k", scope=Scope.PROJECT)
    assert caught.value.path == path
    assert str(path) in str(caught.value) and reason in str(caught.value)
    assert isinstance(caught.value, PersistenceError)
    # A write must not "repair" the file by overwriting what is left of the user's data.
    with pytest.raises(CorruptStoreError):
        await memory.set("k", 1)
    assert path.read_bytes() == content


async def test_bad_record_inside_valid_json_names_the_file(dirs: dict[str, Path]) -> None:
    store = FileTaskStore(**dirs)
    task = Task(name="t")
    await store.save(task)
    path = store.path(Scope.PROJECT)
    assert path is not None
    doc = json.loads(path.read_text())
    doc["collections"]["tasks"][str(task.id)]["state"] = "exploded"
    path.write_text(json.dumps(doc))

    with pytest.raises(CorruptStoreError, match=r"bad Task record: Task\.state: 'exploded'") as caught:
        await store.list_tasks()
    assert str(path) in str(caught.value)
