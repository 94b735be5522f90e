"""Redis action store: hashed single-use resume tokens, atomic compare-and-set, TTL retention.

Layout under ``{prefix}``: ``:action:{id}`` (hash: ``d`` record JSON, ``v`` version, ``s`` status,
``h`` token hash, ``j`` job id), ``:token:{sha256}`` (the action id: the token index), and sorted
sets ``:index`` / ``:job:{job_id}`` / ``:pending`` (by creation time) and ``:due`` (PENDING actions by
deadline). Every write is one Lua script, so a record and its indexes never disagree, and ``update``
is a compare-and-set on the version inside Redis: of many concurrent resolutions of one token
exactly one matches the version it read, the rest are told someone else wrote first.

Only the SHA-256 of a token is stored (in the key name and the ``h`` field); lookups re-check it
with a constant-time comparison. Expiry has two halves: the EXPIRED *transition* (with its event) is
made by ``ActionManager.expire_due``/``wait_for_resolution`` from the ``:due`` index, exactly as with
the other stores; Redis TTLs then garbage-collect the data: a PENDING action with a deadline lives
for (deadline - creation) + ``retention``, a finished one for ``retention`` after it ended, so an
abandoned store does not grow forever even if no sweeper ever runs. TTLs are relative, so clock
skew between this host and Redis does not matter. Index entries whose record expired are removed
when a listing meets them.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from ...actions.models import ActionFilter, ActionRecord, ActionStatus, statuses_leading_to
from ...actions.store import ActionStore, ChangeWatchers
from ...actions.tokens import hash_resume_token, is_plausible_token, token_hash_matches
from ...errors import ActionNotFoundError, ConcurrentModificationError, ValidationError
from ._common import PubSubListener, check_prefix, connect, positive_seconds, run_script, text

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisActionStore"]

logger = logging.getLogger("agent_runtime.storage.redis.actions")

# Give an index key at least ``ttl`` ms to live (0: forever), never shortening it: it must outlive
# every record it lists. ``fresh``: the key did not exist before this script touched it.
_EXTEND = """
local function extend(key, ttl, fresh)
  if ttl <= 0 then redis.call('PERSIST', key) return end
  local cur = redis.call('PTTL', key)
  if fresh or (cur >= 0 and cur < ttl) then redis.call('PEXPIRE', key, ttl) end
end
"""

# KEYS: record, token, index, job, pending, due.
# ARGV: id, data, version, status, token hash ('' none), job id, created_at, expires_at ('' none), ttl ms.
_CREATE = (
    _EXTEND
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return 'id' end
if ARGV[5] ~= '' and redis.call('EXISTS', KEYS[2]) == 1 then return 'token' end
local ttl = tonumber(ARGV[9])
redis.call('HSET', KEYS[1], 'd', ARGV[2], 'v', ARGV[3], 's', ARGV[4], 'h', ARGV[5], 'j', ARGV[6])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
if ARGV[5] ~= '' then
  if ttl > 0 then redis.call('SET', KEYS[2], ARGV[1], 'PX', ttl) else redis.call('SET', KEYS[2], ARGV[1]) end
end
redis.call('ZADD', KEYS[3], ARGV[7], ARGV[1])
local fresh = redis.call('EXISTS', KEYS[4]) == 0
redis.call('ZADD', KEYS[4], ARGV[7], ARGV[1])
extend(KEYS[4], ttl, fresh)
if ARGV[4] == 'pending' then
  redis.call('ZADD', KEYS[5], ARGV[7], ARGV[1])
  if ARGV[8] ~= '' then redis.call('ZADD', KEYS[6], ARGV[8], ARGV[1]) end
end
return 'ok'
"""
)

