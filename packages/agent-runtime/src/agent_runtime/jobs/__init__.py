"""Jobs: durable execution records, their one state machine, stores and the lifecycle manager."""

from __future__ import annotations

from .manager import DEFAULT_CONFLICT_RETRY, ConflictRetryPolicy, JobManager
from .models import TRANSITIONS, JobFilter, JobFinishedError, JobRecord, JobSpec, JobStatus, new_job_id
from .store import DuplicateJobError, InMemoryJobStore, JobStore

__all__ = [
    "JobStatus",
    "JobRecord",
    "JobSpec",
    "JobFilter",
    "JobStore",
    "InMemoryJobStore",
    "JobManager",
    "JobFinishedError",
    "DuplicateJobError",
    "ConflictRetryPolicy",
    "DEFAULT_CONFLICT_RETRY",
    "TRANSITIONS",
    "new_job_id",
]
