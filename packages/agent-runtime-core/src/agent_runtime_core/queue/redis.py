"""Redis queue with at-least-once delivery, shared by any number of worker processes.

Layout under ``{prefix}:queue:{name}``: ``:messages`` (hash id -> JSON), ``:pending`` (sorted set
id -> visible-at ms; a delayed or nacked message simply has a future score), ``:inflight`` (sorted
set id -> visibility deadline ms), ``:attempts`` and ``:receipts`` (hashes), ``:signal`` (a list
that wakes blocked consumers). Every state change is one Lua script using the server's clock, so
consumers on different hosts agree on deadlines and a claim is never handed to two consumers.

A consumer that dies without acknowledging simply lets its deadline pass; the next dequeue moves
the message back to ``pending`` and delivers it with ``attempts`` + 1. Each delivery gets a new
receipt, and ack/nack with an older receipt is ignored, so a slow consumer whose message was
redelivered cannot delete the newer delivery's work.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

from .._json import dumps
from ..events.redis import RedisConnection, text
from .base import Queue, QueueMessage

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisQueue"]

_NOW = "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"

# KEYS: messages, pending, inflight, attempts, signal. ARGV: id, body, delay ms.
_ENQUEUE = (
    _NOW
    + """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if not redis.call('ZSCORE', KEYS[3], ARGV[1]) then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
end
redis.call('HSETNX', KEYS[4], ARGV[1], 0)
redis.call('LPUSH', KEYS[5], 1)
redis.call('LTRIM', KEYS[5], 0, 63)
return 1
"""
)

# KEYS: messages, pending, inflight, attempts, receipts. ARGV: visibility ms, receipt.
# Returns {id, body, attempts} or {false, ms until something may become visible (-1: nothing)}.
_CLAIM = (
    _NOW
    + """
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[3], id)
  redis.call('HDEL', KEYS[5], id)
  redis.call('ZADD', KEYS[2], now, id)
end
while true do
  local head = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1)[1]
  if not head then break end
  redis.call('ZREM', KEYS[2], head)
  local body = redis.call('HGET', KEYS[1], head)
  if body then
    redis.call('ZADD', KEYS[3], now + tonumber(ARGV[1]), head)
    redis.call('HSET', KEYS[5], head, ARGV[2])
    local attempts = redis.call('HINCRBY', KEYS[4], head, 1)
    return {head, body, attempts}
  end
end
local wait = -1
local p = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if p[2] then wait = tonumber(p[2]) - now end
local f = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
if f[2] and (wait < 0 or tonumber(f[2]) - now < wait) then wait = tonumber(f[2]) - now end
return {false, wait}
"""
)

# KEYS: messages, pending, inflight, attempts, receipts. ARGV: id, receipt ('' = any current delivery).
_ACK = """
local held = redis.call('HGET', KEYS[5], ARGV[1])
if not held or (ARGV[2] ~= '' and held ~= ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
return 1
"""

# KEYS: messages, pending, inflight, attempts, receipts, signal. ARGV: id, receipt, delay ms.
_NACK = (
    _NOW
    + """
local held = redis.call('HGET', KEYS[5], ARGV[1])
if not held or (ARGV[2] ~= '' and held ~= ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
redis.call('LPUSH', KEYS[6], 1)
redis.call('LTRIM', KEYS[6], 0, 63)
return 1
"""
)

_MAX_BLOCK = 1.0  # seconds one BLPOP waits before re-checking deadlines


class RedisQueue(Queue):
    """``visibility_timeout``: seconds a dequeued, unacknowledged message stays hidden."""

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        client: Redis | None = None,
        prefix: str = "agent_runtime",
        name: str = "default",
        visibility_timeout: float = 300.0,
    ) -> None:
        if visibility_timeout <= 0:
            raise ValueError("visibility_timeout must be > 0 seconds")
        self._conn = RedisConnection("RedisQueue", redis_url, client)
        self.prefix = prefix
        self.name = name
        self.visibility_timeout = visibility_timeout
        base = f"{prefix}:queue:{name}"
        self._messages, self._pending, self._inflight = (
            f"{base}:messages",
            f"{base}:pending",
            f"{base}:inflight",
        )
        self._attempts, self._receipts, self._signal = (
            f"{base}:attempts",
            f"{base}:receipts",
            f"{base}:signal",
        )

    @property
    def keys(self) -> list[str]:
        """Every Redis key this queue uses (for cleanup and inspection)."""
        return [self._messages, self._pending, self._inflight, self._attempts, self._receipts, self._signal]

    async def enqueue(
        self, payload: dict[str, Any], *, message_id: str | None = None, delay: float = 0.0
    ) -> str:
        if delay < 0:
            raise ValueError("delay must be >= 0 seconds")
        body = dumps({"payload": payload, "enqueued_at": time.time()}, what="queue message payload")
        mid = message_id or uuid.uuid4().hex
        keys = [self._messages, self._pending, self._inflight, self._attempts, self._signal]
        await self._conn.client().eval(_ENQUEUE, len(keys), *keys, mid, body, _ms(delay))
        return mid

    async def dequeue(
        self, *, timeout: float | None = None, visibility_timeout: float | None = None
    ) -> QueueMessage | None:
        vt = self.visibility_timeout if visibility_timeout is None else visibility_timeout
        if vt <= 0:
            raise ValueError("visibility_timeout must be > 0 seconds")
        deadline = None if timeout is None else time.monotonic() + timeout
        client = self._conn.client()
        keys = [self._messages, self._pending, self._inflight, self._attempts, self._receipts]
        while True:
            receipt = uuid.uuid4().hex
            reply = await client.eval(_CLAIM, len(keys), *keys, max(1, _ms(vt)), receipt)
            if reply[0]:
                data = json.loads(text(reply[1]))
                return QueueMessage(
                    id=text(reply[0]),
                    payload=data["payload"],
                    attempts=int(reply[2]),
                    enqueued_at=float(data.get("enqueued_at") or time.time()),
                    receipt=receipt,
                )
            if deadline is None:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            wait = min(remaining, _MAX_BLOCK)
            next_due_ms = int(reply[1])
            if next_due_ms >= 0:
                wait = min(wait, next_due_ms / 1000)
            # BLPOP returns early when a producer signals; a timeout of 0 would block forever.
            await client.blpop([self._signal], timeout=max(wait, 0.01))

    async def ack(self, message: QueueMessage) -> None:
        keys = [self._messages, self._pending, self._inflight, self._attempts, self._receipts]
        await self._conn.client().eval(_ACK, len(keys), *keys, message.id, message.receipt or "")

    async def nack(self, message: QueueMessage, *, delay: float = 0.0) -> None:
        if delay < 0:
            raise ValueError("delay must be >= 0 seconds")
        keys = [self._messages, self._pending, self._inflight, self._attempts, self._receipts, self._signal]
        args = (message.id, message.receipt or "", _ms(delay))
        await self._conn.client().eval(_NACK, len(keys), *keys, *args)

    async def size(self) -> int:
        return int(await self._conn.client().hlen(self._messages))

    async def purge(self) -> None:
        """Delete every message, delivered or not (tests and operators)."""
        await self._conn.client().delete(*self.keys)

    async def close(self) -> None:
        await self._conn.close()


def _ms(seconds: float) -> int:
    return int(seconds * 1000)
