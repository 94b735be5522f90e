"""The work queue interface: at-least-once delivery with acknowledgement.

A dequeued message is invisible to other consumers until it is acknowledged or its visibility
timeout passes; then it is delivered again. Consumers must therefore be idempotent (the runner's
checkpoints make re-running a run cheap), and nothing is lost when a worker dies mid-run.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

__all__ = ["QueueMessage", "Queue"]


@dataclass(frozen=True, slots=True)
class QueueMessage:
    id: str
    payload: dict[str, Any]
    attempts: int = 1
    enqueued_at: float = field(default_factory=time.time)
    receipt: str | None = None  # identifies this delivery; ack/nack of a stale delivery is ignored


class Queue(ABC):
    @abstractmethod
    async def enqueue(
        self, payload: dict[str, Any], *, message_id: str | None = None, delay: float = 0.0
    ) -> str:
        """Add a message; returns its id. A payload that is not JSON-serialisable raises TypeError."""

    @abstractmethod
    async def dequeue(
        self, *, timeout: float | None = None, visibility_timeout: float | None = None
    ) -> QueueMessage | None:
        """The next visible message, waiting up to ``timeout`` seconds (None: don't wait)."""

    @abstractmethod
    async def ack(self, message: QueueMessage) -> None:
        """Done: the message is removed for good."""

    @abstractmethod
    async def nack(self, message: QueueMessage, *, delay: float = 0.0) -> None:
        """Not done: make the message visible again after ``delay`` seconds."""

    @abstractmethod
    async def size(self) -> int:
        """Messages not yet acknowledged (visible and in flight)."""

    async def close(self) -> None:
        return None
