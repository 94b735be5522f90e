"""The default stores: JSON files per scope (see ``_files`` for layout, atomicity and locking)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from .._json import ensure_jsonable
from ._files import FileStoreBase
from ._model import as_enum, as_uuid, utc_now
from .base import ConversationStore, MemoryStore, PreferencesStore, TaskStore
from .errors import RecordNotFoundError
from .models import Conversation, Scope, Task, TaskState

__all__ = ["FileMemoryStore", "FilePreferencesStore", "FileConversationStore", "FileTaskStore"]

T = TypeVar("T")

_LOOKUP_ORDER = (Scope.SESSION, Scope.PROJECT, Scope.GLOBAL)


def check_key(key: object) -> str:
    if not isinstance(key, str):
        raise TypeError(f"key must be a str, got {type(key).__name__}")
    if not key:
        raise ValueError("key must not be empty")
    return key


def _scope(scope: object) -> Scope:
    return as_enum(Scope, scope, "scope")


class _KeyValueFile(FileStoreBase):
    collection: str

    async def _get(self, key: str, scopes: tuple[Scope, ...]) -> Any | None:
        check_key(key)
        for scope in scopes:
            values = (await self._docs.read(scope)).get(self.collection, {})
            if key in values:
                return values[key]
        return None

    async def _set(self, key: str, value: Any, scope: Scope) -> None:
        check_key(key)
        value = ensure_jsonable(value, what=f"{self.collection} value for key {key!r}")
        async with self._docs.editing(scope) as doc:
            doc.setdefault(self.collection, {})[key] = value

    async def _delete(self, key: str, scope: Scope) -> bool:
        check_key(key)
        async with self._docs.editing(scope) as doc:
            return doc.setdefault(self.collection, {}).pop(key, _MISSING) is not _MISSING

    async def _all(self, scope: Scope) -> dict[str, Any]:
        values: dict[str, Any] = (await self._docs.read(scope)).get(self.collection, {})
        return values


_MISSING = object()


class FileMemoryStore(_KeyValueFile, MemoryStore):
    filename = "memory.json"
    collection = "memory"

    async def get(self, key: str, scope: Scope | None = None) -> Any | None:
        return await self._get(key, _LOOKUP_ORDER if scope is None else (_scope(scope),))

    async def set(self, key: str, value: Any, scope: Scope | None = None) -> None:
        await self._set(key, value, _scope(scope or Scope.PROJECT))

    async def delete(self, key: str, scope: Scope | None = None) -> bool:
        return await self._delete(key, _scope(scope or Scope.PROJECT))

    async def list_keys(self, scope: Scope | None = None, prefix: str | None = None) -> list[str]:
        keys: set[str] = set()
        for s in _LOOKUP_ORDER if scope is None else (_scope(scope),):
            keys.update(await self._all(s))
        return sorted(k for k in keys if prefix is None or k.startswith(prefix))

    async def clear(self, scope: Scope | None = None) -> None:
        async with self._docs.editing(_scope(scope or Scope.PROJECT)) as doc:
            doc[self.collection] = {}


class FilePreferencesStore(_KeyValueFile, PreferencesStore):
    filename = "preferences.json"
    collection = "preferences"

    async def get(self, key: str, scope: Scope = Scope.GLOBAL) -> Any | None:
        return await self._get(key, (_scope(scope),))

    async def set(self, key: str, value: Any, scope: Scope = Scope.GLOBAL) -> None:
        await self._set(key, value, _scope(scope))

    async def delete(self, key: str, scope: Scope = Scope.GLOBAL) -> bool:
        return await self._delete(key, _scope(scope))

    async def all(self, scope: Scope = Scope.GLOBAL) -> dict[str, Any]:
        return await self._all(_scope(scope))


class FileConversationStore(FileStoreBase, ConversationStore):
    filename = "conversations.json"

    async def save(self, conversation: Conversation, scope: Scope = Scope.PROJECT) -> None:
        if not isinstance(conversation, Conversation):
            raise TypeError(f"expected a Conversation, got {type(conversation).__name__}")
        record = self._encode(conversation, f"conversation {conversation.id}")
        async with self._docs.editing(_scope(scope)) as doc:
            doc.setdefault("conversations", {})[str(conversation.id)] = record

    async def get(self, conversation_id: uuid.UUID, scope: Scope = Scope.PROJECT) -> Conversation | None:
        scope = _scope(scope)
        key = str(as_uuid(conversation_id, "conversation_id"))
        record = (await self._docs.read(scope)).get("conversations", {}).get(key)
        return None if record is None else self._decode(Conversation, record, scope)

    async def delete(self, conversation_id: uuid.UUID, scope: Scope = Scope.PROJECT) -> bool:
        key = str(as_uuid(conversation_id, "conversation_id"))
        async with self._docs.editing(_scope(scope)) as doc:
            return doc.setdefault("conversations", {}).pop(key, None) is not None

    async def list_conversations(
        self, scope: Scope = Scope.PROJECT, limit: int | None = None, offset: int = 0
    ) -> list[Conversation]:
        if offset < 0 or (limit is not None and limit < 0):
            raise ValueError("limit and offset must be >= 0")
        scope = _scope(scope)
        records = (await self._docs.read(scope)).get("conversations", {}).values()
        conversations = sorted(
            (self._decode(Conversation, r, scope) for r in records), key=lambda c: c.updated_at, reverse=True
        )
        end = None if limit is None else offset + limit
        return conversations[offset:end]

    async def modify(
        self,
        conversation_id: uuid.UUID,
        change: Callable[[Conversation], T],
        scope: Scope = Scope.PROJECT,
    ) -> T:
        """Atomic within this process: the read, ``change`` and write happen under the store's lock."""
        scope = _scope(scope)
        key = str(as_uuid(conversation_id, "conversation_id"))
        async with self._docs.editing(scope) as doc:
            records = doc.setdefault("conversations", {})
            if key not in records:
                raise RecordNotFoundError(f"no conversation {conversation_id} in scope {scope.value}")
            conversation = self._decode(Conversation, records[key], scope)
            result = change(conversation)
            conversation.updated_at = utc_now()
            records[key] = self._encode(conversation, f"conversation {conversation_id}")
        return result


