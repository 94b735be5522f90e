"""What a recording is made of, and the one JSON format it is saved in.

A recording must stay readable by the code that replays it long after it was made, and must never
be half-understood: the file carries ``format_version``, and a version this code does not know
(newer, or nonsense) is refused with :class:`ReplayValidationError` instead of being replayed with
fields silently ignored.

Fingerprints are what a deterministic replay compares. They cover what a run *did* (the event type,
the stable part of its data, and the model response or tool result behind it) and leave out what
legitimately changes between two runs of the same thing: ids, timestamps and durations.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import hashlib
import json
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from ..context import RunVersions
from ..errors import AgentRuntimeError, ValidationError
from ..events import RuntimeEvent

__all__ = [
    "FORMAT_VERSION",
    "FORMAT_NAME",
    "VOLATILE_DATA_KEYS",
    "ReplayError",
    "ReplayValidationError",
    "ReplayStateError",
    "RunMetadata",
    "EventFingerprint",
    "RecordedEvent",
    "Recording",
    "ReplayIssue",
    "canonical_json",
]

#: The recording format this code writes, and the newest it reads.
FORMAT_VERSION = 1
#: Marks a JSON file as an agent-runtime recording (so a random JSON file is not "version 0").
FORMAT_NAME = "agent-runtime.replay"

#: Keys of event data that differ between two runs of the same thing; left out of fingerprints at
#: any depth. Durations and clock readings are timing, the others are ids minted per run.
VOLATILE_DATA_KEYS: frozenset[str] = frozenset(
    {
        "duration_ms",
        "elapsed_ms",
        "latency_ms",
        "timestamp",
        "created_at",
        "updated_at",
        "expires_at",
        "event_id",
        "job_id",
        "run_id",
        "trace_id",
        "span_id",
        "action_id",
        "resume_token",
        "request_id",
    }
)


class ReplayError(AgentRuntimeError):
    """Base class of the replay system's errors."""


