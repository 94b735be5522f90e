"""Event buses: ``get_event_bus()`` builds the one chosen by ``configure(event_bus_backend=...)``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._backend_cache import BackendCache
from .base import Event, EventBus
from .memory import InMemoryEventBus

if TYPE_CHECKING:
    from .redis import RedisEventBus

__all__ = ["Event", "EventBus", "InMemoryEventBus", "RedisEventBus", "get_event_bus", "reset_backends"]

_cache = BackendCache()


def get_event_bus() -> EventBus:
    """The process's event bus for the current config (the same instance on every call)."""
    from ..config import get_config

    config = get_config()
    if config.event_bus_backend == "redis":
        from .redis import RedisEventBus

        url = config.redis_url
        return _cache.get(("redis", url), lambda: RedisEventBus(redis_url=url))
    return _cache.get(("memory",), InMemoryEventBus)


def reset_backends() -> None:
    """Forget cached buses (tests; after ``configure()`` the next call builds afresh anyway)."""
    _cache.clear()


def __getattr__(name: str) -> Any:
    if name == "RedisEventBus":  # its module is cheap, but keep redis-only code out of plain imports
        from .redis import RedisEventBus

        return RedisEventBus
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
