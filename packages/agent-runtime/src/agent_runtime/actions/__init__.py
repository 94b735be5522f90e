"""Human-in-the-loop actions: a job asks a person something and waits, securely, for the answer."""

from __future__ import annotations

from .errors import (
    ActionAlreadyResolvedError,
    ActionCancelledError,
    ActionExpiredError,
    ActionRequiredError,
    InvalidResumeTokenError,
    ResumeTokenError,
)
from .manager import ActionEventHandler, ActionManager
from .models import ActionFilter, ActionRecord, ActionSpec, ActionStatus, ActionType, statuses_leading_to
from .store import ActionStore, InMemoryActionStore
from .tokens import hash_resume_token, new_resume_token

__all__ = [
    "ActionStatus",
    "ActionType",
    "ActionRecord",
    "ActionSpec",
    "ActionFilter",
    "ActionStore",
    "InMemoryActionStore",
    "ActionManager",
    "ActionEventHandler",
    "ActionRequiredError",
    "ResumeTokenError",
    "InvalidResumeTokenError",
    "ActionAlreadyResolvedError",
    "ActionExpiredError",
    "ActionCancelledError",
    "hash_resume_token",
    "new_resume_token",
    "statuses_leading_to",
]
