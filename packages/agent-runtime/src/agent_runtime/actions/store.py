"""Where action records live: the store interface and the in-memory implementation.

Stores keep only the hash of a resume token. ``update`` is an optimistic compare-and-set on
``version`` and refuses status changes the action state machine does not allow, which is what makes
"exactly one resolution wins" hold for any store that implements the interface faithfully.
"""

from __future__ import annotations

import asyncio
import builtins
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from ..errors import ActionNotFoundError, ConcurrentModificationError, InvalidTransitionError, ValidationError
from .errors import ResumeTokenError
from .models import ActionFilter, ActionRecord, ActionStatus
from .tokens import hash_resume_token, is_plausible_token, token_hash_matches

__all__ = ["ActionStore", "InMemoryActionStore"]


class ActionStore(ABC):
    """Persistence for action records (seed interface plus two optional hooks).

    ``resolve_by_token`` and ``watch`` have working defaults built on the abstract methods; stores
    that can do better (one atomic SQL statement, LISTEN/NOTIFY) override them.
    """

    @abstractmethod
    async def create(self, action: ActionRecord) -> ActionRecord:
        """Insert ``action`` (its plaintext token is dropped); ValidationError on a duplicate id/token."""

    @abstractmethod
    async def get(self, action_id: str) -> ActionRecord | None: ...

    @abstractmethod
    async def get_by_resume_token(self, token: str) -> ActionRecord | None:
        """The action whose token hash matches ``token`` (compared in constant time), or None."""

    @abstractmethod
    async def update(self, action: ActionRecord) -> ActionRecord:
        """Store ``action`` if the stored copy still has ``action.version``; returns it at version + 1.

        Raises ActionNotFoundError, ConcurrentModificationError (someone wrote first: reload) or
        InvalidTransitionError (the status change is not allowed). The token hash never changes.
        """

    @abstractmethod
    async def delete(self, action_id: str) -> bool: ...

    @abstractmethod
    async def list(self, filter: ActionFilter | None = None) -> builtins.list[ActionRecord]: ...

    @abstractmethod
    async def list_pending_for_job(self, job_id: str) -> builtins.list[ActionRecord]: ...

    @abstractmethod
    async def list_expired(self, now: float | None = None) -> builtins.list[ActionRecord]:
        """PENDING actions whose deadline is at or before ``now`` (default: the current time)."""

    async def resolve_by_token(
        self,
        token: str,
        resolution: dict[str, Any],
        *,
        now: float | None = None,
        job_id: str | None = None,
    ) -> ActionRecord | None:
        """Atomically move the token's action from PENDING to RESOLVED; None if refused for any reason.

        The caller (ActionManager) works out *why* by reading the record; keeping this a yes/no
        keeps stores from each inventing their own error rules.
        """
        at = time.time() if now is None else now
        record = await self.get_by_resume_token(token)
        if record is None or (job_id is not None and record.job_id != job_id):
            return None
        try:
            return await self.update(record.resolve(resolution, now=at))
        except (ConcurrentModificationError, InvalidTransitionError, ResumeTokenError):
            return None

    def watch(self, action_id: str) -> AbstractAsyncContextManager[asyncio.Event]:
        """An event set whenever ``action_id`` may have changed; the default is never set (poll only).

        Enter it *before* reading the record, so a change between the read and the wait is not lost.
        """
        return _never_changes()


@asynccontextmanager
async def _never_changes() -> AsyncIterator[asyncio.Event]:
    yield asyncio.Event()