class ReplayValidationError(ReplayError, ValidationError):
    """A recording cannot be read or cannot be replayed the way it was asked to be.

    ``issues`` lists every problem found, not only the first, so one run of the check tells the
    caller everything to fix.
    """

    def __init__(self, message: str, issues: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.issues = list(issues)


class ReplayStateError(ReplayError):
    """A recorder or player was used out of order (e.g. ``stop()`` before ``start()``)."""


# --- JSON helpers -------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    # Same conversions as RuntimeEvent.to_json, so a value fingerprints the same before and after a
    # save/load round trip (a Decimal cost is its string both times).
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, tuple):
        return list(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def canonical_json(value: Any) -> str:
    """One text per value: sorted keys, no whitespace, the conversions above."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _digest(value: Any) -> str:
    return hashlib.blake2b(canonical_json(value).encode(), digest_size=16).hexdigest()


def to_plain(value: Any) -> Any:
    """``value`` as plain JSON data (what it becomes after a save and a load)."""
    return json.loads(canonical_json(value))


def _strip_volatile(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _strip_volatile(v) for k, v in value.items() if k not in VOLATILE_DATA_KEYS}
    if isinstance(value, (list, tuple)):
        return [_strip_volatile(v) for v in value]
    return value


def _mapping(name: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ReplayValidationError(f"{name} must be an object, got {type(value).__name__}")
    return value


# --- metadata -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RunMetadata:
    """What produced a run, so a replay can say when it runs under different code or model.

    ``config`` and ``tools`` are the caller's description of the run's setup; they are kept as given
    (JSON data) and compared by nobody but the reader of a validation report.
    """

    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: float = field(default_factory=time.time)
    runtime_version: str | None = None
    llm_client_version: str | None = None
    model_version: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    tools: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.run_id, str) or not self.run_id:
            raise ReplayValidationError(f"run_id must be a non-empty string, got {self.run_id!r}")
        if isinstance(self.created_at, bool) or not isinstance(self.created_at, (int, float)):
            raise ReplayValidationError(f"created_at must be epoch seconds, got {self.created_at!r}")
        for name in ("runtime_version", "llm_client_version", "model_version"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ReplayValidationError(f"{name} must be a string or None, got {value!r}")
        if not isinstance(self.config, Mapping):
            raise ReplayValidationError(f"config must be a dict, got {type(self.config).__name__}")
        try:
            object.__setattr__(
                self, "config", json.loads(json.dumps(dict(self.config), default=_json_default))
            )
        except (TypeError, ValueError) as exc:
            raise ReplayValidationError(f"config is not JSON-serialisable: {exc}") from exc
        tools: Any = self.tools
        if isinstance(tools, str) or not all(isinstance(t, str) for t in tools):
            raise ReplayValidationError(f"tools must be a list of tool names, got {self.tools!r}")
        object.__setattr__(self, "tools", tuple(self.tools))

    @classmethod
    def create(
        cls,
        *,
        runtime_version: str | None = None,
        llm_client_version: str | None = None,
        model_version: str | None = None,
        config: Mapping[str, Any] | None = None,
        tools: Sequence[str] = (),
        run_id: str | None = None,
    ) -> RunMetadata:
        """Metadata for a new run; versions not given are those of the installed packages."""
        installed = RunVersions()
        return cls(
            run_id=run_id or str(uuid.uuid4()),
            runtime_version=runtime_version if runtime_version is not None else installed.runtime_version,
            llm_client_version=(
                llm_client_version if llm_client_version is not None else installed.llm_client_version
            ),
            model_version=model_version,
            config=dict(config or {}),
            tools=tuple(tools),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "created_at": self.created_at,
            "runtime_version": self.runtime_version,
            "llm_client_version": self.llm_client_version,
            "model_version": self.model_version,
            "config": dict(self.config),
            "tools": list(self.tools),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunMetadata:
        data = _mapping("metadata", data)
        if "run_id" not in data:
            raise ReplayValidationError("metadata has no run_id")
        return cls(
            run_id=data["run_id"],
            created_at=data.get("created_at", 0.0),
            runtime_version=data.get("runtime_version"),
            llm_client_version=data.get("llm_client_version"),
            model_version=data.get("model_version"),
            config=dict(_mapping("metadata.config", data.get("config") or {})),
            tools=tuple(data.get("tools") or ()),
        )


# --- fingerprints -------------------------------------------------------------------------------


def _response_part(model_response: Mapping[str, Any]) -> dict[str, Any]:
    # Streamed chunks are left out: they are the MODEL_TOKEN events, fingerprinted on their own.
    # The full first request is left out too: its digest says the same.
    return {
        "request_digest": model_response.get("request_digest"),
        "result": model_response.get("result"),
        "error": model_response.get("error"),
    }


def _tool_part(tool_result: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "tool": tool_result.get("tool"),
        "content": tool_result.get("content"),
        "error": tool_result.get("error"),
    }


@dataclass(frozen=True, slots=True)
class EventFingerprint:
    """The part of an event that must be equal when the same run happens again.

    ``digest`` covers the event type, its data without :data:`VOLATILE_DATA_KEYS`, and (for the
    events that carry them) the model response the model gave (with a digest of the request it
    was given) and the tool result the tool returned, so a run that saw a different tool result
    diverges at that tool's event, not only later when the model reacts to it.
    """

    event_type: str
    digest: str

    @classmethod
    def of(
        cls,
        event: RuntimeEvent,
        *,
        model_response: Mapping[str, Any] | str | None = None,
        tool_result: Mapping[str, Any] | None = None,
    ) -> EventFingerprint:
        payload: dict[str, Any] = {"type": event.type.value, "data": _strip_volatile(event.data)}
        response = normalize_model_response(model_response)
        if response is not None:
            payload["model_response"] = _response_part(response)
        if tool_result is not None:
            payload["tool_result"] = _tool_part(tool_result)
        return cls(event.type.value, _digest(payload))

    def to_dict(self) -> dict[str, str]:
        return {"event_type": self.event_type, "digest": self.digest}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EventFingerprint:
        data = _mapping("fingerprint", data)
        event_type, digest = data.get("event_type"), data.get("digest")
        if not isinstance(event_type, str) or not isinstance(digest, str) or not digest:
            raise ReplayValidationError(f"fingerprint needs string event_type and digest, got {dict(data)!r}")
        return cls(event_type, digest)

    def __str__(self) -> str:
        return f"{self.event_type}#{self.digest[:12]}"


# --- recorded events ----------------------------------------------------------------------------


def normalize_model_response(value: Mapping[str, Any] | str | None) -> dict[str, Any] | None:
    """Accept the seed's plain-text form (``model_response="..."``) as a text-only answer."""
    if value is None:
        return None
    if isinstance(value, str):
        return {"result": {"content": value}, "error": None, "chunks": [], "request_digest": None}
    if not isinstance(value, Mapping):
        raise ReplayValidationError(
            f"model_response must be a dict, a string or None, got {type(value).__name__}"
        )
    data = dict(to_plain(value))
    if (data.get("result") is None) == (data.get("error") is None):
        raise ReplayValidationError("model_response needs exactly one of 'result' or 'error'")
    data.setdefault("chunks", [])
    data.setdefault("request_digest", None)
    return data


def _normalize_tool_result(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ReplayValidationError(f"tool_result must be a dict or None, got {type(value).__name__}")
    data = dict(to_plain(value))
    if not isinstance(data.get("tool"), str):
        raise ReplayValidationError(f"tool_result needs the tool's name, got {data!r}")
    if data.get("error") is None and not isinstance(data.get("content"), str):
        raise ReplayValidationError(f"tool_result needs a string 'content' or an 'error', got {data!r}")
    data.setdefault("error", None)
    return data


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordedEvent:
    """One runtime event as it happened, with what a deterministic replay needs to reproduce it.

    ``model_response`` (on MODEL_DONE, or on FINAL_ERROR when the model call failed) holds the
    model's answer: ``result`` (or ``error``), the streamed ``chunks`` and ``request_digest``.
    ``tool_result`` (on TOOL_END / TOOL_ERROR) holds what the tool returned (``content``) or
    raised (``error``). ``fingerprint`` defaults to the one computed from all of that.
    """

    event: RuntimeEvent
    fingerprint: EventFingerprint | None = None
    relative_timestamp_ms: float = 0.0
    model_response: Mapping[str, Any] | str | None = None
    tool_result: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.event, RuntimeEvent):
            raise ReplayValidationError(f"event must be a RuntimeEvent, got {type(self.event).__name__}")
        rel = self.relative_timestamp_ms
        if isinstance(rel, bool) or not isinstance(rel, (int, float)) or rel < 0:
            raise ReplayValidationError(f"relative_timestamp_ms must be a number >= 0, got {rel!r}")
        object.__setattr__(self, "model_response", normalize_model_response(self.model_response))
        object.__setattr__(self, "tool_result", _normalize_tool_result(self.tool_result))
        if self.fingerprint is None:
            object.__setattr__(self, "fingerprint", self.compute_fingerprint())

    @property
    def response(self) -> dict[str, Any] | None:
        """``model_response`` in its normalised (dict) form."""
        return self.model_response if isinstance(self.model_response, dict) else None

    def compute_fingerprint(self) -> EventFingerprint:
        """The fingerprint of this event's current content (differs from ``fingerprint`` if edited)."""
        return EventFingerprint.of(self.event, model_response=self.response, tool_result=self.tool_result)

    def to_dict(self) -> dict[str, Any]:
        assert self.fingerprint is not None
        return {
            "event": self.event.to_dict(),
            "fingerprint": self.fingerprint.to_dict(),
            "relative_timestamp_ms": self.relative_timestamp_ms,
            "model_response": self.response,
            "tool_result": self.tool_result,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecordedEvent:
        data = _mapping("recorded event", data)
        try:
            event = RuntimeEvent.from_dict(_mapping("event", data.get("event")))
        except ReplayValidationError:
            raise
        except ValidationError as exc:
            raise ReplayValidationError(f"invalid event: {exc}") from exc
        fingerprint = data.get("fingerprint")
        return cls(
            event=event,
            fingerprint=None if fingerprint is None else EventFingerprint.from_dict(fingerprint),
            relative_timestamp_ms=data.get("relative_timestamp_ms", 0.0),
            model_response=data.get("model_response"),
            tool_result=data.get("tool_result"),
        )


# --- the recording ------------------------------------------------------------------------------


def _check_format_version(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ReplayValidationError(f"format_version must be an integer, got {value!r}")
    if value > FORMAT_VERSION:
        raise ReplayValidationError(
            f"recording format_version {value} is newer than this agent-runtime reads "
            f"(up to {FORMAT_VERSION}); upgrade agent-runtime to replay it"
        )
    if value < 1:
        raise ReplayValidationError(f"unknown recording format_version {value}; known: 1..{FORMAT_VERSION}")
    return value


@dataclass(slots=True, kw_only=True)
class Recording:
    """A recorded run: metadata, the input it started from, and its events in order.

    ``dropped_events`` counts events the recorder's subscription lost to the bus's overflow policy;
    a recording with losses cannot be replayed deterministically.
    """

    format_version: int = FORMAT_VERSION
    metadata: RunMetadata
    initial_input: dict[str, Any] = field(default_factory=dict)
    events: list[RecordedEvent] = field(default_factory=list)
    dropped_events: int = 0

    def __post_init__(self) -> None:
        _check_format_version(self.format_version)
        if not isinstance(self.metadata, RunMetadata):
            raise ReplayValidationError(f"metadata must be a RunMetadata, got {type(self.metadata).__name__}")
        if not isinstance(self.initial_input, Mapping):
            raise ReplayValidationError(
                f"initial_input must be a dict, got {type(self.initial_input).__name__}"
            )
        self.initial_input = to_plain(dict(self.initial_input))
        self.events = list(self.events)
        for index, recorded in enumerate(self.events):
            if not isinstance(recorded, RecordedEvent):
                raise ReplayValidationError(
                    f"events[{index}] is a {type(recorded).__name__}, not a RecordedEvent"
                )

    def __len__(self) -> int:
        return len(self.events)

    @property
    def job_ids(self) -> list[str]:
        """The jobs whose events are recorded, in order of first appearance."""
        seen: dict[str, None] = {}
        for recorded in self.events:
            if recorded.event.job_id is not None:
                seen.setdefault(recorded.event.job_id, None)
        return list(seen)

    @property
    def fingerprints(self) -> list[EventFingerprint]:
        return [e.fingerprint for e in self.events if e.fingerprint is not None]

    def events_of(self, job_id: str) -> list[RecordedEvent]:
        return [e for e in self.events if e.event.job_id == job_id]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "format_version": self.format_version,
            "metadata": self.metadata.to_dict(),
            "initial_input": dict(self.initial_input),
            "dropped_events": self.dropped_events,
            "events": [e.to_dict() for e in self.events],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recording:
        data = _mapping("recording", data)
        if data.get("format") != FORMAT_NAME:
            raise ReplayValidationError(
                f"not an agent-runtime recording: 'format' is {data.get('format')!r}, "
                f"expected {FORMAT_NAME!r}"
            )
        if "format_version" not in data:
            raise ReplayValidationError("recording has no format_version")
        version = _check_format_version(data["format_version"])
        events = data.get("events")
        if not isinstance(events, list):
            raise ReplayValidationError(f"recording 'events' must be a list, got {type(events).__name__}")
        parsed: list[RecordedEvent] = []
        for index, item in enumerate(events):
            try:
                parsed.append(RecordedEvent.from_dict(item))
            except ReplayValidationError as exc:
                raise ReplayValidationError(f"events[{index}]: {exc}") from exc
        dropped = data.get("dropped_events", 0)
        if isinstance(dropped, bool) or not isinstance(dropped, int) or dropped < 0:
            raise ReplayValidationError(f"dropped_events must be an integer >= 0, got {dropped!r}")
        return cls(
            format_version=version,
            metadata=RunMetadata.from_dict(data.get("metadata") or {}),
            initial_input=dict(_mapping("initial_input", data.get("initial_input") or {})),
            events=parsed,
            dropped_events=dropped,
        )

    def to_json(self, *, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent, default=_json_default)

    @classmethod
    def from_json(cls, text: str | bytes) -> Recording:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ReplayValidationError(f"recording is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the recording as JSON (via a temporary file, so a crash never leaves half a file)."""
        target = os.fspath(path)
        tmp = f"{target}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(self.to_json())
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Recording:
        """Read a recording; a file of a newer or unknown format is a :class:`ReplayValidationError`."""
        with open(os.fspath(path), encoding="utf-8") as f:
            text = f.read()
        try:
            return cls.from_json(text)
        except ReplayValidationError as exc:
            raise ReplayValidationError(f"{os.fspath(path)}: {exc}", exc.issues) from exc


@dataclass(frozen=True, slots=True)
class ReplayIssue:
    """One finding of :meth:`ReplayPlayer.validate_recording`.

    ``error`` makes the recording invalid; ``warning`` is worth knowing (e.g. it was made with
    other package versions) but does not stop a replay.
    """

    severity: Literal["error", "warning"]
    message: str
    event_index: int | None = None

    def __str__(self) -> str:
        where = f"event {self.event_index}: " if self.event_index is not None else ""
        return f"{self.severity}: {where}{self.message}"
