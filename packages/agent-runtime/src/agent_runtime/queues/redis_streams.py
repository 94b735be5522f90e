"""Runtime events into Redis Streams: one stream per topic, consumer groups, at-least-once reads.

Why streams and not the bus alone: the in-memory bus lives and dies with its process, while a stream
is durable, replayable (``read_range``) and shared by a consumer group, whose members split the
events and acknowledge them; an entry a dead consumer took but never acknowledged stays pending and
is claimed by a live one once it has been idle ``claim_min_idle_ms`` (XAUTOCLAIM).

Routing: an event goes to ``{stream_prefix}:{topic}``, the topic being the first part of its dotted
type (``job``, ``tool``, ``action``, ``progress``, ``model``, ``artifact``, ``final``), and, unless
``default_stream`` is None, also to ``{stream_prefix}:{default_stream}``, so
one stream holds every event in publication order (per-topic streams cannot give a total order);
both XADDs run in one Lua script, so a reader never sees an event in one stream and not the other.
Each XADD trims with MAXLEN (``~`` by default: approximate trimming frees whole stream nodes and is
far cheaper than exact trimming, at the price of keeping somewhat more than ``max_len`` entries).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llm_client import RetryPolicy
from llm_client.retry import retry_async

from ..errors import AgentRuntimeError, ValidationError
from ..events.bus import EventBus, EventSubscription
from ..events.models import RuntimeEvent
from ..storage.redis._common import connect, run_script, text

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "RedisStreamsConfig",
    "RedisStreamsAdapter",
    "StreamEntry",
    "StreamEntryDecodeError",
    "DEFAULT_PUBLISH_RETRY",
]

logger = logging.getLogger("agent_runtime.queues.redis_streams")


def _name(value: object, what: str) -> str:
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        raise ValidationError(f"{what} must be a non-empty string without whitespace, got {value!r}")
    return value


def _count(value: object, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValidationError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class RedisStreamsConfig:
    """Where events go and how consumers read them.

    ``max_len`` None disables trimming. ``block_ms`` is how long one XREADGROUP waits for new entries
    (0: do not wait); between waits a reader claims entries idle for ``claim_min_idle_ms``.
    ``group_start_id`` is where a newly created group starts (``"0"``: the whole stream, ``"$"``:
    only entries added afterwards).
    """

    stream_prefix: str = "agent:events"
    default_stream: str | None = "all"
    max_len: int | None = 100_000
    approximate_trim: bool = True
    consumer_group: str = "default"
    consumer_name: str = "worker-1"
    block_ms: int = 5000
    read_count: int = 100
    claim_min_idle_ms: int = 60_000
    group_start_id: str = "0"

    def __post_init__(self) -> None:
        _name(self.stream_prefix, "stream_prefix")
        if self.default_stream is not None:
            _name(self.default_stream, "default_stream")
        if self.max_len is not None:
            _count(self.max_len, "max_len", 1)
        if not isinstance(self.approximate_trim, bool):
            raise ValidationError(f"approximate_trim must be a bool, got {self.approximate_trim!r}")
        _name(self.consumer_group, "consumer_group")
        _name(self.consumer_name, "consumer_name")
        _count(self.block_ms, "block_ms", 0)
        _count(self.read_count, "read_count", 1)
        _count(self.claim_min_idle_ms, "claim_min_idle_ms", 0)
        _name(self.group_start_id, "group_start_id")


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """One stream entry: where it is (stream, id: what XACK needs) and the event it carries."""

    stream: str
    entry_id: str
    event: RuntimeEvent


class StreamEntryDecodeError(AgentRuntimeError):
    """An entry is not a runtime event written by this adapter.

    It is left unacknowledged (inspect it with XRANGE, then XACK or XDEL it): dropping it silently
    would lose data, and acknowledging it would hide a producer bug.
    """

    def __init__(self, stream: str, entry_id: str, reason: str) -> None:
        super().__init__(f"entry {entry_id} of stream {stream!r} is not a runtime event: {reason}")
        self.stream = stream
        self.entry_id = entry_id


@dataclass(frozen=True, slots=True)
class _TransientRedisRetry(RetryPolicy):
    """Retries only connection-level failures: a command Redis refused will be refused again."""

    def is_retryable(self, error: BaseException) -> bool:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        return isinstance(error, (RedisConnectionError, RedisTimeoutError, ConnectionError))


#: A short retry for publishing: an event held up longer than this is better reported as failed.
DEFAULT_PUBLISH_RETRY = _TransientRedisRetry(
    max_attempts=4, initial_delay=0.05, multiplier=4.0, max_delay=1.0, jitter=0.5, max_total_time=5.0
)


# KEYS: the streams. ARGV: trim ('', '~' or '='), max_len, event JSON, type, job id.
# Returns the entry id in the first stream.
_XADD_ALL = """
local first
for i, key in ipairs(KEYS) do
  local id
  if ARGV[1] == '' then
    id = redis.call('XADD', key, '*', 'event', ARGV[3], 'type', ARGV[4], 'job_id', ARGV[5])
  else
    id = redis.call('XADD', key, 'MAXLEN', ARGV[1], ARGV[2], '*', 'event', ARGV[3], 'type', ARGV[4],
      'job_id', ARGV[5])
  end
  if i == 1 then first = id end
