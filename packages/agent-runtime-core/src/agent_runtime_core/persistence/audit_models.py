"""Data models of the optional audit store: what happened, what went wrong, how long it took."""

from __future__ import annotations

import enum
import math
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ._model import Model, as_enum, as_optional_datetime, as_optional_uuid, as_utc, as_uuid, utc_now

__all__ = ["AuditEventType", "AuditEntry", "ErrorSeverity", "ErrorRecord", "PerformanceMetric"]


class AuditEventType(enum.StrEnum):
    CONVERSATION_START = "conversation_start"
    CONVERSATION_END = "conversation_end"
    MESSAGE_SENT = "message_sent"
    MESSAGE_RECEIVED = "message_received"
    TOOL_CALL = "tool_call"
    TOOL_RESULT = "tool_result"
    TOOL_ERROR = "tool_error"
    AGENT_START = "agent_start"
    AGENT_END = "agent_end"
    AGENT_ERROR = "agent_error"
    STATE_CHANGE = "state_change"
    CHECKPOINT_SAVED = "checkpoint_saved"
    CHECKPOINT_RESTORED = "checkpoint_restored"
    CUSTOM = "custom"


class ErrorSeverity(enum.StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


@dataclass(slots=True)
class AuditEntry(Model):
    """One logged interaction; ``details`` holds the event-specific payload."""

    event_type: AuditEventType
    action: str = ""
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    details: dict[str, Any] = field(default_factory=dict)
    conversation_id: uuid.UUID | None = None
    run_id: str | None = None
    agent_key: str | None = None
    actor: str | None = None
    parent_event_id: uuid.UUID | None = None
    timestamp: datetime = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        self._check_str("action")
        self._check_str("run_id", optional=True)
        self._check_str("agent_key", optional=True)
        self._check_str("actor", optional=True)
        self._check_mapping("details")
        self.id = as_uuid(self.id, self._where("id"))
        self.event_type = as_enum(AuditEventType, self.event_type, self._where("event_type"))
        self.conversation_id = as_optional_uuid(self.conversation_id, self._where("conversation_id"))
        self.parent_event_id = as_optional_uuid(self.parent_event_id, self._where("parent_event_id"))
        self.timestamp = as_utc(self.timestamp, self._where("timestamp"))


@dataclass(slots=True)
class ErrorRecord(Model):
    """An error kept for later review; ``resolved``/``resolution`` track whether someone dealt with it."""

    message: str
    error_type: str = "Error"
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    severity: ErrorSeverity = ErrorSeverity.ERROR
    stack_trace: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    conversation_id: uuid.UUID | None = None
    run_id: str | None = None
    agent_key: str | None = None
    resolved: bool = False
    resolved_at: datetime | None = None
    resolution: str | None = None
    timestamp: datetime = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        self._check_str("message")
        self._check_str("error_type", allow_empty=False)
        self._check_str("stack_trace", optional=True)
        self._check_str("run_id", optional=True)
        self._check_str("agent_key", optional=True)
        self._check_str("resolution", optional=True)
        self._check_mapping("context")
        if not isinstance(self.resolved, bool):
            raise TypeError(f"ErrorRecord.resolved must be a bool, got {type(self.resolved).__name__}")
        self.id = as_uuid(self.id, self._where("id"))
        self.severity = as_enum(ErrorSeverity, self.severity, self._where("severity"))
        self.conversation_id = as_optional_uuid(self.conversation_id, self._where("conversation_id"))
        self.resolved_at = as_optional_datetime(self.resolved_at, self._where("resolved_at"))
        self.timestamp = as_utc(self.timestamp, self._where("timestamp"))

    @classmethod
    def from_exception(
        cls, exc: BaseException, *, severity: ErrorSeverity = ErrorSeverity.ERROR, **fields: Any
    ) -> ErrorRecord:
        """Capture type, message and traceback while the exception is at hand; they are gone after."""
        trace = "".join(traceback.format_exception(exc)) if exc.__traceback__ is not None else None
        return cls(
            message=str(exc), error_type=type(exc).__name__, severity=severity, stack_trace=trace, **fields
        )


@dataclass(slots=True)
class PerformanceMetric(Model):
    """One measurement (latency, tokens, cost...); ``tags`` let metrics be grouped, e.g. by model."""

    name: str
    value: float
    unit: str = ""
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    tags: dict[str, str] = field(default_factory=dict)
    conversation_id: uuid.UUID | None = None
    run_id: str | None = None
    agent_key: str | None = None
    timestamp: datetime = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        self._check_str("name", allow_empty=False)
        self._check_str("unit")
        self._check_str("run_id", optional=True)
        self._check_str("agent_key", optional=True)
        self._check_mapping("tags")
        if (
            isinstance(self.value, bool)
            or not isinstance(self.value, int | float)
            or not math.isfinite(self.value)
        ):
            raise ValueError(f"PerformanceMetric.value must be a finite number, got {self.value!r}")
        self.value = float(self.value)
        self.id = as_uuid(self.id, self._where("id"))
        self.conversation_id = as_optional_uuid(self.conversation_id, self._where("conversation_id"))
        self.timestamp = as_utc(self.timestamp, self._where("timestamp"))
