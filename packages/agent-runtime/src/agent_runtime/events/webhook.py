"""Runtime events POSTed to an HTTP endpoint, signed, retried, and never silently lost.

Uses httpx (``pip install 'agent-runtime[webhooks]'``), imported the first time an adapter is
built, so ``import agent_runtime`` works without it. (The package reference mentions aiohttp; the
kernel's HTTP client is httpx, and aiohttp is not needed.)

Signature scheme, for receivers (check it with :func:`verify_signature`):

* ``X-Agent-Runtime-Timestamp: <unix seconds>``, set on every attempt;
* ``X-Agent-Runtime-Signature: sha256=<hex>``, the HMAC-SHA256 with the shared secret of
  ``b"<timestamp>." + body`` (the exact bytes sent).

Signing the timestamp with the body stops an attacker replaying a captured request later: the
receiver rejects timestamps outside its tolerance. ``X-Agent-Runtime-Event-Id`` stays the same
across retries, so receivers can drop duplicates (delivery is at least once).

Retries follow llm-client's :class:`~llm_client.retry.RetryPolicy` (the stack's one backoff):
connection errors, timeouts, HTTP 408, 429 and 5xx are retried, honouring ``Retry-After``; any other
status is final. An event whose delivery finally fails is kept in ``adapter.dead_letters`` with its
error and attempt count, for inspection or :meth:`WebhookEventAdapter.retry_dead_letters`.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import hmac
import inspect
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from llm_client.errors import (
    InvalidRequestError,
    LLMClientError,
    MissingDependencyError,
    ProviderConnectionError,
    ProviderError,
    RateLimitError,
    RequestTimeoutError,
)
from llm_client.retry import RetryPolicy, retry_async

from .. import __version__
from ..errors import ValidationError
from .bus import EventBus, EventSubscription, EventTypesArg
from .models import RuntimeEvent, coerce_event_types

__all__ = [
    "DEFAULT_WEBHOOK_RETRY",
    "DeadLetter",
    "EVENT_ID_HEADER",
    "EVENT_TYPE_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookEventAdapter",
    "sign_payload",
    "verify_signature",
]

logger = logging.getLogger("agent_runtime.events.webhook")

SIGNATURE_HEADER = "X-Agent-Runtime-Signature"
TIMESTAMP_HEADER = "X-Agent-Runtime-Timestamp"
EVENT_ID_HEADER = "X-Agent-Runtime-Event-Id"
EVENT_TYPE_HEADER = "X-Agent-Runtime-Event"

#: Five tries over roughly a minute: long enough to ride out a deploy of the receiving service.
DEFAULT_WEBHOOK_RETRY = RetryPolicy(max_attempts=5, initial_delay=1.0, max_delay=30.0, max_total_time=300.0)

_PROVIDER = "webhook"
_MAX_ERROR_BODY = 200


def _import_httpx() -> Any:
    try:
        import httpx
    except ImportError as exc:
        raise MissingDependencyError("httpx", "webhooks", distribution="agent-runtime") from exc
    return httpx


def _secret_bytes(secret: str | bytes) -> bytes:
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    if not isinstance(secret, bytes) or not secret:
        raise ValidationError("webhook secret must be a non-empty str or bytes")
    return secret


def sign_payload(body: bytes, secret: str | bytes, timestamp: int) -> str:
    """The ``X-Agent-Runtime-Signature`` value for ``body`` sent at ``timestamp``."""
    message = str(int(timestamp)).encode("ascii") + b"." + body
    return "sha256=" + hmac.new(_secret_bytes(secret), message, hashlib.sha256).hexdigest()


def verify_signature(
    body: bytes | str,
    headers: Mapping[str, str],
    secret: str | bytes,
    tolerance_seconds: float = 300,
    *,
    now: float | None = None,
) -> bool:
    """For receivers: True when ``body`` was signed with ``secret`` less than ``tolerance_seconds`` ago.

    Pass the raw request body (before any JSON parsing) and the request headers (any casing).
    Missing or malformed headers, a wrong signature or a stale timestamp all give False.
    """
    key = _secret_bytes(secret)
    raw = body.encode("utf-8") if isinstance(body, str) else body
    lowered = {k.lower(): v for k, v in headers.items()}
    signature = lowered.get(SIGNATURE_HEADER.lower())
    stamp = lowered.get(TIMESTAMP_HEADER.lower())
    if not signature or not stamp:
        return False
    try:
        timestamp = int(stamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign_payload(raw, key, timestamp), signature.strip())


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An event the endpoint never accepted, and why."""

    event: RuntimeEvent
    error: str
    attempts: int
    status_code: int | None = None
    failed_at: float = field(default_factory=time.time)


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After is either delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _status_error(status: int, headers: Mapping[str, str], text: str) -> LLMClientError:
    """Map a non-2xx answer onto llm-client's typed errors, whose ``retryable`` drives the retry loop."""
    snippet = text[:_MAX_ERROR_BODY]
    message = f"webhook endpoint answered HTTP {status}" + (f": {snippet}" if snippet else "")
    retry_after = _retry_after_seconds(headers.get("retry-after"))
    if status == 429 or (status >= 500 and retry_after is not None):
        return RateLimitError(message, retry_after=retry_after, provider=_PROVIDER, status_code=status)
    if status == 408:
        return RequestTimeoutError(message, provider=_PROVIDER, status_code=status)
    if status >= 500:
        return ProviderError(message, provider=_PROVIDER, status_code=status)
    return InvalidRequestError(message, provider=_PROVIDER, status_code=status)


