"""Human-in-the-loop actions: records, the state machine, resume-token security, the manager."""

from __future__ import annotations

import asyncio
import base64
import builtins
import dataclasses
import hashlib
import hmac
import json
import logging
import math
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from agent_runtime import (
    ActionFilter,
    ActionManager,
    ActionNotFoundError,
    ActionRecord,
    ActionRequiredError,
    ActionSpec,
    ActionStatus,
    ActionStore,
    ActionType,
    ConcurrentModificationError,
    InMemoryActionStore,
    InvalidTransitionError,
    ResumeTokenError,
    ValidationError,
)
from agent_runtime.actions import (
    ActionAlreadyResolvedError,
    ActionCancelledError,
    ActionExpiredError,
    InvalidResumeTokenError,
    statuses_leading_to,
)
from agent_runtime.events.models import RuntimeEvent, RuntimeEventType


class FakeClock:
    """Epoch seconds that move only when the test says so: expiry without waiting."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Recorder:
    """An on_event handler that keeps every event and lets tests await a given type."""

    def __init__(self) -> None:
        self.events: list[RuntimeEvent] = []
        self._changed = asyncio.Condition()

    async def __call__(self, event: RuntimeEvent) -> None:
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def types(self) -> list[RuntimeEventType]:
        return [e.type for e in self.events]

    async def wait_for(self, type: RuntimeEventType, timeout: float = 5.0) -> RuntimeEvent:
        async def _wait() -> RuntimeEvent:
            async with self._changed:
                await self._changed.wait_for(lambda: any(e.type is type for e in self.events))
                return next(e for e in self.events if e.type is type)

        return await asyncio.wait_for(_wait(), timeout)


def make_manager(**kwargs: Any) -> tuple[ActionManager, InMemoryActionStore, Recorder, FakeClock]:
    store = InMemoryActionStore()
    recorder = Recorder()
    clock = kwargs.pop("clock", FakeClock())
    return ActionManager(store, on_event=recorder, clock=clock, **kwargs), store, recorder, clock


def spec(job_id: str = "job-123", **kwargs: Any) -> ActionSpec:
    kwargs.setdefault("type", "confirm")
    kwargs.setdefault("payload", {"message": "Proceed?"})
    kwargs.setdefault("timeout_seconds", 300)
    return ActionSpec(job_id=job_id, **kwargs)


# -- enums and records ------------------------------------------------------------------------


def test_status_and_type_members_match_the_seed() -> None:
    assert [s.name for s in ActionStatus] == ["PENDING", "RESOLVED", "EXPIRED", "CANCELLED"]
    assert [t.name for t in ActionType] == [
        "CONFIRM",
        "CHOOSE",
        "INPUT",
        "UPLOAD",
        "REAUTH",
        "APPLY_CHANGES",
        "APPROVAL",
        "CUSTOM",
    ]
    assert ActionType("confirm") is ActionType.CONFIRM
    assert ActionType.parse("Apply_Changes") is ActionType.APPLY_CHANGES
    assert ActionStatus.parse("RESOLVED") is ActionStatus.RESOLVED
    assert ActionStatus.PENDING.is_terminal is False
    assert all(s.is_terminal for s in ActionStatus if s is not ActionStatus.PENDING)


@pytest.mark.parametrize("bad", ["deploy", "", 3, None])
def test_unknown_type_is_refused_with_the_allowed_values(bad: Any) -> None:
    with pytest.raises(ValidationError, match=r"unknown action type .* expected one of: confirm, choose"):
        ActionSpec(job_id="job-1", type=bad)
    with pytest.raises(ValidationError, match="unknown action type"):
        ActionRecord(action_id="a", job_id="j", type=bad)


def test_action_record_seed_block() -> None:
    action = ActionRecord(
        action_id="action-123",
        job_id="job-456",
        type="confirm",  # type: ignore[arg-type]
        payload={"message": "Deploy to production?", "details": "..."},
        status=ActionStatus.PENDING,
        expires_at=time.time() + 300,  # 5 minute timeout
        resume_token="secure-token-xyz",
        metadata={"source": "deploy_tool"},
    )

    resolved = action.resolve({"approved": True, "comment": "LGTM"})
    expired = action.expire()
    cancelled = action.cancel("User cancelled")

    assert action.is_expired is False
    assert action.type is ActionType.CONFIRM
    assert resolved.status is ActionStatus.RESOLVED
    assert resolved.resolution == {"approved": True, "comment": "LGTM"}
    assert resolved.resolved_at is not None
    assert expired.status is ActionStatus.EXPIRED
    assert cancelled.status is ActionStatus.CANCELLED and cancelled.cancel_reason == "User cancelled"
    # The original is untouched: transitions return new records.
    assert action.status is ActionStatus.PENDING and action.resolution is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        action.status = ActionStatus.RESOLVED  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        action.resolution = {"approved": True}  # type: ignore[misc]
    assert action.resume_token_hash == hashlib.sha256(b"secure-token-xyz").hexdigest()


def test_transition_table_allows_only_pending_to_a_terminal_state() -> None:
    assert set(statuses_leading_to(ActionStatus.RESOLVED)) == {ActionStatus.PENDING}
    assert statuses_leading_to(ActionStatus.PENDING) == []
    base = ActionRecord(action_id="a", job_id="j", type=ActionType.INPUT)
    finished = [base.resolve({"text": "hi"}), base.expire(), base.cancel()]
    moves: list[Callable[[ActionRecord], ActionRecord]] = [
        lambda r: r.resolve({"x": 1}),
        lambda r: r.expire(),
        lambda r: r.cancel("again"),
    ]
    for record in finished:
        for move in moves:
            with pytest.raises(InvalidTransitionError, match="none \\(terminal state\\)"):
                move(record)


def test_past_deadline_counts_as_expired_and_cannot_be_resolved() -> None:
    record = ActionRecord(action_id="a", job_id="j", type="approval", expires_at=time.time() - 1)  # type: ignore[arg-type]
    assert record.is_expired and record.is_due()
    with pytest.raises(ActionExpiredError) as caught:
        record.resolve({"approved": True})
    assert isinstance(caught.value, TimeoutError) and isinstance(caught.value, ResumeTokenError)
    assert record.expire().is_expired


def test_record_validation_errors() -> None:
    with pytest.raises(ValidationError, match="action_id"):
        ActionRecord(action_id="", job_id="j", type=ActionType.CONFIRM)
    with pytest.raises(ValidationError, match="payload must be a dict"):
        ActionRecord(action_id="a", job_id="j", type=ActionType.CONFIRM, payload=["x"])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="JSON-serialisable"):
        ActionRecord(action_id="a", job_id="j", type=ActionType.CONFIRM, payload={"x": object()})
    with pytest.raises(ValidationError, match="expires_at"):
        ActionRecord(action_id="a", job_id="j", type=ActionType.CONFIRM, expires_at=math.nan)
    with pytest.raises(ValidationError, match="does not match"):
        ActionRecord(
            action_id="a", job_id="j", type=ActionType.CONFIRM, resume_token="t", resume_token_hash="00"
        )
    record = ActionRecord(action_id="a", job_id="j", type=ActionType.CONFIRM)
    with pytest.raises(ValidationError, match="resolution must be a dict"):
        record.resolve("yes")  # type: ignore[arg-type]


def test_to_dict_round_trips_without_the_token() -> None:
    record = ActionRecord(
        action_id="a", job_id="j", type=ActionType.CHOOSE, payload={"options": [1, 2]}, resume_token="tok-abc"
    ).resolve({"choice": 2})
    data = record.to_dict()
    assert "tok-abc" not in json.dumps(data)
    assert "resume_token" not in data and "resume_token_hash" not in data
    again = ActionRecord.from_dict(data)
    assert again.resolution == {"choice": 2} and again.status is ActionStatus.RESOLVED
    assert again.to_dict() == data
    with pytest.raises(ValidationError, match="missing"):
        ActionRecord.from_dict({"job_id": "j"})


@pytest.mark.parametrize("timeout", [0, -1, math.inf, math.nan, "300", True])
def test_action_spec_refuses_bad_timeouts(timeout: Any) -> None:
    with pytest.raises(ValidationError, match="timeout_seconds"):
        ActionSpec(job_id="job-1", type="confirm", timeout_seconds=timeout)


def test_action_spec_normalises_and_validates() -> None:
    s = ActionSpec(job_id="job-1", type="INPUT", payload={"q": "name?"})
    assert s.type is ActionType.INPUT and s.timeout_seconds is None
    with pytest.raises(ValidationError, match="job_id"):
        ActionSpec(job_id="", type="confirm")
    with pytest.raises(ValidationError, match="metadata must be a dict"):
        ActionSpec(job_id="j", type="confirm", metadata="x")  # type: ignore[arg-type]


def test_action_filter_validation() -> None:
    assert ActionFilter(status="pending").status is ActionStatus.PENDING
    with pytest.raises(ValidationError, match="unknown action status"):
        ActionFilter(status="done")
    with pytest.raises(ValidationError, match="limit"):
        ActionFilter(limit=-1)
    with pytest.raises(ValidationError, match="offset"):
        ActionFilter(offset=-5)


# -- the seed's manager blocks ----------------------------------------------------------------


async def test_action_manager_seed_block_runs_as_written() -> None:
    store = InMemoryActionStore()
    manager = ActionManager(store)

    # Request an action
    action = await manager.require_action(
        ActionSpec(
            job_id="job-123",
            type="confirm",
            payload={"message": "Proceed?"},
            timeout_seconds=300,
            metadata={"tool": "deploy"},
        )
    )

    # Resolve by resume token (secure API endpoint)
    resolved = await manager.resolve(
        resume_token=action.resume_token,  # type: ignore[arg-type]
        resolution={"approved": True},
    )

    # Cancel action
    await manager.cancel(action.action_id, reason="User cancelled")

    # Wait for resolution (in agent code)
    await manager.wait_for_resolution(
        action.action_id,
        timeout=300,
        poll_interval=1.0,
    )

    # List pending actions
    pending = await manager.list_pending(job_id="job-123")

    assert resolved.status is ActionStatus.RESOLVED and resolved.resolution == {"approved": True}
    assert resolved.resume_token is None  # spent: the returned record does not carry it
    # The action was already resolved, so cancelling it changed nothing.
    assert (await manager.get(action.action_id)).status is ActionStatus.RESOLVED
    assert pending == []


async def test_quick_start_human_in_the_loop_with_a_concurrent_resolver() -> None:
    action_manager = ActionManager(InMemoryActionStore())
    deployed: list[str] = []

    async def do_deploy() -> None:
        deployed.append("production")

    # The "trusted channel" that carries the token to the human: here, a future.
    delivered: asyncio.Future[ActionRecord] = asyncio.get_running_loop().create_future()
    original = action_manager.require_action

    async def require_and_deliver(spec: ActionSpec) -> ActionRecord:
        record = await original(spec)
        delivered.set_result(record)
        return record

    action_manager.require_action = require_and_deliver  # type: ignore[method-assign]

    # In your tool implementation (the seed's block, verbatim)
    async def deploy_changes(context: Any) -> None:
        action = await action_manager.require_action(
            ActionSpec(
                job_id=context.job_id,
                type="confirm",
                payload={"message": "Deploy to production?"},
                timeout_seconds=300,
            )
        )

        # Wait for user resolution
        await action_manager.wait_for_resolution(action.action_id)

        if action.resolution.get("approved"):  # type: ignore[union-attr]
            await do_deploy()

    async def human() -> ActionRecord:
        action = await delivered
        assert action.resume_token is not None
        return await action_manager.resolve(resume_token=action.resume_token, resolution={"approved": True})

    tool = asyncio.create_task(deploy_changes(SimpleNamespace(job_id="job-1")))
    resolved = await asyncio.wait_for(human(), 5)
    await asyncio.wait_for(tool, 5)
    assert deployed == ["production"]
    assert resolved.resolution == {"approved": True}


async def test_quick_start_pattern_does_not_deploy_when_refused() -> None:
    manager, _store, _rec, _clock = make_manager()
    action = await manager.require_action(spec())
    before = action.resolution
    assert action.resume_token is not None
    waiter = asyncio.create_task(manager.wait_for_resolution(action.action_id))
    await manager.resolve(resume_token=action.resume_token, resolution={"approved": False})
    resolved = await asyncio.wait_for(waiter, 5)
    # The creator's record reads the answer through; everything else stays a snapshot.
    assert before is None
    assert action.resolution == {"approved": False} == resolved.resolution
    assert action.status is ActionStatus.PENDING
    assert resolved.status is ActionStatus.RESOLVED


async def test_action_store_interface_defaults_work_for_a_custom_store() -> None:
    """A store implementing only the seed's eight methods works: resolution via versioned update,
    waiting via polling."""

    class DictStore(ActionStore):
        def __init__(self) -> None:
            self.inner = InMemoryActionStore()

        async def create(self, action: ActionRecord) -> ActionRecord:
            return await self.inner.create(action)

        async def get(self, action_id: str) -> ActionRecord | None:
            return await self.inner.get(action_id)

        async def get_by_resume_token(self, token: str) -> ActionRecord | None:
            return await self.inner.get_by_resume_token(token)

        async def update(self, action: ActionRecord) -> ActionRecord:
            return await self.inner.update(action)

        async def delete(self, action_id: str) -> bool:
            return await self.inner.delete(action_id)

        async def list(self, filter: ActionFilter | None = None) -> builtins.list[ActionRecord]:
            return await self.inner.list(filter)

        async def list_pending_for_job(self, job_id: str) -> builtins.list[ActionRecord]:
            return await self.inner.list_pending_for_job(job_id)

        async def list_expired(self, now: float | None = None) -> builtins.list[ActionRecord]:
            return await self.inner.list_expired(now)

    with pytest.raises(TypeError):
        ActionStore()  # type: ignore[abstract]
    manager = ActionManager(DictStore())
    action = await manager.require_action(spec())
    assert action.resume_token is not None
    waiter = asyncio.create_task(manager.wait_for_resolution(action.action_id, poll_interval=0.01))
    await manager.resolve(resume_token=action.resume_token, resolution={"approved": True})
    assert (await asyncio.wait_for(waiter, 5)).status is ActionStatus.RESOLVED
    with pytest.raises(ActionAlreadyResolvedError):
        await manager.resolve(resume_token=action.resume_token, resolution={"approved": True})


# -- resume-token security --------------------------------------------------------------------


async def test_tokens_are_long_random_and_unique() -> None:
    manager, store, _rec, _clock = make_manager()
    tokens = []
    for _ in range(50):
        action = await manager.require_action(spec())
        assert action.resume_token is not None
        tokens.append(action.resume_token)
    assert len(set(tokens)) == 50
    for token in tokens:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        assert len(raw) * 8 >= 256
    # Stored hashed only.
    for record in await store.list():
        assert record.resume_token is None
        assert record.resume_token_hash in {hashlib.sha256(t.encode()).hexdigest() for t in tokens}


async def test_token_never_appears_in_repr_str_dict_events_logs_or_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="agent_runtime")
    manager, store, recorder, _clock = make_manager()
    action = await manager.require_action(spec())
    token = action.resume_token
    assert token is not None
    surfaces = [repr(action), str(action), json.dumps(action.to_dict()), str(ActionRequiredError(action))]
    for wrong in ["wrong-token", token + "x"]:
        with pytest.raises(InvalidResumeTokenError) as caught:
            await manager.resolve(resume_token=wrong, resolution={"approved": True})
        surfaces.append(str(caught.value))
    await manager.resolve(resume_token=token, resolution={"approved": True})
    with pytest.raises(ActionAlreadyResolvedError) as reused:
        await manager.resolve(resume_token=token, resolution={"approved": True})
    surfaces.append(str(reused.value))
    surfaces.extend(e.to_json() for e in recorder.events)
    surfaces.extend(repr(r) for r in await store.list())
    surfaces.append(caplog.text)
    assert "<redacted>" in repr(action)
    assert recorder.types() == [RuntimeEventType.ACTION_REQUIRED, RuntimeEventType.ACTION_RESOLVED]
    assert "resume token refused" in caplog.text  # the refusals were logged ...
    for text in surfaces:
        assert token not in text  # ... but never the token


async def test_wrong_reused_cancelled_expired_and_other_job_tokens_are_refused() -> None:
    manager, _store, recorder, clock = make_manager()

    with pytest.raises(InvalidResumeTokenError, match="not valid"):
        await manager.resolve(resume_token="never-issued", resolution={})
    for malformed in ["", None, 42, "x" * 10_000]:
        with pytest.raises(InvalidResumeTokenError):
            await manager.resolve(resume_token=malformed, resolution={})  # type: ignore[arg-type]

    reused = await manager.require_action(spec())
    assert reused.resume_token is not None
    await manager.resolve(resume_token=reused.resume_token, resolution={"approved": True})
    with pytest.raises(ActionAlreadyResolvedError, match="already resolved") as caught:
        await manager.resolve(resume_token=reused.resume_token, resolution={"approved": False})
    assert caught.value.action_id == reused.action_id
    assert (await manager.get(reused.action_id)).resolution == {"approved": True}

    cancelled = await manager.require_action(spec())
    assert cancelled.resume_token is not None
    await manager.cancel(cancelled.action_id, reason="job cancelled")
    with pytest.raises(ActionCancelledError, match="job cancelled"):
        await manager.resolve(resume_token=cancelled.resume_token, resolution={"approved": True})

    other = await manager.require_action(spec(job_id="job-other"))
    assert other.resume_token is not None
    with pytest.raises(InvalidResumeTokenError):
        await manager.resolve(
            resume_token=other.resume_token, resolution={"approved": True}, job_id="job-123"
        )
    assert (await manager.get(other.action_id)).status is ActionStatus.PENDING
    ok = await manager.resolve(resume_token=other.resume_token, resolution={"a": 1}, job_id="job-other")
    assert ok.status is ActionStatus.RESOLVED

    expiring = await manager.require_action(spec(timeout_seconds=10))
    assert expiring.resume_token is not None
    clock.advance(10)
    with pytest.raises(ActionExpiredError):
        await manager.resolve(resume_token=expiring.resume_token, resolution={"approved": True})
    # Refusing an expired token also records the expiry (and tells subscribers).
    assert (await manager.get(expiring.action_id)).status is ActionStatus.EXPIRED
    assert RuntimeEventType.ACTION_EXPIRED in recorder.types()
    with pytest.raises(ActionExpiredError):
        await manager.resolve(resume_token=expiring.resume_token, resolution={"approved": True})


async def test_resolution_must_be_a_json_object() -> None:
    manager, _store, _rec, _clock = make_manager()
    action = await manager.require_action(spec())
    assert action.resume_token is not None
    with pytest.raises(ValidationError, match="resolution must be a dict"):
        await manager.resolve(resume_token=action.resume_token, resolution="yes")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="JSON-serialisable"):
        await manager.resolve(resume_token=action.resume_token, resolution={"at": object()})
    assert (await manager.get(action.action_id)).status is ActionStatus.PENDING


async def test_hashes_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    manager, _store, _rec, _clock = make_manager()
    action = await manager.require_action(spec())
    assert action.resume_token is not None
    await manager.resolve(resume_token=action.resume_token, resolution={"approved": True})
    assert calls and all(a == b for a, b in calls)
    assert calls[0][0] == hashlib.sha256(action.resume_token.encode()).hexdigest().encode()


class YieldingStore(InMemoryActionStore):
    """Yields to the loop between lookup and write, so concurrent resolutions really interleave."""

    async def get_by_resume_token(self, token: str) -> ActionRecord | None:
        record = await super().get_by_resume_token(token)
        await asyncio.sleep(0)
        return record


async def test_concurrent_resolutions_of_one_token_exactly_one_wins() -> None:
    recorder = Recorder()
    manager = ActionManager(YieldingStore(), on_event=recorder)
    action = await manager.require_action(spec())
    token = action.resume_token
    assert token is not None
    results = await asyncio.gather(
        *(manager.resolve(resume_token=token, resolution={"by": i}) for i in range(20)),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, ActionRecord)]
    losers = [r for r in results if not isinstance(r, ActionRecord)]
    assert len(winners) == 1
    assert len(losers) == 19 and all(isinstance(e, ActionAlreadyResolvedError) for e in losers)
    assert (await manager.get(action.action_id)).resolution == winners[0].resolution
    assert recorder.types().count(RuntimeEventType.ACTION_RESOLVED) == 1


# -- waiting ----------------------------------------------------------------------------------


class SignallingStore(InMemoryActionStore):
    """Sets ``read`` once a waiter has read the record, so the test resolves while it waits."""

    def __init__(self) -> None:
        super().__init__()
        self.read = asyncio.Event()

    async def get(self, action_id: str) -> ActionRecord | None:
        record = await super().get(action_id)
        self.read.set()
        return record


async def test_wait_for_resolution_wakes_on_resolve_without_polling() -> None:
    store = SignallingStore()
    manager = ActionManager(store)
    action = await manager.require_action(spec())
    assert action.resume_token is not None
    started = time.monotonic()
    waiter = asyncio.create_task(manager.wait_for_resolution(action.action_id, poll_interval=30))
    await asyncio.wait_for(store.read.wait(), 5)
    await manager.resolve(resume_token=action.resume_token, resolution={"approved": True})
    resolved = await asyncio.wait_for(waiter, 5)
    assert time.monotonic() - started < 5  # far below poll_interval=30: woken, not polled
    assert resolved.status is ActionStatus.RESOLVED and resolved.resolution == {"approved": True}


async def test_wait_for_resolution_timeout_expires_the_action() -> None:
    manager, _store, recorder, _clock = make_manager()
    action = await manager.require_action(spec(timeout_seconds=300))
    assert action.resume_token is not None
    with pytest.raises(TimeoutError) as caught:
        await manager.wait_for_resolution(action.action_id, timeout=0.05, poll_interval=30)
    assert isinstance(caught.value, ActionExpiredError)
    assert (await manager.get(action.action_id)).status is ActionStatus.EXPIRED
    assert recorder.types()[-1] is RuntimeEventType.ACTION_EXPIRED
    with pytest.raises(ActionExpiredError):
        await manager.resolve(resume_token=action.resume_token, resolution={"approved": True})


async def test_wait_for_resolution_on_an_action_already_past_its_deadline() -> None:
    manager, _store, recorder, clock = make_manager()
    action = await manager.require_action(spec(timeout_seconds=5))
    clock.advance(6)
    with pytest.raises(ActionExpiredError):
        await manager.wait_for_resolution(action.action_id, poll_interval=30)
    assert recorder.types() == [RuntimeEventType.ACTION_REQUIRED, RuntimeEventType.ACTION_EXPIRED]


async def test_wait_for_resolution_raises_when_cancelled_while_waiting() -> None:
    store = SignallingStore()
    manager = ActionManager(store)
    action = await manager.require_action(spec())
    waiter = asyncio.create_task(manager.wait_for_resolution(action.action_id, poll_interval=30))
    await asyncio.wait_for(store.read.wait(), 5)
    cancelled = await manager.cancel(action.action_id, reason="job cancelled")
    assert cancelled.status is ActionStatus.CANCELLED and cancelled.cancel_reason == "job cancelled"
    with pytest.raises(ActionCancelledError, match="job cancelled"):
        await asyncio.wait_for(waiter, 5)


async def test_cancelling_the_waiting_task_propagates() -> None:
    store = SignallingStore()
    manager = ActionManager(store)
    action = await manager.require_action(spec())
    waiter = asyncio.create_task(manager.wait_for_resolution(action.action_id, poll_interval=30))
    await asyncio.wait_for(store.read.wait(), 5)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert (await manager.get(action.action_id)).status is ActionStatus.PENDING
    assert store._watchers == {}  # the watch was released


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timeout": -1}, "timeout must be >= 0"),
        ({"timeout": math.nan}, "timeout must be a finite number"),
        ({"poll_interval": 0}, "poll_interval must be > 0"),
        ({"poll_interval": -2.0}, "poll_interval must be > 0"),
    ],
)
async def test_wait_for_resolution_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    manager, _store, _rec, _clock = make_manager()
    action = await manager.require_action(spec())
    with pytest.raises(ValidationError, match=message):
        await manager.wait_for_resolution(action.action_id, **kwargs)


async def test_unknown_action_ids_raise_not_found() -> None:
    manager, _store, _rec, _clock = make_manager()
    with pytest.raises(ActionNotFoundError, match="action-nope"):
        await manager.get("action-nope")
    with pytest.raises(ActionNotFoundError):
        await manager.cancel("action-nope")
    with pytest.raises(ActionNotFoundError):
        await manager.wait_for_resolution("action-nope", timeout=1)
    with pytest.raises(ValidationError):
        await manager.get("")


# -- expiry -----------------------------------------------------------------------------------


async def test_expire_due_emits_the_event_even_when_nobody_waits() -> None:
    manager, _store, recorder, clock = make_manager()
    soon = await manager.require_action(spec(timeout_seconds=10))
    later = await manager.require_action(spec(timeout_seconds=100))
    forever = await manager.require_action(spec(timeout_seconds=None))
    assert await manager.expire_due() == []
    clock.advance(10)
    expired = await manager.expire_due()
    assert [r.action_id for r in expired] == [soon.action_id]
    assert expired[0].status is ActionStatus.EXPIRED
    expired_events = [e for e in recorder.events if e.type is RuntimeEventType.ACTION_EXPIRED]
    assert [e.data["action_id"] for e in expired_events] == [soon.action_id]
    assert expired_events[0].job_id == "job-123"
    assert await manager.expire_due() == []  # no duplicate events
    clock.advance(1000)
    assert {r.action_id for r in await manager.expire_due()} == {later.action_id}
    assert (await manager.get(forever.action_id)).status is ActionStatus.PENDING


async def test_background_sweeper_expires_due_actions() -> None:
    manager, _store, recorder, clock = make_manager(sweep_interval=0.01)
    action = await manager.require_action(spec(timeout_seconds=10))
    async with manager:
        clock.advance(11)
        event = await recorder.wait_for(RuntimeEventType.ACTION_EXPIRED)
    assert event.data["action_id"] == action.action_id
    await manager.stop()  # idempotent


async def test_sweeper_survives_a_failing_pass(caplog: pytest.LogCaptureFixture) -> None:
    class FlakyStore(InMemoryActionStore):
        def __init__(self) -> None:
            super().__init__()
            self.failures = 1

        async def list_expired(self, now: float | None = None) -> builtins.list[ActionRecord]:
            if self.failures:
                self.failures -= 1
                raise ConnectionError("database restarting")
            return await super().list_expired(now)

    clock = FakeClock()
    recorder = Recorder()
    manager = ActionManager(FlakyStore(), on_event=recorder, clock=clock, sweep_interval=0.01)
    await manager.require_action(spec(timeout_seconds=1))
    clock.advance(2)
    await manager.start()
    try:
        await recorder.wait_for(RuntimeEventType.ACTION_EXPIRED)
    finally:
        await manager.stop()
    assert "expiry sweep failed" in caplog.text


def test_manager_constructor_validation() -> None:
    with pytest.raises(ValidationError, match="ActionStore"):
        ActionManager(object())  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="sweep_interval"):
        ActionManager(InMemoryActionStore(), sweep_interval=0)
    with pytest.raises(ValidationError, match="on_event"):
        ActionManager(InMemoryActionStore(), on_event="print")  # type: ignore[arg-type]


# -- listing, cancelling, events, store semantics ---------------------------------------------


async def test_list_pending_filters_by_job_and_hides_due_actions() -> None:
    manager, _store, _rec, clock = make_manager()
    a = await manager.require_action(spec(job_id="job-a"))
    b = await manager.require_action(spec(job_id="job-b", timeout_seconds=5))
    c = await manager.require_action(spec(job_id="job-a"))
    await manager.cancel(c.action_id)
    assert [r.action_id for r in await manager.list_pending(job_id="job-a")] == [a.action_id]
    assert {r.action_id for r in await manager.list_pending()} == {a.action_id, b.action_id}
    clock.advance(5)
    assert [r.action_id for r in await manager.list_pending()] == [a.action_id]


async def test_cancel_is_idempotent_and_emits_once() -> None:
    manager, _store, recorder, _clock = make_manager()
    action = await manager.require_action(spec())
    first = await manager.cancel(action.action_id, reason="stop")
    second = await manager.cancel(action.action_id, reason="again")
    assert first == second and second.cancel_reason == "stop"
    assert recorder.types().count(RuntimeEventType.ACTION_CANCELLED) == 1
    with pytest.raises(ValidationError, match="reason"):
        await manager.cancel((await manager.require_action(spec())).action_id, reason=3)  # type: ignore[arg-type]


async def test_events_carry_the_record_and_a_failing_handler_does_not_break_resolution(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[RuntimeEvent] = []

    def handler(event: RuntimeEvent) -> None:  # sync handlers work too
        seen.append(event)
        if event.type is RuntimeEventType.ACTION_RESOLVED:
            raise RuntimeError("subscriber down")

    manager = ActionManager(InMemoryActionStore(), on_event=handler)
    action = await manager.require_action(spec(metadata={"tool": "deploy"}))
    assert action.resume_token is not None
    resolved = await manager.resolve(resume_token=action.resume_token, resolution={"approved": True})
    assert resolved.status is ActionStatus.RESOLVED
    assert [e.type for e in seen] == [RuntimeEventType.ACTION_REQUIRED, RuntimeEventType.ACTION_RESOLVED]
    assert seen[0].data["metadata"] == {"tool": "deploy"} and seen[0].data["type"] == "confirm"
    assert seen[1].data["resolution"] == {"approved": True}
    assert "on_event handler failed" in caplog.text


async def test_store_update_is_a_versioned_compare_and_set() -> None:
    store = InMemoryActionStore()
    created = await store.create(
        ActionRecord(action_id="a1", job_id="j", type=ActionType.CONFIRM, resume_token="t")
    )
    assert created.resume_token is None and created.version == 0
    with pytest.raises(ValidationError, match="already exists"):
        await store.create(ActionRecord(action_id="a1", job_id="j", type=ActionType.CONFIRM))
    with pytest.raises(ValidationError, match="resume token"):
        await store.create(
            ActionRecord(action_id="a2", job_id="j", type=ActionType.CONFIRM, resume_token="t")
        )
    first = await store.update(created.resolve({"ok": True}))
    assert first.version == 1 and first.resume_token_hash == created.resume_token_hash
    with pytest.raises(ConcurrentModificationError, match="reload"):
        await store.update(created.cancel())  # based on the stale version 0
    with pytest.raises(InvalidTransitionError):
        await store.update(dataclasses.replace(first, status=ActionStatus.PENDING))
    with pytest.raises(ActionNotFoundError):
        await store.update(ActionRecord(action_id="zz", job_id="j", type=ActionType.CONFIRM))
    assert await store.get_by_resume_token("t") == first
    assert await store.delete("a1") is True and await store.delete("a1") is False
    assert await store.get_by_resume_token("t") is None


async def test_store_list_filters_and_pages() -> None:
    store = InMemoryActionStore()
    for i in range(5):
        await store.create(
            ActionRecord(
                action_id=f"a{i}",
                job_id="j1" if i % 2 else "j2",
                type=ActionType.INPUT if i < 3 else ActionType.UPLOAD,
                created_at=1000.0 + i,
                expires_at=1010.0 + i,
            )
        )
    assert [r.action_id for r in await store.list()] == ["a0", "a1", "a2", "a3", "a4"]
    assert [r.action_id for r in await store.list(ActionFilter(job_id="j1"))] == ["a1", "a3"]
    assert [r.action_id for r in await store.list(ActionFilter(type="upload"))] == ["a3", "a4"]
    assert [r.action_id for r in await store.list(ActionFilter(limit=2, offset=1))] == ["a1", "a2"]
    assert [r.action_id for r in await store.list_expired(now=1012.0)] == ["a0", "a1", "a2"]
    assert [r.action_id for r in await store.list_pending_for_job("j2")] == ["a0", "a2", "a4"]


def test_action_required_error_carries_the_action() -> None:
    action = ActionRecord(action_id="a-9", job_id="job-9", type=ActionType.REAUTH, resume_token="s3cret")
    error = ActionRequiredError(action)
    assert error.action is action and error.action_id == "a-9" and error.job_id == "job-9"
    assert "reauth" in str(error) and "s3cret" not in str(error) and "s3cret" not in repr(error)
