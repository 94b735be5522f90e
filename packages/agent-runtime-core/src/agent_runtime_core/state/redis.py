"""Redis state store: a list of checkpoints per run and plain keys (with native TTL) for values.

RPUSH's reply is the list length, which is the checkpoint's sequence number, so concurrent
writers to one run still get distinct, consecutive numbers without a separate counter.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .._json import dumps
from ..events.redis import RedisConnection, text
from .base import StateStore

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisStateStore"]


class RedisStateStore(StateStore):
    """``checkpoint_ttl``: seconds a run's checkpoints are kept after the last save (None: forever)."""

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        client: Redis | None = None,
        prefix: str = "agent_runtime",
        checkpoint_ttl: float | None = None,
    ) -> None:
        if checkpoint_ttl is not None and checkpoint_ttl <= 0:
            raise ValueError("checkpoint_ttl must be > 0 seconds or None")
        self._conn = RedisConnection("RedisStateStore", redis_url, client)
        self.prefix = prefix
        self.checkpoint_ttl = checkpoint_ttl

    def _checkpoints(self, run_id: str) -> str:
        return f"{self.prefix}:checkpoints:{run_id}"

    def _value(self, key: str) -> str:
        return f"{self.prefix}:kv:{key}"

    async def save_checkpoint(self, run_id: str, state: dict[str, Any]) -> int:
        body = dumps(state, what=f"checkpoint of run {run_id!r}")
        key = self._checkpoints(str(run_id))
        client = self._conn.client()
        if self.checkpoint_ttl is None:
            return int(await client.rpush(key, body))
        async with client.pipeline(transaction=True) as pipe:
            pipe.rpush(key, body)
            pipe.pexpire(key, max(1, int(self.checkpoint_ttl * 1000)))
            length, _ = await pipe.execute()
        return int(length)

    async def get_checkpoint(self, run_id: str) -> dict[str, Any] | None:
        raw = await self._conn.client().lindex(self._checkpoints(str(run_id)), -1)
        return None if raw is None else _load(raw)

    async def list_checkpoints(self, run_id: str) -> list[dict[str, Any]]:
        raw = await self._conn.client().lrange(self._checkpoints(str(run_id)), 0, -1)
        return [_load(item) for item in raw]

    async def delete_checkpoints(self, run_id: str) -> None:
        await self._conn.client().delete(self._checkpoints(str(run_id)))

    async def get(self, key: str) -> Any | None:
        raw = await self._conn.client().get(self._value(key))
        return None if raw is None else json.loads(text(raw))

    async def set(self, key: str, value: Any, *, ttl: float | None = None) -> None:
        if ttl is not None and ttl <= 0:
            raise ValueError("ttl must be > 0 seconds or None")
        body = dumps(value, what=f"value for key {key!r}")
        px = None if ttl is None else max(1, int(ttl * 1000))
        await self._conn.client().set(self._value(key), body, px=px)

    async def delete(self, key: str) -> None:
        await self._conn.client().delete(self._value(key))

    async def close(self) -> None:
        await self._conn.close()


def _load(raw: Any) -> Any:
    return json.loads(text(raw))
