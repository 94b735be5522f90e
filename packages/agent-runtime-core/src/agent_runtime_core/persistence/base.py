"""The abstract stores a backend implements (files by default; Django, SQL, ... by plugging in).

Each store declares as abstract only what it cannot work without; everything else is either built on
those methods here (branching, forks, task updates, dependency checks, similarity search) or an
optional capability that raises :class:`UnsupportedOperationError` naming the store and method until
a backend provides it. A minimal custom backend is therefore a few methods, and can grow.

Read-modify-write helpers go through one overridable ``modify`` per store. The default is a plain
get-then-save, so a backend that can do it atomically (a lock, a transaction, ``SELECT ... FOR
UPDATE``) overrides that one method and every helper becomes atomic.
"""

from __future__ import annotations

import dataclasses
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from ._model import utc_now
from .audit_models import AuditEntry, AuditEventType, ErrorRecord, ErrorSeverity, PerformanceMetric
from .errors import DependencyCycleError, RecordNotFoundError, UnsupportedOperationError
from .knowledge_models import Embedding, Fact, FactType, Summary, check_vector, cosine_similarity
from .models import Conversation, ConversationMessage, Scope, Task, TaskState

__all__ = [
    "MemoryStore",
    "ConversationStore",
    "TaskStore",
    "PreferencesStore",
    "KnowledgeStore",
    "AuditStore",
]

T = TypeVar("T")


class _Store(ABC):  # noqa: B024 - the abstract methods are declared by each store
    def _unsupported(self, method: str) -> UnsupportedOperationError:
        return UnsupportedOperationError(f"{type(self).__name__} does not implement {method}()")

    async def close(self) -> None:
        """Release connections or handles; the file stores hold none."""


class MemoryStore(_Store):
    """Key-value memory. ``get`` without a scope looks in SESSION, then PROJECT, then GLOBAL: the most
    specific value wins. Writes without a scope go to PROJECT."""

    @abstractmethod
    async def get(self, key: str, scope: Scope | None = None) -> Any | None: ...

    @abstractmethod
    async def set(self, key: str, value: Any, scope: Scope | None = None) -> None: ...

    async def delete(self, key: str, scope: Scope | None = None) -> bool:
        """Returns whether the key existed."""
        raise self._unsupported("delete")

    async def list_keys(self, scope: Scope | None = None, prefix: str | None = None) -> list[str]:
        """Sorted keys of one scope, or of all scopes when ``scope`` is None."""
        raise self._unsupported("list_keys")

    async def clear(self, scope: Scope | None = None) -> None:
        """Delete every key of ``scope`` (PROJECT when None: clearing everything is never implicit)."""
        for key in await self.list_keys(scope or Scope.PROJECT):
            await self.delete(key, scope or Scope.PROJECT)


class PreferencesStore(_Store):
    """User preferences; GLOBAL by default because a preference usually follows the user across projects."""

    @abstractmethod
    async def get(self, key: str, scope: Scope = Scope.GLOBAL) -> Any | None: ...

    @abstractmethod
    async def set(self, key: str, value: Any, scope: Scope = Scope.GLOBAL) -> None: ...

    @abstractmethod
    async def delete(self, key: str, scope: Scope = Scope.GLOBAL) -> bool: ...

    @abstractmethod
    async def all(self, scope: Scope = Scope.GLOBAL) -> dict[str, Any]: ...


