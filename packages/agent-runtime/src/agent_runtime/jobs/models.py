"""Job records and their lifecycle: the status enum, the one transition table, spec and filter.

Records are immutable; every change is a new record made by a transition method, so a store can
compare what a caller read with what is stored (optimistic versioning) and nobody mutates a job
behind a store's back. Timestamps are epoch seconds (``time.time()``), like the seed's ``deadline``.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from ..context import BudgetSpec, PolicyRef, _require_instance
from ..errors import InvalidTransitionError, ValidationError

__all__ = ["JobStatus", "JobRecord", "JobSpec", "JobFilter", "JobFinishedError", "new_job_id", "TRANSITIONS"]


def new_job_id() -> str:
    return f"job-{uuid.uuid4().hex}"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    WAITING_ACTION = "waiting_action"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def is_active(self) -> bool:
        return self not in _TERMINAL

    @property
    def allowed_targets(self) -> frozenset[JobStatus]:
        return TRANSITIONS[self]

    def can_transition_to(self, target: JobStatus) -> bool:
        return target in TRANSITIONS[self]


_TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.TIMED_OUT})

#: The job state machine: the only place that says which status may follow which.
TRANSITIONS: Mapping[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset(
        {JobStatus.RUNNING, JobStatus.CANCELLED, JobStatus.FAILED, JobStatus.TIMED_OUT}
    ),
    JobStatus.RUNNING: frozenset(
        {
            JobStatus.WAITING_ACTION,
            JobStatus.SUCCEEDED,
            JobStatus.FAILED,
            JobStatus.CANCELLED,
            JobStatus.TIMED_OUT,
        }
    ),
    JobStatus.WAITING_ACTION: frozenset(
        {JobStatus.RUNNING, JobStatus.CANCELLED, JobStatus.FAILED, JobStatus.TIMED_OUT}
    ),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
    JobStatus.TIMED_OUT: frozenset(),
}


class JobFinishedError(InvalidTransitionError):
    """A change (progress, say) to a job that is already terminal: its outcome is final.

    An InvalidTransitionError, so code that handles losing a race to a transition handles this too.
    """

    def __init__(self, job_id: str, status: JobStatus, what: str) -> None:
        super().__init__("job", job_id, status.value, status.value, [])
        self.args = (f"job {job_id!r} is {status.value} (terminal): cannot {what}",)
        self.job_id = job_id


def _order(statuses: Iterable[JobStatus]) -> list[str]:
    """Statuses in declaration order, so error messages read the same every time."""
    wanted = set(statuses)
    return [s.value for s in JobStatus if s in wanted]


def _coerce_status(value: object, what: str = "status") -> JobStatus:
    if isinstance(value, JobStatus):
        return value
    if isinstance(value, str):
        try:
            return JobStatus(value.lower())
        except ValueError:
            pass
    names = ", ".join(s.value for s in JobStatus)
    raise ValidationError(f"{what} must be a JobStatus ({names}), got {value!r}")


def _check_id(name: str, value: object, *, required: bool = False) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str) or not value:
        expected = "a non-empty string" if required else "a non-empty string or None"
        raise ValidationError(f"{name} must be {expected}, got {value!r}")


def _check_optional_str(name: str, value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise ValidationError(f"{name} must be a string or None, got {value!r}")


def _check_time(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(f"{name} must be epoch seconds (a finite number) or None, got {value!r}")
    return float(value)


def _check_progress(progress: object) -> float:
    if isinstance(progress, bool) or not isinstance(progress, (int, float)) or not 0.0 <= progress <= 1.0:
        raise ValidationError(f"progress must be a number between 0.0 and 1.0, got {progress!r}")
    return float(progress)


def _check_turn(turn: object) -> int:
    if isinstance(turn, bool) or not isinstance(turn, int) or turn < 0:
        raise ValidationError(f"turn must be an int >= 0, got {turn!r}")
    return turn


def _check_tags(tags: object) -> dict[str, str]:
    if not isinstance(tags, Mapping):
        raise ValidationError(f"tags must be a mapping of str to str, got {type(tags).__name__}")
    for k, v in tags.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise ValidationError(f"tags must map str to str, got {k!r}: {v!r}")
    return dict(tags)


def _check_mapping(name: str, value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError(f"{name} must be a mapping, got {type(value).__name__}")
    return dict(value)


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One job: identity, lifecycle, limits, and the durable state needed to resume it.

    ``version`` is the optimistic-concurrency counter owned by the store: a record is written back
    only if the stored version still equals the version it was read at (the store then increments
    it). Transition methods never touch it, so several changes can be chained before one update.
    ``state`` is the conversation state the kernel persists to resume after a restart; like
    ``metadata`` it must be JSON-serialisable to be stored.
    """

    job_id: str = field(default_factory=new_job_id)
    scope_id: str | None = None
    principal_id: str | None = None
    session_id: str | None = None
    run_id: str | None = None
    parent_job_id: str | None = None
    idempotency_key: str | None = None
    status: JobStatus = JobStatus.QUEUED
    deadline: float | None = None
    budgets: BudgetSpec = field(default_factory=BudgetSpec)
    policy_ref: PolicyRef | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    state: Mapping[str, Any] = field(default_factory=dict, repr=False)
    progress: float = 0.0
    turn: int = 0
    error: str | None = None
    error_code: str | None = None
    result_ref: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    version: int = 0

    def __post_init__(self) -> None:
        _check_id("job_id", self.job_id, required=True)
        for name in ("scope_id", "principal_id", "session_id", "run_id", "parent_job_id", "idempotency_key"):
            _check_id(name, getattr(self, name))
        for name in ("error", "error_code", "result_ref"):
            _check_optional_str(name, getattr(self, name))
        object.__setattr__(self, "status", _coerce_status(self.status))
        object.__setattr__(self, "deadline", _check_time("deadline", self.deadline))
        _require_instance("budgets", self.budgets, BudgetSpec)
        _require_instance("policy_ref", self.policy_ref, PolicyRef, optional=True)
        object.__setattr__(self, "metadata", _check_mapping("metadata", self.metadata))
        object.__setattr__(self, "state", _check_mapping("state", self.state))
        object.__setattr__(self, "tags", _check_tags(self.tags))
        object.__setattr__(self, "progress", _check_progress(self.progress))
        _check_turn(self.turn)
        created = _check_time("created_at", self.created_at)
        if created is None:
            raise ValidationError("created_at cannot be None")
        object.__setattr__(self, "created_at", created)
        if self.updated_at is None:
            object.__setattr__(self, "updated_at", created)
        for name in ("updated_at", "started_at", "finished_at"):
            object.__setattr__(self, name, _check_time(name, getattr(self, name)))
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 0:
            raise ValidationError(f"version must be an int >= 0, got {self.version!r}")

    # -- lifecycle -----------------------------------------------------------------------------

    def can_transition_to(self, status: JobStatus) -> bool:
        return self.status.can_transition_to(_coerce_status(status))

    def transition_to(self, status: JobStatus, *, now: float | None = None) -> JobRecord:
        """A copy in ``status``; raises InvalidTransitionError (naming the legal targets) otherwise.

        Entering RUNNING the first time stamps ``started_at``; entering a terminal status stamps
        ``finished_at``.
        """
        target = _coerce_status(status)
        if not self.status.can_transition_to(target):
            raise InvalidTransitionError(
                "job", self.job_id, self.status.value, target.value, _order(self.status.allowed_targets)
            )
        ts = time.time() if now is None else now
        changes: dict[str, Any] = {"status": target, "updated_at": ts}
        if target is JobStatus.RUNNING and self.started_at is None:
            changes["started_at"] = ts
        if target.is_terminal:
            changes["finished_at"] = ts
        return self._evolve(changes)

    def _evolve(self, changes: Mapping[str, Any]) -> JobRecord:
        """A copy with ``changes``, skipping ``__post_init__``: only for values already validated.

        Every transition makes a new record, and a job makes several per run: validating all
        twenty-four fields again for a changed status and timestamp would dominate short jobs.
        """
        new = object.__new__(type(self))
        for name in _FIELD_NAMES:
            object.__setattr__(new, name, changes[name] if name in changes else getattr(self, name))
        return new

    def with_heartbeat(self, now: float | None = None) -> JobRecord:
        """The same job, stamped as alive now (``updated_at``): how a worker shows it still runs it."""
        self._require_active("record a heartbeat")
        return self._evolve({"updated_at": time.time() if now is None else float(now)})

    def with_progress(self, progress: float, turn: int | None = None) -> JobRecord:
        """Progress (0.0-1.0) and, optionally, the turn reached. A finished job's progress is final."""
        value = _check_progress(progress)
        changes: dict[str, Any] = {"progress": value, "updated_at": time.time()}
        if turn is not None:
            changes["turn"] = _check_turn(turn)
        self._require_active("update progress")
        return self._evolve(changes)

    def with_error(self, error: str, error_code: str | None = None) -> JobRecord:
        """Records what went wrong without changing status: the caller decides if it is fatal."""
        if not isinstance(error, str):
            raise ValidationError(f"error must be a string, got {error!r}")
        _check_optional_str("error_code", error_code)
        return self._evolve({"error": error, "error_code": error_code, "updated_at": time.time()})

    def with_result(self, result_ref: str | None) -> JobRecord:
        """A reference to where the result lives (an artifact id, a URL), not the result itself."""
        _check_optional_str("result_ref", result_ref)
        return self._evolve({"result_ref": result_ref, "updated_at": time.time()})

    def with_state(self, state: Mapping[str, Any]) -> JobRecord:
        return self._evolve({"state": _check_mapping("state", state), "updated_at": time.time()})

    def is_past_deadline(self, now: float | None = None) -> bool:
        return self.deadline is not None and (time.time() if now is None else now) >= self.deadline

    def _require_active(self, what: str) -> None:
        if self.status.is_terminal:
            raise JobFinishedError(self.job_id, self.status, what)

    # -- serialisation ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (status as its value, budgets' cost as a string)."""
        return {
            "job_id": self.job_id,
            "scope_id": self.scope_id,
            "principal_id": self.principal_id,
            "session_id": self.session_id,
            "run_id": self.run_id,
            "parent_job_id": self.parent_job_id,
            "idempotency_key": self.idempotency_key,
            "status": self.status.value,
            "deadline": self.deadline,
            "budgets": self.budgets.to_dict(),
            "policy_ref": None if self.policy_ref is None else self.policy_ref.to_dict(),
            "metadata": dict(self.metadata),
            "tags": dict(self.tags),
            "state": dict(self.state),
            "progress": self.progress,
            "turn": self.turn,
            "error": self.error,
            "error_code": self.error_code,
            "result_ref": self.result_ref,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "version": self.version,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobRecord:
        data = dict(_check_mapping("job record", data))
        data["budgets"] = BudgetSpec.from_dict(data.get("budgets"))
        policy = data.get("policy_ref")
        data["policy_ref"] = None if policy is None else PolicyRef.from_dict(policy)
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValidationError(f"unknown job field(s): {', '.join(sorted(unknown))}")
        return cls(**data)


_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(JobRecord))


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What a caller asks for; the manager turns it into a QUEUED :class:`JobRecord`.

    ``timeout_seconds`` is a convenience for ``deadline = now + timeout_seconds``; give one or the
    other. ``job_id`` lets a caller choose the id (e.g. to correlate with an external system).
    """

    scope_id: str | None = None
    principal_id: str | None = None
    session_id: str | None = None
    run_id: str | None = None
    parent_job_id: str | None = None
    idempotency_key: str | None = None
    deadline: float | None = None
    timeout_seconds: float | None = None
    budgets: BudgetSpec = field(default_factory=BudgetSpec)
    policy_ref: PolicyRef | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    state: Mapping[str, Any] = field(default_factory=dict)
    job_id: str | None = None

    def __post_init__(self) -> None:
        if self.deadline is not None and self.timeout_seconds is not None:
            raise ValidationError("give either deadline or timeout_seconds, not both")
        if self.timeout_seconds is not None:
            t = _check_time("timeout_seconds", self.timeout_seconds)
            if t is None or t <= 0:
                raise ValidationError(f"timeout_seconds must be > 0, got {self.timeout_seconds!r}")

    def to_record(self, *, now: float | None = None) -> JobRecord:
        """The QUEUED record; all field validation happens here, in JobRecord."""
        ts = time.time() if now is None else now
        deadline = self.deadline
        if self.timeout_seconds is not None:
            deadline = ts + self.timeout_seconds
        return JobRecord(
            job_id=self.job_id or new_job_id(),
            scope_id=self.scope_id,
            principal_id=self.principal_id,
            session_id=self.session_id,
            run_id=self.run_id,
            parent_job_id=self.parent_job_id,
            idempotency_key=self.idempotency_key,
            status=JobStatus.QUEUED,
            deadline=deadline,
            budgets=self.budgets,
            policy_ref=self.policy_ref,
            metadata=self.metadata,
            tags=self.tags,
            state=self.state,
            created_at=ts,
        )


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Which jobs to list or count. Every given criterion must match (AND).

    ``status`` is one status or a collection (any of them); ``tags`` match when the job carries
    every given key with the given value; ``created_after``/``created_before`` are exclusive epoch
    bounds. ``limit`` (None: no limit) and ``offset`` apply to :meth:`JobStore.list` only; lists are
    newest first.
    """

    scope_id: str | None = None
    principal_id: str | None = None
    session_id: str | None = None
    status: JobStatus | Iterable[JobStatus] | None = None
    parent_job_id: str | None = None
    tags: Mapping[str, str] | None = None
    created_after: float | None = None
    created_before: float | None = None
    limit: int | None = None
    offset: int = 0

    def __post_init__(self) -> None:
        for name in ("scope_id", "principal_id", "session_id", "parent_job_id"):
            _check_id(name, getattr(self, name))
        if self.status is not None:
            if isinstance(self.status, (JobStatus, str)):
                statuses = frozenset({_coerce_status(self.status)})
            else:
                statuses = frozenset(_coerce_status(s) for s in self.status)
            object.__setattr__(self, "status", statuses)
        if self.tags is not None:
            object.__setattr__(self, "tags", _check_tags(self.tags))
        for name in ("created_after", "created_before"):
            object.__setattr__(self, name, _check_time(name, getattr(self, name)))
        limit = self.limit
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ValidationError(f"limit must be an int >= 0 or None, got {self.limit!r}")
        if isinstance(self.offset, bool) or not isinstance(self.offset, int) or self.offset < 0:
            raise ValidationError(f"offset must be an int >= 0, got {self.offset!r}")

    @property
    def statuses(self) -> frozenset[JobStatus] | None:
        """The status criterion as a set (the constructor normalises ``status`` to one)."""
        if self.status is None:
            return None
        assert isinstance(self.status, frozenset)
        return self.status

    def matches(self, job: JobRecord) -> bool:
        if self.scope_id is not None and job.scope_id != self.scope_id:
            return False
        if self.principal_id is not None and job.principal_id != self.principal_id:
            return False
        if self.session_id is not None and job.session_id != self.session_id:
            return False
        if self.parent_job_id is not None and job.parent_job_id != self.parent_job_id:
            return False
        statuses = self.statuses
        if statuses is not None and job.status not in statuses:
            return False
        if self.tags and any(job.tags.get(k) != v for k, v in self.tags.items()):
            return False
        if self.created_after is not None and not job.created_at > self.created_after:
            return False
        return not (self.created_before is not None and not job.created_at < self.created_before)
