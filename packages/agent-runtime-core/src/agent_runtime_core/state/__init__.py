"""State stores: ``get_state_store()`` builds the one chosen by ``configure(state_store_backend=...)``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._backend_cache import BackendCache
from .base import StateStore
from .memory import InMemoryStateStore

if TYPE_CHECKING:
    from .redis import RedisStateStore
    from .sqlite import SQLiteStateStore

__all__ = [
    "StateStore",
    "InMemoryStateStore",
    "RedisStateStore",
    "SQLiteStateStore",
    "get_state_store",
    "reset_backends",
]

_cache = BackendCache()


def get_state_store() -> StateStore:
    """The process's state store for the current config (the same instance on every call)."""
    from ..config import get_config

    config = get_config()
    if config.state_store_backend == "redis":
        from .redis import RedisStateStore

        url = config.redis_url
        return _cache.get(("redis", url), lambda: RedisStateStore(redis_url=url))
    if config.state_store_backend == "sqlite":
        from .sqlite import SQLiteStateStore

        path = config.sqlite_path
        return _cache.get(("sqlite", path), lambda: SQLiteStateStore(db_path=path))
    return _cache.get(("memory",), InMemoryStateStore)


def reset_backends() -> None:
    """Forget cached stores (tests)."""
    _cache.clear()


def __getattr__(name: str) -> Any:
    if name == "RedisStateStore":
        from .redis import RedisStateStore

        return RedisStateStore
    if name == "SQLiteStateStore":
        from .sqlite import SQLiteStateStore

        return SQLiteStateStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
