"""In-process event bus: history per run plus live fan-out to subscribers.

Subscribers are woken through one asyncio.Condition per run; each keeps its own cursor into the
run's history, so a slow subscriber never blocks the publisher or the others, and memory is
bounded by the history (``max_events_per_run``), not by subscriber lag.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from .._json import ensure_jsonable
from .base import Event, EventBus

__all__ = ["InMemoryEventBus"]


class InMemoryEventBus(EventBus):
    def __init__(self, *, max_events_per_run: int | None = None, check_json: bool = True) -> None:
        if max_events_per_run is not None and max_events_per_run < 1:
            raise ValueError("max_events_per_run must be >= 1 or None")
        self._history: dict[str, list[Event]] = {}
        self._conditions: dict[str, asyncio.Condition] = {}
        self._dropped: dict[str, int] = {}
        self.max_events_per_run = max_events_per_run
        self.check_json = check_json

    def _condition(self, run_id: str) -> asyncio.Condition:
        cond = self._conditions.get(run_id)
        if cond is None:
            cond = self._conditions[run_id] = asyncio.Condition()
        return cond

    async def publish(self, run_id: str, event_type: str, payload: dict[str, Any]) -> Event:
        if self.check_json:
            payload = ensure_jsonable(payload, what=f"payload of event {str(event_type)!r}")
        history = self._history.setdefault(run_id, [])
        seq = (history[-1].seq if history else self._dropped.get(run_id, 0)) + 1
        event = Event(
            run_id=run_id, seq=seq, event_type=str(event_type), payload=payload, timestamp=time.time()
        )
        history.append(event)
        if self.max_events_per_run is not None and len(history) > self.max_events_per_run:
            del history[0]
            self._dropped[run_id] = history[0].seq - 1
        cond = self._conditions.get(run_id)
        if cond is not None:
            async with cond:
                cond.notify_all()
        return event

    async def get_events(self, run_id: str, from_seq: int = 0, limit: int | None = None) -> list[Event]:
        history = self._history.get(run_id, [])
        out = [e for e in history if e.seq > from_seq]
        return out if limit is None else out[:limit]

    async def subscribe(self, run_id: str, from_seq: int = 0) -> AsyncIterator[Event]:
        cond = self._condition(run_id)
        cursor = from_seq
        while True:
            pending = await self.get_events(run_id, cursor)
            if not pending:
                async with cond:
                    history = self._history.get(run_id)
                    if not history or history[-1].seq <= cursor:
                        await cond.wait()
                continue
            for event in pending:
                cursor = event.seq
                yield event