class ConversationStore(_Store):
    @abstractmethod
    async def save(self, conversation: Conversation, scope: Scope = Scope.PROJECT) -> None:
        """Insert or replace the whole conversation."""

    @abstractmethod
    async def get(self, conversation_id: uuid.UUID, scope: Scope = Scope.PROJECT) -> Conversation | None: ...

    @abstractmethod
    async def delete(self, conversation_id: uuid.UUID, scope: Scope = Scope.PROJECT) -> bool: ...

    @abstractmethod
    async def list_conversations(
        self, scope: Scope = Scope.PROJECT, limit: int | None = None, offset: int = 0
    ) -> list[Conversation]:
        """Most recently updated first."""

    async def modify(
        self,
        conversation_id: uuid.UUID,
        change: Callable[[Conversation], T],
        scope: Scope = Scope.PROJECT,
    ) -> T:
        """Apply ``change`` to the stored conversation and save it; raises RecordNotFoundError if absent."""
        conversation = await self.get(conversation_id, scope)
        if conversation is None:
            raise RecordNotFoundError(f"no conversation {conversation_id} in scope {scope.value}")
        result = change(conversation)
        conversation.updated_at = utc_now()
        await self.save(conversation, scope)
        return result

    async def add_message(
        self, conversation_id: uuid.UUID, message: ConversationMessage, scope: Scope = Scope.PROJECT
    ) -> None:
        def append(conversation: Conversation) -> None:
            if conversation.get_message(message.id) is not None:
                raise ValueError(f"conversation {conversation_id} already has a message {message.id}")
            conversation.messages.append(message)

        await self.modify(conversation_id, append, scope)

    async def get_messages(
        self,
        conversation_id: uuid.UUID,
        scope: Scope = Scope.PROJECT,
        *,
        all_branches: bool = False,
        limit: int | None = None,
    ) -> list[ConversationMessage]:
        """The history on the active branch (what a model should see), or every stored message.

        ``limit`` keeps the most recent messages.
        """
        conversation = await self.get(conversation_id, scope)
        if conversation is None:
            raise RecordNotFoundError(f"no conversation {conversation_id} in scope {scope.value}")
        messages = conversation.messages if all_branches else conversation.active_messages()
        if limit is not None:
            if limit < 0:
                raise ValueError(f"limit must be >= 0, got {limit}")
            messages = messages[len(messages) - limit :] if limit else []
        return list(messages)

    async def create_branch(
        self,
        conversation_id: uuid.UUID,
        replaces_message_id: uuid.UUID,
        message: ConversationMessage,
        scope: Scope = Scope.PROJECT,
    ) -> ConversationMessage:
        """Store ``message`` as an alternative to an existing one (an edit, a regeneration) and make its
        branch active. A new branch id is assigned unless the message already carries one."""

        def branch(conversation: Conversation) -> ConversationMessage:
            if conversation.get_message(replaces_message_id) is None:
                raise RecordNotFoundError(
                    f"conversation {conversation_id} has no message {replaces_message_id} to branch from"
                )
            new = dataclasses.replace(
                message,
                parent_message_id=replaces_message_id,
                branch_id=message.branch_id or uuid.uuid4(),
            )
            conversation.messages.append(new)
            conversation.active_branch_id = new.branch_id
            return new

        return await self.modify(conversation_id, branch, scope)

    async def switch_branch(
        self, conversation_id: uuid.UUID, branch_id: uuid.UUID | None, scope: Scope = Scope.PROJECT
    ) -> None:
        """Make ``branch_id`` (None: the main line) the history that :meth:`get_messages` returns."""

        def switch(conversation: Conversation) -> None:
            if branch_id is not None and branch_id not in conversation.branch_ids():
                raise RecordNotFoundError(f"conversation {conversation_id} has no branch {branch_id}")
            conversation.active_branch_id = branch_id

        await self.modify(conversation_id, switch, scope)

    async def fork(
        self,
        conversation_id: uuid.UUID,
        *,
        up_to_message_id: uuid.UUID | None = None,
        title: str | None = None,
        scope: Scope = Scope.PROJECT,
    ) -> Conversation:
        """Save a new conversation holding a copy of the active history (up to and including
        ``up_to_message_id``), linked back through ``parent_conversation_id``.

        The copy is flattened: branches not on the active history are left behind, and messages get
        new ids so the two conversations can diverge without sharing identities.
        """
        source = await self.get(conversation_id, scope)
        if source is None:
            raise RecordNotFoundError(f"no conversation {conversation_id} in scope {scope.value}")
        history = source.active_messages()
        if up_to_message_id is not None:
            ids = [m.id for m in history]
            if up_to_message_id not in ids:
                raise RecordNotFoundError(
                    f"message {up_to_message_id} is not on the active history "
                    f"of conversation {conversation_id}"
                )
            history = history[: ids.index(up_to_message_id) + 1]
        forked = Conversation(
            title=title if title is not None else source.title,
            messages=[
                dataclasses.replace(m, id=uuid.uuid4(), parent_message_id=None, branch_id=None)
                for m in history
            ],
            agent_key=source.agent_key,
            metadata=dict(source.metadata),
            parent_conversation_id=source.id,
        )
        await self.save(forked, scope)
        return forked


