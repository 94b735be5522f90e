"""SQLite state store: durable on one host, safe for several processes and threads.

The database runs in WAL mode (readers never block the writer) with a busy timeout, and every
write is a ``BEGIN IMMEDIATE`` transaction, which takes the write lock up front: a deferred
transaction that reads and then writes can fail with "database is locked" without waiting, which is
exactly the two-worker case. One connection per store, guarded by a lock, is used from worker
threads (``asyncio.to_thread``) so the event loop never blocks on disk or on another process.
TTLs use wall-clock time because other processes read the same rows.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .._json import dumps
from .base import StateStore

__all__ = ["SQLiteStateStore"]

T = TypeVar("T")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS checkpoints ("
    " run_id TEXT NOT NULL, seq INTEGER NOT NULL, state TEXT NOT NULL, created_at REAL NOT NULL,"
    " PRIMARY KEY (run_id, seq))",
    "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at REAL)",
)


class SQLiteStateStore(StateStore):
    """``busy_timeout``: seconds to wait for another process's write lock before failing."""

    def __init__(self, db_path: str | Path = "agent_state.db", *, busy_timeout: float = 30.0) -> None:
        if busy_timeout < 0:
            raise ValueError("busy_timeout must be >= 0 seconds")
        self.db_path = str(db_path)
        self.busy_timeout = busy_timeout
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(
                self.db_path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
            )
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
                _switch_to_wal(conn, self.busy_timeout)
                conn.execute("PRAGMA synchronous = NORMAL")
                with _transaction(conn):
                    for statement in _SCHEMA:
                        conn.execute(statement)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            with self._lock:
                return work(self._connection())

        return await asyncio.to_thread(call)

    async def journal_mode(self) -> str:
        """The database's journal mode ("wal" for a file database)."""
        return str(await self._run(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0]))

    async def save_checkpoint(self, run_id: str, state: dict[str, Any]) -> int:
        body = dumps(state, what=f"checkpoint of run {run_id!r}")

        def work(conn: sqlite3.Connection) -> int:
            with _transaction(conn):
                row = conn.execute(
                    "SELECT COALESCE(MAX(seq), 0) + 1 FROM checkpoints WHERE run_id = ?", (run_id,)
                ).fetchone()
                seq = int(row[0])
                conn.execute(
                    "INSERT INTO checkpoints (run_id, seq, state, created_at) VALUES (?, ?, ?, ?)",
                    (run_id, seq, body, time.time()),
                )
            return seq

        return await self._run(work)

    async def get_checkpoint(self, run_id: str) -> dict[str, Any] | None:
        row = await self._run(
            lambda c: c.execute(
                "SELECT state FROM checkpoints WHERE run_id = ? ORDER BY seq DESC LIMIT 1", (run_id,)
            ).fetchone()
        )
        return None if row is None else _as_dict(row[0])

    async def list_checkpoints(self, run_id: str) -> list[dict[str, Any]]:
        rows = await self._run(
            lambda c: c.execute(
                "SELECT state FROM checkpoints WHERE run_id = ? ORDER BY seq", (run_id,)
            ).fetchall()
        )
        return [_as_dict(r[0]) for r in rows]

    async def delete_checkpoints(self, run_id: str) -> None:
        await self._run(lambda c: c.execute("DELETE FROM checkpoints WHERE run_id = ?", (run_id,)))

    async def get(self, key: str) -> Any | None:
        row = await self._run(
            lambda c: c.execute(
                "SELECT value FROM kv WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)",
                (key, time.time()),
            ).fetchone()
        )
        return None if row is None else json.loads(row[0])

    async def set(self, key: str, value: Any, *, ttl: float | None = None) -> None:
        if ttl is not None and ttl <= 0:
            raise ValueError("ttl must be > 0 seconds or None")
        body = dumps(value, what=f"value for key {key!r}")
        expires = None if ttl is None else time.time() + ttl

        def work(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                conn.execute(
                    "DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?", (time.time(),)
                )
                conn.execute(
                    "INSERT INTO kv (key, value, expires_at) VALUES (?, ?, ?) ON CONFLICT(key)"
                    " DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
                    (key, body, expires),
                )

        await self._run(work)

    async def delete(self, key: str) -> None:
        await self._run(lambda c: c.execute("DELETE FROM kv WHERE key = ?", (key,)))

    async def close(self) -> None:
        def work() -> None:
            with self._lock:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None

        await asyncio.to_thread(work)


def _switch_to_wal(conn: sqlite3.Connection, patience: float) -> None:
    """``PRAGMA journal_mode = WAL``, retried while another process holds the database.

    Switching needs an exclusive lock, and SQLite can report "database is locked" for it at once,
    without waiting in the busy handler, when two processes open a new database together.
    """
    deadline = time.monotonic() + patience
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(0.01)


class _transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on error (the connection is in autocommit mode)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._conn.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _as_dict(raw: str) -> dict[str, Any]:
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise TypeError(f"stored checkpoint is not a JSON object: {raw[:80]!r}")
    return value
