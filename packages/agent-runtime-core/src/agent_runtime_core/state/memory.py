"""In-process state store (checkpoints and key-values), JSON-checked like the durable ones."""

from __future__ import annotations

import time
from typing import Any

from .._json import ensure_jsonable
from .base import StateStore

__all__ = ["InMemoryStateStore"]


class InMemoryStateStore(StateStore):
    def __init__(self) -> None:
        self._checkpoints: dict[str, list[dict[str, Any]]] = {}
        self._values: dict[str, tuple[Any, float | None]] = {}

    async def save_checkpoint(self, run_id: str, state: dict[str, Any]) -> int:
        copy = ensure_jsonable(state, what=f"checkpoint of run {run_id!r}")
        history = self._checkpoints.setdefault(run_id, [])
        history.append(copy)
        return len(history)

    async def get_checkpoint(self, run_id: str) -> dict[str, Any] | None:
        history = self._checkpoints.get(run_id)
        return ensure_jsonable(history[-1], what="checkpoint") if history else None

    async def list_checkpoints(self, run_id: str) -> list[dict[str, Any]]:
        return [ensure_jsonable(c, what="checkpoint") for c in self._checkpoints.get(run_id, [])]

    async def delete_checkpoints(self, run_id: str) -> None:
        self._checkpoints.pop(run_id, None)

    async def get(self, key: str) -> Any | None:
        item = self._values.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and time.monotonic() >= expires:
            del self._values[key]
            return None
        return ensure_jsonable(value, what=f"value {key!r}")

    async def set(self, key: str, value: Any, *, ttl: float | None = None) -> None:
        copy = ensure_jsonable(value, what=f"value for key {key!r}")
        self._values[key] = (copy, None if ttl is None else time.monotonic() + ttl)

    async def delete(self, key: str) -> None:
        self._values.pop(key, None)