end
return first
"""


def _decode(stream: str, entry_id: Any, fields: Any) -> StreamEntry:
    ident = text(entry_id)
    if not fields:
        raise StreamEntryDecodeError(stream, ident, "it has no fields (deleted or trimmed)")
    body = fields.get(b"event", fields.get("event")) if isinstance(fields, dict) else None
    if body is None:
        raise StreamEntryDecodeError(stream, ident, "it has no 'event' field")
    try:
        event = RuntimeEvent.from_dict(json.loads(text(body)))
    except (ValueError, TypeError) as exc:
        raise StreamEntryDecodeError(stream, ident, str(exc)) from None
    return StreamEntry(stream=stream, entry_id=ident, event=event)


class RedisStreamsAdapter:
    """Forwards an EventBus into Redis Streams and reads them back (see the module docstring).

    ``event_bus`` may be None in a consumer-only process. ``published``/``failed`` count events the
    bus handed over; a failed one (after ``retry_policy``) is logged and also counted by the bus.
    """

    def __init__(
        self,
        redis_client: Redis | None,
        event_bus: EventBus | None,
        config: RedisStreamsConfig | None = None,
        *,
        redis_url: str | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        if event_bus is not None and not isinstance(event_bus, EventBus):
            raise ValidationError(f"event_bus must be an EventBus or None, got {type(event_bus).__name__}")
        if config is not None and not isinstance(config, RedisStreamsConfig):
            raise ValidationError(f"config must be a RedisStreamsConfig, got {type(config).__name__}")
        self._conn = connect("RedisStreamsAdapter", redis_client, redis_url)
        self.event_bus = event_bus
        self.config = config or RedisStreamsConfig()
        self._retry = retry_policy or DEFAULT_PUBLISH_RETRY
        self._subscription: EventSubscription | None = None
        self._stopped = asyncio.Event()
        self._groups: set[str] = set()
        self.published = 0
        self.failed = 0

    # -- routing -------------------------------------------------------------------------------

    def stream_name(self, topic: str) -> str:
        return f"{self.config.stream_prefix}:{_name(topic, 'topic')}"

    @property
    def default_stream(self) -> str | None:
        name = self.config.default_stream
        return None if name is None else self.stream_name(name)

    def topic_stream(self, event: RuntimeEvent) -> str:
        return self.stream_name(event.type.value.split(".", 1)[0])

    def streams_for(self, event: RuntimeEvent) -> list[str]:
        streams = [self.topic_stream(event)]
        if self.default_stream is not None and self.default_stream not in streams:
            streams.append(self.default_stream)
        return streams

    def _stream(self, stream: str | None) -> str:
        if stream is None:
            if self.default_stream is None:
                raise ValidationError("name a stream: this adapter has no default_stream")
            return self.default_stream
        return _name(stream, "stream")

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._subscription is not None

    async def start(self) -> None:
        """Forward every event published on the bus from now on. Idempotent."""
        if self._subscription is not None:
            return
        self._stopped = asyncio.Event()
        if self.event_bus is not None:
            self._subscription = await self.event_bus.subscribe(self._forward)

    async def stop(self) -> None:
        """Write what the bus already handed over, stop forwarding, and end every ``read_events``."""
        self._stopped.set()
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            await subscription.wait_idle()
            await subscription.unsubscribe()

    async def __aenter__(self) -> RedisStreamsAdapter:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def close(self) -> None:
        await self.stop()
        await self._conn.close()

    async def _forward(self, event: RuntimeEvent) -> None:
        try:
            await retry_async(lambda: self.publish(event), self._retry)
        except Exception:
            self.failed += 1
            logger.exception("writing %s event %s to Redis Streams failed", event.type.value, event.event_id)
            raise
        self.published += 1

    # -- writing -------------------------------------------------------------------------------

    async def publish(self, event: RuntimeEvent) -> str:
        """Append ``event`` to its streams; returns its entry id in the topic stream."""
        if not isinstance(event, RuntimeEvent):
            raise ValidationError(f"publish() takes a RuntimeEvent, got {type(event).__name__}")
        fields: dict[Any, Any] = {
            "event": event.to_json(),
            "type": event.type.value,
            "job_id": event.job_id or "",
        }
        cfg = self.config
        streams = self.streams_for(event)
        client = self._conn.client()
        if len(streams) == 1:
            entry = await client.xadd(
                streams[0], fields, maxlen=cfg.max_len, approximate=cfg.approximate_trim
            )
            return text(entry)
        # One script, not MULTI/EXEC: atomic all the same, and about twice as fast through redis-py.
        trim = "" if cfg.max_len is None else ("~" if cfg.approximate_trim else "=")
        args = [trim, cfg.max_len or 0, fields["event"], fields["type"], fields["job_id"]]
        return text(await run_script(client, _XADD_ALL, streams, args))

    # -- reading without a group ---------------------------------------------------------------

    async def range_entries(
        self, stream: str | None = None, start: str = "-", end: str = "+", count: int | None = None
    ) -> list[StreamEntry]:
        """Entries between two ids (inclusive; ``(id`` excludes), oldest first: for paging."""
        name = self._stream(stream)
        if count is not None:
            _count(count, "count", 1)
        rows = await self._conn.client().xrange(name, min=start, max=end, count=count)
        return [_decode(name, entry_id, fields) for entry_id, fields in rows or []]

    async def read_range(
        self, stream: str | None = None, start: str = "-", end: str = "+", count: int | None = None
    ) -> list[RuntimeEvent]:
        """The events between two entry ids (``"-"``: oldest, ``"+"``: newest), oldest first."""
        return [entry.event for entry in await self.range_entries(stream, start, end, count)]

    async def length(self, stream: str | None = None) -> int:
        return int(await self._conn.client().xlen(self._stream(stream)))

    # -- consumer groups -----------------------------------------------------------------------

    async def ensure_group(self, stream: str | None = None) -> None:
        """Create the consumer group (and the stream) if missing; safe from many processes at once."""
        from redis.exceptions import ResponseError

        name = self._stream(stream)
        try:
            await self._conn.client().xgroup_create(
                name, self.config.consumer_group, id=self.config.group_start_id, mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._groups.add(name)

    async def _group_call(self, name: str, call: Any) -> Any:
        """Run a group command, (re)creating the group when Redis says it is missing (NOGROUP):
        the stream may have been deleted and recreated since we created the group."""
        from redis.exceptions import ResponseError

        if name not in self._groups:
            await self.ensure_group(name)
        try:
            return await call()
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._groups.discard(name)
            await self.ensure_group(name)
            return await call()

    async def read_group(
        self,
        stream: str | None = None,
        *,
        count: int | None = None,
        block_ms: int | None = None,
        pending: bool = False,
        consumer: str | None = None,
    ) -> list[StreamEntry]:
        """One XREADGROUP: new entries (or, with ``pending=True``, this consumer's unacknowledged
        ones). Nothing is acknowledged: call :meth:`ack` after processing.

        A block that would come within 20% (at least 250 ms, at most half) of the client's
        ``socket_timeout`` is shortened: the read would otherwise fail client-side with a
        TimeoutError on a busy machine (redis-py's default timeout is 5 s, the seed's ``block_ms``
        too). ``read_events`` simply blocks again.
        """
        name = self._stream(stream)
        size = self.config.read_count if count is None else _count(count, "count", 1)
        wait = self.config.block_ms if block_ms is None else _count(block_ms, "block_ms", 0)
        who = self.config.consumer_name if consumer is None else _name(consumer, "consumer")
        client = self._conn.client()
        cap = _block_cap_ms(client)
        if cap is not None:
            wait = min(wait, cap)

        async def call() -> Any:
            return await client.xreadgroup(
                self.config.consumer_group,
                who,
                {name: "0" if pending else ">"},
                count=size,
                block=None if pending or wait == 0 else wait,
            )

        reply = await self._group_call(name, call)
        entries: list[StreamEntry] = []
        for _stream, rows in _stream_rows(reply):
            for entry_id, fields in rows:
                if not fields and pending:
                    # Trimmed away while pending: nothing to process, only the stale reference to drop.
                    await client.xack(name, self.config.consumer_group, entry_id)
                    continue
                entries.append(_decode(name, entry_id, fields))
        return entries

    async def ack(self, stream: str | None, *entry_ids: str) -> int:
        """Acknowledge processed entries; returns how many were pending."""
        if not entry_ids:
            return 0
        name = self._stream(stream)
        return int(await self._conn.client().xack(name, self.config.consumer_group, *entry_ids))

    async def claim_stale(
        self,
        stream: str | None = None,
        *,
        min_idle_ms: int | None = None,
        count: int | None = None,
        consumer: str | None = None,
    ) -> list[StreamEntry]:
        """Take over entries other consumers read but did not acknowledge for ``min_idle_ms``."""
        name = self._stream(stream)
        idle = self.config.claim_min_idle_ms if min_idle_ms is None else _count(min_idle_ms, "min_idle_ms", 0)
        size = self.config.read_count if count is None else _count(count, "count", 1)
        who = self.config.consumer_name if consumer is None else _name(consumer, "consumer")
        client = self._conn.client()
        claimed: list[StreamEntry] = []
        cursor = "0-0"
        while len(claimed) < size:

            async def call(start: str = cursor, want: int = size - len(claimed)) -> Any:
                return await client.xautoclaim(
                    name, self.config.consumer_group, who, idle, start_id=start, count=want
                )

            reply = await self._group_call(name, call)
            cursor = text(reply[0])
            for entry_id, fields in reply[1]:
                claimed.append(_decode(name, entry_id, fields))
            if cursor == "0-0":
                break
        return claimed

    async def pending_count(self, stream: str | None = None) -> int:
        """Entries delivered to the group's consumers but not yet acknowledged."""
        name = self._stream(stream)
        summary = await self._group_call(
            name, lambda: self._conn.client().xpending(name, self.config.consumer_group)
        )
        return int(summary["pending"])

    async def read_events(
        self, stream: str | None = None, *, count: int | None = None, block_ms: int | None = None
    ) -> AsyncIterator[RuntimeEvent]:
        """Events for this consumer of the group, forever (until :meth:`stop` or the caller stops);
        with ``block_ms=0`` only those available now (the iterator then ends).

        At least once: an event is acknowledged only once the loop body that received it has
        finished (when the loop asks for the next one), so an event whose processing crashed the
        worker is redelivered: to this consumer name on restart (its own pending entries come
        first), or to another consumer once idle for ``claim_min_idle_ms``.
        """
        name = self._stream(stream)
        wait = self.config.block_ms if block_ms is None else _count(block_ms, "block_ms", 0)
        stopped = self._stopped
        done: list[str] = []
        own_pending = True
        try:
            while not stopped.is_set():
                if own_pending:
                    batch = await self.read_group(name, count=count, pending=True)
                    own_pending = bool(batch)
                    if not batch:
                        batch = await self.claim_stale(name, count=count)
                else:
                    read = asyncio.ensure_future(self.read_group(name, count=count, block_ms=block_ms))
                    halt = asyncio.ensure_future(stopped.wait())
                    await asyncio.wait({read, halt}, return_when=asyncio.FIRST_COMPLETED)
                    halt.cancel()
                    if not read.done():
                        # Entries the cancelled read took stay pending: redelivered, never lost.
                        read.cancel()
                        await asyncio.gather(read, return_exceptions=True)
                        return
                    batch = read.result()
                    if not batch:
                        batch = await self.claim_stale(name, count=count)
                    if not batch and wait == 0:
                        return  # block_ms=0: drain what is there, then end
                for entry in batch:
                    yield entry.event
                    done.append(entry.entry_id)
                await self.ack(name, *done)
                done.clear()
        finally:
            if done:
                await asyncio.shield(self.ack(name, *done))


def _block_cap_ms(client: Any) -> int | None:
    """The longest BLOCK the client's socket timeout survives (None: the client never times out)."""
    kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", None) or {}
    timeout = kwargs.get("socket_timeout", kwargs.get("orig_socket_timeout"))
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        return None
    margin = min(max(timeout * 0.2, 0.25), timeout * 0.5)
    return max(1, int((timeout - margin) * 1000))


def _stream_rows(reply: Any) -> Sequence[tuple[Any, Any]]:
    """XREADGROUP replies are a list of [stream, rows] (RESP2) or a dict (RESP3)."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return list(reply.items())
    return [(row[0], row[1]) for row in reply]
