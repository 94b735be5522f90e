"""Cross-process wake-ups for human-in-the-loop actions over Redis pub/sub.

Pub/sub alone loses any message sent while nobody listens, and an action may well be answered before
its waiter subscribes (a fast human, a slow worker). So :meth:`RedisSignalChannel.signal` stores the
last signal of an action under a key with a TTL *and* publishes it, in one MULTI/EXEC; ``wait``
registers its waiter on an already-confirmed subscription first and only then reads that key.
Whatever order the two race in, the waiter sees the signal: from the key if it came first, from
the subscription otherwise.

A signal never carries the plaintext resume token over the wire or into Redis (part of the token
rules: plaintext is never stored). A :class:`SignalMessage` built with ``resume_token=`` keeps only its
SHA-256; a receiver holding the token checks it with :meth:`SignalMessage.matches_token`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from ...actions.models import ActionRecord, ActionStatus
from ...actions.tokens import hash_resume_token, token_hash_matches
from ...errors import AgentRuntimeError, ValidationError
from ._common import PubSubListener, check_prefix, connect, positive_seconds, text

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["SignalMessage", "RedisSignalChannel", "SignalTimeoutError", "SignalChannelClosedError"]

logger = logging.getLogger("agent_runtime.storage.redis.signals")


class SignalTimeoutError(AgentRuntimeError, TimeoutError):
    """No signal for the action arrived within ``timeout`` (a TimeoutError, for ``except TimeoutError``)."""

    def __init__(self, action_id: str, timeout: float) -> None:
        super().__init__(f"no signal for action {action_id!r} within {timeout}s")
        self.action_id = action_id
        self.timeout = timeout


class SignalChannelClosedError(AgentRuntimeError):
    """The channel is not started (call ``start()``) or was stopped while a waiter waited."""


def _json_object(value: object, name: str) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValidationError(f"{name} must be a dict with string keys, got {type(value).__name__}")
    copied = dict(value)
    try:
        json.dumps(copied, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{name} must be JSON-serialisable: {exc}") from exc
    return copied


@dataclass(frozen=True, slots=True)
class SignalMessage:
    """What a resolver tells a waiter: the action's outcome.

    ``resume_token`` is accepted (the seed passes it) but only its hash is kept and sent: the field
    is always None on a received message and compares/prints as nothing.
    """

    action_id: str
    resume_token: str | None = field(default=None, repr=False, compare=False)
    status: ActionStatus | str = ActionStatus.RESOLVED
    resolution: dict[str, Any] | None = None
    resume_token_hash: str | None = None
    sent_at: float = field(default_factory=time.time)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.action_id, str) or not self.action_id:
            raise ValidationError(f"action_id must be a non-empty string, got {self.action_id!r}")
        object.__setattr__(self, "status", ActionStatus.parse(self.status))
        if self.resolution is not None:
            object.__setattr__(self, "resolution", _json_object(self.resolution, "resolution"))
        object.__setattr__(self, "metadata", _json_object(self.metadata, "metadata"))
        if isinstance(self.sent_at, bool) or not isinstance(self.sent_at, (int, float)):
            raise ValidationError(f"sent_at must be epoch seconds, got {self.sent_at!r}")
        if not math.isfinite(self.sent_at):
            raise ValidationError(f"sent_at must be finite, got {self.sent_at!r}")
        token = self.resume_token
        if token is not None:
            if not isinstance(token, str) or not token:
                raise ValidationError("resume_token must be a non-empty string or None")
            digest = hash_resume_token(token)
            if self.resume_token_hash is not None and self.resume_token_hash != digest:
                raise ValidationError("resume_token does not match resume_token_hash")
            object.__setattr__(self, "resume_token_hash", digest)
            object.__setattr__(self, "resume_token", None)
        elif self.resume_token_hash is not None and not isinstance(self.resume_token_hash, str):
            raise ValidationError("resume_token_hash must be a string or None")

    @classmethod
    def from_action(cls, record: ActionRecord, **metadata: Any) -> SignalMessage:
        """The signal announcing ``record``'s current state (its token hash, never the token)."""
        return cls(
            action_id=record.action_id,
            status=record.status,
            resolution=record.__dict__.get("_resolution"),
            resume_token_hash=record.resume_token_hash,
            metadata=metadata,
        )

    def matches_token(self, token: str) -> bool:
        """Whether ``token`` is the resume token of the signalled action (constant-time compare)."""
        return isinstance(token, str) and token_hash_matches(self.resume_token_hash, token)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action_id": self.action_id,
            "status": ActionStatus.parse(self.status).value,
            "resolution": None if self.resolution is None else dict(self.resolution),
            "resume_token_hash": self.resume_token_hash,
            "sent_at": self.sent_at,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SignalMessage:
        if not isinstance(data, Mapping) or "action_id" not in data:
            raise ValidationError("a signal message needs at least an action_id")
        known = {"action_id", "status", "resolution", "resume_token_hash", "sent_at", "metadata"}
        return cls(**{k: v for k, v in data.items() if k in known and v is not None})