class WebhookEventAdapter:
    """Delivers runtime events to one URL.

    ``adapt(event)`` returns True once the endpoint accepted the event (2xx), False when the
    event was filtered out by ``event_types`` or ended in :attr:`dead_letters`. It raises only for
    a bad argument or cancellation. At most ``max_dead_letters`` are kept; evicting the oldest
    is logged as an error and counted in ``dead_letters_evicted``. ``on_dead_letter`` (sync or
    async) is called for each one, e.g. to persist it.
    """

    def __init__(
        self,
        webhook_url: str,
        headers: Mapping[str, str] | None = None,
        *,
        secret: str | bytes | None = None,
        event_types: EventTypesArg = None,
        retry: RetryPolicy = DEFAULT_WEBHOOK_RETRY,
        timeout: float = 10.0,
        max_dead_letters: int = 1000,
        on_dead_letter: Callable[[DeadLetter], Awaitable[object] | object] | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self._httpx = _import_httpx()
        if not isinstance(webhook_url, str):
            raise ValidationError(f"webhook_url must be a string, got {type(webhook_url).__name__}")
        parts = urlsplit(webhook_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationError(f"webhook_url must be an absolute http(s) URL, got {webhook_url!r}")
        if headers is not None and (
            not isinstance(headers, Mapping)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
        ):
            raise ValidationError("headers must be a mapping of str to str")
        if not isinstance(retry, RetryPolicy):
            raise ValidationError(f"retry must be an llm_client RetryPolicy, got {type(retry).__name__}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValidationError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if type(max_dead_letters) is not int or max_dead_letters < 1:
            raise ValidationError(f"max_dead_letters must be a positive integer, got {max_dead_letters!r}")
        self.webhook_url = webhook_url
        self.headers: dict[str, str] = dict(headers or {})
        self._secret = _secret_bytes(secret) if secret is not None else None
        self.event_types = coerce_event_types(event_types)
        self.retry = retry
        self.timeout = float(timeout)
        self.max_dead_letters = max_dead_letters
        self._on_dead_letter = on_dead_letter
        self._sleep = sleep
        self._dead_letters: deque[DeadLetter] = deque()
        self.dead_letters_evicted = 0
        self.delivered = 0
        self._client: Any = None
        self._subscriptions: list[EventSubscription] = []

    @property
    def dead_letters(self) -> list[DeadLetter]:
        """Failed deliveries, oldest first."""
        return list(self._dead_letters)

    def _client_for_delivery(self) -> Any:
        if self._client is None:
            self._client = self._httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        return self._client

    def _request_headers(self, event: RuntimeEvent, body: bytes) -> dict[str, str]:
        given = {k.lower() for k in self.headers}
        defaults = {"Content-Type": "application/json", "User-Agent": f"agent-runtime/{__version__}"}
        headers = {k: v for k, v in defaults.items() if k.lower() not in given}
        headers.update(self.headers)
        headers[EVENT_ID_HEADER] = event.event_id
        headers[EVENT_TYPE_HEADER] = event.type.value
        if self._secret is not None:
            timestamp = int(time.time())
            headers[TIMESTAMP_HEADER] = str(timestamp)
            headers[SIGNATURE_HEADER] = sign_payload(body, self._secret, timestamp)
        return headers

    async def adapt(self, event: RuntimeEvent) -> bool:
        """Deliver one event (see the class docstring for the outcome)."""
        if not isinstance(event, RuntimeEvent):
            raise ValidationError(f"adapt() takes a RuntimeEvent, got {type(event).__name__}")
        if self.event_types is not None and event.type not in self.event_types:
            return False
        return await self._deliver(event)

    async def _deliver(self, event: RuntimeEvent) -> bool:
        httpx = self._httpx
        client = self._client_for_delivery()
        body = event.to_json().encode("utf-8")
        attempts = 0
        last_status: int | None = None

        async def attempt() -> None:
            nonlocal attempts, last_status
            attempts += 1
            headers = self._request_headers(event, body)
            try:
                response = await client.post(self.webhook_url, content=body, headers=headers)
            except httpx.TimeoutException as exc:
                raise RequestTimeoutError(
                    f"webhook request timed out after {self.timeout}s", provider=_PROVIDER, original=exc
                ) from exc
            except httpx.TransportError as exc:
                raise ProviderConnectionError(
                    f"webhook connection failed: {exc!r}", provider=_PROVIDER, original=exc
                ) from exc
            last_status = response.status_code
            if not 200 <= response.status_code < 300:
                raise _status_error(response.status_code, response.headers, response.text)

        def on_retry(number: int, error: BaseException, delay: float) -> None:
            logger.info(
                "webhook delivery of %s to %s failed (attempt %d: %s); retrying in %.2fs",
                event.event_id,
                self.webhook_url,
                number,
                error,
                delay,
            )

        try:
            await retry_async(attempt, self.retry, sleep=self._sleep, on_retry=on_retry)
        except Exception as exc:  # every failure is recorded: an event is never silently lost
            await self._dead_letter(DeadLetter(event, str(exc) or repr(exc), attempts, last_status))
            return False
        self.delivered += 1
        return True

    async def _dead_letter(self, letter: DeadLetter) -> None:
        logger.warning(
            "webhook delivery of %s event %s to %s failed after %d attempt(s): %s",
            letter.event.type.value,
            letter.event.event_id,
            self.webhook_url,
            letter.attempts,
            letter.error,
        )
        if len(self._dead_letters) >= self.max_dead_letters:
            evicted = self._dead_letters.popleft()
            self.dead_letters_evicted += 1
            logger.error(
                "webhook dead-letter list is full (%d); evicting event %s: %s",
                self.max_dead_letters,
                evicted.event.event_id,
                evicted.event.to_json(),
            )
        self._dead_letters.append(letter)
        if self._on_dead_letter is not None:
            try:
                result = self._on_dead_letter(letter)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("on_dead_letter callback failed for event %s", letter.event.event_id)

    async def retry_dead_letters(self) -> int:
        """Try every dead letter again; returns how many got through (failures are dead-lettered anew)."""
        letters = list(self._dead_letters)
        self._dead_letters.clear()
        delivered = 0
        for index, letter in enumerate(letters):
            try:
                if await self._deliver(letter.event):
                    delivered += 1
            except BaseException:
                # Cancelled half-way: put back the one in flight and those not tried, so none is lost.
                self._dead_letters.extendleft(reversed(letters[index:]))
                raise
        return delivered

    async def attach(self, bus: EventBus, *, job_id: str | None = None) -> EventSubscription:
        """Deliver the bus's matching events, in order, from a subscription of their own."""
        subscription = await bus.subscribe(self.adapt, event_types=self.event_types, job_id=job_id)
        self._subscriptions.append(subscription)
        return subscription

    async def aclose(self) -> None:
        """Detach from buses and close the HTTP connections."""
        subscriptions, self._subscriptions = self._subscriptions, []
        for subscription in subscriptions:
            await subscription.unsubscribe()
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
