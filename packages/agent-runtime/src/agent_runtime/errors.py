"""The kernel's error hierarchy: every error a caller can act on has its own type."""

from __future__ import annotations

__all__ = [
    "AgentRuntimeError",
    "NotFoundError",
    "JobNotFoundError",
    "ActionNotFoundError",
    "InvalidTransitionError",
    "ConcurrentModificationError",
    "ValidationError",
]


class AgentRuntimeError(Exception):
    """Base class of the kernel's errors."""


class NotFoundError(AgentRuntimeError, LookupError):
    """An id that names nothing."""


class JobNotFoundError(NotFoundError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job with id {job_id!r}")
        self.job_id = job_id


class ActionNotFoundError(NotFoundError):
    def __init__(self, action_id: str) -> None:
        super().__init__(f"no action with id {action_id!r}")
        self.action_id = action_id


class InvalidTransitionError(AgentRuntimeError, ValueError):
    """A state machine refused a transition (e.g. SUCCEEDED -> RUNNING)."""

    def __init__(self, kind: str, ident: str, current: str, target: str, allowed: list[str]) -> None:
        allowed_text = ", ".join(allowed) if allowed else "none (terminal state)"
        super().__init__(
            f"{kind} {ident!r} cannot move from {current} to {target}; allowed from {current}: {allowed_text}"
        )
        self.current = current
        self.target = target


class ConcurrentModificationError(AgentRuntimeError):
    """Someone else changed the record first (optimistic versioning): reload and retry."""


class ValidationError(AgentRuntimeError, ValueError):
    """An argument is out of range or malformed."""
