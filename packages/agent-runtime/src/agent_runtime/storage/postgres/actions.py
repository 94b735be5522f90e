"""PostgreSQL action store: durable actions, atomic single-use resolution, LISTEN/NOTIFY wake-ups.

Resume tokens are stored only as SHA-256 hex in ``token_hash`` (UNIQUE), so a token resolves with
one indexed conditional UPDATE: two concurrent resolutions of the same token cannot both match
``status = 'pending'``. Every write NOTIFYs the table's channel inside its transaction, so waiters
in any process wake when the change commits and never see it before it is visible.
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import json
import logging
import time
from contextlib import AbstractAsyncContextManager
from typing import Any

from ...actions.models import ActionFilter, ActionRecord, ActionStatus, statuses_leading_to
from ...actions.store import ActionStore, ChangeWatchers
from ...actions.tokens import hash_resume_token, is_plausible_token, token_hash_matches
from ...errors import ActionNotFoundError, ConcurrentModificationError, ValidationError
from ._base import check_identifier, ensure_schema, require_asyncpg

__all__ = ["PostgresActionStore"]

logger = logging.getLogger("agent_runtime.storage.postgres.actions")

_MAX_NAME = 63  # PostgreSQL's NAMEDATALEN - 1: longer identifiers and channel names are cut or refused


def _derived_name(table: str, suffix: str) -> str:
    """``{table}_{suffix}``, shortened with a hash when too long, so truncation never makes two equal."""
    name = f"{table}_{suffix}"
    if len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha256(table.encode()).hexdigest()[:8]
    return f"{table[: _MAX_NAME - len(suffix) - 10]}_{digest}_{suffix}"


def _load_json(value: Any) -> Any:
    # asyncpg returns jsonb as text unless the pool registered a codec; accept both.
    return json.loads(value) if isinstance(value, str) else value


def _dump_json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, allow_nan=False)


def _to_record(row: Any) -> ActionRecord:
    return ActionRecord(
        action_id=row["action_id"],
        job_id=row["job_id"],
        type=row["type"],
        payload=_load_json(row["payload"]),
        status=row["status"],
        expires_at=row["expires_at"],
        metadata=_load_json(row["metadata"]),
        created_at=row["created_at"],
        resolved_at=row["resolved_at"],
        resolution=_load_json(row["resolution"]),
        cancel_reason=row["cancel_reason"],
        version=row["version"],
        resume_token_hash=row["token_hash"],
    )


class PostgresActionStore(ActionStore):
    """Actions in one PostgreSQL table (created on first use or by :meth:`migrate`).

    Times are epoch seconds (``double precision``), exactly as on :class:`ActionRecord`. While at
    least one ``wait_for_resolution`` is in progress, the store holds one pool connection for
    LISTEN; with none it holds nothing.
    """

    def __init__(self, pool: Any, table_name: str = "runtime_actions") -> None:
        if pool is None:
            raise ValidationError("PostgresActionStore needs an asyncpg pool, got None")
        self._pool = pool
        self._table = check_identifier(table_name)
        self._channel = _derived_name(table_name.lower(), "events")
        self._waiters = ChangeWatchers()
        self._listener: Any = None
        self._listener_users = 0
        self._listener_lock = asyncio.Lock()

    @property
    def table_name(self) -> str:
        return self._table

    @property
    def channel(self) -> str:
        """The NOTIFY channel; the payload of each notification is an action id."""
        return self._channel

    # -- schema ------------------------------------------------------------------------------

    async def migrate(self) -> None:
        """Create the table and its indexes if missing (idempotent, safe across processes)."""
        t = self._table
        ddl = f"""
        CREATE TABLE IF NOT EXISTS {t} (
            action_id     TEXT PRIMARY KEY,
            job_id        TEXT NOT NULL,
            type          TEXT NOT NULL,
            payload       JSONB NOT NULL DEFAULT '{{}}'::jsonb,
            status        TEXT NOT NULL,
            expires_at    DOUBLE PRECISION,
            token_hash    TEXT,
            metadata      JSONB NOT NULL DEFAULT '{{}}'::jsonb,
            created_at    DOUBLE PRECISION NOT NULL,
            resolved_at   DOUBLE PRECISION,
            resolution    JSONB,
            cancel_reason TEXT,
            version       INTEGER NOT NULL DEFAULT 0
        );
        CREATE UNIQUE INDEX IF NOT EXISTS {_derived_name(t, "token_hash_key")} ON {t} (token_hash);
        CREATE INDEX IF NOT EXISTS {_derived_name(t, "job_id_idx")} ON {t} (job_id, created_at);
        CREATE INDEX IF NOT EXISTS {_derived_name(t, "status_idx")} ON {t} (status);
        CREATE INDEX IF NOT EXISTS {_derived_name(t, "expires_at_idx")} ON {t} (expires_at)
            WHERE status = 'pending';
        """
        await ensure_schema(self._pool, f"agent_runtime.actions:{t}", ddl)

    # -- writes ------------------------------------------------------------------------------

    async def create(self, action: ActionRecord) -> ActionRecord:
        asyncpg = require_asyncpg()
        await self.migrate()
        stored = action.without_token()
        try:
            row = await self._pool.fetchrow(
                f"""INSERT INTO {self._table} (action_id, job_id, type, payload, status, expires_at,
                        token_hash, metadata, created_at, resolved_at, resolution, cancel_reason, version)
                    VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8::jsonb, $9, $10, $11::jsonb, $12, $13)
                    RETURNING *""",
                stored.action_id,
                stored.job_id,
                stored.type.value,
                _dump_json(stored.payload),
                stored.status.value,
                stored.expires_at,
                stored.resume_token_hash,
                _dump_json(stored.metadata),
                stored.created_at,
                stored.resolved_at,
                _dump_json(stored.__dict__.get("_resolution")),
                stored.cancel_reason,
                stored.version,
            )
        except asyncpg.UniqueViolationError as exc:
            what = (
                "resume token" if "token_hash" in (exc.constraint_name or "") else f"id {stored.action_id!r}"
            )
            raise ValidationError(f"an action with the same {what} already exists") from None
        return _to_record(row)

    async def update(self, action: ActionRecord) -> ActionRecord:
        await self.migrate()
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"SELECT * FROM {self._table} WHERE action_id = $1 FOR UPDATE", action.action_id
            )
            if row is None:
                raise ActionNotFoundError(action.action_id)
            stored = _to_record(row)
            if stored.version != action.version:
                raise ConcurrentModificationError(
                    f"action {action.action_id!r} was modified concurrently "
                    f"(stored version {stored.version}, update based on {action.version}); reload and retry"
                )
            if action.status is not stored.status:
                stored.check_transition(action.status)
            row = await conn.fetchrow(
                f"""UPDATE {self._table} SET job_id = $2, type = $3, payload = $4::jsonb, status = $5,
                        expires_at = $6, metadata = $7::jsonb, created_at = $8, resolved_at = $9,
                        resolution = $10::jsonb, cancel_reason = $11, version = version + 1
                    WHERE action_id = $1 RETURNING *""",
                action.action_id,
                action.job_id,
                action.type.value,
                _dump_json(action.payload),
                action.status.value,
                action.expires_at,
                _dump_json(action.metadata),
                action.created_at,
                action.resolved_at,
                _dump_json(action.__dict__.get("_resolution")),
                action.cancel_reason,
            )
            await conn.execute("SELECT pg_notify($1, $2)", self._channel, action.action_id)
        return _to_record(row)

    async def resolve_by_token(
        self,
        token: str,
        resolution: dict[str, Any],
        *,
        now: float | None = None,
        job_id: str | None = None,
    ) -> ActionRecord | None:
        """One conditional UPDATE on the token hash: the row lock makes exactly one resolver win."""
        if not is_plausible_token(token):
            return None
        await self.migrate()
        at = time.time() if now is None else now
        sources = [s.value for s in statuses_leading_to(ActionStatus.RESOLVED)]
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"""UPDATE {self._table}
                    SET status = $2, resolution = $3::jsonb, resolved_at = $4, version = version + 1
                    WHERE token_hash = $1 AND status = ANY($5::text[])
                      AND (expires_at IS NULL OR expires_at > $4)
                      AND ($6::text IS NULL OR job_id = $6)
                    RETURNING *""",
                hash_resume_token(token),
                ActionStatus.RESOLVED.value,
                _dump_json(resolution),
                at,
                sources,
                job_id,
            )
            if row is None:
                return None
            await conn.execute("SELECT pg_notify($1, $2)", self._channel, row["action_id"])
        if not token_hash_matches(row["token_hash"], token):  # pragma: no cover - the WHERE matched it
            raise RuntimeError("token hash mismatch after an indexed match")
        return _to_record(row)

    async def delete(self, action_id: str) -> bool:
        await self.migrate()
        async with self._pool.acquire() as conn, conn.transaction():
            deleted = await conn.fetchval(
                f"DELETE FROM {self._table} WHERE action_id = $1 RETURNING action_id", action_id
            )
            if deleted is not None:
                await conn.execute("SELECT pg_notify($1, $2)", self._channel, action_id)
        return deleted is not None

    # -- reads -------------------------------------------------------------------------------

    async def get(self, action_id: str) -> ActionRecord | None:
        await self.migrate()
        row = await self._pool.fetchrow(f"SELECT * FROM {self._table} WHERE action_id = $1", action_id)
        return None if row is None else _to_record(row)

    async def get_by_resume_token(self, token: str) -> ActionRecord | None:
        if not is_plausible_token(token):
            return None
        await self.migrate()
        row = await self._pool.fetchrow(
            f"SELECT * FROM {self._table} WHERE token_hash = $1", hash_resume_token(token)
        )
        if row is None or not token_hash_matches(row["token_hash"], token):
            return None
        return _to_record(row)

    async def list(self, filter: ActionFilter | None = None) -> builtins.list[ActionRecord]:
        await self.migrate()
        flt = filter or ActionFilter()
        conditions: builtins.list[str] = []
        args: builtins.list[Any] = []
        for column, value in (("job_id", flt.job_id), ("status", flt.status), ("type", flt.type)):
            if value is not None:
                args.append(str(value))
                conditions.append(f"{column} = ${len(args)}")
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        args.append(flt.limit)
        args.append(flt.offset)
        rows = await self._pool.fetch(
            f"SELECT * FROM {self._table} {where} ORDER BY created_at, action_id "
            f"LIMIT ${len(args) - 1} OFFSET ${len(args)}",
            *args,
        )
        return [_to_record(r) for r in rows]

    async def list_pending_for_job(self, job_id: str) -> builtins.list[ActionRecord]:
        return await self.list(ActionFilter(job_id=job_id, status=ActionStatus.PENDING))

    async def list_expired(self, now: float | None = None) -> builtins.list[ActionRecord]:
        await self.migrate()
        rows = await self._pool.fetch(
            f"""SELECT * FROM {self._table}
                WHERE status = $1 AND expires_at IS NOT NULL AND expires_at <= $2
                ORDER BY expires_at, action_id""",
            ActionStatus.PENDING.value,
            time.time() if now is None else now,
        )
        return [_to_record(r) for r in rows]

    # -- LISTEN/NOTIFY -----------------------------------------------------------------------

    def watch(self, action_id: str) -> AbstractAsyncContextManager[asyncio.Event]:
        return self._waiters.watch(action_id, self._listen, self._unlisten)

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self._waiters.notify(payload)

    async def _listen(self) -> None:
        """Count one more waiter, opening the shared LISTEN connection for the first one.

        If the caller is cancelled here nothing is counted, so :meth:`_unlisten` must not follow.
        """
        async with self._listener_lock:
            if self._listener is None:
                conn = None
                try:
                    conn = await self._pool.acquire()
                    await conn.add_listener(self._channel, self._on_notify)
                except Exception:
                    # Waiters still poll every poll_interval; a missing listener only costs latency.
                    logger.warning(
                        "LISTEN on %s failed; waiters fall back to polling", self._channel, exc_info=True
                    )
                    if conn is not None:
                        await self._pool.release(conn)
                except BaseException:
                    if conn is not None:
                        await self._pool.release(conn)
                    raise
                else:
                    self._listener = conn
            self._listener_users += 1

    async def _unlisten(self) -> None:
        async with self._listener_lock:
            self._listener_users -= 1
            conn = self._listener
            if self._listener_users > 0 or conn is None:
                return
            self._listener = None
            try:
                await conn.remove_listener(self._channel, self._on_notify)
            finally:
                await self._pool.release(conn)
