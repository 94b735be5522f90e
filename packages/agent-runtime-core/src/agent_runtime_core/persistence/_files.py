"""Scoped JSON documents on disk: the storage under every file-based store.

One JSON file per store and scope: PROJECT in ``<project_dir>/.agent_runtime/``, GLOBAL in the
global directory (``~/.agent_runtime/`` unless configured), SESSION in memory for the life of the
store. Writes are atomic (temporary file in the same directory, fsync, ``os.replace``), so a crash
leaves either the old file or the new one, never a torn mix; readers therefore need no lock. Writers
in one process are serialised by a lock per document, so concurrent read-modify-writes do not lose
updates. Other processes writing the same file are not coordinated: last writer wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeVar

from .._json import ensure_jsonable
from ._model import Model, as_enum
from .errors import CorruptStoreError
from .models import Scope

__all__ = [
    "FileStoreBase",
    "ScopedDocuments",
    "default_global_dir",
    "atomic_write_text",
    "read_json_document",
    "FORMAT_VERSION",
]

FORMAT_VERSION = 1
PROJECT_SUBDIR = ".agent_runtime"


def default_global_dir() -> Path:
    return Path.home() / ".agent_runtime"


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as tmp:
            tmp.write(text)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable; not possible (nor needed) on every platform."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_json_document(path: Path) -> dict[str, Any]:
    """The collections stored in ``path`` (empty if the file does not exist yet)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise CorruptStoreError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise CorruptStoreError(
            path, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("collections"), dict):
        raise CorruptStoreError(path, "expected an object with a 'collections' object")
    version = doc.get("version")
    if version != FORMAT_VERSION:
        raise CorruptStoreError(
            path, f"unsupported format version {version!r} (this version reads {FORMAT_VERSION})"
        )
    collections: dict[str, Any] = doc["collections"]
    for name, records in collections.items():
        if not isinstance(records, dict):
            raise CorruptStoreError(path, f"collection {name!r} is not an object")
    return collections


class ScopedDocuments:
    """The document ``filename`` of one store, in each of the three scopes."""

    def __init__(self, filename: str, *, project_dir: Path, global_dir: Path) -> None:
        self.filename = filename
        self.project_dir = Path(project_dir)
        self.global_dir = Path(global_dir)
        self._session: dict[str, Any] = {}
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def path(self, scope: Scope) -> Path | None:
        """Where ``scope`` is stored; None for SESSION, which never touches the disk."""
        scope = as_enum(Scope, scope, "scope")
        if scope is Scope.PROJECT:
            return self.project_dir / PROJECT_SUBDIR / self.filename
        if scope is Scope.GLOBAL:
            return self.global_dir / self.filename
        return None

    def describe(self, scope: Scope) -> str:
        path = self.path(scope)
        return f"session {self.filename}" if path is None else str(path)

    async def read(self, scope: Scope) -> dict[str, dict[str, Any]]:
        """A private copy of the collections: callers may mutate it freely."""
        path = self.path(scope)
        if path is None:
            return json.loads(json.dumps(self._session))  # type: ignore[no-any-return]
        return await asyncio.to_thread(read_json_document, path)

    async def write(self, scope: Scope, collections: dict[str, dict[str, Any]]) -> None:
        # Serialise before touching anything, so an unserialisable value fails with the file intact.
        text = json.dumps({"version": FORMAT_VERSION, "collections": collections}, indent=2)
        path = self.path(scope)
        if path is None:
            self._session = json.loads(text)["collections"]
            return
        await asyncio.to_thread(atomic_write_text, path, text + "\n")

    def lock(self) -> asyncio.Lock:
        """One lock per event loop: an asyncio.Lock cannot be shared between loops, and a process-wide
        manager outlives the loop of any one ``asyncio.run``."""
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    @contextlib.asynccontextmanager
    async def editing(self, scope: Scope) -> AsyncIterator[dict[str, dict[str, Any]]]:
        """Read, let the caller mutate, write back — all under the lock. Nothing is written if the
        body raises."""
        async with self.lock():
            collections = await self.read(scope)
            yield collections
            await self.write(scope, collections)


M = TypeVar("M", bound=Model)


class FileStoreBase:
    """What every file store shares: where its document lives and how records are checked."""

    filename: str

    def __init__(self, project_dir: Path | str | None = None, global_dir: Path | str | None = None) -> None:
        self._docs = ScopedDocuments(
            self.filename,
            project_dir=Path(project_dir) if project_dir is not None else Path.cwd(),
            global_dir=Path(global_dir) if global_dir is not None else default_global_dir(),
        )

    def path(self, scope: Scope) -> Path | None:
        """The file holding ``scope`` (None for SESSION), for inspection and backups."""
        return self._docs.path(scope)

    def _decode(self, kind: type[M], record: Any, scope: Scope) -> M:
        """A record that no longer parses is reported like a corrupt file: the data on disk is wrong,
        and the user needs the file name to fix it."""
        try:
            return kind.from_dict(record)
        except (TypeError, ValueError) as exc:
            raise CorruptStoreError(
                Path(self._docs.describe(scope)), f"bad {kind.__name__} record: {exc}"
            ) from exc

    @staticmethod
    def _encode(model: Model, what: str) -> dict[str, Any]:
        """Check serialisability before any file is touched, with an error naming the record."""
        encoded: dict[str, Any] = ensure_jsonable(model.to_dict(), what=what)
        return encoded
