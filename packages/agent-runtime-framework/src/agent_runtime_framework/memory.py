"""Memory across turns: journey state and conversation history, kept in core's state stores.

``StateStore`` and ``ConversationStore`` are thin views over the key-value half of any
:class:`agent_runtime_core.StateStore` (``InMemoryStateStore`` by default, ``SQLiteStateStore`` or
``RedisStateStore`` for persistence across processes), so durability, JSON checking and TTLs are
core's, and a new backend in core works here without new code. Keys are
``<prefix>:<conversation id>[:<agent key>]``.

``InMemoryStore[T]`` is the one store that does not go through core: it holds arbitrary Python
objects (copied in and out) for tests and single-process prototypes.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from agent_runtime_core.state import InMemoryStateStore
from agent_runtime_core.state import StateStore as CoreStateStore

from .state import BaseJourneyState

__all__ = [
    "MemoryStore",
    "InMemoryStore",
    "CoreBackedStore",
    "StateStore",
    "ConversationStore",
    "MemoryContext",
    "MemoryManager",
]

T = TypeVar("T")


class MemoryStore(ABC, Generic[T]):
    """A key -> value store for one kind of value."""

    @abstractmethod
    async def get(self, key: str) -> T | None: ...

    @abstractmethod
    async def set(self, key: str, value: T) -> None: ...

    @abstractmethod
    async def delete(self, key: str) -> None: ...


class InMemoryStore(MemoryStore[T]):
    """Values are deep-copied in and out, so a caller mutating its object cannot change what is stored."""

    def __init__(self) -> None:
        self._data: dict[str, T] = {}

    async def get(self, key: str) -> T | None:
        value = self._data.get(key)
        return None if value is None else copy.deepcopy(value)

    async def set(self, key: str, value: T) -> None:
        self._data[key] = copy.deepcopy(value)

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    def __len__(self) -> int:
        return len(self._data)


class CoreBackedStore(MemoryStore[T]):
    """A MemoryStore over a core state store's key-values (``backend``, default in-memory).

    ``ttl`` (seconds) makes entries expire after their last write; values must be JSON.
    """

    prefix = "memory"

    def __init__(
        self, backend: CoreStateStore | None = None, *, prefix: str | None = None, ttl: float | None = None
    ) -> None:
        if backend is not None and not isinstance(backend, CoreStateStore):
            raise TypeError(
                f"backend must be an agent_runtime_core StateStore (InMemoryStateStore, SQLiteStateStore, "
                f"RedisStateStore, ...), got {type(backend).__name__}"
            )
        self.backend: CoreStateStore = backend if backend is not None else InMemoryStateStore()
        if prefix is not None:
            self.prefix = prefix
        self.ttl = ttl

    def _key(self, key: str) -> str:
        return f"{self.prefix}:{key}"

    async def get(self, key: str) -> T | None:
        value: T | None = await self.backend.get(self._key(key))
        return value

    async def set(self, key: str, value: T) -> None:
        await self.backend.set(self._key(key), value, ttl=self.ttl)

    async def delete(self, key: str) -> None:
        await self.backend.delete(self._key(key))


class StateStore(CoreBackedStore[dict[str, Any]]):
    """Journey state per (conversation, agent): an agent's state dict (``to_dict()``)."""

    prefix = "journey_state"

    async def load(self, conversation_id: str, agent_key: str) -> dict[str, Any] | None:
        return await self.get(f"{conversation_id}:{agent_key}")

    async def save(
        self, conversation_id: str, agent_key: str, state: BaseJourneyState[Any] | Mapping[str, Any]
    ) -> None:
        await self.set(f"{conversation_id}:{agent_key}", _state_dict(state))


class ConversationStore(CoreBackedStore[list[dict[str, Any]]]):
    """Message history per conversation (OpenAI-format message dicts)."""

    prefix = "conversation"

    async def get_messages(self, conversation_id: str) -> list[dict[str, Any]]:
        return list(await self.get(conversation_id) or [])

    async def save_messages(self, conversation_id: str, messages: Sequence[Mapping[str, Any]]) -> None:
        """Replace the stored history with ``messages``."""
        await self.set(conversation_id, [dict(m) for m in messages])

    async def append_messages(self, conversation_id: str, messages: Sequence[Mapping[str, Any]]) -> None:
        history = await self.get_messages(conversation_id)
        await self.set(conversation_id, history + [dict(m) for m in messages])


@dataclass
class MemoryContext:
    """What :meth:`MemoryManager.load_context` found: the state dict (None on a first turn) and history."""

    conversation_id: str
    agent_key: str
    state: dict[str, Any] | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)


class MemoryManager:
    """State and history of conversations. ``MemoryManager()`` keeps both in memory;
    ``MemoryManager.from_backend(SQLiteStateStore(db_path=...))`` keeps both in one durable store."""

    def __init__(
        self, state_store: StateStore | None = None, conversation_store: ConversationStore | None = None
    ) -> None:
        self.state_store = state_store if state_store is not None else StateStore()
        self.conversation_store = (
            conversation_store if conversation_store is not None else ConversationStore()
        )

    @classmethod
    def from_backend(cls, backend: CoreStateStore, *, ttl: float | None = None) -> MemoryManager:
        return cls(StateStore(backend, ttl=ttl), ConversationStore(backend, ttl=ttl))

    async def load_context(self, conversation_id: str, agent_key: str) -> MemoryContext:
        return MemoryContext(
            conversation_id=conversation_id,
            agent_key=agent_key,
            state=await self.state_store.load(conversation_id, agent_key),
            messages=await self.conversation_store.get_messages(conversation_id),
        )

    async def save_state(
        self, conversation_id: str, agent_key: str, state: BaseJourneyState[Any] | Mapping[str, Any]
    ) -> None:
        await self.state_store.save(conversation_id, agent_key, state)

    async def save_messages(self, conversation_id: str, messages: Sequence[Mapping[str, Any]]) -> None:
        await self.conversation_store.save_messages(conversation_id, messages)


def _state_dict(state: BaseJourneyState[Any] | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(state, BaseJourneyState):
        return state.to_dict()
    if isinstance(state, Mapping):
        return dict(state)
    raise TypeError(f"state must be a BaseJourneyState or a dict, got {type(state).__name__}")
