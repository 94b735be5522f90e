"""A read-through Redis cache in front of any JobStore (typically PostgreSQL).

Jobs are read far more often than written (status polls, SSE reconnects, the kernel re-reading
before every transition), so ``get`` is served from Redis after the first read. Correctness rests on
the store's version counter, which grows with every write: a cache entry is only ever replaced by a
*newer* version (one Lua compare-and-set), so a slow reader that fetched an old record from the
primary cannot overwrite the refresh of a writer that finished after it. A delete leaves a short
tombstone for the same reason (a read that started before the delete must not resurrect the job).

Writes go to the primary first and refresh the cache after; a lost optimistic write
(ConcurrentModificationError) invalidates the entry, so JobManager's re-read reaches the primary.
Writers that bypass this class make the cache stale for at most ``ttl`` seconds (or call
:meth:`RedisJobCache.invalidate`). Queries (list, count, idempotency lookups) always go to the
primary: caching query results would need invalidation by predicate.

Redis is an optimisation here, not a dependency: if it fails, reads and writes still go to the
primary (logged), at the primary's speed.
"""

from __future__ import annotations

import builtins
import json
import logging
from typing import TYPE_CHECKING

from ...errors import ConcurrentModificationError, JobNotFoundError, ValidationError
from ...jobs.models import JobFilter, JobRecord
from ...jobs.store import JobStore, encode_json
from ._common import check_prefix, connect, positive_seconds, redis_errors, run_script, text

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisJobCache"]

logger = logging.getLogger("agent_runtime.storage.redis.jobs")

# KEYS: entry. ARGV: version, record JSON, ttl ms. Never replaces a newer version or a tombstone.
_FILL = """
local cur = redis.call('HMGET', KEYS[1], 'v', 'x')
if cur[2] then return 0 end
if cur[1] and tonumber(cur[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""


class RedisJobCache(JobStore):
    """A JobStore: ``JobManager(RedisJobCache(client, primary_store=store))`` works as usual.

    ``ttl`` bounds how long an entry lives (and so how stale a bypassing writer can make it);
    ``tombstone_ttl`` how long a deleted job stays un-cacheable. ``hits``/``misses`` count ``get``.
    """

    def __init__(
        self,
        client: Redis | None = None,
        primary_store: JobStore | None = None,
        *,
        redis_url: str | None = None,
        prefix: str = "agent_runtime:jobcache",
        ttl: float = 300.0,
        tombstone_ttl: float = 30.0,
    ) -> None:
        if not isinstance(primary_store, JobStore):
            raise ValidationError(
                f"RedisJobCache needs primary_store=<a JobStore>, got {type(primary_store).__name__}"
            )
        if isinstance(primary_store, RedisJobCache):
            raise ValidationError("primary_store is already a RedisJobCache; wrap the durable store")
        self._conn = connect("RedisJobCache", client, redis_url)
        self.primary = primary_store
        self.prefix = check_prefix(prefix)
        self.ttl = positive_seconds(ttl, "ttl")
        self.tombstone_ttl = positive_seconds(tombstone_ttl, "tombstone_ttl")
        self.hits = 0
        self.misses = 0

    def key(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    # -- cache primitives ----------------------------------------------------------------------

    async def _fill(self, job: JobRecord) -> None:
        body = encode_json(job.to_dict(), what=f"job {job.job_id!r}")
        try:
            await run_script(
                self._conn.client(), _FILL, [self.key(job.job_id)], [job.version, body, int(self.ttl * 1000)]
            )
        except redis_errors() as exc:
            # The primary already holds the write; a stale entry would mislead readers, so drop it.
            logger.warning("caching job %s failed (%s); invalidating", job.job_id, exc)
            await self._invalidate_quietly(job.job_id)

    async def _invalidate_quietly(self, job_id: str) -> None:
        try:
            await self._conn.client().delete(self.key(job_id))
        except redis_errors() as exc:
            logger.error(
                "could not invalidate cached job %s (%s); it may be stale for %ss", job_id, exc, self.ttl
            )

    async def invalidate(self, job_id: str) -> None:
        """Drop the cached copy (for writers that changed the job without going through this cache)."""
        await self._conn.client().delete(self.key(job_id))

    async def cached(self, job_id: str) -> JobRecord | None:
        """The cached copy only (None on a miss): for diagnostics and tests."""
        raw = await self._conn.client().hget(self.key(job_id), "d")
        return None if raw is None else JobRecord.from_dict(json.loads(text(raw)))

    # -- JobStore ------------------------------------------------------------------------------

    async def get(self, job_id: str) -> JobRecord | None:
        try:
            raw = await self._conn.client().hget(self.key(job_id), "d")
        except redis_errors() as exc:
            logger.warning("job cache read failed (%s); reading the primary store", exc)
            return await self.primary.get(job_id)
        if raw is not None:
            self.hits += 1
            return JobRecord.from_dict(json.loads(text(raw)))
        self.misses += 1
        job = await self.primary.get(job_id)
        if job is not None:
            await self._fill(job)
        return job

    async def create(self, job: JobRecord) -> JobRecord:
        stored = await self.primary.create(job)
        await self._fill(stored)
        return stored

    async def update(self, job: JobRecord) -> JobRecord:
        try:
            stored = await self.primary.update(job)
        except (ConcurrentModificationError, JobNotFoundError):
            # Our copy may be what misled the caller: make its re-read go to the primary.
            await self._invalidate_quietly(job.job_id)
            raise
        await self._fill(stored)
        return stored

    async def delete(self, job_id: str) -> bool:
        deleted = await self.primary.delete(job_id)
        try:
            async with self._conn.client().pipeline(transaction=True) as pipe:
                pipe.delete(self.key(job_id))
                pipe.hset(self.key(job_id), "x", "1")
                pipe.pexpire(self.key(job_id), int(self.tombstone_ttl * 1000))
                await pipe.execute()
        except redis_errors() as exc:
            logger.error(
                "could not invalidate deleted job %s (%s); it may be served for %ss", job_id, exc, self.ttl
            )
        return deleted

    async def list(self, filter: JobFilter | None = None) -> builtins.list[JobRecord]:
        return await self.primary.list(filter)

    async def count(self, filter: JobFilter | None = None) -> int:
        return await self.primary.count(filter)

    async def get_by_idempotency_key(self, key: str, scope_id: str | None = None) -> JobRecord | None:
        return await self.primary.get_by_idempotency_key(key, scope_id=scope_id)

    async def close(self) -> None:
        await self._conn.close()
