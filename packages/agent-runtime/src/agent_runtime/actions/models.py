"""Action records: the state of one human-in-the-loop request.

The lifecycle has exactly one transition table (:data:`_TRANSITIONS`): PENDING may become RESOLVED,
EXPIRED or CANCELLED, and every terminal state is final. Records are immutable; each transition
returns a new record, and stores persist it with an optimistic version check, so two writers can
never both move the same action out of PENDING.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidTransitionError, ValidationError
from .errors import ActionExpiredError
from .tokens import hash_resume_token

__all__ = [
    "ActionStatus",
    "ActionType",
    "ActionRecord",
    "ActionSpec",
    "ActionFilter",
    "statuses_leading_to",
]


class ActionStatus(enum.StrEnum):
    PENDING = "pending"
    RESOLVED = "resolved"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return not _TRANSITIONS[self]

    def can_transition_to(self, target: ActionStatus) -> bool:
        return target in _TRANSITIONS[self]

    @classmethod
    def parse(cls, value: ActionStatus | str) -> ActionStatus:
        """The status for an enum member or its string (any case); ValidationError otherwise."""
        if isinstance(value, ActionStatus):
            return value
        if isinstance(value, str):
            try:
                return cls(value.lower())
            except ValueError:
                pass
        raise ValidationError(
            f"unknown action status {value!r}; expected one of: {', '.join(s.value for s in cls)}"
        )


#: The action state machine. Stores derive their SQL guards from it (see :func:`statuses_leading_to`).
_TRANSITIONS: dict[ActionStatus, frozenset[ActionStatus]] = {
    ActionStatus.PENDING: frozenset({ActionStatus.RESOLVED, ActionStatus.EXPIRED, ActionStatus.CANCELLED}),
    ActionStatus.RESOLVED: frozenset(),
    ActionStatus.EXPIRED: frozenset(),
    ActionStatus.CANCELLED: frozenset(),
}


def statuses_leading_to(target: ActionStatus) -> list[ActionStatus]:
    """Every status from which ``target`` may be entered: the guard of an atomic conditional UPDATE."""
    return [source for source, targets in _TRANSITIONS.items() if target in targets]


class ActionType(enum.StrEnum):
    """What kind of answer the human gives; ``"confirm"``-style strings (any case) are accepted."""

    CONFIRM = "confirm"
    CHOOSE = "choose"
    INPUT = "input"
    UPLOAD = "upload"
    REAUTH = "reauth"
    APPLY_CHANGES = "apply_changes"
    APPROVAL = "approval"
    CUSTOM = "custom"

    @classmethod
    def _missing_(cls, value: object) -> ActionType | None:
        if isinstance(value, str):
            lowered = value.strip().lower()
            for member in cls:
                if member.value == lowered:
                    return member
        return None

    @classmethod
    def parse(cls, value: ActionType | str) -> ActionType:
        """The type for an enum member or its string; ValidationError naming the allowed values."""
        if isinstance(value, ActionType):
            return value
        if isinstance(value, str):
            try:
                return cls(value)
            except ValueError:
                pass
        raise ValidationError(
            f"unknown action type {value!r}; expected one of: {', '.join(t.value for t in cls)} "
            "(use 'custom' with a payload for anything else)"
        )


def _require_id(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _optional_time(value: object, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(f"{name} must be a finite number of epoch seconds or None, got {value!r}")
    return float(value)


def _json_object(value: object, name: str) -> dict[str, Any]:
    """A private copy of a JSON object: every store (in memory or JSONB) must round-trip it alike."""
    if not isinstance(value, Mapping):
        raise ValidationError(f"{name} must be a dict, got {type(value).__name__}")
    copied = dict(value)
    for key in copied:
        if not isinstance(key, str):
            raise ValidationError(f"{name} keys must be strings, got {key!r}")
    try:
        json.dumps(copied, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{name} must be JSON-serialisable: {exc}") from exc
    return copied


class _LiveResolution:
    """Shared by the record handed to an action's creator and its manager (see ``resolution``)."""

    __slots__ = ("__weakref__", "record")

    def __init__(self) -> None:
        self.record: ActionRecord | None = None


