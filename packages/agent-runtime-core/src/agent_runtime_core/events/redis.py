"""Redis event bus: an ordered history per run (a list) plus pub/sub for live followers.

Publishing is one Lua script (INCR the run's counter, append to its list, PUBLISH), so two
publishers in different processes still get unique, consecutive sequence numbers and the history
always matches what was broadcast. ``subscribe`` subscribes *before* reading the history and then
drops live events it has already replayed; a gap in the live stream (a dropped pub/sub message) is
filled from the history, so followers see every event once, in order.

This module also holds :class:`RedisConnection`, shared by the Redis queue and state store: it is
the one place that imports ``redis`` (lazily) and it keeps one client per event loop, because a
redis.asyncio client is bound to the loop it first ran on and a cached backend may be used from
several loops (tests, ``async_to_sync`` in Django).
"""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from .._json import dumps
from .base import Event, EventBus

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisEventBus", "RedisConnection", "text"]

INSTALL_HINT = "pip install 'agent-runtime-core[redis]'"


def _import_redis(owner: str) -> Any:
    try:
        import redis.asyncio as aioredis
    except ImportError as exc:
        raise ImportError(f"{owner} needs the redis package: {INSTALL_HINT}") from exc
    return aioredis


def text(value: Any) -> str:
    """Redis replies are bytes unless the client decodes them; accept both."""
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisConnection:
    """A redis.asyncio client per event loop, built from a URL, or one client the caller owns."""

    def __init__(self, owner: str, redis_url: str | None, client: Redis | None) -> None:
        if client is None and not redis_url:
            raise ValueError(f"{owner} needs redis_url=... or client=...")
        self._module: Any = _import_redis(owner) if client is None else None
        self._url = redis_url
        self._given = client
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Redis] = (
            weakref.WeakKeyDictionary()
        )

    def client(self) -> Redis:
        if self._given is not None:
            return self._given
        loop = asyncio.get_running_loop()
        made = self._clients.get(loop)
        if made is None:
            made = self._module.from_url(self._url)
            self._clients[loop] = made
        return made

    async def close(self) -> None:
        """Close the client of the running loop; a client passed in by the caller is left open."""
        if self._given is not None:
            return
        made = self._clients.pop(asyncio.get_running_loop(), None)
        if made is not None:
            await made.aclose()


# KEYS: seq counter, history list. ARGV: channel, body (the event JSON after its seq), ttl ms (0: none).
_PUBLISH = """
local seq = redis.call('INCR', KEYS[1])
local data = '{"seq":' .. seq .. ',' .. ARGV[2]
redis.call('RPUSH', KEYS[2], data)
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
redis.call('PUBLISH', ARGV[1], data)
return seq
"""


class RedisEventBus(EventBus):
    """``history_ttl``: seconds a run's history is kept after its last event (None: forever)."""

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        client: Redis | None = None,
        prefix: str = "agent_runtime",
        history_ttl: float | None = None,
    ) -> None:
        if history_ttl is not None and history_ttl <= 0:
            raise ValueError("history_ttl must be > 0 seconds or None")
        self._conn = RedisConnection("RedisEventBus", redis_url, client)
        self.prefix = prefix
        self.history_ttl = history_ttl

    def _keys(self, run_id: str) -> tuple[str, str, str]:
        base = f"{self.prefix}:events:{run_id}"
        return f"{base}:seq", f"{base}:history", f"{base}:live"

    async def publish(self, run_id: str, event_type: str, payload: dict[str, Any]) -> Event:
        event_type = str(event_type)
        run_id = str(run_id)
        timestamp = time.time()
        body = dumps(
            {"run_id": run_id, "event_type": event_type, "payload": payload, "timestamp": timestamp},
            what=f"payload of event {event_type!r}",
        )
        seq_key, history_key, channel = self._keys(run_id)
        ttl_ms = 0 if self.history_ttl is None else max(1, int(self.history_ttl * 1000))
        client = self._conn.client()
        seq = await client.eval(_PUBLISH, 2, seq_key, history_key, channel, body[1:], ttl_ms)
        return Event(
            run_id=run_id,
            seq=int(seq),
            event_type=event_type,
            payload=json.loads(body)["payload"],
            timestamp=timestamp,
        )

    async def get_events(self, run_id: str, from_seq: int = 0, limit: int | None = None) -> list[Event]:
        if limit is not None and limit <= 0:
            return []
        _, history_key, _ = self._keys(str(run_id))
        start = max(0, from_seq)
        stop = -1 if limit is None else start + limit - 1
        raw = await self._conn.client().lrange(history_key, start, stop)
        events = [_decode(item) for item in raw]
        return [e for e in events if e.seq > from_seq]

    async def subscribe(self, run_id: str, from_seq: int = 0) -> AsyncIterator[Event]:
        run_id = str(run_id)
        _, _, channel = self._keys(run_id)
        pubsub = self._conn.client().pubsub()
        cursor = from_seq
        try:
            await pubsub.subscribe(channel)
            for event in await self.get_events(run_id, cursor):
                cursor = event.seq
                yield event
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
                if message is None or message.get("type") != "message":
                    continue
                event = _decode(message["data"])
                if event.seq <= cursor:
                    continue
                if event.seq > cursor + 1:  # a live message went missing: take the gap from history
                    for missed in await self.get_events(run_id, cursor, limit=event.seq - cursor - 1):
                        cursor = missed.seq
                        yield missed
                cursor = event.seq
                yield event
        finally:
            await asyncio.shield(_close_pubsub(pubsub, channel))

    async def delete_run(self, run_id: str) -> None:
        """Forget a run's history and counter (e.g. after it is archived elsewhere)."""
        seq_key, history_key, _ = self._keys(str(run_id))
        await self._conn.client().delete(seq_key, history_key)

    async def close(self) -> None:
        await self._conn.close()


async def _close_pubsub(pubsub: Any, channel: str) -> None:
    """Best effort: after a cancelled read the connection may be unusable; aclose() still frees it."""
    try:
        await pubsub.unsubscribe(channel)
    except Exception:
        pass
    finally:
        await pubsub.aclose()


def _decode(raw: Any) -> Event:
    return Event.from_dict(json.loads(text(raw)))
