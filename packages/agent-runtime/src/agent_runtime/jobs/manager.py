"""JobManager: the lifecycle operations, each an optimistic read-modify-write against a JobStore.

Two workers may act on the same job at once (two kernels resuming it, a cancel racing a completion).
Every operation reads the job, applies its change to the fresh record and writes it back only if
nobody wrote in between. When someone did, it reads again and retries, but only while the change
is still legal: a ``start`` that lost to another ``start`` re-reads a RUNNING job and fails with
InvalidTransitionError instead of starting it twice. The retry loop is llm-client's
(:func:`llm_client.retry.retry_async`), retrying ConcurrentModificationError and nothing else.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from llm_client import RetryPolicy
from llm_client.retry import retry_async

from ..errors import ConcurrentModificationError, InvalidTransitionError, JobNotFoundError, ValidationError
from .models import (
    JobFilter,
    JobRecord,
    JobSpec,
    JobStatus,
    _check_mapping,
    _check_optional_str,
    _check_turn,
    _order,
)
from .store import JobStore

__all__ = ["JobManager", "ConflictRetryPolicy", "DEFAULT_CONFLICT_RETRY"]


@dataclass(frozen=True, slots=True)
class ConflictRetryPolicy(RetryPolicy):
    """A RetryPolicy whose only retryable error is a lost optimistic write."""

    def is_retryable(self, error: BaseException) -> bool:
        return isinstance(error, ConcurrentModificationError)


#: Short, fully jittered backoff: conflicts resolve in one re-read unless many writers pile on.
DEFAULT_CONFLICT_RETRY = ConflictRetryPolicy(
    max_attempts=10, initial_delay=0.005, multiplier=2.0, max_delay=0.2, jitter=1.0, max_total_time=10.0
)


def _wrong_status(
    job: JobRecord, target: JobStatus, operation: str, needs: JobStatus
) -> InvalidTransitionError:
    error = InvalidTransitionError(
        "job", job.job_id, job.status.value, target.value, _order(job.status.allowed_targets)
    )
    error.args = (f"{operation}() needs a {needs.value} job; job {job.job_id!r} is {job.status.value}",)
    return error


class JobManager:
    """Creates jobs and moves them through their lifecycle. Unknown ids raise JobNotFoundError.

    ``retry_policy`` sets the backoff between re-reads after a lost write; whatever policy is given,
    only ConcurrentModificationError is retried.
    """

    def __init__(self, store: JobStore, *, retry_policy: RetryPolicy | None = None) -> None:
        if not isinstance(store, JobStore):
            raise ValidationError(f"store must be a JobStore, got {type(store).__name__}")
        self.store = store
        if retry_policy is None:
            self._retry: ConflictRetryPolicy = DEFAULT_CONFLICT_RETRY
        elif isinstance(retry_policy, ConflictRetryPolicy):
            self._retry = retry_policy
        else:
            settings = {f.name: getattr(retry_policy, f.name) for f in fields(retry_policy)}
            self._retry = ConflictRetryPolicy(**settings)

    # -- creation and queries ------------------------------------------------------------------

    async def create(self, spec: JobSpec) -> JobRecord:
        """A new QUEUED job, or the existing job if one has this idempotency key in this scope."""
        if not isinstance(spec, JobSpec):
            raise ValidationError(f"create() takes a JobSpec, got {type(spec).__name__}")
        return await self.store.create(spec.to_record())

    async def get(self, job_id: str) -> JobRecord:
        job = await self.store.get(job_id)
        if job is None:
            raise JobNotFoundError(job_id)
        return job

    async def list(self, filter: JobFilter | None = None) -> list[JobRecord]:
        return await self.store.list(filter)

    async def count(self, filter: JobFilter | None = None) -> int:
        return await self.store.count(filter)

    async def get_by_idempotency_key(self, key: str, scope_id: str | None = None) -> JobRecord | None:
        return await self.store.get_by_idempotency_key(key, scope_id=scope_id)

    async def delete(self, job_id: str) -> bool:
        return await self.store.delete(job_id)

    # -- lifecycle -----------------------------------------------------------------------------

    async def modify(self, job_id: str, change: Callable[[JobRecord], JobRecord]) -> JobRecord:
        """Apply ``change`` to the freshest record and store it, re-reading after a lost write.

        ``change`` must be pure: it runs again on every retry. It raises to refuse (e.g.
        InvalidTransitionError), which ends the operation at once.
        """

        async def attempt() -> JobRecord:
            job = await self.store.get(job_id)
            if job is None:
                raise JobNotFoundError(job_id)
            return await self.store.update(change(job))

        return await retry_async(attempt, self._retry)

    async def start(self, job_id: str) -> JobRecord:
        """QUEUED -> RUNNING. Losing a race to another starter raises InvalidTransitionError."""

        def change(job: JobRecord) -> JobRecord:
            if job.status is not JobStatus.QUEUED:
                raise _wrong_status(job, JobStatus.RUNNING, "start", JobStatus.QUEUED)
            return job.transition_to(JobStatus.RUNNING)

        return await self.modify(job_id, change)

    async def update_progress(self, job_id: str, progress: float, turn: int | None = None) -> JobRecord:
        """Progress of an active job; a terminal job refuses (JobFinishedError)."""
        return await self.modify(job_id, lambda job: job.with_progress(progress, turn=turn))

    async def heartbeat(self, job_id: str) -> JobRecord:
        """Stamp an active job as alive (``updated_at``); a terminal job refuses (JobFinishedError)."""
        return await self.modify(job_id, lambda job: job.with_heartbeat())

    async def wait_for_action(self, job_id: str) -> JobRecord:
        """RUNNING -> WAITING_ACTION: the job is paused on a human-in-the-loop action."""
        return await self.modify(job_id, lambda job: job.transition_to(JobStatus.WAITING_ACTION))

    async def resume(self, job_id: str) -> JobRecord:
        """WAITING_ACTION -> RUNNING."""

        def change(job: JobRecord) -> JobRecord:
            if job.status is not JobStatus.WAITING_ACTION:
                raise _wrong_status(job, JobStatus.RUNNING, "resume", JobStatus.WAITING_ACTION)
            return job.transition_to(JobStatus.RUNNING)

        return await self.modify(job_id, change)

    async def complete(
        self,
        job_id: str,
        result_ref: str | None = None,
        *,
        state: Mapping[str, Any] | None = None,
        turn: int | None = None,
    ) -> JobRecord:
        """RUNNING -> SUCCEEDED, with progress 1.0 and an optional reference to the result.

        ``state`` and ``turn`` are written in the same update, so finishing a job is one write.
        """

        def change(job: JobRecord) -> JobRecord:
            final: dict[str, Any] = {"progress": 1.0}
            if turn is not None:
                final["turn"] = _check_turn(turn)
            if state is not None:
                final["state"] = _check_mapping("state", state)
            if result_ref is not None:
                _check_optional_str("result_ref", result_ref)
                final["result_ref"] = result_ref
            return job.transition_to(JobStatus.SUCCEEDED)._evolve(final)

        return await self.modify(job_id, change)

    async def fail(self, job_id: str, error: str, error_code: str | None = None) -> JobRecord:
        """Any active status -> FAILED, recording the error."""
        return await self.modify(
            job_id, lambda job: job.transition_to(JobStatus.FAILED).with_error(error, error_code=error_code)
        )

    async def cancel(self, job_id: str, reason: str | None = None) -> JobRecord:
        """Any active status -> CANCELLED; the reason is kept as the error, code ``"cancelled"``.

        Cancelling a finished job raises InvalidTransitionError (its outcome stands), as Temporal does.
        """
        return await self.modify(
            job_id,
            lambda job: job.transition_to(JobStatus.CANCELLED).with_error(
                reason or "cancelled", error_code="cancelled"
            ),
        )

    async def timeout(self, job_id: str, message: str | None = None) -> JobRecord:
        """Any active status -> TIMED_OUT, code ``"timeout"``."""
        return await self.modify(
            job_id,
            lambda job: job.transition_to(JobStatus.TIMED_OUT).with_error(
                message or "deadline exceeded", error_code="timeout"
            ),
        )

    async def set_state(self, job_id: str, state: Mapping[str, Any]) -> JobRecord:
        """Replace the durable conversation state the kernel resumes from; does not change status."""
        return await self.modify(job_id, lambda job: job.with_state(state))

    async def expire_overdue(self, now: float | None = None) -> builtins.list[JobRecord]:
        """Time out every active job whose deadline has passed; returns the jobs this call timed out.

        Jobs that finish or disappear meanwhile are skipped: whoever moved them first wins.
        """
        ts = time.time() if now is None else now
        active = JobFilter(status=[s for s in JobStatus if s.is_active])
        expired: builtins.list[JobRecord] = []
        for job in await self.store.list(active):
            if not job.is_past_deadline(ts):
                continue
            try:
                expired.append(await self.timeout(job.job_id))
            except (InvalidTransitionError, JobNotFoundError):
                continue
        return expired