class TaskStore(_Store):
    @abstractmethod
    async def save(self, task: Task, scope: Scope = Scope.PROJECT) -> None:
        """Insert or replace the task."""

    @abstractmethod
    async def get(self, task_id: uuid.UUID, scope: Scope = Scope.PROJECT) -> Task | None: ...

    @abstractmethod
    async def delete(self, task_id: uuid.UUID, scope: Scope = Scope.PROJECT) -> bool: ...

    @abstractmethod
    async def list_tasks(
        self,
        scope: Scope = Scope.PROJECT,
        *,
        conversation_id: uuid.UUID | None = None,
        state: TaskState | None = None,
    ) -> list[Task]:
        """Highest priority first, then oldest first."""

    async def modify(
        self, task_id: uuid.UUID, change: Callable[[Task], Task], scope: Scope = Scope.PROJECT
    ) -> Task:
        """Replace the stored task with ``change(task)``; raises RecordNotFoundError if absent."""
        task = await self.get(task_id, scope)
        if task is None:
            raise RecordNotFoundError(f"no task {task_id} in scope {scope.value}")
        new = change(task)
        await self.save(new, scope)
        return new

    async def update(self, task_id: uuid.UUID, /, *, scope: Scope = Scope.PROJECT, **changes: Any) -> Task:
        """Change fields of a stored task, e.g. ``update(task.id, state=TaskState.COMPLETE)``.

        Values are validated like the constructor's; ``updated_at`` is refreshed, and ``completed_at``
        is set when the task becomes COMPLETE.
        """
        allowed = {f.name for f in dataclasses.fields(Task)} - {"id", "created_at"}
        unknown = sorted(set(changes) - allowed)
        if unknown:
            raise TypeError(
                f"Task has no updatable field(s) {', '.join(unknown)}; "
                f"updatable: {', '.join(sorted(allowed))}"
            )

        def apply(task: Task) -> Task:
            fields = dict(changes)
            fields.setdefault("updated_at", utc_now())
            new = dataclasses.replace(task, **fields)
            if (
                new.state == TaskState.COMPLETE
                and task.state != TaskState.COMPLETE
                and "completed_at" not in changes
            ):
                new.completed_at = fields["updated_at"]
            return new

        return await self.modify(task_id, apply, scope)

    async def add_dependency(
        self, task_id: uuid.UUID, depends_on: uuid.UUID, scope: Scope = Scope.PROJECT
    ) -> Task:
        """Make ``task_id`` wait for ``depends_on``; both must exist and no cycle may result."""
        if await self.get(depends_on, scope) is None:
            raise RecordNotFoundError(f"no task {depends_on} in scope {scope.value}")
        graph = {t.id: t.dependencies for t in await self.list_tasks(scope)}
        if task_id == depends_on or task_id in _reachable(depends_on, graph):
            raise DependencyCycleError(f"task {task_id} depending on {depends_on} would create a cycle")

        def add(task: Task) -> Task:
            if depends_on in task.dependencies:
                return task
            return dataclasses.replace(
                task, dependencies=[*task.dependencies, depends_on], updated_at=utc_now()
            )

        return await self.modify(task_id, add, scope)

    async def remove_dependency(
        self, task_id: uuid.UUID, depends_on: uuid.UUID, scope: Scope = Scope.PROJECT
    ) -> Task:
        def remove(task: Task) -> Task:
            deps = [d for d in task.dependencies if d != depends_on]
            return dataclasses.replace(task, dependencies=deps, updated_at=utc_now())

        return await self.modify(task_id, remove, scope)

    async def get_dependencies(self, task_id: uuid.UUID, scope: Scope = Scope.PROJECT) -> list[Task]:
        """The tasks ``task_id`` waits for that still exist, in dependency order."""
        task = await self.get(task_id, scope)
        if task is None:
            raise RecordNotFoundError(f"no task {task_id} in scope {scope.value}")
        deps = [await self.get(d, scope) for d in task.dependencies]
        return [d for d in deps if d is not None]

    async def get_ready_tasks(
        self, scope: Scope = Scope.PROJECT, *, conversation_id: uuid.UUID | None = None
    ) -> list[Task]:
        """Not-started tasks whose dependencies are all COMPLETE, most urgent first.

        A dependency that no longer exists blocks its dependants: silently running a task whose
        prerequisite vanished is worse than leaving it for someone to look at.
        """
        tasks = await self.list_tasks(scope, conversation_id=conversation_id)
        everything = tasks if conversation_id is None else await self.list_tasks(scope)
        complete = {t.id for t in everything if t.state == TaskState.COMPLETE}
        ready = [
            t
            for t in tasks
            if t.state == TaskState.NOT_STARTED and all(d in complete for d in t.dependencies)
        ]
        return sorted(ready, key=_urgency)

    async def save_checkpoint(
        self, task_id: uuid.UUID, data: dict[str, Any], scope: Scope = Scope.PROJECT
    ) -> Task:
        """Record progress so a retried or resumed run can continue from ``data`` instead of restarting."""
        if not isinstance(data, dict):
            raise TypeError(f"checkpoint data must be a dict, got {type(data).__name__}")
        now = utc_now()
        return await self.modify(
            task_id,
            lambda t: dataclasses.replace(t, checkpoint_data=data, checkpoint_at=now, updated_at=now),
            scope,
        )

    async def get_checkpoint(self, task_id: uuid.UUID, scope: Scope = Scope.PROJECT) -> dict[str, Any] | None:
        task = await self.get(task_id, scope)
        if task is None:
            raise RecordNotFoundError(f"no task {task_id} in scope {scope.value}")
        return task.checkpoint_data

    async def clear_checkpoint(self, task_id: uuid.UUID, scope: Scope = Scope.PROJECT) -> Task:
        return await self.modify(
            task_id,
            lambda t: dataclasses.replace(t, checkpoint_data=None, checkpoint_at=None, updated_at=utc_now()),
            scope,
        )


