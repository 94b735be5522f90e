"""The event bus: fan runtime events out to handlers and streams without letting any of them slow
the job that publishes.

Delivery model (the in-memory bus; other buses should keep the same promises):

* ``publish()`` never waits for a consumer. Each subscription has its own bounded buffer, drained
  by its own task, so a slow or stuck handler delays only itself.
* Overflow policy: when a buffer is full, the **oldest non-terminal** event in it is dropped and
  ``subscription.dropped`` (or ``stream.dropped``) counts it. Terminal job events
  (:data:`~agent_runtime.events.models.TERMINAL_EVENT_TYPES`) are never dropped, so a lagging
  consumer still learns how the job ended; it loses intermediate detail (typically tokens) instead.
* A handler that raises is logged and counted in ``subscription.errors``; other subscribers and
  the publisher never see the exception. Cancellation is not swallowed.
* Per-job history (bounded) lets ``stream(job_id=...)`` opened after the job started replay the
  job's events from the start, then follow live ones, and end after the job's terminal event.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import weakref
from abc import ABC, abstractmethod
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Self

from ..errors import AgentRuntimeError, ValidationError
from .models import RuntimeEvent, RuntimeEventType, coerce_event_types

__all__ = [
    "EventBus",
    "EventBusClosedError",
    "EventHandler",
    "EventStream",
    "EventSubscription",
    "InMemoryEventBus",
]

logger = logging.getLogger("agent_runtime.events")

EventHandler = Callable[[RuntimeEvent], Awaitable[object] | object]
"""An async (or plain) callable taking one event; its return value is ignored."""

EventTypesArg = Iterable[RuntimeEventType | str] | RuntimeEventType | str | None

_ids = itertools.count(1)


class EventBusClosedError(AgentRuntimeError):
    """The bus was closed: nothing can be published or subscribed any more."""


def _check_size(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"{name} must be a positive integer, got {value!r}")
    return value


class _EventBuffer:
    """Bounded FIFO whose overflow drops the oldest non-terminal event (see module docstring)."""

    __slots__ = ("_items", "_maxsize", "_ready", "dropped")

    def __init__(self, maxsize: int) -> None:
        self._items: deque[RuntimeEvent] = deque()
        self._maxsize = maxsize
        self._ready = asyncio.Event()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, event: RuntimeEvent) -> bool:
        """Append; returns False when an older event had to be dropped to make room."""
        lost = False
        if len(self._items) >= self._maxsize:
            for index, old in enumerate(self._items):
                if not old.is_terminal:
                    del self._items[index]
                    self.dropped += 1
                    lost = True
                    break
            # Only terminal events queued: keep them all (going over the bound) rather than lose one.
        self._items.append(event)
        self._ready.set()
        return not lost

    def pop(self) -> RuntimeEvent | None:
        if not self._items:
            return None
        event = self._items.popleft()
        if not self._items:
            self._ready.clear()
        return event

    def wake(self) -> None:
        self._ready.set()

    async def wait(self) -> None:
        await self._ready.wait()


class EventSubscription:
    """A handler attached to a bus. Returned by :meth:`EventBus.subscribe`; not built directly.

    ``dropped`` counts events lost to the overflow policy, ``errors`` the handler's exceptions,
    ``delivered`` the events it handled without raising.
    """

    def __init__(
        self,
        handler: EventHandler,
        *,
        event_types: frozenset[RuntimeEventType] | None,
        job_id: str | None,
        queue_size: int,
        on_unsubscribe: Callable[[EventSubscription], None],
    ) -> None:
        self.subscription_id = f"sub-{next(_ids)}"
        self.event_types = event_types
        self.job_id = job_id
        self.delivered = 0
        self.errors = 0
        self._handler = handler
        self._buffer = _EventBuffer(queue_size)
        self._on_unsubscribe = on_unsubscribe
        self._active = True
        self._idle = asyncio.Event()
        self._idle.set()
        self._warned = False
        self._task: asyncio.Task[None] | None = None

    def _start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"agent-runtime-event-subscription-{self.subscription_id}"
        )

    @property
    def active(self) -> bool:
        return self._active

    @property
    def dropped(self) -> int:
        return self._buffer.dropped

    @property
    def pending(self) -> int:
        """Events queued but not yet handed to the handler."""
        return len(self._buffer)

    def matches(self, event: RuntimeEvent) -> bool:
        if self.job_id is not None and event.job_id != self.job_id:
            return False
        return self.event_types is None or event.type in self.event_types

    def _offer(self, event: RuntimeEvent) -> None:
        if not self._active or not self.matches(event):
            return
        self._idle.clear()
        if not self._buffer.put(event) and not self._warned:
            self._warned = True
            logger.warning(
                "event subscription %s is too slow: its queue is full, dropping its oldest events "
                "(terminal job events are kept); see subscription.dropped",
                self.subscription_id,
            )

    async def _run(self) -> None:
        while self._active:
            event = self._buffer.pop()
            if event is None:
                self._idle.set()
                await self._buffer.wait()
                continue
            try:
                result = self._handler(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                self.errors += 1
                logger.exception(
                    "event handler %r of subscription %s failed on %s event %s",
                    self._handler,
                    self.subscription_id,
                    event.type.value,
                    event.event_id,
                )
            else:
                self.delivered += 1

    async def wait_idle(self) -> None:
        """Return once every event offered so far has been handled (or the subscription ended)."""
        while self._active and not self._idle.is_set():
            await self._idle.wait()

    async def unsubscribe(self) -> None:
        """Stop delivery now; queued events are discarded. Safe to call twice or from the handler."""
        if not self._active:
            return
        self._active = False
        self._idle.set()
        self._on_unsubscribe(self)
        task = self._task
        if task is None or task.done():
            return
        if task is asyncio.current_task():
            # Called from inside the handler: the loop exits when the handler returns.
            self._buffer.wake()
            return
        task.cancel()
        await asyncio.wait([task])

    def __repr__(self) -> str:
        types = sorted(t.value for t in self.event_types) if self.event_types is not None else "all"
        return (
            f"EventSubscription({self.subscription_id}, job_id={self.job_id!r}, event_types={types}, "
            f"active={self._active}, delivered={self.delivered}, dropped={self.dropped})"
        )


class EventStream:
    """Events as an async iterator: ``async for event in bus.stream(job_id=...)``.

    With a ``job_id`` the stream ends after that job's terminal event (even when ``event_types``
    filters the terminal event itself out). It also ends after :meth:`aclose` or when its bus
    closes, once the events already buffered have been read. Use ``async with`` (or ``aclose()``)
    to detach promptly; a stream that is simply dropped is detached when garbage-collected.
    """

    def __init__(
        self,
        *,
        job_id: str | None = None,
        event_types: EventTypesArg = None,
        queue_size: int = 1000,
    ) -> None:
        self.job_id = job_id
        self.event_types = coerce_event_types(event_types)
        self._buffer = _EventBuffer(_check_size("queue_size", queue_size))
        self._closed = False
        self._job_over = False

    @property
    def dropped(self) -> int:
        return self._buffer.dropped

    @property
    def closed(self) -> bool:
        """True once no further event will be accepted (closed, or the job has ended)."""
        return self._closed or self._job_over

    def offer(self, event: RuntimeEvent) -> bool:
        """Queue ``event`` if it belongs to this stream; returns whether it was queued."""
        if self.closed:
            return False
        if self.job_id is not None:
            if event.job_id != self.job_id:
                return False
            if event.is_terminal:
                self._job_over = True
                self._buffer.wake()
        if self.event_types is not None and event.type not in self.event_types:
            return False
        self._buffer.put(event)
        return True

    def get_nowait(self) -> RuntimeEvent | None:
        """The next buffered event, or None when none is buffered right now."""
        return self._buffer.pop()

    def close(self) -> None:
        """Stop accepting events; the iterator ends once the buffered ones are read."""
        self._closed = True
        self._buffer.wake()

    async def aclose(self) -> None:
        self.close()

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> RuntimeEvent:
        while True:
            event = self._buffer.pop()
            if event is not None:
                return event
            if self.closed:
                raise StopAsyncIteration
            await self._buffer.wait()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class EventBus(ABC):
    """Where runtime events are published and from where they are consumed."""

    @abstractmethod
    async def subscribe(
        self,
        handler: EventHandler,
        event_types: EventTypesArg = None,
        job_id: str | None = None,
        *,
        queue_size: int | None = None,
    ) -> EventSubscription:
        """Call ``handler`` for every matching event published from now on, in order.

        ``queue_size`` overrides the bus's per-subscriber buffer bound for this subscription.
        """

    @abstractmethod
    async def publish(self, event: RuntimeEvent) -> None:
        """Hand ``event`` to every matching subscriber and stream, without waiting for them."""

    @abstractmethod
    def stream(
        self,
        *,
        job_id: str | None = None,
        event_types: EventTypesArg = None,
        after_event_id: str | None = None,
        queue_size: int | None = None,
    ) -> EventStream:
        """Iterate matching events; with ``job_id``, replay that job's history first."""

    async def close(self) -> None:
        """Stop delivering and release background tasks."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class InMemoryEventBus(EventBus):
    """A single-process bus.

    ``queue_size`` bounds each subscription's and stream's live buffer; ``history_size`` bounds the
    events kept per job for late streams (oldest dropped first), over at most ``max_history_jobs``
    jobs (least recently active job forgotten first).
    """

    def __init__(
        self, *, queue_size: int = 1000, history_size: int = 1000, max_history_jobs: int = 1000
    ) -> None:
        self.queue_size = _check_size("queue_size", queue_size)
        self.history_size = _check_size("history_size", history_size)
        self.max_history_jobs = _check_size("max_history_jobs", max_history_jobs)
        self._subscriptions: dict[str, EventSubscription] = {}
        self._streams: weakref.WeakSet[EventStream] = weakref.WeakSet()
        self._history: OrderedDict[str, deque[RuntimeEvent]] = OrderedDict()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def subscriptions(self) -> list[EventSubscription]:
        return list(self._subscriptions.values())

    def _check_open(self) -> None:
        if self._closed:
            raise EventBusClosedError("the event bus is closed")

    async def subscribe(
        self,
        handler: EventHandler,
        event_types: EventTypesArg = None,
        job_id: str | None = None,
        *,
        queue_size: int | None = None,
    ) -> EventSubscription:
        self._check_open()
        if not callable(handler):
            raise ValidationError(f"handler must be callable, got {type(handler).__name__}")
        if job_id is not None and not isinstance(job_id, str):
            raise ValidationError(f"job_id must be a string or None, got {type(job_id).__name__}")
        subscription = EventSubscription(
            handler,
            event_types=coerce_event_types(event_types),
            job_id=job_id,
            queue_size=_check_size("queue_size", queue_size if queue_size is not None else self.queue_size),
            on_unsubscribe=self._forget,
        )
        subscription._start()
        self._subscriptions[subscription.subscription_id] = subscription
        return subscription

    def _forget(self, subscription: EventSubscription) -> None:
        self._subscriptions.pop(subscription.subscription_id, None)

    async def publish(self, event: RuntimeEvent) -> None:
        self._check_open()
        if not isinstance(event, RuntimeEvent):
            raise ValidationError(f"publish() takes a RuntimeEvent, got {type(event).__name__}")
        if event.job_id is not None:
            self._record(event)
        for subscription in list(self._subscriptions.values()):
            subscription._offer(event)
        for stream in list(self._streams) if self._streams else ():
            if stream.closed:
                self._streams.discard(stream)
            else:
                stream.offer(event)

    def _record(self, event: RuntimeEvent) -> None:
        assert event.job_id is not None
        history = self._history.get(event.job_id)
        if history is None:
            history = self._history[event.job_id] = deque(maxlen=self.history_size)
            while len(self._history) > self.max_history_jobs:
                self._history.popitem(last=False)
        else:
            self._history.move_to_end(event.job_id)
        history.append(event)

    def history(self, job_id: str) -> list[RuntimeEvent]:
        """The events kept for ``job_id``, oldest first (empty for an unknown job)."""
        return list(self._history.get(job_id, ()))

    def stream(
        self,
        *,
        job_id: str | None = None,
        event_types: EventTypesArg = None,
        after_event_id: str | None = None,
        queue_size: int | None = None,
    ) -> EventStream:
        """Iterate events; with ``job_id``, first the job's kept history (after ``after_event_id``,
        e.g. an SSE client's Last-Event-ID, when it is still in the history), then live events.

        History and live events are joined without a gap or a duplicate: both happen in this call,
        with no await in between.
        """
        self._check_open()
        replay = self.history(job_id) if job_id is not None else []
        if after_event_id is not None:
            for index, event in enumerate(replay):
                if event.event_id == after_event_id:
                    replay = replay[index + 1 :]
                    break
        live_size = _check_size("queue_size", queue_size if queue_size is not None else self.queue_size)
        stream = EventStream(job_id=job_id, event_types=event_types, queue_size=live_size + len(replay))
        for event in replay:
            stream.offer(event)
        if not stream.closed:
            self._streams.add(stream)
        return stream

    async def flush(self) -> None:
        """Wait until every subscription has handled what was published so far.

        For graceful shutdown and tests; a handler that never returns makes this wait forever, so
        bound it with ``asyncio.timeout`` when handlers are not trusted.
        """
        for subscription in list(self._subscriptions.values()):
            await subscription.wait_idle()

    async def close(self) -> None:
        """Refuse new events, end every stream (after its buffered events) and stop every handler task."""
        if self._closed:
            return
        self._closed = True
        for stream in list(self._streams):
            stream.close()
        subscriptions = list(self._subscriptions.values())
        for subscription in subscriptions:
            await subscription.unsubscribe()

    def __repr__(self) -> str:
        return (
            f"InMemoryEventBus(subscriptions={len(self._subscriptions)}, streams={len(self._streams)}, "
            f"jobs_in_history={len(self._history)}, closed={self._closed})"
        )
