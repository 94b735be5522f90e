"""One backend instance per process and configuration, shared by the three factories.

A backend holds connections and (for the in-memory ones) the data itself, so every caller in a
process must get the same instance; the process id is part of the key so a forked worker builds its
own connections instead of sharing its parent's sockets.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Hashable
from typing import TypeVar

__all__ = ["BackendCache"]

T = TypeVar("T")


class BackendCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple[int, Hashable], object] = {}

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        full = (os.getpid(), key)
        with self._lock:
            if full not in self._items:
                self._items[full] = build()
            return self._items[full]  # type: ignore[return-value]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
