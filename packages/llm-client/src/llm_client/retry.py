"""The one retry loop of the stack: exponential backoff with jitter on retryable errors.

Providers never retry (their SDK clients are built with ``max_retries=0``) and upper layers reuse
this policy, so a failing call is retried exactly as configured here, never multiplied by a second
loop somewhere else.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from .errors import LLMClientError, RateLimitError, StreamInterruptedError

__all__ = ["RetryPolicy", "retry_async"]

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry.

    ``max_attempts`` counts the first try. The delay before retry *n* is ``initial_delay *
    multiplier**(n-1)`` capped at ``max_delay``, scaled down by up to ``jitter`` (0..1) at random so
    that many clients failing together do not retry together. A provider's Retry-After is a floor.
    No retry starts if it could not begin before ``max_total_time`` seconds since the first try.
    """

    max_attempts: int = 3
    initial_delay: float = 0.5
    max_delay: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.5
    max_total_time: float | None = 120.0
    respect_retry_after: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.initial_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must be >= 0")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")

    def is_retryable(self, error: BaseException) -> bool:
        return (
            isinstance(error, LLMClientError)
            and error.retryable
            and not isinstance(error, StreamInterruptedError)
        )

    def delay_for(self, attempt: int, error: BaseException | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        base = min(self.max_delay, self.initial_delay * self.multiplier ** (attempt - 1))
        delay = base * (1 - self.jitter * random.random())
        if self.respect_retry_after and isinstance(error, RateLimitError) and error.retry_after is not None:
            delay = max(delay, error.retry_after)
        return delay


async def retry_async(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    sleep: Sleep = asyncio.sleep,
    on_retry: Callable[[int, BaseException, float], object] | None = None,
) -> T:
    """Run ``call`` until it succeeds, fails with a non-retryable error, or the policy gives up.

    The last error is raised as is, so callers see the provider's typed error, not a wrapper.
    """
    started = time.monotonic()
    attempt = 1
    while True:
        try:
            return await call()
        except Exception as exc:
            if attempt >= policy.max_attempts or not policy.is_retryable(exc):
                raise
            delay = policy.delay_for(attempt, exc)
            if (
                policy.max_total_time is not None
                and time.monotonic() - started + delay > policy.max_total_time
            ):
                raise
            if on_retry is not None:
                on_retry(attempt, exc, delay)
        await sleep(delay)
        attempt += 1