class FileTaskStore(FileStoreBase, TaskStore):
    filename = "tasks.json"

    async def save(self, task: Task, scope: Scope = Scope.PROJECT) -> None:
        if not isinstance(task, Task):
            raise TypeError(f"expected a Task, got {type(task).__name__}")
        record = self._encode(task, f"task {task.id}")
        async with self._docs.editing(_scope(scope)) as doc:
            doc.setdefault("tasks", {})[str(task.id)] = record

    async def get(self, task_id: uuid.UUID, scope: Scope = Scope.PROJECT) -> Task | None:
        scope = _scope(scope)
        record = (await self._docs.read(scope)).get("tasks", {}).get(str(as_uuid(task_id, "task_id")))
        return None if record is None else self._decode(Task, record, scope)

    async def delete(self, task_id: uuid.UUID, scope: Scope = Scope.PROJECT) -> bool:
        key = str(as_uuid(task_id, "task_id"))
        async with self._docs.editing(_scope(scope)) as doc:
            return doc.setdefault("tasks", {}).pop(key, None) is not None

    async def list_tasks(
        self,
        scope: Scope = Scope.PROJECT,
        *,
        conversation_id: uuid.UUID | None = None,
        state: TaskState | None = None,
    ) -> list[Task]:
        scope = _scope(scope)
        wanted_state = None if state is None else as_enum(TaskState, state, "state")
        records = (await self._docs.read(scope)).get("tasks", {}).values()
        tasks = [
            t
            for t in (self._decode(Task, r, scope) for r in records)
            if (conversation_id is None or t.conversation_id == conversation_id)
            and (wanted_state is None or t.state == wanted_state)
        ]
        return sorted(tasks, key=lambda t: (-t.priority, t.created_at))

    async def modify(
        self, task_id: uuid.UUID, change: Callable[[Task], Task], scope: Scope = Scope.PROJECT
    ) -> Task:
        """Atomic within this process: the read, ``change`` and write happen under the store's lock."""
        scope = _scope(scope)
        key = str(as_uuid(task_id, "task_id"))
        async with self._docs.editing(scope) as doc:
            records = doc.setdefault("tasks", {})
            if key not in records:
                raise RecordNotFoundError(f"no task {task_id} in scope {scope.value}")
            new = change(self._decode(Task, records[key], scope))
            if new.id != as_uuid(task_id, "task_id"):
                raise ValueError("a task modification must not change the task id")
            records[key] = self._encode(new, f"task {task_id}")
        return new
