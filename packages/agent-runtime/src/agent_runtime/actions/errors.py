"""Errors of the action protocol.

Refusals of a resume token are split by cause so an API endpoint can answer precisely (410 Gone for
an expired action, 409 Conflict for a reused token, ...) without parsing messages. None of them ever
carries the token itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llm_client import ToolInterrupt

from ..errors import AgentRuntimeError

if TYPE_CHECKING:
    from .models import ActionRecord

__all__ = [
    "ResumeTokenError",
    "InvalidResumeTokenError",
    "ActionAlreadyResolvedError",
    "ActionExpiredError",
    "ActionCancelledError",
    "ActionRequiredError",
]


class ResumeTokenError(AgentRuntimeError):
    """An action cannot be resolved (any more): base of every resume-token refusal.

    ``action_id`` is None when the token matched no action at all (it is never disclosed which
    action a wrong token was "close to").
    """

    def __init__(self, message: str, *, action_id: str | None = None) -> None:
        super().__init__(message)
        self.action_id = action_id


class InvalidResumeTokenError(ResumeTokenError):
    """The token is malformed, unknown, or belongs to another job.

    One error for all three on purpose: telling "unknown" from "other job" apart would let a caller
    probe for valid tokens.
    """

    def __init__(self, message: str = "resume token is not valid") -> None:
        super().__init__(message)


class ActionAlreadyResolvedError(ResumeTokenError):
    """The token was valid but has been used: tokens are single-use."""

    def __init__(self, action_id: str) -> None:
        super().__init__(
            f"action {action_id!r} is already resolved; its resume token was used", action_id=action_id
        )


class ActionExpiredError(ResumeTokenError, TimeoutError):
    """The action's deadline passed (or a waiter's timeout expired it) before anyone answered.

    Also a ``TimeoutError``, so ``except TimeoutError`` around ``wait_for_resolution`` works.
    """

    def __init__(self, action_id: str) -> None:
        super().__init__(f"action {action_id!r} expired before it was resolved", action_id=action_id)


class ActionCancelledError(ResumeTokenError):
    """The action was cancelled (e.g. its job was cancelled) and can no longer be answered."""

    def __init__(self, action_id: str, reason: str | None = None) -> None:
        detail = f": {reason}" if reason else ""
        super().__init__(f"action {action_id!r} was cancelled{detail}", action_id=action_id)
        self.reason = reason


class ActionRequiredError(AgentRuntimeError, ToolInterrupt):
    """Raised by a tool to pause its job until a human answers ``action``.

    The kernel catches it, moves the job to WAITING_ACTION and resumes the job once the action is
    resolved. Raising (instead of awaiting inside the tool) frees the worker for the whole wait,
    which may last hours.
    """

    def __init__(self, action: ActionRecord, message: str | None = None) -> None:
        default = f"job {action.job_id!r} waits for a human action: {action.type.value} ({action.action_id})"
        super().__init__(message or default)
        self.action = action

    @property
    def action_id(self) -> str:
        return self.action.action_id

    @property
    def job_id(self) -> str:
        return self.action.job_id
