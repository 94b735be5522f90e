"""Queue adapters that carry runtime events out of the process: Kafka and Redis Streams.

Each adapter's client library (``aiokafka``, ``redis``) is an extra (``agent-runtime[kafka]``,
``agent-runtime[redis]``) and is imported on first use, so importing this package needs neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llm_client._lazy import lazy_exports

_EXPORTS = {
    "KafkaEventAdapter": "kafka",
    "KafkaConfig": "kafka",
    "RedisStreamsAdapter": "redis_streams",
    "RedisStreamsConfig": "redis_streams",
    "StreamEntry": "redis_streams",
    "StreamEntryDecodeError": "redis_streams",
}

__all__ = [
    "KafkaEventAdapter",
    "KafkaConfig",
    "RedisStreamsAdapter",
    "RedisStreamsConfig",
    "StreamEntry",
    "StreamEntryDecodeError",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:  # pragma: no cover
    from .kafka import KafkaConfig, KafkaEventAdapter
    from .redis_streams import RedisStreamsAdapter, RedisStreamsConfig, StreamEntry, StreamEntryDecodeError
