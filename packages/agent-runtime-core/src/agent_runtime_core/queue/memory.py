"""In-process queue with the same at-least-once semantics as the Redis one (for tests and dev)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
import uuid
from dataclasses import replace
from typing import Any

from .._json import ensure_jsonable
from .base import Queue, QueueMessage

__all__ = ["InMemoryQueue"]


class InMemoryQueue(Queue):
    """``visibility_timeout``: seconds a dequeued, unacknowledged message stays hidden."""

    def __init__(self, *, visibility_timeout: float = 300.0, clock: Any = time.monotonic) -> None:
        self.visibility_timeout = visibility_timeout
        self._clock = clock
        self._ready: list[tuple[float, int, str]] = []  # (visible_at, order, id)
        self._messages: dict[str, QueueMessage] = {}
        self._in_flight: dict[str, tuple[float, str]] = {}  # id -> (deadline, receipt)
        self._order = itertools.count()
        self._wakeup = asyncio.Event()

    async def enqueue(
        self, payload: dict[str, Any], *, message_id: str | None = None, delay: float = 0.0
    ) -> str:
        payload = ensure_jsonable(payload, what="queue message payload")
        mid = message_id or uuid.uuid4().hex
        self._messages[mid] = QueueMessage(id=mid, payload=payload, attempts=0)
        heapq.heappush(self._ready, (self._clock() + delay, next(self._order), mid))
        self._wakeup.set()
        return mid

    def _reclaim_expired(self, now: float) -> None:
        for mid, (deadline, _receipt) in list(self._in_flight.items()):
            if deadline <= now:
                del self._in_flight[mid]
                heapq.heappush(self._ready, (now, next(self._order), mid))

    def _pop(self) -> QueueMessage | None:
        now = self._clock()
        self._reclaim_expired(now)
        while self._ready and self._ready[0][0] <= now:
            _, _, mid = heapq.heappop(self._ready)
            msg = self._messages.get(mid)
            if msg is None or mid in self._in_flight:
                continue
            return msg
        return None

    async def dequeue(
        self, *, timeout: float | None = None, visibility_timeout: float | None = None
    ) -> QueueMessage | None:
        deadline = None if timeout is None else self._clock() + timeout
        while True:
            msg = self._pop()
            if msg is not None:
                receipt = uuid.uuid4().hex
                vt = self.visibility_timeout if visibility_timeout is None else visibility_timeout
                self._in_flight[msg.id] = (self._clock() + vt, receipt)
                delivered = replace(msg, attempts=msg.attempts + 1, receipt=receipt)
                self._messages[msg.id] = replace(delivered, receipt=None)
                return delivered
            if deadline is None:
                return None
            remaining = deadline - self._clock()
            if remaining <= 0:
                return None
            self._wakeup.clear()
            wait = remaining
            if self._ready:
                wait = min(wait, max(0.0, self._ready[0][0] - self._clock()))
            if self._in_flight:
                wait = min(wait, max(0.0, min(d for d, _ in self._in_flight.values()) - self._clock()))
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=max(wait, 0.001))
            except TimeoutError:
                pass

    def _current(self, message: QueueMessage) -> bool:
        held = self._in_flight.get(message.id)
        return held is not None and (message.receipt is None or held[1] == message.receipt)

    async def ack(self, message: QueueMessage) -> None:
        if self._current(message):
            del self._in_flight[message.id]
            self._messages.pop(message.id, None)

    async def nack(self, message: QueueMessage, *, delay: float = 0.0) -> None:
        if self._current(message):
            del self._in_flight[message.id]
            heapq.heappush(self._ready, (self._clock() + delay, next(self._order), message.id))
            self._wakeup.set()

    async def size(self) -> int:
        return len(self._messages)
