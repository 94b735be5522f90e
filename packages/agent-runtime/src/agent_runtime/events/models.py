"""Runtime events: what the kernel tells the outside world while a job runs.

One event shape serves every consumer (in-process handlers, SSE clients, webhooks), so an event
must survive JSON: construction refuses data that cannot be encoded, instead of letting an SSE
stream or a webhook fail later, far from the code that produced the event.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from llm_client.context import new_request_id

from ..errors import ValidationError

__all__ = ["RuntimeEvent", "RuntimeEventType", "TERMINAL_EVENT_TYPES", "format_sse", "SSE_KEEPALIVE"]

#: An SSE comment line: proxies see traffic and keep the connection open; browsers ignore it.
SSE_KEEPALIVE = ": keepalive\n\n"

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class RuntimeEventType(enum.StrEnum):
    """Every event type the kernel emits; values are the dotted names used on the wire."""

    PROGRESS = "progress"
    MODEL_TOKEN = "model.token"
    MODEL_REASONING = "model.reasoning"
    MODEL_DONE = "model.done"
    TOOL_START = "tool.start"
    TOOL_END = "tool.end"
    TOOL_ERROR = "tool.error"
    ACTION_REQUIRED = "action.required"
    ACTION_RESOLVED = "action.resolved"
    ACTION_EXPIRED = "action.expired"
    ACTION_CANCELLED = "action.cancelled"
    ARTIFACT_CREATED = "artifact.created"
    ARTIFACT_UPDATED = "artifact.updated"
    JOB_STARTED = "job.started"
    JOB_STATUS_CHANGED = "job.status_changed"
    JOB_COMPLETED = "job.completed"
    JOB_FAILED = "job.failed"
    JOB_CANCELLED = "job.cancelled"
    FINAL_RESULT = "final.result"
    FINAL_ERROR = "final.error"

    @property
    def is_terminal(self) -> bool:
        """True for the types that end a job: nothing about that job follows them."""
        return self in TERMINAL_EVENT_TYPES


#: The last event of every job. A job ends with exactly one of these (a timeout is JOB_FAILED with
#: ``data["status"] == "timed_out"``), published *after* FINAL_RESULT / FINAL_ERROR, so a consumer
#: that stops at a terminal event has seen the outcome. JOB_STATUS_CHANGED never ends a stream.
TERMINAL_EVENT_TYPES: frozenset[RuntimeEventType] = frozenset(
    {RuntimeEventType.JOB_COMPLETED, RuntimeEventType.JOB_FAILED, RuntimeEventType.JOB_CANCELLED}
)

_ID_FIELDS = ("job_id", "run_id", "trace_id", "scope_id", "principal_id")


def coerce_event_type(value: Any) -> RuntimeEventType:
    """Accept the enum or its dotted string, so events can come back from JSON."""
    if isinstance(value, RuntimeEventType):
        return value
    if isinstance(value, str):
        try:
            return RuntimeEventType(value)
        except ValueError:
            pass
    known = ", ".join(t.value for t in RuntimeEventType)
    raise ValidationError(f"unknown runtime event type {value!r}; expected one of: {known}")


def coerce_event_types(values: Any) -> frozenset[RuntimeEventType] | None:
    """Normalise a subscription filter; ``None`` means every type, an empty set means none."""
    if values is None:
        return None
    if isinstance(values, (str, RuntimeEventType)):
        return frozenset({coerce_event_type(values)})
    try:
        items = list(values)
    except TypeError:
        raise ValidationError(
            f"event_types must be a collection of RuntimeEventType, got {type(values).__name__}"
        ) from None
    return frozenset(coerce_event_type(v) for v in items)


def _json_default(value: Any) -> Any:
    # Decimal as a string keeps exact costs exact (llm-client's Usage.cost is a Decimal).
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def format_sse(
    data: str, *, event: str | None = None, event_id: str | None = None, retry_ms: int | None = None
) -> str:
    """One Server-Sent Events message.

    A line break inside ``data`` would end the field early, so each line becomes its own
    ``data:`` line (the browser joins them back with ``\\n``). ``event`` and ``id`` cannot be
    split that way, so a line break there is refused.
    """
    parts: list[str] = []
    if event_id is not None:
        if _LINE_BREAK.search(event_id) or "\0" in event_id:
            raise ValidationError(f"SSE id must not contain line breaks or NUL: {event_id!r}")
        parts.append(f"id: {event_id}\n")
    if event is not None:
        if _LINE_BREAK.search(event):
            raise ValidationError(f"SSE event name must not contain line breaks: {event!r}")
        parts.append(f"event: {event}\n")
    if retry_ms is not None:
        if retry_ms < 0:
            raise ValidationError(f"SSE retry must be >= 0 milliseconds, got {retry_ms}")
        parts.append(f"retry: {int(retry_ms)}\n")
    parts.extend(f"data: {line}\n" for line in _LINE_BREAK.split(data))
    parts.append("\n")
    return "".join(parts)


#: JSON by construction (``to_json`` writes NaN and infinities as JSON's common extension does)
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain(data: Mapping[str, Any]) -> bool:
    for key, value in data.items():
        if type(key) is not str:
            return False
        kind = type(value)
        if kind in _SCALARS:
            continue
        if kind is dict and all(type(k) is str and type(v) in _SCALARS for k, v in value.items()):
            continue
        return False
    return True


def _new_event_id() -> str:
    # A random per-process prefix plus a counter: unique like a uuid4, without a syscall per event.
    return f"evt-{new_request_id()}"


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeEvent:
    """One thing that happened in a job, with the identity needed to route and authorise it.

    ``event_id`` is unique and stable across redeliveries (webhook receivers deduplicate on it,
    SSE clients resume from it with Last-Event-ID). ``type`` accepts the dotted string too.
    """

    event_id: str = field(default_factory=_new_event_id)
    type: RuntimeEventType
    timestamp: float = field(default_factory=time.time)
    job_id: str | None = None
    run_id: str | None = None
    trace_id: str | None = None
    scope_id: str | None = None
    principal_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", coerce_event_type(self.type))
        if not isinstance(self.event_id, str) or not self.event_id:
            raise ValidationError(f"event_id must be a non-empty string, got {self.event_id!r}")
        if isinstance(self.timestamp, bool) or not isinstance(self.timestamp, (int, float)):
            raise ValidationError(f"timestamp must be a number (epoch seconds), got {self.timestamp!r}")
        for name in _ID_FIELDS:
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ValidationError(f"{name} must be a string or None, got {type(value).__name__}")
        if not isinstance(self.data, Mapping):
            raise ValidationError(f"data must be a dict, got {type(self.data).__name__}")
        # A private copy: the publisher mutating its dict later must not change a delivered event.
        data = dict(self.data)
        object.__setattr__(self, "data", data)
        if _plain(data):
            return  # scalars and dicts of scalars (most events, one per token) are JSON by construction
        try:
            self.to_json()
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"data of {self.type.value} event is not JSON-serialisable: {exc}") from exc

    @property
    def is_terminal(self) -> bool:
        """True when this event ends its job (see :data:`TERMINAL_EVENT_TYPES`)."""
        return self.type in TERMINAL_EVENT_TYPES

    @classmethod
    def from_context(
        cls, ctx: Any, type: RuntimeEventType | str, data: Mapping[str, Any] | None = None
    ) -> RuntimeEvent:
        """An event carrying a context's identity.

        Duck-typed: any object with ``job_id``, ``run_id``, ``trace_id``, ``scope_id`` and
        ``principal_id`` attributes works (missing ones become None).
        """
        if ctx is None:
            raise ValidationError("from_context() needs a context, got None")
        return cls(
            type=type,  # type: ignore[arg-type]  # __post_init__ coerces a dotted string
            job_id=getattr(ctx, "job_id", None),
            run_id=getattr(ctx, "run_id", None),
            trace_id=getattr(ctx, "trace_id", None),
            scope_id=getattr(ctx, "scope_id", None),
            principal_id=getattr(ctx, "principal_id", None),
            data=data or {},  # type: ignore[arg-type]  # __post_init__ copies it into a dict
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain fields, ``type`` as its dotted string; ``data`` as given (see :meth:`to_json`)."""
        return {
            "event_id": self.event_id,
            "type": self.type.value,
            "timestamp": self.timestamp,
            "job_id": self.job_id,
            "run_id": self.run_id,
            "trace_id": self.trace_id,
            "scope_id": self.scope_id,
            "principal_id": self.principal_id,
            "data": dict(self.data),
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> RuntimeEvent:
        """Rebuild an event from :meth:`to_dict` or parsed JSON; unknown keys are ignored."""
        if not isinstance(payload, Mapping):
            raise ValidationError(f"from_dict() takes a mapping, got {type(payload).__name__}")
        if "type" not in payload:
            raise ValidationError("runtime event dict has no 'type'")
        kwargs: dict[str, Any] = {"type": payload["type"]}
        for key in ("event_id", "timestamp", *_ID_FIELDS):
            if payload.get(key) is not None:
                kwargs[key] = payload[key]
        if payload.get("data") is not None:
            kwargs["data"] = payload["data"]
        return cls(**kwargs)

    def to_json(self, *, indent: int | None = None) -> str:
        """The event as JSON: Decimal becomes a string, datetimes ISO 8601, enums their value."""
        separators = None if indent is not None else (",", ":")
        return json.dumps(
            self.to_dict(), default=_json_default, ensure_ascii=False, indent=indent, separators=separators
        )

    def to_sse(self, *, indent: int | None = None, retry_ms: int | None = None) -> str:
        """The event as one SSE message: ``id``, ``event`` (the dotted type) and the JSON ``data``."""
        return format_sse(
            self.to_json(indent=indent), event=self.type.value, event_id=self.event_id, retry_ms=retry_ms
        )
