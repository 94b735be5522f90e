"""Trace sinks: where a run's lifecycle and events go for observability.

A sink receives one plain dict per event (``Event.to_dict()``: ``run_id``, ``seq``, ``event_type``,
``payload``, ``timestamp``), in order. The run context sends every event it emits except heartbeats;
the runner's lifecycle events (``run.started`` ... ``run.succeeded``/``run.failed``/...) are among
them. A sink that raises never fails the run: the error is logged and the run goes on.

The Langfuse SDK is optional (``pip install 'agent-runtime-core[langfuse]'``) and imported only when
a :class:`LangfuseTraceSink` is built. Building one without the SDK raises ``ImportError`` naming
the extra; :func:`get_trace_sink` with ``langfuse_enabled=True`` but no SDK logs a warning and
returns the no-op sink instead, so a missing optional package never stops a worker.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import RuntimeConfig

__all__ = ["TraceSink", "NoopTraceSink", "LangfuseTraceSink", "get_trace_sink"]

logger = logging.getLogger(__name__)

_TERMINAL = frozenset({"run.succeeded", "run.failed", "run.cancelled", "run.timed_out"})


class TraceSink(ABC):
    """Receives trace events. Subclass and implement :meth:`trace`."""

    @abstractmethod
    async def trace(self, event: dict[str, Any]) -> None:
        """Record one event (a JSON-serialisable dict)."""

    async def flush(self) -> None:
        """Send anything buffered. The default does nothing."""
        return

    async def close(self) -> None:
        """Flush and release resources. The default calls :meth:`flush`."""
        await self.flush()


class NoopTraceSink(TraceSink):
    """Discards everything. The run context skips it entirely, so it costs nothing per event."""

    async def trace(self, event: dict[str, Any]) -> None:
        return None


class LangfuseTraceSink(TraceSink):
    """Sends runs to Langfuse: one trace per run, one event per emitted event.

    ``run.started`` opens a span (as the run's root observation, with a trace id derived from the
    run id, so every process working on the same run writes to the same trace); later events become
    Langfuse events under it; a terminal event sets the output (or the error, at level ERROR) and
    ends the span. Keys default to the SDK's ``LANGFUSE_*`` environment variables. ``client`` takes a
    ready-made ``langfuse.Langfuse`` (or a stand-in with the same methods) instead.
    """

    def __init__(
        self,
        public_key: str | None = None,
        secret_key: str | None = None,
        host: str | None = None,
        *,
        client: Any = None,
    ) -> None:
        if client is None:
            try:
                from langfuse import Langfuse
            except ImportError as exc:
                raise ImportError(
                    "LangfuseTraceSink needs the langfuse SDK: pip install 'agent-runtime-core[langfuse]'"
                ) from exc
            # Langfuse installs its TracerProvider as OpenTelemetry's global one unless given its
            # own: that would silently re-route the application's (and llm-client's) spans.
            from opentelemetry.sdk.trace import TracerProvider

            client = Langfuse(
                public_key=public_key, secret_key=secret_key, host=host, tracer_provider=TracerProvider()
            )
        self.client: Any = client
        self._spans: dict[str, Any] = {}

    def _open(self, run_id: str, payload: dict[str, Any]) -> Any:
        trace_id = self.client.create_trace_id(seed=run_id)
        start = getattr(self.client, "start_observation", None) or self.client.start_span
        name = f"run {payload.get('agent_key') or run_id}"
        span = start(
            trace_context={"trace_id": trace_id},
            name=name,
            input=payload.get("input"),
            metadata={"run_id": run_id, **{k: v for k, v in payload.items() if k != "input"}},
        )
        self._spans[run_id] = span
        return span

    async def trace(self, event: dict[str, Any]) -> None:
        run_id = str(event.get("run_id"))
        event_type = str(event.get("event_type"))
        payload = event.get("payload") or {}
        if event_type == "run.started":
            self._open(run_id, payload)
            return
        span = self._spans.get(run_id) or self._open(run_id, {})
        if event_type in _TERMINAL:
            del self._spans[run_id]
            if event_type == "run.succeeded":
                span.update(output=payload.get("output"), metadata={"status": "succeeded"})
            else:
                error = payload.get("error") or {}
                span.update(
                    level="ERROR" if event_type == "run.failed" else "WARNING",
                    status_message=str(error.get("message") or event_type),
                    metadata={"status": event_type.removeprefix("run."), "error": error},
                )
            span.end()
            return
        span.create_event(name=event_type, input=payload, metadata={"seq": event.get("seq")})

    async def flush(self) -> None:
        self.client.flush()

    async def close(self) -> None:
        for span in self._spans.values():
            span.end()
        self._spans.clear()
        self.client.flush()
        shutdown = getattr(self.client, "shutdown", None)
        if shutdown is not None:
            shutdown()


def get_trace_sink(config: RuntimeConfig | None = None) -> TraceSink:
    """The sink the config asks for: Langfuse when ``langfuse_enabled``, else the no-op sink.

    When Langfuse is enabled but its SDK is not installed, logs a warning and returns the no-op sink.
    """
    if config is None:
        from .config import get_config

        config = get_config()
    if not config.langfuse_enabled:
        return NoopTraceSink()
    try:
        return LangfuseTraceSink(
            public_key=config.langfuse_public_key,
            secret_key=config.langfuse_secret_key,
            host=config.langfuse_host,
        )
    except ImportError as exc:
        logger.warning("langfuse_enabled is set but tracing is off: %s", exc)
        return NoopTraceSink()