# KEYS: record, token, job, pending, due. ARGV: id, expected version, data, new version, new status,
# allowed source statuses (',' joined), expires_at ('' none), retention ms (0: keep), channel, token hash.
_UPDATE = (
    _EXTEND
    + """
local cur = redis.call('HMGET', KEYS[1], 'v', 's', 'h')
if not cur[1] then return {'missing'} end
if cur[1] ~= ARGV[2] then return {'conflict', cur[1]} end
if cur[3] ~= ARGV[10] then return {'hash', cur[3]} end
if cur[2] ~= ARGV[5] then
  local allowed = false
  for s in string.gmatch(ARGV[6], '[^,]+') do
    if s == cur[2] then allowed = true end
  end
  if not allowed then return {'transition', cur[2]} end
end
redis.call('HSET', KEYS[1], 'd', ARGV[3], 'v', ARGV[4], 's', ARGV[5])
if ARGV[5] == 'pending' then
  if ARGV[7] ~= '' then
    redis.call('ZADD', KEYS[5], ARGV[7], ARGV[1])
  else
    redis.call('ZREM', KEYS[5], ARGV[1])
  end
else
  redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('ZREM', KEYS[5], ARGV[1])
  local ttl = tonumber(ARGV[8])
  if ttl > 0 then
    redis.call('PEXPIRE', KEYS[1], ttl)
    if cur[3] ~= '' then redis.call('PEXPIRE', KEYS[2], ttl) end
    extend(KEYS[3], ttl, false)
  end
end
redis.call('PUBLISH', ARGV[9], ARGV[1])
return {'ok', cur[3]}
"""
)

# KEYS: record, token, index, job, pending, due. ARGV: id, token hash, channel.
_DELETE = """
local h = redis.call('HGET', KEYS[1], 'h')
if not h then return 0 end
if h ~= ARGV[2] then return -1 end
redis.call('DEL', KEYS[1])
if h ~= '' then redis.call('DEL', KEYS[2]) end
for i = 3, 6 do redis.call('ZREM', KEYS[i], ARGV[1]) end
redis.call('PUBLISH', ARGV[3], ARGV[1])
return 1
"""

_FIELDS = ("d", "v", "h")
_BATCH = 500


def _retention(value: object) -> float | None:
    if value is None:
        return None
    return positive_seconds(value, "retention")


def _data(record: ActionRecord, version: int) -> str:
    body = record.to_dict()
    body["version"] = version
    return json.dumps(body, separators=(",", ":"), allow_nan=False)


def _decode(values: Sequence[Any]) -> ActionRecord | None:
    data, version, token_hash = values
    if data is None:
        return None
    body = json.loads(text(data))
    body["version"] = int(text(version))
    body["resume_token_hash"] = text(token_hash) or None
    return ActionRecord.from_dict(body)


def _word(reply: Any) -> str:
    return text(reply[0] if isinstance(reply, list) else reply)


