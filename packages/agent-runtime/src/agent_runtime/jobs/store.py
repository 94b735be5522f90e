"""The JobStore contract and the in-memory store.

Concurrency contract (every store implements it the same way, see :func:`check_update`):

* ``create`` is idempotent per ``(scope_id, idempotency_key)``: if a job with that key exists in that
  scope (``None`` is a scope of its own), it is returned instead of creating a second one. The stored
  record starts at ``version=1``. A job id that already exists raises :class:`DuplicateJobError`.
* ``update(job)`` writes only if the stored ``version`` equals ``job.version`` (the version the
  caller read); the stored and returned record has ``version + 1``. Otherwise
  :class:`~agent_runtime.errors.ConcurrentModificationError`: someone else moved the job first.
  A status change must be legal from the stored status (the transition table), and the identity
  fields fixed at creation (scope, principal, parent, idempotency key, creation time) cannot change.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from ..errors import (
    ConcurrentModificationError,
    InvalidTransitionError,
    JobNotFoundError,
    ValidationError,
)
from .models import JobFilter, JobRecord, _order

__all__ = [
    "JobStore",
    "InMemoryJobStore",
    "DuplicateJobError",
    "check_update",
    "check_lookup",
    "encode_json",
    "IMMUTABLE_FIELDS",
]

#: Fixed when a job is created; an update that changes one is refused.
IMMUTABLE_FIELDS = ("scope_id", "principal_id", "parent_job_id", "idempotency_key", "created_at")


class DuplicateJobError(ValidationError):
    """``create`` with a job id that is already taken (by a job with another idempotency key)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"a job with id {job_id!r} already exists")
        self.job_id = job_id


def check_update(stored: JobRecord, job: JobRecord) -> None:
    """The rules every store applies before writing ``job`` over ``stored`` (same id)."""
    if stored.version != job.version:
        raise ConcurrentModificationError(
            f"job {job.job_id!r} was modified concurrently: stored version {stored.version}, "
            f"update based on version {job.version}; reload it and retry"
        )
    for name in IMMUTABLE_FIELDS:
        if getattr(stored, name) != getattr(job, name):
            raise ValidationError(f"job {job.job_id!r}: {name} is fixed at creation and cannot be updated")
    if stored.status != job.status and not stored.status.can_transition_to(job.status):
        raise InvalidTransitionError(
            "job", job.job_id, stored.status.value, job.status.value, _order(stored.status.allowed_targets)
        )


def check_lookup(key: object, scope_id: object) -> None:
    """An idempotency lookup needs a real key; ``""`` is not a scope (``None`` means "no scope")."""
    if not isinstance(key, str) or not key:
        raise ValidationError(f"idempotency key must be a non-empty string, got {key!r}")
    if scope_id is not None and (not isinstance(scope_id, str) or not scope_id):
        raise ValidationError(f"scope_id must be a non-empty string or None, got {scope_id!r}")


def encode_json(value: Any, *, what: str) -> str:
    """JSON text for a JSON column; names what was not serialisable."""
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{what} is not JSON-serialisable: {exc}") from exc


class JobStore(ABC):
    """Durable home of job records. See the module docstring for the concurrency contract."""

    @abstractmethod
    async def create(self, job: JobRecord) -> JobRecord:
        """Store a new job, or return the existing one with the same idempotency key in the same scope."""

    @abstractmethod
    async def get(self, job_id: str) -> JobRecord | None: ...

    @abstractmethod
    async def update(self, job: JobRecord) -> JobRecord:
        """Write ``job`` if the stored version equals ``job.version``; returns the stored record."""

    @abstractmethod
    async def delete(self, job_id: str) -> bool:
        """True if a job was deleted, False if there was none."""

    @abstractmethod
    async def list(self, filter: JobFilter | None = None) -> list[JobRecord]:
        """Matching jobs, newest first, honouring the filter's limit and offset."""

    @abstractmethod
    async def get_by_idempotency_key(self, key: str, scope_id: str | None = None) -> JobRecord | None: ...

    @abstractmethod
    async def count(self, filter: JobFilter | None = None) -> int:
        """How many jobs match (limit and offset are ignored)."""


class _Stored:
    """A validated record plus the JSON of its mutable parts, copied out fresh on every read."""

    __slots__ = ("metadata", "record", "state", "tags")

    def __init__(self, record: JobRecord, metadata: str, tags: str, state: str) -> None:
        self.record = record
        self.metadata = metadata
        self.tags = tags
        self.state = state

    def read(self) -> JobRecord:
        return self.record._evolve(
            {"metadata": _decode(self.metadata), "tags": _decode(self.tags), "state": _decode(self.state)}
        )


