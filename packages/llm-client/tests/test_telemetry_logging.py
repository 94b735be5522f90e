from __future__ import annotations

import logging

import pytest
from llm_client import (
    AuthenticationError,
    ExecutionEngine,
    LoggingMiddleware,
    MockProvider,
    MockResponse,
    TelemetryMiddleware,
    Usage,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer(exporter: InMemorySpanExporter):  # type: ignore[no-untyped-def]
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test")


async def test_span_has_genai_attributes(tracer, exporter: InMemorySpanExporter) -> None:  # type: ignore[no-untyped-def]
    provider = MockProvider(
        [MockResponse.text("hi", usage=Usage(input_tokens=12, output_tokens=3))], model="gpt-4o-mini"
    )
    engine = ExecutionEngine(provider=provider, middleware=[TelemetryMiddleware(tracer)])
    await engine.complete("hello", temperature=0.5, max_tokens=20)
    (span,) = exporter.get_finished_spans()
    assert span.name == "chat gpt-4o-mini"
    assert span.kind == SpanKind.CLIENT
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "mock"
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.request.temperature"] == 0.5
    assert attrs["gen_ai.request.max_tokens"] == 20
    assert attrs["gen_ai.usage.input_tokens"] == 12
    assert attrs["gen_ai.usage.output_tokens"] == 3
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert "gen_ai.input.messages" not in attrs  # content capture is off by default


async def test_span_records_errors(tracer, exporter: InMemorySpanExporter) -> None:  # type: ignore[no-untyped-def]
    engine = ExecutionEngine(
        provider=MockProvider([AuthenticationError("bad key")]), middleware=[TelemetryMiddleware(tracer)]
    )
    with pytest.raises(AuthenticationError):
        await engine.complete("hello")
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes is not None and span.attributes["error.type"] == "AuthenticationError"


async def test_stream_span_ends_with_the_stream(tracer, exporter: InMemorySpanExporter) -> None:  # type: ignore[no-untyped-def]
    engine = ExecutionEngine(
        provider=MockProvider(["a b"]), middleware=[TelemetryMiddleware(tracer, capture_content=True)]
    )
    events = [e async for e in engine.stream("hello")]
    assert events
    (span,) = exporter.get_finished_spans()
    assert span.attributes is not None and span.attributes["gen_ai.output.messages"] == "a b"


async def test_logging_middleware_logs_one_line_per_call(caplog: pytest.LogCaptureFixture) -> None:
    engine = ExecutionEngine(
        provider=MockProvider(["ok", AuthenticationError("bad key")], model="gpt-4o-mini"),
        middleware=[LoggingMiddleware()],
    )
    with caplog.at_level(logging.INFO, logger="llm_client"):
        await engine.complete("q")
        with pytest.raises(AuthenticationError):
            await engine.complete("q")
    ok, failed = caplog.records
    assert ok.levelno == logging.INFO and "model=gpt-4o-mini" in ok.getMessage()
    assert failed.levelno == logging.WARNING and "AuthenticationError" in failed.getMessage()


def test_telemetry_middleware_is_a_pass_through_without_opentelemetry() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"  # makes `import opentelemetry` fail
        "from llm_client import ExecutionEngine, MockProvider, default_middleware\n"
        "engine = ExecutionEngine(provider=MockProvider(['ok']), middleware=default_middleware())\n"
        "assert not engine.middleware[0].enabled\n"
        "print(engine.complete_sync('hi').content)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "ok"
