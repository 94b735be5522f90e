"""Runtime events streamed to Kafka, one job's events in order, and never silently lost.

Uses aiokafka (``pip install 'agent-runtime[kafka]'``), imported only when an adapter is built, so
``import agent_runtime`` works without it.

Routing. Each event goes to ``<topic_prefix>.<group>`` by the first part of its dotted type:
``job.*`` and ``final.*`` to ``.job`` (the job's lifecycle and outcome), ``tool.*`` to ``.tool``,
``action.*`` to ``.action``, ``progress`` to ``.progress``, anything else (``model.*``,
``artifact.*``) to ``.<default_topic>``.

Ordering. The message key is the event's ``partition_by`` field (``job_id`` by default), so all of a
job's events on one topic land in one partition, in publish order: the bus hands events to the
adapter one at a time and aiokafka keeps send order per partition (it retries a batch in place).
There is no order *across* topics: a consumer of several topics merges by ``timestamp``. When the
chosen field is empty on an event (e.g. ``session_id``, which ``RuntimeEvent`` does not carry, is
looked up in ``data``), the key falls back to ``job_id``, so per-job order still holds.

Failures. A send that fails is retried with llm-client's :class:`~llm_client.retry.RetryPolicy`
(``KafkaConfig.retry``) for errors Kafka calls retriable (timeouts, lost connections, leader
changes); when it still fails, the event is recorded in ``adapter.failed`` (a bounded list of
:class:`FailedPublish`), counted in ``failures``, logged, and handed to ``on_error``. A retried event
can land after events of its job published later, so consumers that need strict order should compare
``timestamp`` or the event ids they have seen; at-least-once delivery means duplicates are possible
and ``event_id`` is the deduplication key.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from llm_client.errors import InvalidRequestError, MissingDependencyError, ProviderConnectionError
from llm_client.retry import RetryPolicy, retry_async

from ..errors import AgentRuntimeError, ValidationError
from ..events.bus import EventBus, EventSubscription
from ..events.models import RuntimeEvent, RuntimeEventType, coerce_event_types

__all__ = [
    "DEFAULT_KAFKA_RETRY",
    "EVENT_ID_HEADER",
    "EVENT_TYPE_HEADER",
    "FailedPublish",
    "KafkaAdapterError",
    "KafkaConfig",
    "KafkaEventAdapter",
    "PARTITION_FIELDS",
    "TOPIC_GROUPS",
]

logger = logging.getLogger("agent_runtime.queues.kafka")

EVENT_TYPE_HEADER = "event_type"
EVENT_ID_HEADER = "event_id"

#: Event fields that may key messages. ``session_id`` is not a RuntimeEvent field: it is read from
#: ``event.data["session_id"]`` (like any other name not in this tuple's first five).
PARTITION_FIELDS = ("job_id", "scope_id", "session_id", "run_id", "trace_id", "principal_id")
_EVENT_FIELDS = frozenset({"job_id", "scope_id", "run_id", "trace_id", "principal_id"})

#: First part of the dotted event type -> topic suffix; other types go to ``default_topic``.
TOPIC_GROUPS: Mapping[str, str] = {
    "job": "job",
    "final": "job",
    "tool": "tool",
    "action": "action",
    "progress": "progress",
}

#: A few quick tries: aiokafka already retries each batch for ``request_timeout_ms`` before this
#: layer sees an error, so ours only rides out what outlasts that (a broker restart).
DEFAULT_KAFKA_RETRY = RetryPolicy(max_attempts=3, initial_delay=0.5, max_delay=5.0, max_total_time=120.0)

_COMPRESSION = (None, "gzip", "snappy", "lz4", "zstd")
_PROVIDER = "kafka"


class KafkaAdapterError(AgentRuntimeError):
    """The adapter cannot do what was asked: the broker is unreachable at start, or it is stopped."""


def _import_aiokafka() -> Any:
    try:
        import aiokafka  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError as exc:
        raise MissingDependencyError("aiokafka", "kafka", distribution="agent-runtime") from exc
    return aiokafka


def _import_kafka_admin() -> Any:
    try:
        import aiokafka.admin  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError as exc:
        raise MissingDependencyError("aiokafka", "kafka", distribution="agent-runtime") from exc
    return aiokafka.admin


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"{name} must be a positive integer, got {value!r}")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class KafkaConfig:
    """Where and how events are produced. The defaults work against Apache Kafka and Tansu.

    ``acks``: 0, 1 or "all". ``compression_type``: None, "gzip", "snappy", "lz4" or "zstd" (the last
    three need their codec package on the client). ``enable_idempotence`` is off by default: brokers
    without the InitProducerId API (Tansu) refuse it. ``request_timeout_ms`` bounds each try,
    ``retry`` the tries; ``event_types`` limits what is forwarded (None: everything). ``queue_size``
    is the adapter's bus-subscription buffer, ``max_in_flight`` the sends awaiting the broker's
    answer before the adapter waits, ``max_failed`` how many :class:`FailedPublish` are kept.
    ``producer_options`` are passed to ``AIOKafkaProducer`` as they are (e.g. SASL settings).
    """

    bootstrap_servers: str | tuple[str, ...] = "localhost:9092"
    topic_prefix: str = "agent-runtime"
    default_topic: str = "events"
    partition_by: str = "job_id"
    acks: int | str = "all"
    compression_type: str | None = "gzip"
    batch_size: int = 16384
    linger_ms: int = 10
    client_id: str = "agent-runtime"
    request_timeout_ms: int = 30000
    enable_idempotence: bool = False
    event_types: frozenset[RuntimeEventType] | None = None
    retry: RetryPolicy = DEFAULT_KAFKA_RETRY
    queue_size: int = 10000
    max_in_flight: int = 10000
    max_failed: int = 1000
    producer_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        servers = self.bootstrap_servers
        if isinstance(servers, (list, tuple)):
            servers = tuple(servers)
            object.__setattr__(self, "bootstrap_servers", servers)
        if isinstance(servers, str):
            if not servers.strip():
                raise ValidationError("bootstrap_servers is empty")
        elif not servers or not all(isinstance(s, str) and s.strip() for s in servers):
            raise ValidationError(f"bootstrap_servers must be 'host:port' strings, got {servers!r}")
        for name in ("topic_prefix", "default_topic", "client_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValidationError(f"{name} must be a non-empty string, got {value!r}")
        if not isinstance(self.partition_by, str) or not self.partition_by:
            raise ValidationError(
                f"partition_by must be a field name such as 'job_id', got {self.partition_by!r}"
            )
        if self.acks not in (0, 1, "all", -1):
            raise ValidationError(f"acks must be 0, 1 or 'all', got {self.acks!r}")
        if self.compression_type not in _COMPRESSION:
            raise ValidationError(
                f"compression_type must be one of {', '.join(map(str, _COMPRESSION))}, "
                f"got {self.compression_type!r}"
            )
        _positive_int("batch_size", self.batch_size)
        _positive_int("request_timeout_ms", self.request_timeout_ms)
        _positive_int("queue_size", self.queue_size)
        _positive_int("max_in_flight", self.max_in_flight)
        _positive_int("max_failed", self.max_failed)
        if isinstance(self.linger_ms, bool) or not isinstance(self.linger_ms, int) or self.linger_ms < 0:
            raise ValidationError(f"linger_ms must be an integer >= 0, got {self.linger_ms!r}")
        if not isinstance(self.retry, RetryPolicy):
            raise ValidationError(f"retry must be an llm_client RetryPolicy, got {type(self.retry).__name__}")
        if self.event_types is not None:
            object.__setattr__(self, "event_types", coerce_event_types(self.event_types))
        if not isinstance(self.producer_options, Mapping):
            raise ValidationError("producer_options must be a mapping")
        object.__setattr__(self, "producer_options", dict(self.producer_options))

    @property
    def topics(self) -> list[str]:
        """Every topic this configuration can produce to."""
        groups = dict.fromkeys([*TOPIC_GROUPS.values(), self.default_topic])
        return [f"{self.topic_prefix}.{group}" for group in groups]

    def topic_for(self, event_type: RuntimeEventType | str) -> str:
        group = str(RuntimeEventType(event_type).value).split(".", 1)[0]
        return f"{self.topic_prefix}.{TOPIC_GROUPS.get(group, self.default_topic)}"

    def key_for(self, event: RuntimeEvent) -> bytes | None:
        """The partition key: the ``partition_by`` value, else the job id, else None (any partition)."""
        name = self.partition_by
        value = getattr(event, name) if name in _EVENT_FIELDS else event.data.get(name)
        if value is None or value == "":
            value = event.job_id
        return None if value is None else str(value).encode("utf-8")

    def producer_kwargs(self) -> dict[str, Any]:
        servers = self.bootstrap_servers
        return {
            "bootstrap_servers": list(servers) if isinstance(servers, tuple) else servers,
            "client_id": self.client_id,
            "acks": self.acks,
            "compression_type": self.compression_type,
            "max_batch_size": self.batch_size,
            "linger_ms": self.linger_ms,
            "request_timeout_ms": self.request_timeout_ms,
            "enable_idempotence": self.enable_idempotence,
            **self.producer_options,
        }


@dataclass(frozen=True, slots=True)
class FailedPublish:
    """An event the broker never acknowledged, after every retry, and why."""

    event: RuntimeEvent
    topic: str
    error: str
    attempts: int
    error_type: str = ""
    failed_at: float = field(default_factory=time.time)


ErrorCallback = Callable[[FailedPublish], Awaitable[object] | object]


@dataclass(slots=True)
class _Pending:
    event: RuntimeEvent
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    future: asyncio.Future[Any] | None
    error: BaseException | None = None
    sent: asyncio.Event = field(default_factory=asyncio.Event)


class KafkaEventAdapter:
    """Forwards a bus's events to Kafka topics (see the module docstring for routing and order).

    ``start()`` connects and subscribes; ``stop()`` forwards what the bus already holds, waits for
    every send to be acknowledged or reported, then disconnects. ``publish(event)`` produces one
    event directly (the subscription uses it). Counters: ``published`` (acknowledged), ``retries``,
    ``failures``; ``failed`` keeps the last ``max_failed`` :class:`FailedPublish`.
    """

    def __init__(
        self,
        event_bus: EventBus,
        config: KafkaConfig | None = None,
        *,
        on_error: ErrorCallback | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self._aiokafka = _import_aiokafka()
        if not isinstance(event_bus, EventBus):
            raise ValidationError(f"event_bus must be an EventBus, got {type(event_bus).__name__}")
        if config is None:
            config = KafkaConfig()
        if not isinstance(config, KafkaConfig):
            raise ValidationError(f"config must be a KafkaConfig, got {type(config).__name__}")
        if on_error is not None and not callable(on_error):
            raise ValidationError("on_error must be callable or None")
        self.event_bus = event_bus
        self.config = config
        self._on_error = on_error
        self._sleep = sleep
        self._producer: Any = None
        self._subscription: EventSubscription | None = None
        self._pending: deque[_Pending] = deque()
        self._has_pending = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._drained = asyncio.Event()
        self._drained.set()
        self._acker: asyncio.Task[None] | None = None
        self._failed: deque[FailedPublish] = deque(maxlen=config.max_failed)
        self.published = 0
        self.retries = 0
        self.failures = 0

    # --- state ----------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._producer is not None

    @property
    def failed(self) -> list[FailedPublish]:
        """Events given up on, oldest first (at most ``config.max_failed``; ``failures`` counts all)."""
        return list(self._failed)

    @property
    def in_flight(self) -> int:
        """Events handed to the producer whose outcome is not known yet."""
        return len(self._pending)

    @property
    def dropped(self) -> int:
        """Events the bus dropped because this adapter's subscription buffer overflowed."""
        return self._subscription.dropped if self._subscription is not None else 0

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect the producer and subscribe to the bus; raises KafkaAdapterError when unreachable."""
        if self._producer is not None:
            return
        producer = self._aiokafka.AIOKafkaProducer(**self.config.producer_kwargs())
        try:
            await producer.start()
        except Exception as exc:
            await producer.stop()
            raise KafkaAdapterError(
                f"cannot start the Kafka producer for {self.config.bootstrap_servers!r}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        self._producer = producer
        self._acker = asyncio.get_running_loop().create_task(
            self._ack_loop(), name="agent-runtime-kafka-acks"
        )
        self._subscription = await self.event_bus.subscribe(
            self.publish, event_types=self.config.event_types, queue_size=self.config.queue_size
        )

    async def stop(self) -> None:
        """Forward what the bus holds for us, settle every send, then disconnect. Safe to call twice."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            await subscription.wait_idle()
            await subscription.unsubscribe()
        if self._producer is None:
            return
        try:
            await self.flush()
        finally:
            acker, self._acker = self._acker, None
            if acker is not None:
                acker.cancel()
                await asyncio.wait([acker])
            producer, self._producer = self._producer, None
            await producer.stop()

    async def flush(self) -> None:
        """Return once every event published so far is acknowledged or recorded as failed."""
        if self._subscription is not None:
            await self._subscription.wait_idle()
        await self._drained.wait()

    async def ensure_topics(self, num_partitions: int = 1, replication_factor: int = 1) -> list[str]:
        """Create this configuration's topics where missing; returns the ones created.

        For development and tests: production clusters usually provision topics (and their
        partition counts, which bound consumer parallelism) out of band.
        """
        _positive_int("num_partitions", num_partitions)
        _positive_int("replication_factor", replication_factor)
        admin_mod = _import_kafka_admin()
        servers = self.config.producer_kwargs()["bootstrap_servers"]
        admin = admin_mod.AIOKafkaAdminClient(
            bootstrap_servers=servers, request_timeout_ms=self.config.request_timeout_ms
        )
        try:
            await admin.start()
        except Exception as exc:
            await admin.close()
            raise KafkaAdapterError(
                f"cannot reach Kafka at {servers!r}: {type(exc).__name__}: {exc}"
            ) from exc
        try:
            existing = set(await admin.list_topics())
            missing = [t for t in self.config.topics if t not in existing]
            if missing:
                await admin.create_topics(
                    [admin_mod.NewTopic(t, num_partitions, replication_factor) for t in missing]
                )
            return missing
        finally:
            await admin.close()

    # --- producing ------------------------------------------------------------------------------

    async def publish(self, event: RuntimeEvent) -> None:
        """Hand one event to the producer without waiting for the broker (outcome: see the counters)."""
        if not isinstance(event, RuntimeEvent):
            raise ValidationError(f"publish() takes a RuntimeEvent, got {type(event).__name__}")
        producer = self._producer
        if producer is None:
            raise KafkaAdapterError("the Kafka adapter is not started")
        while len(self._pending) >= self.config.max_in_flight:
            self._room.clear()
            await self._room.wait()
        entry = _Pending(
            event=event,
            topic=self.config.topic_for(event.type),
            key=self.config.key_for(event),
            value=event.to_json().encode("utf-8"),
            headers=[
                (EVENT_TYPE_HEADER, event.type.value.encode("utf-8")),
                (EVENT_ID_HEADER, event.event_id.encode("utf-8")),
            ],
            future=None,
        )
        # Queued before the send so that flush() never misses it, whatever the send does.
        self._pending.append(entry)
        self._drained.clear()
        self._has_pending.set()
        try:
            entry.future = await producer.send(entry.topic, entry.value, key=entry.key, headers=entry.headers)
        except Exception as exc:  # e.g. no metadata for the topic within request_timeout_ms
            entry.error = exc
        finally:
            if entry.future is None and entry.error is None:  # cancelled while sending
                entry.error = KafkaAdapterError("the send was cancelled")
            entry.sent.set()

    async def _ack_loop(self) -> None:
        """Settle sends in publish order, so a retry is attempted before later events are counted."""
        while True:
            if not self._pending:
                self._drained.set()
                self._has_pending.clear()
                await self._has_pending.wait()
                continue
            entry = self._pending[0]
            # publish() may still be inside producer.send() (waiting for topic metadata).
            await entry.sent.wait()
            try:
                if entry.error is not None:
                    raise entry.error
                assert entry.future is not None
                await entry.future
            except asyncio.CancelledError:
                if entry.future is not None and entry.future.cancelled():
                    await self._retry(entry, KafkaAdapterError("the delivery was cancelled"))
                else:
                    raise
            except Exception as exc:
                await self._retry(entry, exc)
            else:
                self.published += 1
            self._pending.popleft()
            self._room.set()

    async def _retry(self, entry: _Pending, first_error: BaseException) -> None:
        attempts = 1
        last: BaseException = first_error
        replayed = False

        async def attempt() -> None:
            nonlocal attempts, last, replayed
            if not replayed:
                # The policy's first try is the send that already failed: let it decide on that error.
                replayed = True
                raise _classify(first_error) from first_error
            attempts += 1
            producer = self._producer
            if producer is None:
                raise KafkaAdapterError("the Kafka adapter stopped while retrying")
            try:
                await producer.send_and_wait(entry.topic, entry.value, key=entry.key, headers=entry.headers)
            except Exception as exc:
                last = exc
                raise _classify(exc) from exc

        def on_retry(number: int, error: BaseException, delay: float) -> None:
            self.retries += 1
            logger.info(
                "Kafka send of %s to %s failed (attempt %d: %s); retrying in %.2fs",
                entry.event.event_id,
                entry.topic,
                number,
                error,
                delay,
            )

        try:
            await retry_async(attempt, self.config.retry, sleep=self._sleep, on_retry=on_retry)
        except Exception:
            await self._report(
                FailedPublish(
                    entry.event,
                    entry.topic,
                    str(last) or repr(last),
                    attempts,
                    error_type=type(last).__name__,
                )
            )
        else:
            self.published += 1

    async def _report(self, failure: FailedPublish) -> None:
        self.failures += 1
        logger.error(
            "Kafka send of %s event %s to %s failed after %d attempt(s): %s: %s",
            failure.event.type.value,
            failure.event.event_id,
            failure.topic,
            failure.attempts,
            failure.error_type,
            failure.error,
        )
        self._failed.append(failure)
        if self._on_error is not None:
            try:
                result = self._on_error(failure)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("on_error callback failed for event %s", failure.event.event_id)

    async def retry_failed(self) -> int:
        """Send every recorded failure again, in order; returns how many the broker acknowledged."""
        if self._producer is None:
            raise KafkaAdapterError("the Kafka adapter is not started")
        failures = list(self._failed)
        self._failed.clear()
        before = self.published
        for failure in failures:
            await self.publish(failure.event)
        await self.flush()
        return self.published - before

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def __repr__(self) -> str:
        return (
            f"KafkaEventAdapter(bootstrap_servers={self.config.bootstrap_servers!r}, "
            f"topic_prefix={self.config.topic_prefix!r}, running={self.running}, published={self.published}, "
            f"in_flight={self.in_flight}, failures={self.failures})"
        )


def _classify(exc: BaseException) -> Exception:
    """Map a Kafka error onto llm-client's typed errors, whose ``retryable`` drives RetryPolicy."""
    message = f"{type(exc).__name__}: {exc}"
    retriable = bool(getattr(exc, "retriable", False)) or type(exc).__name__ in {
        "KafkaTimeoutError",
        "RequestTimedOutError",
    }
    if isinstance(exc, (TimeoutError, ConnectionError)):
        retriable = True
    if retriable:
        return ProviderConnectionError(message, provider=_PROVIDER, original=exc)
    return InvalidRequestError(message, provider=_PROVIDER, original=exc)
