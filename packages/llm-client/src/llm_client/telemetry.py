"""OpenTelemetry spans for model calls, following the GenAI semantic conventions.

This is the only llm-client module that imports ``opentelemetry``, and only when a
:class:`TelemetryMiddleware` is built. Without the package (``pip install 'llm-client[otel]'``)
the middleware is a pass-through, so the production chain works everywhere.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from .context import RequestContext
from .middleware import Call, Middleware, StreamCall
from .spec import CompletionResult, RequestSpec
from .streaming import StreamDone, StreamError, StreamEvent, aclose_stream

__all__ = ["TelemetryMiddleware", "otel_available"]


def otel_available() -> bool:
    try:
        import opentelemetry.trace  # noqa: F401
    except ImportError:
        return False
    return True


class TelemetryMiddleware(Middleware):
    """One CLIENT span per model call, named ``chat {model}``.

    Attributes: ``gen_ai.operation.name``, ``gen_ai.provider.name`` (and the older
    ``gen_ai.system``), ``gen_ai.request.*``, ``gen_ai.response.model``/``finish_reasons``,
    ``gen_ai.usage.input_tokens``/``output_tokens``, ``error.type`` on failure. Prompt and answer
    text are recorded only with ``capture_content=True``: they may hold personal data.
    """

    def __init__(
        self, tracer: Any | None = None, *, capture_content: bool = False, provider_name: str | None = None
    ) -> None:
        self.capture_content = capture_content
        self.provider_name = provider_name
        self._trace: Any = None
        self._tracer: Any = tracer
        try:
            from opentelemetry import trace
        except ImportError:
            self.enabled = tracer is not None
            return
        self._trace = trace
        self.enabled = True

    def _active(self) -> bool:
        """False while no OpenTelemetry SDK provider is installed: spans would go nowhere, and
        building them costs more than the rest of the middleware chain together."""
        if not self.enabled:
            return False
        if self._tracer is not None or self._trace is None:
            return True
        provider = self._trace.get_tracer_provider()
        return not isinstance(provider, (self._trace.ProxyTracerProvider, self._trace.NoOpTracerProvider))

    @property
    def tracer(self) -> Any:
        if self._tracer is None:
            self._tracer = self._trace.get_tracer("llm_client")
        return self._tracer

    def for_provider(self, provider_name: str) -> TelemetryMiddleware:
        if self.provider_name is not None:
            return self
        bound = TelemetryMiddleware(
            self._tracer, capture_content=self.capture_content, provider_name=provider_name
        )
        bound.enabled = self.enabled
        return bound

    def _attributes(self, spec: RequestSpec, context: RequestContext) -> dict[str, Any]:
        model = spec.model or "unknown"
        attrs: dict[str, Any] = {"gen_ai.operation.name": "chat", "gen_ai.request.model": model}
        provider = self.provider_name or context.metadata.get("provider")
        if provider:
            attrs["gen_ai.provider.name"] = provider
            attrs["gen_ai.system"] = provider
        for key, value in (
            ("gen_ai.request.temperature", spec.temperature),
            ("gen_ai.request.top_p", spec.top_p),
            ("gen_ai.request.max_tokens", spec.max_tokens),
        ):
            if value is not None:
                attrs[key] = value
        if context.session_id:
            attrs["gen_ai.conversation.id"] = context.session_id
        if context.request_id:
            attrs["llm_client.request_id"] = context.request_id
        if self.capture_content:
            import json

            attrs["gen_ai.input.messages"] = json.dumps(spec.messages, default=str)
        return attrs

    def _kind(self) -> Any:
        return self._trace.SpanKind.CLIENT if self._trace is not None else None

    def _finish(self, span: Any, result: CompletionResult) -> None:
        u = result.usage
        if result.model:
            span.set_attribute("gen_ai.response.model", result.model)
        if result.finish_reason:
            span.set_attribute("gen_ai.response.finish_reasons", [result.finish_reason])
        if result.provider:
            span.set_attribute("gen_ai.provider.name", result.provider)
        span.set_attribute("gen_ai.usage.input_tokens", u.input_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", u.output_tokens)
        if u.cost is not None:
            span.set_attribute("llm_client.cost_usd", str(u.cost))
        if self.capture_content and result.content is not None:
            span.set_attribute("gen_ai.output.messages", result.content)

    def _error(self, span: Any, error: BaseException) -> None:
        span.set_attribute("error.type", type(error).__name__)
        if self._trace is not None:
            from opentelemetry.trace import Status, StatusCode

            span.set_status(Status(StatusCode.ERROR, str(error)))

    async def complete(self, spec: RequestSpec, context: RequestContext, call_next: Call) -> CompletionResult:
        if not self._active():
            return await call_next(spec, context)
        name = f"chat {spec.model or 'unknown'}"
        attrs = self._attributes(spec, context)
        with self.tracer.start_as_current_span(name, kind=self._kind(), attributes=attrs) as span:
            try:
                result = await call_next(spec, context)
            except Exception as exc:
                self._error(span, exc)
                raise
            self._finish(span, result)
            return result

    async def stream(
        self, spec: RequestSpec, context: RequestContext, call_next: StreamCall
    ) -> AsyncIterator[StreamEvent]:
        inner = call_next(spec, context)
        if not self._active():
            try:
                async for event in inner:
                    yield event
            finally:
                await aclose_stream(inner)
            return
        # A span that is not made current: an async generator may be resumed in other contexts,
        # and a current-span token must be detached in the context that attached it.
        name = f"chat {spec.model or 'unknown'}"
        span = self.tracer.start_span(name, kind=self._kind(), attributes=self._attributes(spec, context))
        try:
            async for event in inner:
                if isinstance(event, StreamDone):
                    self._finish(span, event.result)
                elif isinstance(event, StreamError):
                    self._error(span, event.error)
                yield event
        finally:
            span.end()
            await aclose_stream(inner)
