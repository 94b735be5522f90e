"""In-process event bus: history per run plus live fan-out to subscribers.

Subscribers are woken through one asyncio.Condition per run; each keeps its own cursor into the
run's history, so a slow subscriber never blocks the publisher or the others. Memory is bounded
twice: ``max_events_per_run`` caps one run's history, ``max_runs`` the number of runs kept (the
oldest run's history is forgotten first), so a long-lived worker does not grow without end.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from .._json import ensure_jsonable
from .base import Event, EventBus

__all__ = ["InMemoryEventBus"]


class InMemoryEventBus(EventBus):
    def __init__(
        self,
        *,
        max_events_per_run: int | None = None,
        max_runs: int | None = 1_000,
        check_json: bool = True,
    ) -> None:
        if max_events_per_run is not None and max_events_per_run < 1:
            raise ValueError("max_events_per_run must be >= 1 or None")
        if max_runs is not None and max_runs < 1:
            raise ValueError("max_runs must be >= 1 or None")
        self._history: OrderedDict[str, list[Event]] = OrderedDict()
        self._conditions: dict[str, asyncio.Condition] = {}
        self._dropped: dict[str, int] = {}
        self.max_events_per_run = max_events_per_run
        self.max_runs = max_runs
        self.check_json = check_json

    def _condition(self, run_id: str) -> asyncio.Condition:
        cond = self._conditions.get(run_id)
        if cond is None:
            cond = self._conditions[run_id] = asyncio.Condition()
        return cond

    def _new_run(self, run_id: str) -> list[Event]:
        history: list[Event] = []
        self._history[run_id] = history
        if self.max_runs is not None:
            while len(self._history) > self.max_runs:
                old, _ = self._history.popitem(last=False)
                self._dropped.pop(old, None)
                cond = self._conditions.get(old)
                if cond is not None and not cond._waiters:
                    del self._conditions[old]
        return history

    async def publish(self, run_id: str, event_type: str, payload: dict[str, Any]) -> Event:
        if self.check_json:
            payload = ensure_jsonable(payload, what=f"payload of event {str(event_type)!r}")
        history = self._history.get(run_id)
        if history is None:
            history = self._new_run(run_id)
        seq = (history[-1].seq if history else self._dropped.get(run_id, 0)) + 1
        event = Event(
            run_id=run_id, seq=seq, event_type=str(event_type), payload=payload, timestamp=time.time()
        )
        history.append(event)
        limit = self.max_events_per_run
        if limit is not None and len(history) > limit:
            # Trim in batches: deleting from the front of a list is O(n), so not once per event.
            excess = len(history) - limit if len(history) > limit + limit // 10 or limit < 10 else 0
            if excess:
                del history[:excess]
                self._dropped[run_id] = history[0].seq - 1
        cond = self._conditions.get(run_id)
        if cond is not None:
            async with cond:
                cond.notify_all()
        return event

    def _after(self, run_id: str, from_seq: int, limit: int | None) -> list[Event]:
        history = self._history.get(run_id)
        if not history:
            return []
        if self.max_events_per_run is not None:  # the list may hold a few more (batched trimming)
            from_seq = max(from_seq, history[-1].seq - self.max_events_per_run)
        # Sequence numbers are consecutive, so the first wanted event's index is arithmetic.
        start = max(0, from_seq - history[0].seq + 1)
        return history[start:] if limit is None else history[start : start + limit]

    async def get_events(self, run_id: str, from_seq: int = 0, limit: int | None = None) -> list[Event]:
        return self._after(run_id, from_seq, limit)

    async def delete_run(self, run_id: str) -> None:
        """Forget a run's history (live subscribers keep what they already received)."""
        self._history.pop(run_id, None)
        self._dropped.pop(run_id, None)

    async def subscribe(self, run_id: str, from_seq: int = 0) -> AsyncIterator[Event]:
        cond = self._condition(run_id)
        cursor = from_seq
        while True:
            pending = self._after(run_id, cursor, None)
            if not pending:
                async with cond:
                    history = self._history.get(run_id)
                    if not history or history[-1].seq <= cursor:
                        await cond.wait()
                continue
            for event in pending:
                cursor = event.seq
                yield event
