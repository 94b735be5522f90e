"""Middleware: behaviour wrapped around every model call, in one ordered chain.

Each middleware sees the request and context and calls ``call_next``. The engine composes the
chain once, at construction, so a call costs one function hop per middleware. Streams pass
through the same chain with :meth:`Middleware.stream`.

The production chain (:func:`default_middleware`), outermost first: telemetry, logging, budget,
retry, timeout. Budget sits outside retry so a call is reserved once however often it is retried;
timeout sits inside retry so each attempt gets the full timeout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal

from .context import RequestContext
from .errors import LLMClientError, RequestTimeoutError, StreamInterruptedError
from .pricing import PricingTable, default_pricing
from .retry import RetryPolicy, Sleep
from .spec import CompletionResult, RequestSpec
from .streaming import (
    ReasoningDelta,
    StreamDone,
    StreamError,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallReady,
    aclose_stream,
)
from .usage import Usage

__all__ = [
    "Call",
    "StreamCall",
    "Middleware",
    "LoggingMiddleware",
    "TimeoutMiddleware",
    "RetryMiddleware",
    "BudgetMiddleware",
    "default_middleware",
    "estimate_tokens",
]

Call = Callable[[RequestSpec, RequestContext], Awaitable[CompletionResult]]
StreamCall = Callable[[RequestSpec, RequestContext], AsyncIterator[StreamEvent]]

_OUTPUT_EVENTS = (TextDelta, ReasoningDelta, ToolCallDelta, ToolCallReady)


class Middleware:
    """Base class: both hooks pass through. Override the ones you need."""

    async def complete(self, spec: RequestSpec, context: RequestContext, call_next: Call) -> CompletionResult:
        return await call_next(spec, context)

    def stream(
        self, spec: RequestSpec, context: RequestContext, call_next: StreamCall
    ) -> AsyncIterator[StreamEvent]:
        return call_next(spec, context)

    def for_provider(self, provider_name: str) -> Middleware:
        """Called by the engine when the chain is built; a middleware may bind the provider's name."""
        return self


class LoggingMiddleware(Middleware):
    """One log line per call: model, duration, tokens and cost; failures at WARNING."""

    def __init__(self, logger: logging.Logger | None = None, level: int = logging.INFO) -> None:
        self.logger = logger or logging.getLogger("llm_client")
        self.level = level

    async def complete(self, spec: RequestSpec, context: RequestContext, call_next: Call) -> CompletionResult:
        if not self.logger.isEnabledFor(logging.WARNING):
            return await call_next(spec, context)
        started = time.perf_counter()
        try:
            result = await call_next(spec, context)
        except Exception as exc:
            self._failed(spec, context, exc, started)
            raise
        self._done(spec, context, result, started)
        return result

    async def stream(
        self, spec: RequestSpec, context: RequestContext, call_next: StreamCall
    ) -> AsyncIterator[StreamEvent]:
        started = time.perf_counter()
        inner = call_next(spec, context)
        try:
            async for event in inner:
                if isinstance(event, StreamDone):
                    self._done(spec, context, event.result, started)
                elif isinstance(event, StreamError):
                    self._failed(spec, context, event.error, started)
                yield event
        finally:
            await aclose_stream(inner)

    def _done(
        self, spec: RequestSpec, context: RequestContext, result: CompletionResult, started: float
    ) -> None:
        if self.logger.isEnabledFor(self.level):
            u = result.usage
            self.logger.log(
                self.level,
                "llm call ok request=%s model=%s ms=%.1f in=%d out=%d cost=%s finish=%s",
                context.request_id,
                result.model or spec.model,
                (time.perf_counter() - started) * 1000,
                u.input_tokens,
                u.output_tokens,
                "unknown" if u.cost is None else u.cost,
                result.finish_reason,
            )

    def _failed(self, spec: RequestSpec, context: RequestContext, exc: BaseException, started: float) -> None:
        self.logger.warning(
            "llm call failed request=%s model=%s ms=%.1f error=%s: %s",
            context.request_id,
            spec.model,
            (time.perf_counter() - started) * 1000,
            type(exc).__name__,
            exc,
        )


