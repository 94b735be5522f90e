"""Runtime events as a Server-Sent Events response body.

Any ASGI framework can return ``adapter.events()`` as a ``text/event-stream`` body. Idle
connections get a keepalive comment so proxies and load balancers do not cut them, and each
message carries the event id so a reconnecting browser can resume with ``Last-Event-ID``
(pass it as ``last_event_id`` to skip what the client already has).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from types import TracebackType
from typing import Self

from ..errors import ValidationError
from .bus import EventBus, EventStream, EventTypesArg
from .models import SSE_KEEPALIVE, RuntimeEvent

__all__ = ["SSEEventAdapter"]


class SSEEventAdapter:
    """Turns runtime events into SSE strings.

    Attached to a bus (``SSEEventAdapter(bus, job_id=...)``) it streams that job from its first
    event, and ``events()`` ends after the job's terminal event. Without a bus, events are fed with
    :meth:`adapt` (it can also be given to ``bus.subscribe``). ``stop()`` ends ``events()`` once
    the events already queued have been sent.
    """

    def __init__(
        self,
        event_bus: EventBus | None = None,
        *,
        job_id: str | None = None,
        event_types: EventTypesArg = None,
        keepalive_seconds: float | None = 15.0,
        last_event_id: str | None = None,
        retry_ms: int | None = None,
        queue_size: int = 1000,
    ) -> None:
        if event_bus is not None and not isinstance(event_bus, EventBus):
            raise ValidationError(f"event_bus must be an EventBus, got {type(event_bus).__name__}")
        if keepalive_seconds is not None and (
            isinstance(keepalive_seconds, bool)
            or not isinstance(keepalive_seconds, (int, float))
            or keepalive_seconds <= 0
        ):
            raise ValidationError(f"keepalive_seconds must be > 0 or None, got {keepalive_seconds!r}")
        if retry_ms is not None and (not isinstance(retry_ms, int) or retry_ms < 0):
            raise ValidationError(f"retry_ms must be a non-negative integer, got {retry_ms!r}")
        self.event_bus = event_bus
        self.job_id = job_id
        self.keepalive_seconds = keepalive_seconds
        self.last_event_id = last_event_id
        self.retry_ms = retry_ms
        self._event_types = event_types
        self._queue_size = queue_size
        # Built now, so that adapt() before start() is kept and a bad filter fails here.
        self._stream: EventStream = EventStream(job_id=job_id, event_types=event_types, queue_size=queue_size)
        self._started = False

    @property
    def dropped(self) -> int:
        """Events lost because the client read too slowly (oldest non-terminal first)."""
        return self._stream.dropped

    async def start(self) -> None:
        """Attach to the bus (if any). Idempotent; :meth:`events` calls it too."""
        if self._started:
            return
        self._started = True
        if self.event_bus is not None:
            pending = self._stream
            self._stream = self.event_bus.stream(
                job_id=self.job_id,
                event_types=self._event_types,
                after_event_id=self.last_event_id,
                queue_size=self._queue_size,
            )
            # Events handed to adapt() before start() still go out, after the replayed history.
            while (event := pending.get_nowait()) is not None:
                self._stream.offer(event)

    async def adapt(self, event: RuntimeEvent) -> None:
        """Queue one event for the SSE client (ignored when it does not match the filters)."""
        if not isinstance(event, RuntimeEvent):
            raise ValidationError(f"adapt() takes a RuntimeEvent, got {type(event).__name__}")
        self._stream.offer(event)

    async def events(self) -> AsyncGenerator[str, None]:
        """SSE messages, with ``: keepalive`` comments while idle; ends on stop() or job end.

        One client per adapter: when the generator is closed (the client went away), the adapter
        is stopped and detached from the bus.
        """
        await self.start()
        try:
            if self.retry_ms is not None:
                yield f"retry: {self.retry_ms}\n\n"
            while True:
                try:
                    if self.keepalive_seconds is None:
                        event = await anext(self._stream)
                    else:
                        event = await asyncio.wait_for(anext(self._stream), self.keepalive_seconds)
                except TimeoutError:
                    yield SSE_KEEPALIVE
                    continue
                except StopAsyncIteration:
                    return
                yield event.to_sse()
        finally:
            self._stream.close()

    async def stop(self) -> None:
        """End :meth:`events` after the already queued events."""
        self._stream.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
