"""Work queues: ``get_queue()`` builds the one chosen by ``configure(queue_backend=...)``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._backend_cache import BackendCache
from .base import Queue, QueueMessage
from .memory import InMemoryQueue

if TYPE_CHECKING:
    from .redis import RedisQueue

__all__ = ["Queue", "QueueMessage", "InMemoryQueue", "RedisQueue", "get_queue", "reset_backends"]

_cache = BackendCache()


def get_queue() -> Queue:
    """The process's queue for the current config (the same instance on every call)."""
    from ..config import get_config

    config = get_config()
    if config.queue_backend == "redis":
        from .redis import RedisQueue

        url = config.redis_url
        return _cache.get(("redis", url), lambda: RedisQueue(redis_url=url))
    return _cache.get(("memory",), InMemoryQueue)


def reset_backends() -> None:
    """Forget cached queues (tests)."""
    _cache.clear()


def __getattr__(name: str) -> Any:
    if name == "RedisQueue":
        from .redis import RedisQueue

        return RedisQueue
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