def _reachable(start: uuid.UUID, graph: dict[uuid.UUID, list[uuid.UUID]]) -> set[uuid.UUID]:
    seen: set[uuid.UUID] = set()
    stack = [start]
    while stack:
        for dep in graph.get(stack.pop(), []):
            if dep not in seen:
                seen.add(dep)
                stack.append(dep)
    return seen


def _urgency(task: Task) -> tuple[int, bool, datetime, datetime]:
    return (-task.priority, task.due_at is None, task.due_at or task.created_at, task.created_at)


class KnowledgeStore(_Store):
    """Optional: facts, summaries and embeddings. Only ``save_fact``/``get_fact`` are required."""

    @abstractmethod
    async def save_fact(self, fact: Fact, scope: Scope = Scope.PROJECT) -> None: ...

    @abstractmethod
    async def get_fact(self, fact_id: uuid.UUID, scope: Scope = Scope.PROJECT) -> Fact | None: ...

    async def get_fact_by_key(self, key: str, scope: Scope = Scope.PROJECT) -> Fact | None:
        return next((f for f in await self.list_facts(scope) if f.key == key), None)

    async def list_facts(self, scope: Scope = Scope.PROJECT, fact_type: FactType | None = None) -> list[Fact]:
        raise self._unsupported("list_facts")

    async def delete_fact(self, fact_id: uuid.UUID, scope: Scope = Scope.PROJECT) -> bool:
        raise self._unsupported("delete_fact")

    async def save_summary(self, summary: Summary, scope: Scope = Scope.PROJECT) -> None:
        raise self._unsupported("save_summary")

    async def get_summary(self, summary_id: uuid.UUID, scope: Scope = Scope.PROJECT) -> Summary | None:
        raise self._unsupported("get_summary")

    async def list_summaries(
        self, scope: Scope = Scope.PROJECT, conversation_id: uuid.UUID | None = None
    ) -> list[Summary]:
        raise self._unsupported("list_summaries")

    async def delete_summary(self, summary_id: uuid.UUID, scope: Scope = Scope.PROJECT) -> bool:
        raise self._unsupported("delete_summary")

    async def save_embedding(self, embedding: Embedding, scope: Scope = Scope.PROJECT) -> None:
        raise self._unsupported("save_embedding")

    async def list_embeddings(self, scope: Scope = Scope.PROJECT) -> list[Embedding]:
        raise self._unsupported("list_embeddings")

    async def delete_embedding(self, embedding_id: uuid.UUID, scope: Scope = Scope.PROJECT) -> bool:
        raise self._unsupported("delete_embedding")

    async def search_similar(
        self,
        query_vector: list[float],
        limit: int = 10,
        scope: Scope = Scope.PROJECT,
        *,
        min_score: float | None = None,
    ) -> list[tuple[Embedding, float]]:
        """Embeddings by cosine similarity to ``query_vector``, best first, with their scores.

        Brute force in pure Python over :meth:`list_embeddings`: fine for the thousands of items a
        project accumulates; a backend with a vector index overrides this.
        """
        query = check_vector(query_vector, "query_vector")
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        scored = []
        for emb in await self.list_embeddings(scope):
            if emb.dimensions != len(query):
                raise ValueError(
                    f"query_vector has {len(query)} dimensions but embedding {emb.id} has {emb.dimensions}"
                )
            score = cosine_similarity(query, emb.vector)
            if min_score is None or score >= min_score:
                scored.append((emb, score))
        scored.sort(key=lambda pair: pair[1], reverse=True)
        return scored[:limit]