class RedisSignalChannel:
    """Wake waiters on action outcomes across processes, within a pub/sub round trip.

    One pattern subscription per channel object serves every waiter in the process (signals are
    human-paced, so receiving all of them is cheap, and it spares a SUBSCRIBE round trip per wait).
    ``signal_ttl`` is how long the last signal stays readable for late waiters.
    """

    def __init__(
        self,
        client: Redis | None = None,
        *,
        redis_url: str | None = None,
        prefix: str = "agent_runtime:signals",
        signal_ttl: float = 3600.0,
    ) -> None:
        self._conn = connect("RedisSignalChannel", client, redis_url)
        self.prefix = check_prefix(prefix)
        self.signal_ttl = positive_seconds(signal_ttl, "signal_ttl")
        self._channel_prefix = f"{self.prefix}:ch:"
        self._waiters: dict[str, set[asyncio.Future[SignalMessage]]] = {}
        self._listener: PubSubListener | None = None
        self._rechecks: set[asyncio.Task[None]] = set()

    # -- keys ----------------------------------------------------------------------------------

    def channel(self, action_id: str) -> str:
        return f"{self._channel_prefix}{action_id}"

    def key(self, action_id: str) -> str:
        """Where the last signal of ``action_id`` is kept for waiters that arrive late."""
        return f"{self.prefix}:last:{action_id}"

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._listener is not None

    async def start(self) -> None:
        """Subscribe (confirmed by the server before this returns). Idempotent."""
        if self._listener is not None:
            return
        listener = PubSubListener(
            self._conn.client(),
            name="RedisSignalChannel",
            pattern=f"{self._channel_prefix}*",
            on_message=self._on_message,
            on_subscribed=self._recheck_all,
        )
        await listener.start()
        self._listener = listener

    async def stop(self) -> None:
        """Unsubscribe; current waiters fail with SignalChannelClosedError. Idempotent."""
        listener, self._listener = self._listener, None
        for futures in self._waiters.values():
            for future in futures:
                if not future.done():
                    future.set_exception(SignalChannelClosedError("the signal channel was stopped"))
        for task in list(self._rechecks):
            task.cancel()
        if listener is not None:
            await listener.stop()

    async def close(self) -> None:
        await self.stop()
        await self._conn.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- signalling ----------------------------------------------------------------------------

    async def signal(self, action_id: str, message: SignalMessage | None = None) -> int:
        """Store and publish ``message`` (default: a bare RESOLVED signal); returns how many channel
        objects (processes) received it live. 0 is fine: late waiters read the stored copy."""
        _check_id(action_id)
        if message is None:
            message = SignalMessage(action_id=action_id)
        if not isinstance(message, SignalMessage):
            raise ValidationError(f"signal() takes a SignalMessage, got {type(message).__name__}")
        if message.action_id != action_id:
            raise ValidationError(f"the message is for action {message.action_id!r}, not {action_id!r}")
        body = json.dumps(message.to_dict(), separators=(",", ":"))
        async with self._conn.client().pipeline(transaction=True) as pipe:
            pipe.set(self.key(action_id), body, px=max(1, int(self.signal_ttl * 1000)))
            pipe.publish(self.channel(action_id), body)
            _, receivers = await pipe.execute()
        return int(receivers)

    async def last(self, action_id: str) -> SignalMessage | None:
        """The stored last signal of ``action_id`` (None if none, or its TTL passed)."""
        _check_id(action_id)
        raw = await self._conn.client().get(self.key(action_id))
        return None if raw is None else _decode(raw)

    async def clear(self, action_id: str) -> bool:
        """Forget the stored signal, e.g. before reusing an id; True if there was one."""
        _check_id(action_id)
        return bool(await self._conn.client().delete(self.key(action_id)))

    async def wait(self, action_id: str, timeout: float | None = None) -> SignalMessage:
        """The action's signal: the stored one at once, else the next one published.

        Raises SignalTimeoutError (a TimeoutError) after ``timeout`` seconds (None: no limit) and
        SignalChannelClosedError if the channel is not started or is stopped meanwhile.
        """
        _check_id(action_id)
        limit = None if timeout is None else positive_seconds(timeout, "timeout")
        if self._listener is None:
            raise SignalChannelClosedError("the signal channel is not started: call start() first")
        future: asyncio.Future[SignalMessage] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(action_id, set())
        waiters.add(future)
        try:
            # The subscription is live before the key is read: no signal falls between the two.
            stored = await self.last(action_id)
            if stored is not None:
                return stored
            try:
                return await asyncio.wait_for(asyncio.shield(future), limit)
            except TimeoutError:
                raise SignalTimeoutError(action_id, limit or 0.0) from None
        finally:
            waiters.discard(future)
            if not waiters:
                self._waiters.pop(action_id, None)
            if not future.done():
                future.cancel()

    # -- listener callbacks --------------------------------------------------------------------

    def _on_message(self, channel: str, data: Any) -> None:
        if not channel.startswith(self._channel_prefix):
            return
        action_id = channel[len(self._channel_prefix) :]
        futures = self._waiters.get(action_id)
        if not futures:
            return
        try:
            message = _decode(data)
        except ValidationError:
            logger.warning("ignoring a malformed signal on %s", channel)
            return
        _deliver(futures, message)

    def _recheck_all(self) -> None:
        """After a (re)subscription, signals sent while disconnected are only in the stored keys."""
        for action_id in list(self._waiters):
            task = asyncio.get_running_loop().create_task(self._recheck(action_id))
            self._rechecks.add(task)
            task.add_done_callback(self._rechecks.discard)

    async def _recheck(self, action_id: str) -> None:
        try:
            stored = await self.last(action_id)
        except Exception:
            logger.warning("re-reading the signal of %s after a reconnect failed", action_id, exc_info=True)
            return
        futures = self._waiters.get(action_id)
        if stored is not None and futures:
            _deliver(futures, stored)


def _deliver(futures: set[asyncio.Future[SignalMessage]], message: SignalMessage) -> None:
    for future in futures:
        if not future.done():
            future.set_result(message)


def _check_id(action_id: object) -> None:
    if not isinstance(action_id, str) or not action_id:
        raise ValidationError(f"action_id must be a non-empty string, got {action_id!r}")


def _decode(raw: Any) -> SignalMessage:
    try:
        data = json.loads(text(raw))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"a stored signal is not JSON: {exc}") from exc
    return SignalMessage.from_dict(data)
