"""The state store interface: checkpoints per run, plus a small key-value space.

Checkpoints are what make runs resumable: the runner (and the step executor) saves one after each
unit of work, and a retried or resumed run reads the latest. Values must be JSON-serialisable; a
value that is not raises TypeError naming what could not be stored, before anything is written.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

__all__ = ["StateStore"]


class StateStore(ABC):
    @abstractmethod
    async def save_checkpoint(self, run_id: str, state: dict[str, Any]) -> int:
        """Append a checkpoint for a run; returns its sequence number (1, 2, ...)."""

    @abstractmethod
    async def get_checkpoint(self, run_id: str) -> dict[str, Any] | None:
        """The latest checkpoint of a run, or None."""

    @abstractmethod
    async def list_checkpoints(self, run_id: str) -> list[dict[str, Any]]:
        """All checkpoints of a run, oldest first."""

    @abstractmethod
    async def delete_checkpoints(self, run_id: str) -> None: ...

    @abstractmethod
    async def get(self, key: str) -> Any | None:
        """A value stored with :meth:`set`, or None."""

    @abstractmethod
    async def set(self, key: str, value: Any, *, ttl: float | None = None) -> None:
        """Store a JSON-serialisable value, optionally expiring after ``ttl`` seconds."""

    @abstractmethod
    async def delete(self, key: str) -> None: ...

    async def close(self) -> None:
        return None