class TimeoutMiddleware(Middleware):
    """Bounds each attempt: ``context.timeout``, else ``spec.timeout``, else ``timeout``.

    For streams the bound is on the wait for each next event (an idle timeout), so a long answer
    that keeps streaming is not cut off, but a stalled one is.
    """

    def __init__(self, timeout: float | None = 60.0) -> None:
        self.timeout = timeout

    def _limit(self, spec: RequestSpec, context: RequestContext) -> float | None:
        return context.timeout or spec.timeout or self.timeout

    async def complete(self, spec: RequestSpec, context: RequestContext, call_next: Call) -> CompletionResult:
        limit = self._limit(spec, context)
        if limit is None:
            return await call_next(spec, context)
        try:
            async with asyncio.timeout(limit):
                return await call_next(spec, context)
        except TimeoutError as exc:
            raise RequestTimeoutError(f"model call timed out after {limit:g}s", original=exc) from exc

    async def stream(
        self, spec: RequestSpec, context: RequestContext, call_next: StreamCall
    ) -> AsyncIterator[StreamEvent]:
        limit = self._limit(spec, context)
        inner = call_next(spec, context)
        if limit is None:
            try:
                async for event in inner:
                    yield event
            finally:
                await aclose_stream(inner)
            return
        # One watchdog timer per ``limit`` seconds instead of a timer per event: it fires, looks at
        # how long the current wait for the next event has lasted, and either cancels the wait or
        # re-arms itself for when the wait would reach the limit.
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        waiting_since: float | None = None
        fired = False
        handle: asyncio.TimerHandle | None = None

        def check() -> None:
            nonlocal handle, fired
            since = waiting_since
            now = loop.time()
            if since is not None and now - since >= limit:
                fired = True
                task.cancel()
                handle = None
            else:
                handle = loop.call_at((since if since is not None else now) + limit, check)

        handle = loop.call_at(loop.time() + limit, check)
        produced = False
        try:
            while True:
                waiting_since = loop.time()
                try:
                    event = await anext(inner)
                except StopAsyncIteration:
                    return
                except asyncio.CancelledError as exc:
                    if not fired or task.uncancel() > 0:
                        raise
                    err: LLMClientError = RequestTimeoutError(
                        f"stream stalled: no event for {limit:g}s", original=exc
                    )
                    if produced:
                        err = StreamInterruptedError(str(err), original=exc)
                    yield StreamError(err)
                    return
                finally:
                    waiting_since = None
                if not produced and isinstance(event, _OUTPUT_EVENTS):
                    produced = True
                yield event
        finally:
            if handle is not None:
                handle.cancel()
            await aclose_stream(inner)


class RetryMiddleware(Middleware):
    """Retries retryable failures with :class:`RetryPolicy`.

    A stream is retried only while it has yielded no output: once a token has reached the caller a
    retry would duplicate it, so a later failure is passed on as the stream's terminal error.
    """

    def __init__(self, policy: RetryPolicy | None = None, *, sleep: Sleep = asyncio.sleep) -> None:
        self.policy = policy or RetryPolicy()
        self._sleep = sleep

    async def complete(self, spec: RequestSpec, context: RequestContext, call_next: Call) -> CompletionResult:
        from .retry import retry_async

        return await retry_async(lambda: call_next(spec, context), self.policy, sleep=self._sleep)

    async def stream(
        self, spec: RequestSpec, context: RequestContext, call_next: StreamCall
    ) -> AsyncIterator[StreamEvent]:
        started = time.monotonic()
        attempt = 1
        while True:
            produced = False
            retry_error: LLMClientError | None = None
            inner = call_next(spec, context)
            try:
                async for event in inner:
                    if (
                        isinstance(event, StreamError)
                        and not produced
                        and self._should_retry(event, attempt, started)
                    ):
                        retry_error = event.error
                        break
                    if isinstance(event, _OUTPUT_EVENTS):
                        produced = True
                    yield event
            finally:
                await aclose_stream(inner)
            if retry_error is None:
                return
            await self._sleep(self.policy.delay_for(attempt, retry_error))
            attempt += 1

    def _should_retry(self, event: StreamError, attempt: int, started: float) -> bool:
        p = self.policy
        if attempt >= p.max_attempts or not p.is_retryable(event.error):
            return False
        return p.max_total_time is None or time.monotonic() - started < p.max_total_time


