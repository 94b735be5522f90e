"""ExecutionEngine: one provider, the middleware chain around it, idempotency and pricing.

Everything that calls a model goes through an engine: the Agent, the upper packages' LLM clients
and the kernel. That keeps retries, timeouts, budgets, telemetry and cost in one place, whichever
provider sits underneath.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import replace
from typing import Any

from .context import RequestContext
from .errors import LLMClientError, MalformedResponseError, RequestCancelledError
from .idempotency import IdempotencyTracker
from .messages import MessageLike
from .middleware import Call, Middleware, StreamCall
from .pricing import PricingTable, default_pricing
from .providers.base import Provider
from .spec import CompletionResult, RequestSpec
from .streaming import StreamDone, StreamError, StreamEvent, aclose_stream

__all__ = ["ExecutionEngine"]

SpecLike = RequestSpec | str | MessageLike | Iterable[MessageLike]

# Calls made without a context share this one: it carries no identity, budget or token, and a
# fresh RequestContext per call was the largest single cost of the engine's hot path.
_DEFAULT_CONTEXT = RequestContext(request_id="-")


class ExecutionEngine:
    """Runs model calls through a provider and a middleware chain.

    ``middleware`` is applied outermost first; the default is none (see
    :func:`~llm_client.default_middleware` for the production chain, which
    ``Agent(use_middleware=True)`` adds). ``pricing`` prices every result's usage (default: the
    shipped table); a model without a known price gets ``cost=None``.
    """

    def __init__(
        self,
        provider: Provider,
        *,
        middleware: Sequence[Middleware] = (),
        idempotency_tracker: IdempotencyTracker | None = None,
        pricing: PricingTable | None = None,
    ) -> None:
        if not isinstance(provider, Provider):
            raise TypeError(f"provider must be a llm_client Provider, got {type(provider).__name__}")
        self.provider = provider
        self.middleware: tuple[Middleware, ...] = tuple(m.for_provider(provider.name) for m in middleware)
        self.idempotency_tracker = idempotency_tracker
        self.pricing = pricing
        self._complete: Call = self._build_complete()
        self._stream: StreamCall = self._build_stream()

    def with_middleware(self, middleware: Sequence[Middleware]) -> ExecutionEngine:
        """A new engine on the same provider, tracker and pricing, with this chain instead."""
        return ExecutionEngine(
            self.provider,
            middleware=middleware,
            idempotency_tracker=self.idempotency_tracker,
            pricing=self.pricing,
        )

    @property
    def model(self) -> str:
        return self.provider.model

    # --- building the chain ------------------------------------------------------------------

    def _price(self, spec: RequestSpec, result: CompletionResult) -> CompletionResult:
        usage = result.usage
        model = result.model or spec.model
        if usage.cost is None:
            cost = (self.pricing or default_pricing()).cost(model, usage)
            if cost is not None or result.model is None:
                return replace(result, usage=usage.with_cost(cost), model=model)
        elif result.model is None:
            return replace(result, model=model)
        return result

    def _build_complete(self) -> Call:
        provider_complete = self.provider.complete

        async def call_provider(spec: RequestSpec, context: RequestContext) -> CompletionResult:
            return self._price(spec, await provider_complete(spec))

        handler: Call = call_provider
        for mw in reversed(self.middleware):
            handler = _bind_complete(mw, handler)
        return handler

    def _build_stream(self) -> StreamCall:
        provider_stream = self.provider.stream

        async def stream_provider(spec: RequestSpec, context: RequestContext) -> AsyncIterator[StreamEvent]:
            inner = provider_stream(spec)
            try:
                async for event in inner:
                    if isinstance(event, StreamDone):
                        event = StreamDone(self._price(spec, event.result))
                    yield event
            finally:
                await aclose_stream(inner)

        handler: StreamCall = stream_provider
        for mw in reversed(self.middleware):
            handler = _bind_stream(mw, handler)
        return handler

    # --- calls -------------------------------------------------------------------------------

    def _prepare(self, spec: SpecLike, options: dict[str, Any]) -> RequestSpec:
        s = RequestSpec.coerce(spec, **options)
        if s.model is None:
            s = replace(s, model=self.provider.model)
        return s

    async def complete(
        self,
        spec: SpecLike,
        *,
        context: RequestContext | None = None,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> CompletionResult:
        """One model call. ``spec`` may be a RequestSpec, a prompt string or a list of messages;
        ``options`` are RequestSpec fields (``temperature=...``, ``tools=[...]``).
        With an ``idempotency_key`` (and a tracker), the same key and request run once."""
        s = self._prepare(spec, options)
        ctx = context if context is not None else _DEFAULT_CONTEXT
        token = ctx.cancellation_token
        if token is not None:
            token.raise_if_cancelled()
        if idempotency_key is not None and self.idempotency_tracker is not None:
            tracker = self.idempotency_tracker
            return await tracker.run(idempotency_key, s.fingerprint(), lambda: self._run(s, ctx))
        return await self._run(s, ctx)

    async def _run(self, spec: RequestSpec, ctx: RequestContext) -> CompletionResult:
        token = ctx.cancellation_token
        if token is None:
            return await self._complete(spec, ctx)
        task = asyncio.ensure_future(self._complete(spec, ctx))
        remove = token.add_callback(lambda: task.get_loop().call_soon_threadsafe(task.cancel))
        try:
            return await task
        except asyncio.CancelledError:
            if token.is_cancelled and not _current_task_cancelling():
                raise RequestCancelledError(
                    f"request cancelled: {token.reason or 'no reason given'}"
                ) from None
            raise
        finally:
            remove()

    async def stream(
        self,
        spec: SpecLike,
        *,
        context: RequestContext | None = None,
        **options: Any,
    ) -> AsyncIterator[StreamEvent]:
        """Stream one model call. Always ends with exactly one StreamDone or StreamError; errors
        raised by middleware (budget, cancellation) become that StreamError too."""
        try:
            s = self._prepare(spec, options)
        except LLMClientError as exc:
            yield StreamError(exc)
            return
        ctx = context if context is not None else _DEFAULT_CONTEXT
        token = ctx.cancellation_token
        inner = self._stream(s, ctx)
        try:
            while True:
                if token is not None and token.is_cancelled:
                    yield StreamError(
                        RequestCancelledError(f"request cancelled: {token.reason or 'no reason given'}")
                    )
                    return
                try:
                    event = await anext(inner)
                except StopAsyncIteration:
                    yield StreamError(MalformedResponseError("stream ended without a final event"))
                    return
                except LLMClientError as exc:
                    yield StreamError(exc)
                    return
                yield event
                if isinstance(event, (StreamDone, StreamError)):
                    return
        finally:
            await aclose_stream(inner)

    def complete_sync(self, spec: SpecLike, **kwargs: Any) -> CompletionResult:
        """Blocking :meth:`complete`, for scripts and notebooks without a running loop."""
        return asyncio.run(self.complete(spec, **kwargs))

    async def aclose(self) -> None:
        await self.provider.aclose()

    async def __aenter__(self) -> ExecutionEngine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        names = ", ".join(type(m).__name__ for m in self.middleware)
        return f"ExecutionEngine(provider={self.provider!r}, middleware=[{names}])"


def _bind_complete(mw: Middleware, call_next: Call) -> Call:
    method = mw.complete

    def call(spec: RequestSpec, context: RequestContext) -> Any:
        return method(spec, context, call_next)

    return call


def _bind_stream(mw: Middleware, call_next: StreamCall) -> StreamCall:
    method = mw.stream

    def call(spec: RequestSpec, context: RequestContext) -> AsyncIterator[StreamEvent]:
        return method(spec, context, call_next)

    return call


def _current_task_cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
