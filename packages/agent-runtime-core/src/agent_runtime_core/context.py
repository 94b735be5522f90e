"""The run context the runner hands to an agent: events, checkpoints, cancellation, tools.

Run ids: a run id may be a UUID or any non-empty string (the seed uses ``"run-123"``). The string
form (``run_key``: the canonical UUID text, or the string as given) names the run in the event bus
and the state store; ``run_id`` is always a UUID, as :class:`~agent_runtime_core.RunContext`
promises: the UUID itself, or a UUID5 derived from the string (stable across processes).

Cancellation is llm-client's :class:`~llm_client.CancellationToken`, the one cancellation primitive
of the stack: pass the same token in a ``RequestContext`` and a cancelled run also interrupts its
model call in flight.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from llm_client import CancellationToken

from .interfaces import EventType, RunContext
from .tracing import NoopTraceSink, TraceSink

if TYPE_CHECKING:
    from .events.base import EventBus
    from .state.base import StateStore
    from .tools import ToolRegistry

__all__ = ["DefaultRunContext", "RunCancelledError", "normalize_run_id", "run_key_of"]

logger = logging.getLogger(__name__)

_RUN_ID_NAMESPACE = uuid.UUID("6f1c1a4e-2b7d-5c3e-9a4f-0d8e7b6a5c41")
_HEARTBEAT = EventType.RUN_HEARTBEAT.value
_UUID_LENGTHS = frozenset({32, 36, 38, 45})  # hex, canonical, {braced}, urn:uuid:...


class RunCancelledError(Exception):
    """A run stopped because cancellation was requested (``runner.cancel`` or the token)."""

    retryable = False


def run_key_of(run_id: str | uuid.UUID) -> tuple[str, uuid.UUID | None]:
    """``(key, uuid or None)``: the key naming a run in the bus and the store, and its UUID if it is one.

    Anything but a UUID or a string raises TypeError; an empty string raises ValueError.
    """
    if isinstance(run_id, str):
        if not run_id:
            raise ValueError("run_id must be a non-empty string")
        if len(run_id) not in _UUID_LENGTHS:  # cheap: most non-UUID ids are ruled out without parsing
            return run_id, None
        try:
            parsed = uuid.UUID(run_id)
        except ValueError:
            return run_id, None
        return str(parsed), parsed
    if isinstance(run_id, uuid.UUID):
        return str(run_id), run_id
    raise TypeError(f"run_id must be a str or uuid.UUID, got {type(run_id).__name__}")


def normalize_run_id(run_id: str | uuid.UUID) -> tuple[uuid.UUID, str]:
    """``(uuid, key)`` for a run id given as a UUID or a non-empty string.

    ``key`` names the run in the event bus and state store. A string that parses as a UUID maps to
    that UUID and its canonical text; any other string keeps its text as the key and maps to a
    UUID5 of it (the same in every process). Anything else raises TypeError; an empty string
    raises ValueError.
    """
    key, parsed = run_key_of(run_id)
    return (uuid.uuid5(_RUN_ID_NAMESPACE, key) if parsed is None else parsed), key


class DefaultRunContext(RunContext):
    """A :class:`RunContext` backed by an event bus and a state store.

    ``emit`` publishes to the bus under ``run_key`` (and, when a real trace sink is set, passes the
    published event to it); ``checkpoint`` saves to the state store and emits ``state.checkpoint``;
    ``get_state`` returns the latest checkpoint; ``is_cancelled`` reads the cancellation token.
    """

    def __init__(
        self,
        run_id: str | uuid.UUID,
        input_messages: list[dict[str, Any]],
        metadata: dict[str, Any] | None = None,
        tools: ToolRegistry | None = None,
        *,
        event_bus: EventBus,
        state_store: StateStore,
        cancel_token: CancellationToken | None = None,
        trace_sink: TraceSink | None = None,
    ) -> None:
        self.run_key, self._run_uuid = run_key_of(run_id)
        if not isinstance(input_messages, list):
            raise TypeError(f"input_messages must be a list, got {type(input_messages).__name__}")
        if metadata is not None and not isinstance(metadata, dict):
            raise TypeError(f"metadata must be a dict or None, got {type(metadata).__name__}")
        self.input_messages = input_messages
        self.metadata = {} if metadata is None else metadata
        self._tools = tools
        self.event_bus = event_bus
        self.state_store = state_store
        self.cancel_token = CancellationToken() if cancel_token is None else cancel_token
        self.trace_sink = trace_sink
        self._publish = event_bus.publish
        self._trace: Callable[[dict[str, Any]], Awaitable[None]] | None = (
            None if trace_sink is None or type(trace_sink) is NoopTraceSink else trace_sink.trace
        )

    @property
    def run_id(self) -> uuid.UUID:
        """The run's UUID (derived from ``run_key`` on first use when the id is not a UUID)."""
        if self._run_uuid is None:
            self._run_uuid = uuid.uuid5(_RUN_ID_NAMESPACE, self.run_key)
        return self._run_uuid

    @run_id.setter
    def run_id(self, value: uuid.UUID) -> None:
        raise AttributeError("a run context's run_id is fixed when it is created")

    @property
    def tools(self) -> ToolRegistry:
        if self._tools is None:
            from .tools import ToolRegistry

            self._tools = ToolRegistry()
        return self._tools

    async def emit(self, event_type: EventType | str, payload: dict[str, Any]) -> None:
        """Publish one event. A payload that is not JSON-serialisable raises TypeError."""
        event = await self._publish(self.run_key, event_type, payload)
        if self._trace is not None and event.event_type != _HEARTBEAT:
            try:
                await self._trace(event.to_dict())
            except Exception:  # tracing must never fail a run
                logger.exception("trace sink %r failed on %s", self.trace_sink, event.event_type)

    async def checkpoint(self, state: dict[str, Any]) -> None:
        """Save ``state`` as this run's latest checkpoint and emit ``state.checkpoint``.

        ``state`` must be a JSON-serialisable dict; anything else raises TypeError before anything
        is stored.
        """
        if not isinstance(state, dict):
            raise TypeError(f"checkpoint state must be a dict, got {type(state).__name__}")
        seq = await self.state_store.save_checkpoint(self.run_key, state)
        await self.emit(EventType.CHECKPOINT, {"seq": seq})

    async def get_state(self) -> dict[str, Any] | None:
        return await self.state_store.get_checkpoint(self.run_key)

    def is_cancelled(self) -> bool:
        return self.cancel_token.is_cancelled

    def raise_if_cancelled(self) -> None:
        """Raise :class:`RunCancelledError` if cancellation was requested."""
        if self.cancel_token.is_cancelled:
            reason = self.cancel_token.reason
            raise RunCancelledError(f"run {self.run_key!r} was cancelled" + (f": {reason}" if reason else ""))

    def __repr__(self) -> str:
        return f"<DefaultRunContext run_key={self.run_key!r}>"