class ChangeWatchers(dict[str, set[asyncio.Event]]):
    """The asyncio events of everyone waiting on an action (action id -> events), set when the
    action may have changed.

    Shared by every store that can signal changes (in memory, PostgreSQL LISTEN/NOTIFY, Redis
    pub/sub): ``watch`` registers a waiter (and, for remote stores, holds their listener open while
    anyone waits); the store's change handler calls ``notify``.
    """

    @asynccontextmanager
    async def watch(
        self,
        action_id: str,
        listen: Callable[[], Awaitable[None]] | None = None,
        unlisten: Callable[[], Awaitable[None]] | None = None,
    ) -> AsyncIterator[asyncio.Event]:
        event = asyncio.Event()
        waiters = self.setdefault(action_id, set())
        waiters.add(event)
        try:
            if listen is None:
                yield event
            else:
                await listen()
                try:
                    yield event
                finally:
                    if unlisten is not None:
                        await unlisten()
        finally:
            waiters.discard(event)
            if not waiters:
                self.pop(action_id, None)

    def notify(self, action_id: str) -> None:
        for event in self.get(action_id, ()):
            event.set()

    def notify_all(self) -> None:
        for events in self.values():
            for event in events:
                event.set()


def _check_token_hash_unused(
    records: dict[str, ActionRecord], by_hash: dict[str, str], action: ActionRecord
) -> None:
    if action.action_id in records:
        raise ValidationError(f"an action with id {action.action_id!r} already exists")
    if action.resume_token_hash is not None and action.resume_token_hash in by_hash:
        raise ValidationError("an action with the same resume token already exists")


class InMemoryActionStore(ActionStore):
    """Process-local store for tests and single-process deployments; waiters wake on every change."""

    def __init__(self) -> None:
        self._records: dict[str, ActionRecord] = {}
        self._by_hash: dict[str, str] = {}
        self._watchers = ChangeWatchers()

    def _notify(self, action_id: str) -> None:
        self._watchers.notify(action_id)

    async def create(self, action: ActionRecord) -> ActionRecord:
        _check_token_hash_unused(self._records, self._by_hash, action)
        stored = action.without_token()
        self._records[stored.action_id] = stored
        if stored.resume_token_hash is not None:
            self._by_hash[stored.resume_token_hash] = stored.action_id
        return stored

    async def get(self, action_id: str) -> ActionRecord | None:
        return self._records.get(action_id)

    async def get_by_resume_token(self, token: str) -> ActionRecord | None:
        if not is_plausible_token(token):
            return None
        action_id = self._by_hash.get(hash_resume_token(token))
        record = None if action_id is None else self._records.get(action_id)
        if record is None or not token_hash_matches(record.resume_token_hash, token):
            return None
        return record

    async def update(self, action: ActionRecord) -> ActionRecord:
        # No await between the check and the write: atomic with respect to other tasks.
        stored = self._records.get(action.action_id)
        if stored is None:
            raise ActionNotFoundError(action.action_id)
        if stored.version != action.version:
            raise ConcurrentModificationError(
                f"action {action.action_id!r} was modified concurrently "
                f"(stored version {stored.version}, update based on {action.version}); reload and retry"
            )
        if action.status is not stored.status:
            stored.check_transition(action.status)
        new = action.without_token()._evolve(
            version=stored.version + 1, resume_token_hash=stored.resume_token_hash
        )
        self._records[new.action_id] = new
        self._notify(new.action_id)
        return new

    async def delete(self, action_id: str) -> bool:
        record = self._records.pop(action_id, None)
        if record is None:
            return False
        if record.resume_token_hash is not None:
            self._by_hash.pop(record.resume_token_hash, None)
        self._notify(action_id)
        return True

    async def list(self, filter: ActionFilter | None = None) -> builtins.list[ActionRecord]:
        flt = filter or ActionFilter()
        found = sorted(
            (r for r in self._records.values() if flt.matches(r)), key=lambda r: (r.created_at, r.action_id)
        )
        end = None if flt.limit is None else flt.offset + flt.limit
        return found[flt.offset : end]

    async def list_pending_for_job(self, job_id: str) -> builtins.list[ActionRecord]:
        return await self.list(ActionFilter(job_id=job_id, status=ActionStatus.PENDING))

    async def list_expired(self, now: float | None = None) -> builtins.list[ActionRecord]:
        at = time.time() if now is None else now
        pending = await self.list(ActionFilter(status=ActionStatus.PENDING))
        return [r for r in pending if r.is_due(at)]

    def watch(self, action_id: str) -> AbstractAsyncContextManager[asyncio.Event]:
        return self._watchers.watch(action_id)
