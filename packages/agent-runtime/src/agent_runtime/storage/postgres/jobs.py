"""PostgresJobStore: job records in one PostgreSQL table, safe for many workers on many hosts.

* Idempotency is enforced by the database: a UNIQUE index on ``(COALESCE(scope_id, ''),
  idempotency_key)`` (job scope ids are never empty strings, so ``''`` stands for "no scope") and
  ``INSERT ... ON CONFLICT DO NOTHING``, so concurrent creates with one key yield one job.
* An update is one conditional ``UPDATE``: it writes ``version + 1`` only where the stored version
  is the one the caller read, the identity fields are unchanged and the stored status may move to
  the new one, so of two workers moving the same job exactly one wins. When it writes nothing, the
  row is read to raise the same error as every store (:func:`agent_runtime.jobs.store.check_update`).
* JSON columns are written as text cast to ``jsonb`` and read back as text, so the store works
  whatever JSON codecs the caller installed on the pool. Timestamps are epoch seconds in
  ``double precision``, as in :class:`~agent_runtime.JobRecord`, so records round-trip exactly.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import time
from collections.abc import Mapping
from typing import Any

from ...errors import ConcurrentModificationError, JobNotFoundError, ValidationError
from ...jobs.models import JobFilter, JobRecord, JobStatus
from ...jobs.store import (
    IMMUTABLE_FIELDS,
    DuplicateJobError,
    JobStore,
    check_lookup,
    check_update,
    encode_json,
)
from ._base import check_identifier, ensure_schema, require_asyncpg

__all__ = ["PostgresJobStore"]

_JSON_COLUMNS = ("budgets", "policy_ref", "metadata", "tags", "state")
_COLUMNS = (
    "job_id",
    "scope_id",
    "principal_id",
    "session_id",
    "run_id",
    "parent_job_id",
    "idempotency_key",
    "status",
    "deadline",
    "budgets",
    "policy_ref",
    "metadata",
    "tags",
    "state",
    "progress",
    "turn",
    "error",
    "error_code",
    "result_ref",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
    "version",
)
# Read JSON as text: independent of any jsonb codec set on the caller's pool.
_SELECT = ", ".join(f"{c}::text AS {c}" if c in _JSON_COLUMNS else c for c in _COLUMNS)
# Written by update(); identity columns (IMMUTABLE_FIELDS) and job_id never change.
_MUTABLE = (
    "session_id",
    "run_id",
    "status",
    "deadline",
    "budgets",
    "policy_ref",
    "metadata",
    "tags",
    "state",
    "progress",
    "turn",
    "error",
    "error_code",
    "result_ref",
    "updated_at",
    "started_at",
    "finished_at",
    "version",
)
_UNIQUE_VIOLATION = "23505"


def _index_name(table: str, suffix: str) -> str:
    """``<table>_<suffix>``, shortened with a hash when it would pass PostgreSQL's 63-byte limit
    (a silently truncated name could collide with another index of the same table)."""
    name = f"{table}_{suffix}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha1(table.encode()).hexdigest()[:8]
    return f"{table[: 63 - len(suffix) - 10]}_{digest}_{suffix}"


def _params(job: JobRecord, columns: tuple[str, ...], **fixed: Any) -> builtins.list[Any]:
    """Query arguments for ``columns`` in order; ``fixed`` values replace the record's."""
    data = job.to_dict()
    data.update(fixed)
    params: builtins.list[Any] = []
    for column in columns:
        value = data[column]
        if column in _JSON_COLUMNS and value is not None:
            value = encode_json(value, what=f"{column} of job {job.job_id!r}")
        params.append(value)
    return params


def _record(row: Mapping[str, Any]) -> JobRecord:
    data = dict(row)
    for column in _JSON_COLUMNS:
        raw = data[column]
        data[column] = None if raw is None else json.loads(raw)
    return JobRecord.from_dict(data)


