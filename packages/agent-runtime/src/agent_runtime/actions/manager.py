"""ActionManager: the one entry point for asking a human something and getting the answer back.

It owns the protocol rules (token checks, refusal reasons, expiry, events); stores only persist and
signal. Events are emitted as :class:`~agent_runtime.events.models.RuntimeEvent` (ACTION_REQUIRED,
ACTION_RESOLVED, ACTION_EXPIRED, ACTION_CANCELLED) with ``data=record.to_dict()``, which never holds
the resume token, so ``on_event=event_bus.publish`` is safe to wire straight to SSE or webhooks.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ..errors import ActionNotFoundError, ConcurrentModificationError, ValidationError
from ..events.models import RuntimeEvent, RuntimeEventType
from .errors import (
    ActionAlreadyResolvedError,
    ActionCancelledError,
    ActionExpiredError,
    InvalidResumeTokenError,
    ResumeTokenError,
)
from .models import ActionFilter, ActionRecord, ActionSpec, ActionStatus, _json_object, _LiveResolution
from .store import ActionStore
from .tokens import is_plausible_token, new_resume_token

__all__ = ["ActionManager", "ActionEventHandler"]

logger = logging.getLogger("agent_runtime.actions")

#: Receives every action event; may be sync or async (``InMemoryEventBus.publish`` fits).
ActionEventHandler = Callable[[RuntimeEvent], Awaitable[Any] | None]

_EVENT_FOR_STATUS = {
    ActionStatus.RESOLVED: RuntimeEventType.ACTION_RESOLVED,
    ActionStatus.EXPIRED: RuntimeEventType.ACTION_EXPIRED,
    ActionStatus.CANCELLED: RuntimeEventType.ACTION_CANCELLED,
}


def _positive_seconds(value: object, name: str, *, allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(f"{name} must be a finite number of seconds, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValidationError(f"{name} must be {bound} seconds, got {value!r}")
    return float(value)


class ActionManager:
    """Create, resolve, cancel, expire and await human-in-the-loop actions.

    ``clock`` (epoch seconds) decides deadlines; inject one to test expiry without waiting.
    ``sweep_interval`` is how often the optional background sweeper (:meth:`start`) expires due
    actions, so ACTION_EXPIRED is emitted even when nobody waits on them.
    """

    def __init__(
        self,
        store: ActionStore,
        *,
        on_event: ActionEventHandler | None = None,
        clock: Callable[[], float] = time.time,
        sweep_interval: float = 1.0,
    ) -> None:
        if not isinstance(store, ActionStore):
            raise ValidationError(f"store must be an ActionStore, got {type(store).__name__}")
        if on_event is not None and not callable(on_event):
            raise ValidationError("on_event must be callable or None")
        self._store = store
        self._on_event = on_event
        self._clock = clock
        self._sweep_interval = _positive_seconds(sweep_interval, "sweep_interval", allow_zero=False)
        self._live: weakref.WeakValueDictionary[str, _LiveResolution] = weakref.WeakValueDictionary()
        self._sweeper: asyncio.Task[None] | None = None
        self._stop_sweeper: asyncio.Event | None = None

    @property
    def store(self) -> ActionStore:
        return self._store

    # -- creating ----------------------------------------------------------------------------

    async def require_action(self, spec: ActionSpec) -> ActionRecord:
        """Persist a new PENDING action and return it *with* its plaintext resume token.

        This is the only place the token is ever visible: hand it to the human through a trusted
        channel (the link in an e-mail, the authenticated UI); it is not in events or logs.
        """
        if not isinstance(spec, ActionSpec):
            raise ValidationError(f"require_action() takes an ActionSpec, got {type(spec).__name__}")
        token = new_resume_token()
        now = self._clock()
        record = ActionRecord(
            action_id=f"action-{uuid.uuid4().hex}",
            job_id=spec.job_id,
            type=spec.action_type,
            payload=spec.payload,
            status=ActionStatus.PENDING,
            expires_at=None if spec.timeout_seconds is None else now + spec.timeout_seconds,
            resume_token=token,
            metadata=spec.metadata,
            created_at=now,
        )
        stored = await self._store.create(record)
        handle = stored.with_token(token)
        cell = _LiveResolution()
        object.__setattr__(handle, "_live", cell)
        self._live[handle.action_id] = cell
        logger.debug(
            "action %s (%s) required for job %s, expires_at=%s",
            stored.action_id,
            stored.type.value,
            stored.job_id,
            stored.expires_at,
        )
        await self._emit(RuntimeEventType.ACTION_REQUIRED, stored)
        return handle

    # -- resolving ---------------------------------------------------------------------------

    async def resolve(
        self, resume_token: str, resolution: Mapping[str, Any], *, job_id: str | None = None
    ) -> ActionRecord:
        """Answer the action that ``resume_token`` belongs to; exactly one concurrent caller wins.

        ``job_id`` binds the token to a job (pass it when the endpoint is scoped to one): a token of
        another job is refused like an unknown one. Refusals raise a :class:`ResumeTokenError`
        subclass: InvalidResumeTokenError, ActionAlreadyResolvedError, ActionExpiredError or
        ActionCancelledError. Returns the RESOLVED record (without the now-spent token).
        """
        if not is_plausible_token(resume_token):
            logger.warning("resume token refused: malformed")
            raise InvalidResumeTokenError()
        if job_id is not None and (not isinstance(job_id, str) or not job_id):
            raise ValidationError(f"job_id must be a non-empty string or None, got {job_id!r}")
        answer = _json_object(resolution, "resolution")
        while True:
            now = self._clock()
            resolved = await self._store.resolve_by_token(resume_token, answer, now=now, job_id=job_id)
            if resolved is not None:
                logger.info("action %s of job %s resolved", resolved.action_id, resolved.job_id)
                self._publish(resolved)
                await self._emit(RuntimeEventType.ACTION_RESOLVED, resolved)
                return resolved
            refusal = await self._refusal(resume_token, job_id, now)
            if refusal is not None:
                logger.warning(
                    "resume token refused: %s (action %s)", type(refusal).__name__, refusal.action_id
                )
                raise refusal
            # Still PENDING and in time: a concurrent non-status update beat us; try again.

    async def _refusal(self, token: str, job_id: str | None, now: float) -> ResumeTokenError | None:
        """Why a token was refused, read from the record's current state (None: still resolvable)."""
        record = await self._store.get_by_resume_token(token)
        if record is None or (job_id is not None and record.job_id != job_id):
            return InvalidResumeTokenError()
        if record.is_due(now):
            record = await self._expire(record, now)
        if record.status is ActionStatus.PENDING:
            return None
        return self._terminal_error(record)

    @staticmethod
    def _terminal_error(record: ActionRecord) -> ResumeTokenError:
        if record.status is ActionStatus.RESOLVED:
            return ActionAlreadyResolvedError(record.action_id)
        if record.status is ActionStatus.EXPIRED:
            return ActionExpiredError(record.action_id)
        return ActionCancelledError(record.action_id, record.cancel_reason)

    # -- cancelling and expiring -------------------------------------------------------------

    async def cancel(self, action_id: str, reason: str | None = None) -> ActionRecord:
        """Cancel a PENDING action and return the CANCELLED record.

        Idempotent, like ``Task.cancel()`` on a finished task: an action that already ended (resolved,
        expired or cancelled, possibly a moment ago by someone else) is returned unchanged and no
        event is emitted, so "cancel the job's actions" never races with a human answering. Check
        ``.status`` of the result to know which happened.
        """
        while True:
            record = await self.get(action_id)
            if record.status.is_terminal:
                return record
            cancelled = record.cancel(reason, now=self._clock())
            try:
                stored = await self._store.update(cancelled)
            except ConcurrentModificationError:
                continue
            logger.info("action %s of job %s cancelled", stored.action_id, stored.job_id)
            self._publish(stored)
            await self._emit(RuntimeEventType.ACTION_CANCELLED, stored)
            return stored

    async def _expire(self, record: ActionRecord, now: float) -> ActionRecord:
        """Expire a PENDING record; if someone else ended it first, return their outcome instead."""
        return (await self._try_expire(record, now))[0]

    async def _try_expire(self, record: ActionRecord, now: float) -> tuple[ActionRecord, bool]:
        """(latest record, whether *this* call expired it): only the writer that expired emits."""
        while record.status is ActionStatus.PENDING:
            try:
                stored = await self._store.update(record.expire(now=now))
            except ConcurrentModificationError:
                latest = await self._store.get(record.action_id)
                if latest is None:
                    raise ActionNotFoundError(record.action_id) from None
                record = latest
                continue
            logger.info("action %s of job %s expired", stored.action_id, stored.job_id)
            self._publish(stored)
            await self._emit(RuntimeEventType.ACTION_EXPIRED, stored)
            return stored, True
        return record, False

    async def expire_due(self) -> list[ActionRecord]:
        """Expire every PENDING action past its deadline, emit ACTION_EXPIRED for each, return them.

        Safe to run from several processes at once: each action is expired (and reported) by
        exactly one of them.
        """
        now = self._clock()
        expired: list[ActionRecord] = []
        for record in await self._store.list_expired(now=now):
            try:
                result, by_us = await self._try_expire(record, now)
            except ActionNotFoundError:
                continue
            if by_us:
                expired.append(result)
        return expired

    # -- waiting -----------------------------------------------------------------------------

    async def wait_for_resolution(
        self, action_id: str, timeout: float | None = None, poll_interval: float = 1.0
    ) -> ActionRecord:
        """Wait until the action ends; return the RESOLVED record.

        Wakes as soon as the store signals a change (in-memory: immediately; PostgreSQL:
        LISTEN/NOTIFY), re-reading every ``poll_interval`` seconds only as a fallback. When the
        action's deadline or ``timeout`` passes first, the action is expired (so its token stops
        working) and ActionExpiredError (a TimeoutError) is raised; a cancelled action raises
        ActionCancelledError. ``timeout=None`` waits until the action's own deadline, if any.
        """
        if not isinstance(action_id, str) or not action_id:
            raise ValidationError(f"action_id must be a non-empty string, got {action_id!r}")
        wait_limit = None if timeout is None else _positive_seconds(timeout, "timeout", allow_zero=True)
        poll = _positive_seconds(poll_interval, "poll_interval", allow_zero=False)
        loop = asyncio.get_running_loop()
        give_up_at = None if wait_limit is None else loop.time() + wait_limit
        async with self._store.watch(action_id) as changed:
            while True:
                changed.clear()
                record = await self.get(action_id)
                now = self._clock()
                if record.status is ActionStatus.PENDING and (
                    record.is_due(now) or (give_up_at is not None and loop.time() >= give_up_at)
                ):
                    record = await self._expire(record, now)
                if record.status is not ActionStatus.PENDING:
                    self._publish(record)
                    if record.status is ActionStatus.RESOLVED:
                        return record
                    raise self._terminal_error(record)
                delay = poll
                if record.expires_at is not None:
                    delay = min(delay, max(record.expires_at - now, 0.0))
                if give_up_at is not None:
                    delay = min(delay, max(give_up_at - loop.time(), 0.0))
                try:
                    await asyncio.wait_for(changed.wait(), delay)
                except TimeoutError:
                    pass

    # -- queries -----------------------------------------------------------------------------

    async def get(self, action_id: str) -> ActionRecord:
        """The current record; ActionNotFoundError for an unknown id."""
        if not isinstance(action_id, str) or not action_id:
            raise ValidationError(f"action_id must be a non-empty string, got {action_id!r}")
        record = await self._store.get(action_id)
        if record is None:
            raise ActionNotFoundError(action_id)
        return record

    async def list_pending(self, job_id: str | None = None) -> list[ActionRecord]:
        """Actions still answerable (PENDING and not past their deadline), oldest first."""
        if job_id is not None:
            records = await self._store.list_pending_for_job(job_id)
        else:
            records = await self._store.list(ActionFilter(status=ActionStatus.PENDING))
        now = self._clock()
        return [r for r in records if not r.is_due(now)]

    # -- background sweeper ------------------------------------------------------------------

    async def start(self) -> None:
        """Run :meth:`expire_due` every ``sweep_interval`` seconds until :meth:`stop` (idempotent)."""
        if self._sweeper is not None and not self._sweeper.done():
            return
        self._stop_sweeper = asyncio.Event()
        self._sweeper = asyncio.create_task(self._sweep(self._stop_sweeper), name="action-expiry-sweeper")

    async def stop(self) -> None:
        """Stop the sweeper and wait for its current pass to finish."""
        task, stop = self._sweeper, self._stop_sweeper
        self._sweeper = self._stop_sweeper = None
        if task is None or stop is None:
            return
        stop.set()
        await task

    async def __aenter__(self) -> ActionManager:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _sweep(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.expire_due()
            except Exception:
                # A failed pass (e.g. the database restarting) must not end the sweeper.
                logger.exception("action expiry sweep failed; retrying in %ss", self._sweep_interval)
            try:
                await asyncio.wait_for(stop.wait(), self._sweep_interval)
            except TimeoutError:
                pass

    # -- plumbing ----------------------------------------------------------------------------

    def _publish(self, record: ActionRecord) -> None:
        """Let the creator's record read the resolution through (see ActionRecord.resolution)."""
        cell = self._live.get(record.action_id)
        if cell is not None and record.status is not ActionStatus.PENDING:
            cell.record = record

    async def _emit(self, type: RuntimeEventType, record: ActionRecord) -> None:
        if self._on_event is None:
            return
        try:
            event = RuntimeEvent(type=type, job_id=record.job_id, data=record.to_dict())
            result = self._on_event(event)
            if inspect.isawaitable(result):
                await result
        except Exception:
            # The transition is already durable; a failing observer must not undo the caller's view.
            logger.exception("on_event handler failed for %s of action %s", type.value, record.action_id)
