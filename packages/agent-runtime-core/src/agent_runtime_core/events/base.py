"""The event bus interface: ordered, replayable events per run.

Each run's events get consecutive sequence numbers starting at 1. ``subscribe(run_id,
from_seq=n)`` first replays stored events with ``seq > n`` and then follows live ones, so a client
that reconnects (an SSE browser, a late worker) misses nothing and sees nothing twice.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Event", "EventBus"]


@dataclass(frozen=True, slots=True)
class Event:
    run_id: str
    seq: int
    event_type: str
    payload: dict[str, Any]
    timestamp: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "seq": self.seq,
            "event_type": self.event_type,
            "payload": self.payload,
            "timestamp": self.timestamp,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        return cls(
            run_id=str(data["run_id"]),
            seq=int(data["seq"]),
            event_type=str(data["event_type"]),
            payload=dict(data.get("payload") or {}),
            timestamp=float(data.get("timestamp") or time.time()),
        )


class EventBus(ABC):
    """Publish events for a run; read or follow them in order."""

    @abstractmethod
    async def publish(self, run_id: str, event_type: str, payload: dict[str, Any]) -> Event:
        """Store and deliver one event; returns it with its sequence number.

        A payload that is not JSON-serialisable raises TypeError naming the event type.
        """

    @abstractmethod
    async def get_events(self, run_id: str, from_seq: int = 0, limit: int | None = None) -> list[Event]:
        """Stored events with ``seq > from_seq``, oldest first."""

    @abstractmethod
    def subscribe(self, run_id: str, from_seq: int = 0) -> AsyncIterator[Event]:
        """Replay stored events after ``from_seq``, then follow live ones; ends when the consumer stops."""

    async def close(self) -> None:
        return None