class PostgresJobStore(JobStore):
    """Jobs in ``table_name`` (created with its indexes on first use, or by :meth:`migrate`).

    ``pool`` is an ``asyncpg`` pool (anything with ``acquire()`` yielding an asyncpg connection).
    """

    def __init__(self, pool: Any, table_name: str = "runtime_jobs") -> None:
        try:
            self.table_name = check_identifier(table_name)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        if pool is None:
            raise ValidationError("PostgresJobStore needs an asyncpg pool, got None")
        self._pool = pool
        t = self.table_name
        statuses = ", ".join(f"'{s.value}'" for s in JobStatus)
        self._ddl = f"""
CREATE TABLE IF NOT EXISTS {t} (
    job_id          text PRIMARY KEY,
    scope_id        text,
    principal_id    text,
    session_id      text,
    run_id          text,
    parent_job_id   text,
    idempotency_key text,
    status          text NOT NULL CHECK (status IN ({statuses})),
    deadline        double precision,
    budgets         jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    policy_ref      jsonb,
    metadata        jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    tags            jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    state           jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    progress        double precision NOT NULL DEFAULT 0,
    turn            integer NOT NULL DEFAULT 0,
    error           text,
    error_code      text,
    result_ref      text,
    created_at      double precision NOT NULL,
    updated_at      double precision,
    started_at      double precision,
    finished_at     double precision,
    version         bigint NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX IF NOT EXISTS {_index_name(t, "idem_uq")}
    ON {t} ((COALESCE(scope_id, '')), idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS {_index_name(t, "scope_idx")} ON {t} (scope_id, created_at DESC);
CREATE INDEX IF NOT EXISTS {_index_name(t, "status_idx")} ON {t} (status, created_at DESC);
CREATE INDEX IF NOT EXISTS {_index_name(t, "session_idx")} ON {t} (session_id) WHERE session_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS {_index_name(t, "parent_idx")} ON {t} (parent_job_id)
    WHERE parent_job_id IS NOT NULL;
"""
        cols = ", ".join(_COLUMNS)
        values = ", ".join(
            f"${i}::text::jsonb" if c in _JSON_COLUMNS else f"${i}" for i, c in enumerate(_COLUMNS, 1)
        )
        self._insert = (
            f"INSERT INTO {t} ({cols}) VALUES ({values}) "
            f"ON CONFLICT ((COALESCE(scope_id, '')), idempotency_key) WHERE idempotency_key IS NOT NULL "
            f"DO NOTHING RETURNING {_SELECT}"
        )
        assignments = ", ".join(
            f"{c} = ${i}::text::jsonb" if c in _JSON_COLUMNS else f"{c} = ${i}"
            for i, c in enumerate(_MUTABLE, 2)
        )
        # One statement, no transaction: it writes only if nobody moved the job since it was read
        # (version), the identity fields are unchanged and the stored status may become the new one.
        n = len(_MUTABLE) + 2
        guards = " AND ".join(
            [f"version = ${n}", f"status = ANY(${n + 1}::text[])"]
            + [f"{c} IS NOT DISTINCT FROM ${n + 2 + i}" for i, c in enumerate(IMMUTABLE_FIELDS)]
        )
        self._update = f"UPDATE {t} SET {assignments} WHERE job_id = $1 AND {guards} RETURNING version"

    async def migrate(self) -> None:
        """Create the table and its indexes if missing (idempotent; also done on first use)."""
        require_asyncpg()
        await ensure_schema(self._pool, f"agent_runtime.jobs:{self.table_name}", self._ddl)

    async def create(self, job: JobRecord) -> JobRecord:
        if not isinstance(job, JobRecord):
            raise ValidationError(f"create() takes a JobRecord, got {type(job).__name__}")
        await self.migrate()
        asyncpg = require_asyncpg()
        params = _params(job, _COLUMNS, version=1)
        # Normally one pass; a second only if the job holding our key was deleted in between.
        for _ in range(3):
            try:
                async with self._pool.acquire() as conn:
                    row = await conn.fetchrow(self._insert, *params)
            except asyncpg.PostgresError as exc:
                if getattr(exc, "sqlstate", None) == _UNIQUE_VIOLATION:
                    raise DuplicateJobError(job.job_id) from None
                raise
            if row is not None:
                return _record(row)
            assert job.idempotency_key is not None  # only the idempotency index can make it a no-op
            existing = await self.get_by_idempotency_key(job.idempotency_key, job.scope_id)
            if existing is not None:
                return existing
        raise DuplicateJobError(job.job_id)  # pragma: no cover - needs a create/delete storm

    async def get(self, job_id: str) -> JobRecord | None:
        await self.migrate()
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(f"SELECT {_SELECT} FROM {self.table_name} WHERE job_id = $1", job_id)
        return None if row is None else _record(row)

    async def update(self, job: JobRecord) -> JobRecord:
        if not isinstance(job, JobRecord):
            raise ValidationError(f"update() takes a JobRecord, got {type(job).__name__}")
        await self.migrate()
        now = time.time()
        sources = sorted(s.value for s in JobStatus if s is job.status or s.can_transition_to(job.status))
        params = [
            job.job_id,
            *_params(job, _MUTABLE, version=job.version + 1, updated_at=now),
            job.version,
            sources,
            *(getattr(job, name) for name in IMMUTABLE_FIELDS),
        ]
        async with self._pool.acquire() as conn:
            written = await conn.fetchval(self._update, *params)
            if written is None:  # say why: the same checks every store makes, on the stored row
                row = await conn.fetchrow(
                    f"SELECT {_SELECT} FROM {self.table_name} WHERE job_id = $1", job.job_id
                )
                if row is None:
                    raise JobNotFoundError(job.job_id)
                check_update(_record(row), job)
                raise ConcurrentModificationError(
                    f"job {job.job_id!r} was modified concurrently; reload it and retry"
                )
        return job._evolve({"version": written, "updated_at": now})

    async def delete(self, job_id: str) -> bool:
        await self.migrate()
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"DELETE FROM {self.table_name} WHERE job_id = $1 RETURNING job_id", job_id
            )
        return row is not None

    @staticmethod
    def _where(filter: JobFilter | None) -> tuple[str, builtins.list[Any]]:
        if filter is None:
            return "", []
        clauses: builtins.list[str] = []
        params: builtins.list[Any] = []

        def add(sql: str, value: Any) -> None:
            params.append(value)
            clauses.append(sql.replace("?", f"${len(params)}"))

        for column in ("scope_id", "principal_id", "session_id", "parent_job_id"):
            value = getattr(filter, column)
            if value is not None:
                add(f"{column} = ?", value)
        statuses = filter.statuses
        if statuses is not None:
            add("status = ANY(?::text[])", sorted(s.value for s in statuses))
        if filter.tags:
            add("tags @> ?::text::jsonb", encode_json(filter.tags, what="tag filter"))
        if filter.created_after is not None:
            add("created_at > ?", filter.created_after)
        if filter.created_before is not None:
            add("created_at < ?", filter.created_before)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    async def list(self, filter: JobFilter | None = None) -> builtins.list[JobRecord]:
        await self.migrate()
        where, params = self._where(filter)
        sql = f"SELECT {_SELECT} FROM {self.table_name}{where} ORDER BY created_at DESC, job_id DESC"
        if filter is not None and filter.limit is not None:
            params.append(filter.limit)
            sql += f" LIMIT ${len(params)}"
        if filter is not None and filter.offset:
            params.append(filter.offset)
            sql += f" OFFSET ${len(params)}"
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(sql, *params)
        return [_record(r) for r in rows]

    async def get_by_idempotency_key(self, key: str, scope_id: str | None = None) -> JobRecord | None:
        check_lookup(key, scope_id)
        await self.migrate()
        # The same expression as the unique index, so the index serves the lookup.
        sql = (
            f"SELECT {_SELECT} FROM {self.table_name} "
            f"WHERE COALESCE(scope_id, '') = COALESCE($1::text, '') AND idempotency_key = $2"
        )
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(sql, scope_id, key)
        return None if row is None else _record(row)

    async def count(self, filter: JobFilter | None = None) -> int:
        await self.migrate()
        where, params = self._where(filter)
        async with self._pool.acquire() as conn:
            value = await conn.fetchval(f"SELECT count(*) FROM {self.table_name}{where}", *params)
        return int(value)