def _encode_mapping(value: Mapping[str, Any], what: str) -> str:
    return "{}" if not value else encode_json(dict(value), what=what)


def _decode(text: str) -> dict[str, Any]:
    return {} if text == "{}" else dict(json.loads(text))


class InMemoryJobStore(JobStore):
    """A process-local store for tests and single-process deployments.

    Every write goes through JSON, so what a caller can store here is exactly what PostgreSQL
    accepts (a non-serialisable ``state`` fails here too). A record is validated once, when it is
    built; a read returns a shallow copy with fresh ``metadata``/``tags``/``state`` decoded from their
    JSON, so no caller can change a stored job through a dict it holds, without paying a full decode
    and validation on every one of the several reads a state change makes; a write returns the
    record it was given, with the new version. No method awaits between its check and its write, so
    each is atomic under asyncio.
    """

    def __init__(self) -> None:
        self._jobs: dict[str, _Stored] = {}
        self._by_key: dict[tuple[str | None, str], str] = {}

    def _store(self, job: JobRecord, changes: dict[str, Any]) -> JobRecord:
        """Keep ``job`` with ``changes``; returns the caller's copy of what was stored.

        The record is frozen and its scalar fields were validated when it was built; only the
        caller-supplied mappings need checking as JSON, and they are kept as JSON text. The
        returned record shares its dicts with the record the caller passed in (the caller's own);
        the kept record has a private copy of the tags (filters read them), and its metadata and
        state are never read back from it, only from the JSON.
        """
        record = job._evolve(changes)
        what = f"job {job.job_id!r}"
        self._jobs[job.job_id] = _Stored(
            record._evolve({"tags": dict(record.tags)}),
            _encode_mapping(record.metadata, f"metadata of {what}"),
            _encode_mapping(record.tags, f"tags of {what}"),
            _encode_mapping(record.state, f"state of {what}"),
        )
        return record

    async def create(self, job: JobRecord) -> JobRecord:
        if not isinstance(job, JobRecord):
            raise ValidationError(f"create() takes a JobRecord, got {type(job).__name__}")
        if job.idempotency_key is not None:
            existing = self._by_key.get((job.scope_id, job.idempotency_key))
            if existing is not None:
                return self._jobs[existing].read()
        if job.job_id in self._jobs:
            raise DuplicateJobError(job.job_id)
        created = self._store(job, {"version": 1})
        if job.idempotency_key is not None:
            self._by_key[(job.scope_id, job.idempotency_key)] = job.job_id
        return created

    async def get(self, job_id: str) -> JobRecord | None:
        stored = self._jobs.get(job_id)
        return None if stored is None else stored.read()

    async def update(self, job: JobRecord) -> JobRecord:
        if not isinstance(job, JobRecord):
            raise ValidationError(f"update() takes a JobRecord, got {type(job).__name__}")
        current = self._jobs.get(job.job_id)
        if current is None:
            raise JobNotFoundError(job.job_id)
        check_update(current.record, job)
        return self._store(job, {"version": job.version + 1, "updated_at": time.time()})

    async def delete(self, job_id: str) -> bool:
        stored = self._jobs.pop(job_id, None)
        if stored is None:
            return False
        job = stored.record
        if job.idempotency_key is not None:
            self._by_key.pop((job.scope_id, job.idempotency_key), None)
        return True

    def _matching(self, filter: JobFilter | None) -> list[JobRecord]:
        return [s.read() for s in self._jobs.values() if filter is None or filter.matches(s.record)]

    async def list(self, filter: JobFilter | None = None) -> list[JobRecord]:
        jobs = sorted(self._matching(filter), key=lambda j: (j.created_at, j.job_id), reverse=True)
        if filter is None:
            return jobs
        end = None if filter.limit is None else filter.offset + filter.limit
        return jobs[filter.offset : end]

    async def get_by_idempotency_key(self, key: str, scope_id: str | None = None) -> JobRecord | None:
        check_lookup(key, scope_id)
        job_id = self._by_key.get((scope_id, key))
        return None if job_id is None else await self.get(job_id)

    async def count(self, filter: JobFilter | None = None) -> int:
        return len(self._matching(filter))