class RedisActionStore(ActionStore):
    """Actions in Redis; see the module docstring for layout, atomicity and TTLs.

    ``retention`` (seconds, None: forever) is how long data outlives an action's end or deadline.
    While at least one ``wait_for_resolution`` runs, the store holds one pub/sub connection so that
    waiters in any process wake on each change; with none it holds nothing.
    """

    def __init__(
        self,
        client: Redis | None = None,
        *,
        redis_url: str | None = None,
        prefix: str = "agent_runtime:actions",
        retention: float | None = 7 * 24 * 3600.0,
    ) -> None:
        self._conn = connect("RedisActionStore", client, redis_url)
        self.prefix = check_prefix(prefix)
        self.retention = _retention(retention)
        self._retention_ms = 0 if self.retention is None else max(1, int(self.retention * 1000))
        self._channel = f"{self.prefix}:changes"
        self._waiters = ChangeWatchers()
        self._listener: PubSubListener | None = None
        self._listener_users = 0
        self._listener_lock = asyncio.Lock()

    # -- keys ----------------------------------------------------------------------------------

    @property
    def channel(self) -> str:
        """The pub/sub channel announcing changes; each message is an action id."""
        return self._channel

    def _record_key(self, action_id: str) -> str:
        return f"{self.prefix}:action:{action_id}"

    def _token_key(self, token_hash: str) -> str:
        return f"{self.prefix}:token:{token_hash}"

    def _job_key(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    @property
    def _index(self) -> str:
        return f"{self.prefix}:index"

    @property
    def _pending(self) -> str:
        return f"{self.prefix}:pending"

    @property
    def _due(self) -> str:
        return f"{self.prefix}:due"

    def _keys(self, action_id: str, token_hash: str, job_id: str) -> list[str]:
        # A record without a token still names a token key (scripts need a fixed arity); unused.
        token_key = self._token_key(token_hash) if token_hash else self._record_key(action_id)
        return [
            self._record_key(action_id),
            token_key,
            self._index,
            self._job_key(job_id),
            self._pending,
            self._due,
        ]

    def _initial_ttl_ms(self, record: ActionRecord) -> int:
        if self.retention is None:
            return 0
        if record.status is not ActionStatus.PENDING:
            return self._retention_ms
        if record.expires_at is None:
            return 0  # waits for an answer indefinitely: nothing may collect it
        window = max(record.expires_at - record.created_at, 0.0) + self.retention
        return max(1, int(window * 1000))

    # -- writes --------------------------------------------------------------------------------

    async def create(self, action: ActionRecord) -> ActionRecord:
        if not isinstance(action, ActionRecord):
            raise ValidationError(f"create() takes an ActionRecord, got {type(action).__name__}")
        stored = action.without_token()
        token_hash = stored.resume_token_hash or ""
        reply = await run_script(
            self._conn.client(),
            _CREATE,
            self._keys(stored.action_id, token_hash, stored.job_id),
            [
                stored.action_id,
                _data(stored, stored.version),
                stored.version,
                stored.status.value,
                token_hash,
                stored.job_id,
                repr(stored.created_at),
                "" if stored.expires_at is None else repr(stored.expires_at),
                self._initial_ttl_ms(stored),
            ],
        )
        outcome = _word(reply)
        if outcome == "id":
            raise ValidationError(f"an action with id {stored.action_id!r} already exists")
        if outcome == "token":
            raise ValidationError("an action with the same resume token already exists")
        return stored

    async def update(self, action: ActionRecord) -> ActionRecord:
        if not isinstance(action, ActionRecord):
            raise ValidationError(f"update() takes an ActionRecord, got {type(action).__name__}")
        record = action.without_token()
        token_hash = record.resume_token_hash or ""
        target = record.status
        for _ in range(2):
            reply = await run_script(
                self._conn.client(),
                _UPDATE,
                [
                    self._record_key(record.action_id),
                    self._token_key(token_hash) if token_hash else self._record_key(record.action_id),
                    self._job_key(record.job_id),
                    self._pending,
                    self._due,
                ],
                [
                    record.action_id,
                    record.version,
                    _data(record, record.version + 1),
                    record.version + 1,
                    target.value,
                    ",".join(s.value for s in statuses_leading_to(target)),
                    "" if record.expires_at is None else repr(record.expires_at),
                    self._retention_ms,
                    self._channel,
                    token_hash,
                ],
            )
            outcome = _word(reply)
            if outcome == "ok":
                return record._evolve(version=record.version + 1, resume_token_hash=token_hash or None)
            if outcome == "missing":
                raise ActionNotFoundError(record.action_id)
            if outcome == "conflict":
                raise ConcurrentModificationError(
                    f"action {record.action_id!r} was modified concurrently (stored version "
                    f"{text(reply[1])}, update based on {record.version}); reload and retry"
                )
            if outcome == "transition":
                current = ActionStatus.parse(text(reply[1]))
                record._evolve(status=current).check_transition(target)
            # 'hash': the caller's record does not carry the stored token hash (a hand-built record);
            # the hash never changes, so retry once naming the stored one.
            token_hash = text(reply[1])
        raise ConcurrentModificationError(
            f"action {record.action_id!r} changed while updating; reload and retry"
        )

    async def delete(self, action_id: str) -> bool:
        client = self._conn.client()
        for _ in range(2):
            token_hash, job_id = await client.hmget(self._record_key(action_id), ["h", "j"])
            if token_hash is None or job_id is None:
                return False
            h = text(token_hash)
            deleted = int(
                await run_script(
                    client, _DELETE, self._keys(action_id, h, text(job_id)), [action_id, h, self._channel]
                )
            )
            if deleted >= 0:
                return deleted == 1
        return False  # pragma: no cover - deleted and re-created with another token twice meanwhile

    # -- reads ---------------------------------------------------------------------------------

    async def get(self, action_id: str) -> ActionRecord | None:
        if not isinstance(action_id, str) or not action_id:
            return None
        values = await self._conn.client().hmget(self._record_key(action_id), list(_FIELDS))
        return _decode(values)

    async def get_by_resume_token(self, token: str) -> ActionRecord | None:
        if not is_plausible_token(token):
            return None
        action_id = await self._conn.client().get(self._token_key(hash_resume_token(token)))
        if action_id is None:
            return None
        record = await self.get(text(action_id))
        if record is None or not token_hash_matches(record.resume_token_hash, token):
            return None
        return record

    async def _load(self, index: str, ids: builtins.list[str]) -> builtins.list[ActionRecord]:
        """Records for ``ids`` in order; ids whose record is gone (TTL) are dropped from the index."""
        client = self._conn.client()
        found: builtins.list[ActionRecord] = []
        gone: builtins.list[str] = []
        for start in range(0, len(ids), _BATCH):
            chunk = ids[start : start + _BATCH]
            async with client.pipeline(transaction=False) as pipe:
                for action_id in chunk:
                    pipe.hmget(self._record_key(action_id), list(_FIELDS))
                rows = await pipe.execute()
            for action_id, values in zip(chunk, rows, strict=True):
                record = _decode(values)
                if record is None:
                    gone.append(action_id)
                else:
                    found.append(record)
        if gone:
            async with client.pipeline(transaction=False) as pipe:
                for key in {index, self._index, self._pending, self._due}:
                    pipe.zrem(key, *gone)
                await pipe.execute()
        return found

    async def list(self, filter: ActionFilter | None = None) -> builtins.list[ActionRecord]:
        flt = filter or ActionFilter()
        if flt.job_id is not None:
            index = self._job_key(flt.job_id)
        elif flt.status is ActionStatus.PENDING:
            index = self._pending
        else:
            index = self._index
        # Members with equal scores come back in lexical order: (created_at, action_id), as elsewhere.
        ids = [text(m) for m in await self._conn.client().zrange(index, 0, -1)]
        records = [r for r in await self._load(index, ids) if flt.matches(r)]
        end = None if flt.limit is None else flt.offset + flt.limit
        return records[flt.offset : end]

    async def list_pending_for_job(self, job_id: str) -> builtins.list[ActionRecord]:
        return await self.list(ActionFilter(job_id=job_id, status=ActionStatus.PENDING))

    async def list_expired(self, now: float | None = None) -> builtins.list[ActionRecord]:
        at = time.time() if now is None else now
        ids = [text(m) for m in await self._conn.client().zrangebyscore(self._due, "-inf", repr(float(at)))]
        return [r for r in await self._load(self._due, ids) if r.is_due(at)]

    # -- change notifications ------------------------------------------------------------------

    def watch(self, action_id: str) -> AbstractAsyncContextManager[asyncio.Event]:
        return self._waiters.watch(action_id, self._listen, self._unlisten)

    def _on_change(self, _channel: str, data: Any) -> None:
        self._waiters.notify(text(data))

    def _on_resubscribed(self) -> None:
        # Changes published while the connection was down are lost: make every waiter re-read.
        self._waiters.notify_all()

    async def _listen(self) -> None:
        async with self._listener_lock:
            if self._listener is None:
                listener = PubSubListener(
                    self._conn.client(),
                    name="RedisActionStore",
                    channel=self._channel,
                    on_message=self._on_change,
                    on_subscribed=self._on_resubscribed,
                )
                try:
                    await listener.start()
                except Exception:
                    # Waiters still re-read every poll_interval; a missing listener costs latency only.
                    logger.warning(
                        "SUBSCRIBE %s failed; waiters fall back to polling", self._channel, exc_info=True
                    )
                else:
                    self._listener = listener
            self._listener_users += 1

    async def _unlisten(self) -> None:
        async with self._listener_lock:
            self._listener_users -= 1
            listener = self._listener
            if self._listener_users > 0 or listener is None:
                return
            self._listener = None
            await listener.stop()

    async def close(self) -> None:
        await self._conn.close()