class AuditStore(_Store):
    """Optional: an interaction log, error history and metrics. Only the three writers are required."""

    @abstractmethod
    async def log_event(self, entry: AuditEntry, scope: Scope = Scope.PROJECT) -> None: ...

    @abstractmethod
    async def log_error(self, error: ErrorRecord, scope: Scope = Scope.PROJECT) -> None: ...

    @abstractmethod
    async def record_metric(self, metric: PerformanceMetric, scope: Scope = Scope.PROJECT) -> None: ...

    async def get_events(
        self,
        scope: Scope = Scope.PROJECT,
        *,
        conversation_id: uuid.UUID | None = None,
        event_type: AuditEventType | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[AuditEntry]:
        """Oldest first; ``limit`` keeps the most recent."""
        raise self._unsupported("get_events")

    async def get_errors(
        self,
        scope: Scope = Scope.PROJECT,
        *,
        severity: ErrorSeverity | None = None,
        resolved: bool | None = None,
        conversation_id: uuid.UUID | None = None,
        limit: int | None = None,
    ) -> list[ErrorRecord]:
        raise self._unsupported("get_errors")

    async def resolve_error(
        self, error_id: uuid.UUID, resolution: str, scope: Scope = Scope.PROJECT
    ) -> ErrorRecord:
        raise self._unsupported("resolve_error")

    async def get_metrics(
        self,
        scope: Scope = Scope.PROJECT,
        *,
        name: str | None = None,
        since: datetime | None = None,
        tags: dict[str, str] | None = None,
    ) -> list[PerformanceMetric]:
        raise self._unsupported("get_metrics")

    async def metric_summary(
        self, name: str, scope: Scope = Scope.PROJECT, **filters: Any
    ) -> dict[str, float]:
        """count/min/max/mean/total of one metric; empty dict when nothing was recorded."""
        values = [m.value for m in await self.get_metrics(scope, name=name, **filters)]
        if not values:
            return {}
        return {
            "count": float(len(values)),
            "min": min(values),
            "max": max(values),
            "mean": sum(values) / len(values),
            "total": sum(values),
        }