def estimate_tokens(spec: RequestSpec, chars_per_token: float = 4.0) -> tuple[int, int]:
    """(prompt, answer) token estimate made before a call, for budgets that must reserve ahead.

    The prompt is ``len(text) / chars_per_token`` plus 4 per message; the answer is the request's
    ``max_tokens`` (0 when unset). Shared by every budget check in the stack so they agree.
    """
    chars = 0
    for m in spec.messages:
        c = m.get("content")
        if isinstance(c, str):
            chars += len(c)
        elif isinstance(c, list):
            chars += sum(len(str(p.get("text", ""))) for p in c if isinstance(p, dict))
        for tc in m.get("tool_calls") or ():
            chars += len(tc["function"]["arguments"])
    return int(chars / chars_per_token) + 4 * len(spec.messages), spec.max_tokens or 0


class BudgetMiddleware(Middleware):
    """Refuses a call that would pass the token or cost limit carried by the RequestContext.

    The estimate is ``len(text) / chars_per_token`` for the prompt plus ``spec.max_tokens`` for the
    answer; it is reserved before the call and replaced by the real usage after it, so concurrent
    calls sharing one budget cannot all pass the same check.
    """

    def __init__(self, pricing: PricingTable | None = None, *, chars_per_token: float = 4.0) -> None:
        self._pricing = pricing
        self.chars_per_token = chars_per_token

    def _estimate(self, spec: RequestSpec) -> tuple[int, Decimal | None]:
        prompt, answer = estimate_tokens(spec, self.chars_per_token)
        cost = (self._pricing or default_pricing()).cost(
            spec.model, Usage(input_tokens=prompt, output_tokens=answer)
        )
        return prompt + answer, cost

    async def complete(self, spec: RequestSpec, context: RequestContext, call_next: Call) -> CompletionResult:
        budget = context.budget
        if budget is None:
            return await call_next(spec, context)
        reservation = budget.reserve(*self._estimate(spec))
        usage: Usage | None = None
        try:
            result = await call_next(spec, context)
            usage = result.usage
            return result
        finally:
            budget.settle(reservation, usage)

    async def stream(
        self, spec: RequestSpec, context: RequestContext, call_next: StreamCall
    ) -> AsyncIterator[StreamEvent]:
        budget = context.budget
        inner = call_next(spec, context)
        if budget is None:
            try:
                async for event in inner:
                    yield event
            finally:
                await aclose_stream(inner)
            return
        reservation = budget.reserve(*self._estimate(spec))
        usage: Usage | None = None
        try:
            async for event in inner:
                if isinstance(event, StreamDone):
                    usage = event.result.usage
                elif isinstance(event, StreamError):
                    usage = event.partial.usage if event.partial.usage.total_tokens else None
                yield event
        finally:
            budget.settle(reservation, usage)
            await aclose_stream(inner)


def __getattr__(name: str) -> object:
    # TelemetryMiddleware lives in llm_client.telemetry, the one module that touches OpenTelemetry.
    if name == "TelemetryMiddleware":
        from .telemetry import TelemetryMiddleware

        return TelemetryMiddleware
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def default_middleware(
    *,
    timeout: float | None = 60.0,
    retry: RetryPolicy | None = None,
    pricing: PricingTable | None = None,
    logger: logging.Logger | None = None,
) -> list[Middleware]:
    """The production chain, outermost first: telemetry, logging, budget, retry, timeout."""
    from .telemetry import TelemetryMiddleware

    return [
        TelemetryMiddleware(),
        LoggingMiddleware(logger),
        BudgetMiddleware(pricing),
        RetryMiddleware(retry),
        TimeoutMiddleware(timeout),
    ]
