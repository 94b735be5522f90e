"""Idempotency keys for model calls: one key, one execution, one result.

A job that is retried, or a request sent twice by a client, must not pay for (or act on) the same
model call twice. The tracker remembers each key's request fingerprint and outcome:

- a second call while the first is in flight joins it and gets the same result (or error);
- a completed key returns the stored result until its TTL passes;
- a failed or cancelled call releases its key (in a ``finally``), so a retry runs for real;
- a key reused with a different request raises :class:`IdempotencyConflictError`.

State lives in this process. Durable, cross-process idempotency belongs to the kernel's job store.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .errors import IdempotencyConflictError

__all__ = ["IdempotencyTracker"]

T = TypeVar("T")


@dataclass(slots=True)
class _Entry:
    fingerprint: str
    started: float
    future: asyncio.Future[Any]
    completed_at: float | None = None
    joiners: int = field(default=0)


class IdempotencyTracker:
    """In-process idempotency for :class:`~llm_client.ExecutionEngine` calls.

    ``request_timeout``: an in-flight call older than this is presumed abandoned, and a new call with
    the same key runs instead of waiting for it. ``ttl``: how long a completed result is served.
    ``max_entries``: completed entries beyond this are forgotten, oldest first.
    """

    def __init__(
        self,
        request_timeout: float = 60.0,
        *,
        ttl: float = 3600.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if request_timeout <= 0 or ttl <= 0 or max_entries < 1:
            raise ValueError("request_timeout and ttl must be > 0 and max_entries >= 1")
        self.request_timeout = request_timeout
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def in_flight(self, key: str) -> bool:
        entry = self._entries.get(key)
        return entry is not None and not entry.future.done()

    def forget(self, key: str) -> None:
        """Drop a key so the next call with it runs again."""
        entry = self._entries.pop(key, None)
        if entry is not None and not entry.future.done():
            entry.future.cancel()

    async def run(self, key: str, fingerprint: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run ``call`` once per key; see the module docstring for the rules."""
        if not key:
            raise ValueError("idempotency key must be a non-empty string")
        while True:
            now = self._clock()
            entry = self._entries.get(key)
            if entry is not None:
                if entry.fingerprint != fingerprint:
                    raise IdempotencyConflictError(
                        f"idempotency key {key!r} was already used for a different request; "
                        "use a new key for a new request"
                    )
                if entry.completed_at is not None:
                    if now - entry.completed_at <= self.ttl:
                        self._entries.move_to_end(key)
                        result: T = entry.future.result()
                        return result
                elif now - entry.started <= self.request_timeout:
                    entry.joiners += 1
                    try:
                        joined: T = await asyncio.shield(entry.future)
                        return joined
                    except asyncio.CancelledError:
                        if entry.future.cancelled():
                            continue  # the owner was cancelled: take over with a fresh run
                        raise
                # expired result or abandoned call: run afresh
                self._entries.pop(key, None)
            return await self._own(key, fingerprint, call, now)

    async def _own(self, key: str, fingerprint: str, call: Callable[[], Awaitable[T]], now: float) -> T:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        entry = _Entry(fingerprint=fingerprint, started=now, future=future)
        self._entries[key] = entry
        ok = False
        try:
            result = await call()
            ok = True
        except BaseException as exc:
            if not future.done():
                if isinstance(exc, asyncio.CancelledError):
                    future.cancel()
                else:
                    future.set_exception(exc)
                    if not entry.joiners:
                        future.exception()  # mark retrieved: nobody else will read it
            raise
        finally:
            if not ok and self._entries.get(key) is entry:
                del self._entries[key]  # release the key so a retry can run
        if not future.done():
            future.set_result(result)
        entry.completed_at = self._clock()
        self._evict()
        return result

    def _evict(self) -> None:
        while len(self._entries) > self.max_entries:
            oldest_key, oldest = next(iter(self._entries.items()))
            if oldest.completed_at is None:
                self._entries.move_to_end(oldest_key)
                if all(e.completed_at is None for e in self._entries.values()):
                    return
                continue
            del self._entries[oldest_key]
