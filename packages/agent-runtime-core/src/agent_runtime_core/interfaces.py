"""The agent contract: what an agent implements and what it is given.

An agent is anything with a ``key`` and an ``async run(ctx) -> RunResult``. It talks to the world
only through its :class:`RunContext` (input, tools, events, checkpoints, cancellation), so the same
agent runs under the in-process runner, a Redis worker or the Django app unchanged.
"""

from __future__ import annotations

import traceback
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .tools import ToolRegistry

__all__ = [
    "EventType",
    "EventVisibility",
    "EVENT_VISIBILITY",
    "ErrorInfo",
    "RunResult",
    "RunContext",
    "AgentRuntime",
]


class EventType(StrEnum):
    """Every event a run can emit. The value is the wire name the Django app and SSE clients use."""

    RUN_STARTED = "run.started"
    RUN_SUCCEEDED = "run.succeeded"
    RUN_FAILED = "run.failed"
    RUN_CANCELLED = "run.cancelled"
    RUN_TIMED_OUT = "run.timed_out"
    RUN_HEARTBEAT = "run.heartbeat"
    RUN_RETRYING = "run.retrying"
    TOOL_CALL = "tool.call"
    TOOL_RESULT = "tool.result"
    ASSISTANT_MESSAGE = "assistant.message"
    ASSISTANT_DELTA = "assistant.delta"
    USER_MESSAGE = "user.message"
    CHECKPOINT = "state.checkpoint"
    ERROR = "error"
    STEP_STARTED = "step.started"
    STEP_COMPLETED = "step.completed"
    STEP_FAILED = "step.failed"
    STEP_RETRYING = "step.retrying"
    STEP_SKIPPED = "step.skipped"
    PROGRESS_UPDATE = "progress.update"
    SUB_AGENT_START = "sub_agent.start"
    SUB_AGENT_END = "sub_agent.end"


EventVisibility = Literal["internal", "debug", "user"]

#: Who sees each event by default: ``user`` always, ``debug`` in debug mode, ``internal`` never.
EVENT_VISIBILITY: dict[str, EventVisibility] = {
    EventType.RUN_STARTED: "internal",
    EventType.RUN_SUCCEEDED: "internal",
    EventType.RUN_FAILED: "user",
    EventType.RUN_CANCELLED: "user",
    EventType.RUN_TIMED_OUT: "user",
    EventType.RUN_HEARTBEAT: "internal",
    EventType.RUN_RETRYING: "internal",
    EventType.TOOL_CALL: "debug",
    EventType.TOOL_RESULT: "debug",
    EventType.ASSISTANT_MESSAGE: "user",
    EventType.ASSISTANT_DELTA: "user",
    EventType.USER_MESSAGE: "user",
    EventType.CHECKPOINT: "internal",
    EventType.ERROR: "user",
    EventType.STEP_STARTED: "debug",
    EventType.STEP_COMPLETED: "debug",
    EventType.STEP_FAILED: "debug",
    EventType.STEP_RETRYING: "debug",
    EventType.STEP_SKIPPED: "debug",
    EventType.PROGRESS_UPDATE: "user",
    EventType.SUB_AGENT_START: "debug",
    EventType.SUB_AGENT_END: "debug",
}


@dataclass(slots=True)
class ErrorInfo:
    """Why a run failed, in a form that survives JSON (events, the database, an HTTP response)."""

    type: str
    message: str
    stack: str | None = None
    retryable: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_exception(cls, exc: BaseException, *, retryable: bool | None = None) -> ErrorInfo:
        if retryable is None:
            retryable = bool(getattr(exc, "retryable", False))
        stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return cls(type=type(exc).__name__, message=str(exc), stack=stack, retryable=retryable)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "message": self.message,
            "stack": self.stack,
            "retryable": self.retryable,
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ErrorInfo:
        return cls(
            type=data["type"],
            message=data["message"],
            stack=data.get("stack"),
            retryable=bool(data.get("retryable", False)),
            details=dict(data.get("details") or {}),
        )


@dataclass(slots=True)
class RunResult:
    """What a run produced. ``final_output`` is structured; ``final_messages`` the conversation."""

    final_output: dict[str, Any] = field(default_factory=dict)
    final_messages: list[dict[str, Any]] | None = None
    error: ErrorInfo | None = None
    usage: dict[str, Any] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "final_output": self.final_output,
            "final_messages": self.final_messages,
            "error": None if self.error is None else self.error.to_dict(),
            "usage": self.usage,
        }


def __getattr__(name: str) -> object:
    # The Django seed imports ToolRegistry from here; tools.py imports this module, so resolve late.
    if name == "ToolRegistry":
        from .tools import ToolRegistry

        return ToolRegistry
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class RunContext(ABC):
    """What a running agent is given. The runner, the test kit and the Django app implement it."""

    run_id: uuid.UUID
    input_messages: list[dict[str, Any]]
    metadata: dict[str, Any]

    @property
    @abstractmethod
    def tools(self) -> ToolRegistry: ...

    @abstractmethod
    async def emit(self, event_type: EventType | str, payload: dict[str, Any]) -> None:
        """Publish an event for this run."""

    @abstractmethod
    async def checkpoint(self, state: dict[str, Any]) -> None:
        """Save state (JSON-serialisable) so a retried or resumed run can continue from it."""

    @abstractmethod
    async def get_state(self) -> dict[str, Any] | None:
        """The last checkpoint of this run, or None."""

    @abstractmethod
    def is_cancelled(self) -> bool:
        """True once cancellation was requested; long loops should check it and stop."""

    async def emit_user_message(self, content: str, **extra: Any) -> None:
        """A message always shown to the user (``assistant.message``)."""
        await self.emit(EventType.ASSISTANT_MESSAGE, {"content": content, "role": "assistant", **extra})

    async def emit_error(self, message: str, details: dict[str, Any] | None = None) -> None:
        """An error shown to the user (``error``), distinct from the run failing."""
        await self.emit(EventType.ERROR, {"message": message, "details": dict(details or {})})


class AgentRuntime(ABC):
    """Base class of every agent: a unique ``key`` and ``run``."""

    @property
    @abstractmethod
    def key(self) -> str:
        """Unique identifier for this agent."""

    @abstractmethod
    async def run(self, ctx: RunContext) -> RunResult:
        """Execute the agent logic."""

    def __repr__(self) -> str:
        try:
            key = self.key
        except Exception:  # a half-built subclass; repr must not fail
            key = "?"
        return f"<{type(self).__name__} key={key!r}>"
