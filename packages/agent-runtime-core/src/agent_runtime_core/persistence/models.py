"""Data models for conversations and tasks, plus the :class:`Scope` every store is partitioned by.

Models are plain dataclasses so backends (files, Django, SQL) can map them field by field; each has
``to_dict``/``from_dict`` producing and reading plain JSON values.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ._model import (
    Model,
    as_enum,
    as_optional_datetime,
    as_optional_uuid,
    as_utc,
    as_uuid,
    utc_now,
)

__all__ = [
    "Scope",
    "ToolCall",
    "ToolResult",
    "ConversationMessage",
    "Message",
    "Conversation",
    "TaskState",
    "Task",
    "TaskList",
]


class Scope(enum.StrEnum):
    """Where a record lives: shared by every project of the user, this project, or this process only."""

    GLOBAL = "global"
    PROJECT = "project"
    SESSION = "session"


@dataclass(slots=True)
class ToolCall(Model):
    """A tool invocation requested by the model.

    ``id`` is a string, not a UUID, because it is the provider's id (``call_...``, ``toolu_...``) that
    the matching :class:`ToolResult` must echo back.
    """

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    timestamp: datetime = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        self._check_str("name", allow_empty=False)
        self._check_str("id", allow_empty=False)
        self._check_mapping("arguments")
        self.timestamp = as_utc(self.timestamp, self._where("timestamp"))


@dataclass(slots=True)
class ToolResult(Model):
    """What a tool returned (or the error it raised) for the call with ``tool_call_id``."""

    tool_call_id: str
    result: Any = None
    error: str | None = None
    duration_ms: float | None = None
    timestamp: datetime = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        self._check_str("tool_call_id", allow_empty=False)
        self._check_str("error", optional=True)
        self.timestamp = as_utc(self.timestamp, self._where("timestamp"))

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(slots=True)
class ConversationMessage(Model):
    """One message of a conversation.

    Branching: a message with ``parent_message_id`` set is an alternative to (it replaces) that
    message and everything after it, on the branch ``branch_id``. Messages with no ``branch_id`` are
    the main line. :meth:`Conversation.messages_on_branch` turns this into the linear history a model
    sees.
    """

    role: str
    content: Any = ""
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_results: list[ToolResult] = field(default_factory=list)
    tool_call_id: str | None = None
    model: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    parent_message_id: uuid.UUID | None = None
    branch_id: uuid.UUID | None = None
    timestamp: datetime = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        self._check_str("role", allow_empty=False)
        self._check_str("tool_call_id", optional=True)
        self._check_str("model", optional=True)
        self._check_mapping("usage")
        self._check_mapping("metadata")
        self.id = as_uuid(self.id, self._where("id"))
        self.parent_message_id = as_optional_uuid(self.parent_message_id, self._where("parent_message_id"))
        self.branch_id = as_optional_uuid(self.branch_id, self._where("branch_id"))
        self.timestamp = as_utc(self.timestamp, self._where("timestamp"))
        self.tool_calls = [c if isinstance(c, ToolCall) else ToolCall.from_dict(c) for c in self.tool_calls]
        self.tool_results = [
            r if isinstance(r, ToolResult) else ToolResult.from_dict(r) for r in self.tool_results
        ]


Message = ConversationMessage
"""The name used in quick examples (``conv.messages.append(Message(role="user", content="Hi"))``)."""


@dataclass(slots=True)
class Conversation(Model):
    """A conversation: its messages (all branches), and where it was forked from, if anywhere."""

    title: str | None = None
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    messages: list[ConversationMessage] = field(default_factory=list)
    agent_key: str | None = None
    summary: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    parent_conversation_id: uuid.UUID | None = None
    active_branch_id: uuid.UUID | None = None
    created_at: datetime = field(default_factory=utc_now)
    updated_at: datetime = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        self._check_str("title", optional=True)
        self._check_str("agent_key", optional=True)
        self._check_str("summary", optional=True)
        self._check_mapping("metadata")
        self.id = as_uuid(self.id, self._where("id"))
        self.parent_conversation_id = as_optional_uuid(
            self.parent_conversation_id, self._where("parent_conversation_id")
        )
        self.active_branch_id = as_optional_uuid(self.active_branch_id, self._where("active_branch_id"))
        self.created_at = as_utc(self.created_at, self._where("created_at"))
        self.updated_at = as_utc(self.updated_at, self._where("updated_at"))
        if not isinstance(self.messages, list):
            raise TypeError(f"Conversation.messages must be a list, got {type(self.messages).__name__}")
        self.messages = [
            m if isinstance(m, ConversationMessage) else ConversationMessage.from_dict(m)
            for m in self.messages
        ]

    def get_message(self, message_id: uuid.UUID) -> ConversationMessage | None:
        return next((m for m in self.messages if m.id == message_id), None)

    def branch_ids(self) -> list[uuid.UUID]:
        """Branches in the order they were first used."""
        seen: dict[uuid.UUID, None] = {}
        for m in self.messages:
            if m.branch_id is not None:
                seen.setdefault(m.branch_id)
        return list(seen)

    def messages_on_branch(self, branch_id: uuid.UUID | None) -> list[ConversationMessage]:
        """The linear history seen on ``branch_id`` (None: the main line).

        A branch's history is its parent's history up to, but excluding, the message the branch's
        first message replaces, followed by the branch's own messages. Branches may branch off
        branches; a cycle of parent links (only possible in hand-made data) is cut where it repeats.
        """
        return self._lineage(branch_id, set())

    def active_messages(self) -> list[ConversationMessage]:
        return self.messages_on_branch(self.active_branch_id)

    def _lineage(self, branch_id: uuid.UUID | None, seen: set[uuid.UUID]) -> list[ConversationMessage]:
        own = [m for m in self.messages if m.branch_id == branch_id]
        if branch_id is None or not own or own[0].parent_message_id is None or branch_id in seen:
            return own
        seen.add(branch_id)
        replaced = self.get_message(own[0].parent_message_id)
        if replaced is None:
            return own
        parent_line = self._lineage(replaced.branch_id, seen)
        prefix = []
        for m in parent_line:
            if m.id == replaced.id:
                break
            prefix.append(m)
        return prefix + own


class TaskState(enum.StrEnum):
    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    COMPLETE = "complete"
    CANCELLED = "cancelled"


@dataclass(slots=True)
class Task(Model):
    """A unit of work an agent tracks, resumable from ``checkpoint_data`` after a crash or retry."""

    name: str
    description: str = ""
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    state: TaskState = TaskState.NOT_STARTED
    conversation_id: uuid.UUID | None = None
    parent_id: uuid.UUID | None = None
    dependencies: list[uuid.UUID] = field(default_factory=list)
    priority: int = 0
    due_at: datetime | None = None
    completed_at: datetime | None = None
    checkpoint_data: dict[str, Any] | None = None
    checkpoint_at: datetime | None = None
    attempts: int = 0
    last_error: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=utc_now)
    updated_at: datetime = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        self._check_str("name", allow_empty=False)
        self._check_str("description")
        self._check_str("last_error", optional=True)
        self._check_mapping("metadata")
        self.id = as_uuid(self.id, self._where("id"))
        self.state = as_enum(TaskState, self.state, self._where("state"))
        self.conversation_id = as_optional_uuid(self.conversation_id, self._where("conversation_id"))
        self.parent_id = as_optional_uuid(self.parent_id, self._where("parent_id"))
        if not isinstance(self.dependencies, list | tuple):
            raise TypeError(
                f"Task.dependencies must be a list of UUIDs, got {type(self.dependencies).__name__}"
            )
        self.dependencies = [as_uuid(d, self._where("dependencies")) for d in self.dependencies]
        if self.id in self.dependencies:
            raise ValueError(f"Task {self.id} cannot depend on itself")
        for name in ("priority", "attempts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"Task.{name} must be an int, got {type(value).__name__}")
        if self.attempts < 0:
            raise ValueError("Task.attempts must be >= 0")
        if self.checkpoint_data is not None and not isinstance(self.checkpoint_data, dict):
            raise TypeError(
                f"Task.checkpoint_data must be a dict or None, got {type(self.checkpoint_data).__name__}"
            )
        self.due_at = as_optional_datetime(self.due_at, self._where("due_at"))
        self.completed_at = as_optional_datetime(self.completed_at, self._where("completed_at"))
        self.checkpoint_at = as_optional_datetime(self.checkpoint_at, self._where("checkpoint_at"))
        self.created_at = as_utc(self.created_at, self._where("created_at"))
        self.updated_at = as_utc(self.updated_at, self._where("updated_at"))

    @property
    def is_finished(self) -> bool:
        return self.state in (TaskState.COMPLETE, TaskState.CANCELLED)


@dataclass(slots=True)
class TaskList(Model):
    """A named group of tasks, e.g. the plan an agent made for one conversation."""

    name: str = ""
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    tasks: list[Task] = field(default_factory=list)
    conversation_id: uuid.UUID | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=utc_now)
    updated_at: datetime = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        self._check_str("name")
        self._check_mapping("metadata")
        self.id = as_uuid(self.id, self._where("id"))
        self.conversation_id = as_optional_uuid(self.conversation_id, self._where("conversation_id"))
        self.created_at = as_utc(self.created_at, self._where("created_at"))
        self.updated_at = as_utc(self.updated_at, self._where("updated_at"))
        self.tasks = [t if isinstance(t, Task) else Task.from_dict(t) for t in self.tasks]

    def get(self, task_id: uuid.UUID) -> Task | None:
        return next((t for t in self.tasks if t.id == task_id), None)

    def in_state(self, state: TaskState) -> list[Task]:
        return [t for t in self.tasks if t.state == state]

    def progress(self) -> float:
        """Fraction finished (complete or cancelled); 1.0 for an empty list, which has nothing left."""
        if not self.tasks:
            return 1.0
        return sum(t.is_finished for t in self.tasks) / len(self.tasks)