@dataclass(frozen=True, repr=False)
class ActionRecord:
    """One human-in-the-loop request.

    ``resume_token`` holds the plaintext token only on the record returned to the action's creator;
    stores keep ``resume_token_hash`` alone, so records read back have ``resume_token=None``. The
    token never appears in ``repr``/``str`` or :meth:`to_dict`.

    ``resolution`` on the record returned by ``ActionManager.require_action`` reads through to the
    answer once the manager has seen it (after ``wait_for_resolution``), because the documented
    pattern reads ``action.resolution`` on that object. Every other field is a snapshot; use the
    record that ``wait_for_resolution`` returns for the full resolved state.
    """

    action_id: str
    job_id: str
    type: ActionType
    payload: dict[str, Any] = field(default_factory=dict)
    status: ActionStatus = ActionStatus.PENDING
    expires_at: float | None = None
    resume_token: str | None = field(default=None, compare=False)
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    resolved_at: float | None = None
    resolution: dict[str, Any] | None = None
    cancel_reason: str | None = None
    version: int = 0
    resume_token_hash: str | None = None
    _live: _LiveResolution | None = field(default=None, init=False, compare=False)

    def __post_init__(self) -> None:
        _require_id(self.action_id, "action_id")
        _require_id(self.job_id, "job_id")
        object.__setattr__(self, "type", ActionType.parse(self.type))
        object.__setattr__(self, "status", ActionStatus.parse(self.status))
        object.__setattr__(self, "payload", _json_object(self.payload, "payload"))
        object.__setattr__(self, "metadata", _json_object(self.metadata, "metadata"))
        object.__setattr__(self, "expires_at", _optional_time(self.expires_at, "expires_at"))
        object.__setattr__(self, "resolved_at", _optional_time(self.resolved_at, "resolved_at"))
        created = _optional_time(self.created_at, "created_at")
        if created is None:
            raise ValidationError("created_at must be a number of epoch seconds, got None")
        object.__setattr__(self, "created_at", created)
        own = self.__dict__.get("_resolution")
        if own is not None:
            object.__setattr__(self, "resolution", _json_object(own, "resolution"))
        if self.cancel_reason is not None and not isinstance(self.cancel_reason, str):
            raise ValidationError(f"cancel_reason must be a string or None, got {self.cancel_reason!r}")
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 0:
            raise ValidationError(f"version must be an integer >= 0, got {self.version!r}")
        if self.resume_token is not None:
            if not isinstance(self.resume_token, str) or not self.resume_token:
                raise ValidationError("resume_token must be a non-empty string or None")
            digest = hash_resume_token(self.resume_token)
            if self.resume_token_hash is None:
                object.__setattr__(self, "resume_token_hash", digest)
            elif self.resume_token_hash != digest:
                raise ValidationError("resume_token does not match resume_token_hash")

    # -- state -------------------------------------------------------------------------------

    def is_due(self, now: float | None = None) -> bool:
        """True when the action is still PENDING but its deadline has passed (it should expire)."""
        if self.status is not ActionStatus.PENDING or self.expires_at is None:
            return False
        return (time.time() if now is None else now) >= self.expires_at

    @property
    def is_expired(self) -> bool:
        """Expired, or pending past its deadline (and so no longer resolvable)."""
        return self.status is ActionStatus.EXPIRED or self.is_due()

    @property
    def is_pending(self) -> bool:
        return self.status is ActionStatus.PENDING

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    # -- transitions -------------------------------------------------------------------------

    def check_transition(self, target: ActionStatus) -> None:
        """Raise InvalidTransitionError unless the state machine allows moving to ``target``."""
        if not self.status.can_transition_to(target):
            raise InvalidTransitionError(
                "action",
                self.action_id,
                self.status.value,
                target.value,
                sorted(s.value for s in _TRANSITIONS[self.status]),
            )

    def _evolve(self, **changes: Any) -> ActionRecord:
        # replace() reads fields through getattr; pass our own resolution so a read-through value
        # never leaks into a derived record.
        changes.setdefault("resolution", self.__dict__.get("_resolution"))
        return dataclasses.replace(self, **changes)

    def resolve(self, resolution: Mapping[str, Any], *, now: float | None = None) -> ActionRecord:
        """The RESOLVED record; an action past its deadline cannot be resolved (ActionExpiredError)."""
        self.check_transition(ActionStatus.RESOLVED)
        at = time.time() if now is None else now
        if self.is_due(at):
            raise ActionExpiredError(self.action_id)
        answer = _json_object(resolution, "resolution")
        return self._evolve(status=ActionStatus.RESOLVED, resolution=answer, resolved_at=at)

    def expire(self, *, now: float | None = None) -> ActionRecord:
        """The EXPIRED record (allowed before the deadline too: a waiter that gives up expires it)."""
        self.check_transition(ActionStatus.EXPIRED)
        return self._evolve(status=ActionStatus.EXPIRED, resolved_at=time.time() if now is None else now)

    def cancel(self, reason: str | None = None, *, now: float | None = None) -> ActionRecord:
        """The CANCELLED record, keeping ``reason`` for audit."""
        if reason is not None and not isinstance(reason, str):
            raise ValidationError(f"cancel reason must be a string or None, got {reason!r}")
        self.check_transition(ActionStatus.CANCELLED)
        return self._evolve(
            status=ActionStatus.CANCELLED,
            cancel_reason=reason,
            resolved_at=time.time() if now is None else now,
        )

    # -- token handling (for stores and the manager) -----------------------------------------

    def without_token(self) -> ActionRecord:
        """This record minus the plaintext token: what a store keeps."""
        return self if self.resume_token is None else self._evolve(resume_token=None)

    def with_token(self, token: str) -> ActionRecord:
        """This record carrying its plaintext token (must match the stored hash)."""
        return self._evolve(resume_token=token)

    # -- serialisation -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, without the token or its hash (safe for events, logs and APIs)."""
        resolution = self.__dict__.get("_resolution")
        return {
            "action_id": self.action_id,
            "job_id": self.job_id,
            "type": self.type.value,
            "payload": dict(self.payload),
            "status": self.status.value,
            "expires_at": self.expires_at,
            "metadata": dict(self.metadata),
            "created_at": self.created_at,
            "resolved_at": self.resolved_at,
            "resolution": None if resolution is None else dict(resolution),
            "cancel_reason": self.cancel_reason,
            "version": self.version,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ActionRecord:
        """Rebuild a record from :meth:`to_dict` output (unknown keys are ignored)."""
        if not isinstance(data, Mapping):
            raise ValidationError(f"from_dict() takes a mapping, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        missing = {"action_id", "job_id", "type"} - data.keys()
        if missing:
            raise ValidationError(f"action dict is missing {', '.join(sorted(missing))}")
        return cls(**{k: v for k, v in data.items() if k in names})

    def __repr__(self) -> str:
        token = "'<redacted>'" if self.resume_token is not None else "None"
        return (
            f"ActionRecord(action_id={self.action_id!r}, job_id={self.job_id!r}, type={self.type.value!r}, "
            f"status={self.status.value!r}, payload={self.payload!r}, expires_at={self.expires_at!r}, "
            f"resume_token={token}, metadata={self.metadata!r}, created_at={self.created_at!r}, "
            f"resolved_at={self.resolved_at!r}, resolution={self.__dict__.get('_resolution')!r}, "
            f"cancel_reason={self.cancel_reason!r}, version={self.version!r})"
        )


def _get_resolution(self: ActionRecord) -> dict[str, Any] | None:
    own: dict[str, Any] | None = self.__dict__.get("_resolution")
    if own is None and self.status is ActionStatus.PENDING:
        live = self.__dict__.get("_live")
        if live is not None and live.record is not None:
            latest: dict[str, Any] | None = live.record.__dict__.get("_resolution")
            return latest
    return own


def _set_resolution(self: ActionRecord, value: dict[str, Any] | None) -> None:
    # Reached only through object.__setattr__ (dataclass __init__/__post_init__): the frozen
    # dataclass __setattr__ still refuses `record.resolution = ...`.
    self.__dict__["_resolution"] = value


# A data descriptor in place of the plain field, so `resolution` can read through (see the class
# docstring) while the dataclass machinery (init, replace, fields, eq) keeps treating it as a field.
ActionRecord.resolution = property(_get_resolution, _set_resolution)  # type: ignore[assignment]


@dataclass(frozen=True)
class ActionSpec:
    """What a tool asks for; the manager turns it into a record with an id, deadline and token.

    ``type`` accepts the enum or its string and is normalised to :class:`ActionType`.
    ``timeout_seconds=None`` means the action never expires on its own.
    """

    job_id: str
    type: ActionType | str
    payload: dict[str, Any] = field(default_factory=dict)
    timeout_seconds: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require_id(self.job_id, "job_id")
        object.__setattr__(self, "type", ActionType.parse(self.type))
        object.__setattr__(self, "payload", _json_object(self.payload, "payload"))
        object.__setattr__(self, "metadata", _json_object(self.metadata, "metadata"))
        t = self.timeout_seconds
        if t is not None and (
            isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0
        ):
            raise ValidationError(f"timeout_seconds must be a positive number of seconds or None, got {t!r}")

    @property
    def action_type(self) -> ActionType:
        return ActionType.parse(self.type)


@dataclass(frozen=True)
class ActionFilter:
    """Criteria for ``ActionStore.list``; ``None`` matches anything. Results are oldest first."""

    job_id: str | None = None
    status: ActionStatus | str | None = None
    type: ActionType | str | None = None
    limit: int | None = None
    offset: int = 0

    def __post_init__(self) -> None:
        if self.job_id is not None:
            _require_id(self.job_id, "job_id")
        if self.status is not None:
            object.__setattr__(self, "status", ActionStatus.parse(self.status))
        if self.type is not None:
            object.__setattr__(self, "type", ActionType.parse(self.type))
        if self.limit is not None and (
            isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 0
        ):
            raise ValidationError(f"limit must be an integer >= 0 or None, got {self.limit!r}")
        if isinstance(self.offset, bool) or not isinstance(self.offset, int) or self.offset < 0:
            raise ValidationError(f"offset must be an integer >= 0, got {self.offset!r}")

    def matches(self, action: ActionRecord) -> bool:
        return (
            (self.job_id is None or action.job_id == self.job_id)
            and (self.status is None or action.status == self.status)
            and (self.type is None or action.type == self.type)
        )
