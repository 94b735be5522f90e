"""Redis adapters (``pip install 'agent-runtime[redis]'``); redis is imported on first use.

``SignalMessage``/``RedisSignalChannel`` wake action waiters across processes, ``RedisJobCache`` is a
read-through cache in front of any JobStore, ``RedisActionStore`` keeps actions in Redis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llm_client._lazy import lazy_exports

_EXPORTS = {
    "SignalMessage": "signals",
    "RedisSignalChannel": "signals",
    "SignalTimeoutError": "signals",
    "SignalChannelClosedError": "signals",
    "RedisJobCache": "jobs",
    "RedisActionStore": "actions",
}

__all__ = [
    "SignalMessage",
    "RedisSignalChannel",
    "SignalTimeoutError",
    "SignalChannelClosedError",
    "RedisJobCache",
    "RedisActionStore",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:  # pragma: no cover
    from .actions import RedisActionStore
    from .jobs import RedisJobCache
    from .signals import RedisSignalChannel, SignalChannelClosedError, SignalMessage, SignalTimeoutError
