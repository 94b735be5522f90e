"""Plumbing shared by the kernel's Redis adapters (storage and the Redis Streams queue adapter).

Only the adapter modules may import ``redis`` (import-linter), and only inside functions, so that
``import agent_runtime`` works without the extra. Connections go through agent-runtime-core's
:class:`~agent_runtime_core.events.redis.RedisConnection` (one client per event loop when built from
a URL), so the stack has one connection policy, not two.
"""

from __future__ import annotations

import asyncio
import logging
import math
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from agent_runtime_core.events.redis import RedisConnection, text
from llm_client import RetryPolicy

from ...errors import AgentRuntimeError, ValidationError

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

__all__ = [
    "INSTALL_HINT",
    "require_redis",
    "connect",
    "redis_errors",
    "run_script",
    "check_prefix",
    "positive_seconds",
    "PubSubListener",
    "RedisUnavailableError",
    "text",
]

logger = logging.getLogger("agent_runtime.storage.redis")

INSTALL_HINT = "pip install 'agent-runtime[redis]'"

#: Backoff between reconnect attempts of a pub/sub listener: it retries forever, so no total bound.
LISTENER_RECONNECT = RetryPolicy(
    max_attempts=1_000_000_000,
    initial_delay=0.05,
    multiplier=2.0,
    max_delay=5.0,
    jitter=0.5,
    max_total_time=None,
)


class RedisUnavailableError(AgentRuntimeError):
    """A pub/sub subscription could not be confirmed by the server in time."""


def require_redis(owner: str) -> Any:
    """``redis.asyncio``, or an ImportError that names the extra to install."""
    try:
        import redis.asyncio as aioredis
    except ImportError as exc:
        raise ImportError(f"{owner} needs the redis package: {INSTALL_HINT}") from exc
    return aioredis


def redis_errors() -> tuple[type[BaseException], ...]:
    """What a failing Redis call raises (imported lazily, like the client itself)."""
    from redis.exceptions import RedisError

    return (RedisError, OSError)


def connect(owner: str, client: Redis | None, redis_url: str | None) -> RedisConnection:
    """The shared connection helper; a missing extra is reported under *this* package's name."""
    if client is None and redis_url is None:
        raise ValidationError(f"{owner} needs a redis.asyncio client (or redis_url=...)")
    if client is not None and redis_url is not None:
        raise ValidationError(f"{owner} takes a client or redis_url=..., not both")
    if redis_url is not None:
        if not isinstance(redis_url, str) or not redis_url:
            raise ValidationError(f"redis_url must be a non-empty string, got {redis_url!r}")
        require_redis(owner)
    return RedisConnection(owner, redis_url, client)


def positive_seconds(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(f"{name} must be a positive number of seconds, got {value!r}")
    if value <= 0:
        raise ValidationError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def check_prefix(prefix: object) -> str:
    if not isinstance(prefix, str) or not prefix or any(c.isspace() for c in prefix):
        raise ValidationError(f"prefix must be a non-empty string without whitespace, got {prefix!r}")
    return prefix


_scripts: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


async def run_script(client: Redis, source: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
    """EVALSHA with EVAL fallback (redis-py's Script), cached per client: scripts run on every write,
    so resending their source each time would cost more than the work they do."""
    per_client = _scripts.get(client)
    if per_client is None:
        per_client = _scripts[client] = {}
    script = per_client.get(source)
    if script is None:
        script = per_client[source] = client.register_script(source)
    return await script(keys=list(keys), args=list(args))


class PubSubListener:
    """One pub/sub connection, confirmed subscribed before :meth:`start` returns, read by one task.

    Confirmation matters: callers subscribe *then* read state, so a publish between the two is
    delivered. redis-py re-subscribes after a reconnect; every (re)subscription confirmation calls
    ``on_subscribed`` so owners can re-read state that may have changed while the link was down.
    """

    def __init__(
        self,
        client: Redis,
        *,
        name: str,
        on_message: Callable[[str, Any], None],
        channel: str | None = None,
        pattern: str | None = None,
        on_subscribed: Callable[[], None] | None = None,
        confirm_timeout: float = 10.0,
    ) -> None:
        if (channel is None) == (pattern is None):
            raise ValidationError("PubSubListener takes exactly one of channel= or pattern=")
        self._client = client
        self._name = name
        self._channel = channel
        self._pattern = pattern
        self._on_message = on_message
        self._on_subscribed = on_subscribed
        self._confirm_timeout = confirm_timeout
        self._pubsub: PubSub | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        pubsub = self._client.pubsub()
        try:
            if self._pattern is not None:
                await pubsub.psubscribe(self._pattern)
            elif self._channel is not None:
                await pubsub.subscribe(self._channel)
            await asyncio.wait_for(self._confirmed(pubsub), self._confirm_timeout)
        except TimeoutError:
            await _close_quietly(pubsub)
            raise RedisUnavailableError(
                f"{self._name}: Redis did not confirm the subscription within {self._confirm_timeout}s"
            ) from None
        except BaseException:
            await _close_quietly(pubsub)
            raise
        self._pubsub = pubsub
        self._task = asyncio.create_task(self._run(pubsub), name=f"{self._name}-pubsub")

    async def _confirmed(self, pubsub: PubSub) -> None:
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=False, timeout=None)
            if message is None:
                continue
            kind = text(message.get("type"))
            if kind in ("subscribe", "psubscribe"):
                return
            self._dispatch(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = text(message.get("type"))
        if kind in ("message", "pmessage"):
            try:
                self._on_message(text(message["channel"]), message["data"])
            except Exception:
                logger.exception("%s: handling a pub/sub message failed", self._name)
        elif kind in ("subscribe", "psubscribe") and self._on_subscribed is not None:
            try:
                self._on_subscribed()
            except Exception:
                logger.exception("%s: re-subscription hook failed", self._name)

    async def _run(self, pubsub: PubSub) -> None:
        failures = 0
        while True:
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=False, timeout=None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # redis-py reconnects (and re-subscribes) on the next read; wait before trying.
                failures += 1
                delay = LISTENER_RECONNECT.delay_for(failures, exc)
                logger.warning("%s: pub/sub read failed (%s); retrying in %.2fs", self._name, exc, delay)
                await asyncio.sleep(delay)
                continue
            failures = 0
            if message is not None:
                self._dispatch(message)

    async def stop(self) -> None:
        task, pubsub = self._task, self._pubsub
        self._task = self._pubsub = None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if pubsub is not None:
            await _close_quietly(pubsub)


async def _close_quietly(pubsub: PubSub) -> None:
    """After a cancelled read the connection may be unusable; aclose() still returns it."""
    try:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
    except Exception:
        logger.debug("closing a pub/sub connection failed", exc_info=True)
