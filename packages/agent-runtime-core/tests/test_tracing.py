"""Trace sinks: the seed's custom sink, get_trace_sink from config, the Langfuse adapter."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from agent_runtime_core import (
    AgentRunner,
    AgentRuntime,
    LangfuseTraceSink,
    NoopTraceSink,
    RunContext,
    RunnerConfig,
    RunResult,
    TraceSink,
    configure,
    get_trace_sink,
    reset_config,
)
from agent_runtime_core.events.memory import InMemoryEventBus
from agent_runtime_core.state.memory import InMemoryStateStore


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    reset_config()
    yield
    reset_config()


class EchoAgent(AgentRuntime):
    key = "echo"

    async def run(self, ctx: RunContext) -> RunResult:
        await ctx.emit_user_message("hi")
        return RunResult(final_output={"said": "hi"})


def runner_with(sink: TraceSink) -> AgentRunner:
    return AgentRunner(
        RunnerConfig(), event_bus=InMemoryEventBus(), state_store=InMemoryStateStore(), trace_sink=sink
    )


async def test_seed_custom_trace_sink(capsys: pytest.CaptureFixture[str]) -> None:
    class MyTraceSink(TraceSink):
        async def trace(self, event: dict) -> None:  # type: ignore[type-arg]
            # Send to your observability platform
            print(f"Trace: {event}")

    await runner_with(MyTraceSink()).execute(agent=EchoAgent(), run_id="t1", input_data={"messages": []})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert all(line.startswith("Trace: {") for line in lines)
    assert "'event_type': 'run.started'" in lines[0]
    assert "'event_type': 'assistant.message'" in lines[1]
    assert "'event_type': 'run.succeeded'" in lines[2] and "'output': {'said': 'hi'}" in lines[2]


async def test_default_sink_methods() -> None:
    sink = NoopTraceSink()
    await sink.trace({"event_type": "x"})
    await sink.flush()
    await sink.close()


async def test_get_trace_sink_follows_the_config() -> None:
    assert isinstance(get_trace_sink(), NoopTraceSink)
    configure(langfuse_enabled=True, langfuse_public_key="pk-test", langfuse_secret_key="sk-test")
    configure(langfuse_host="http://127.0.0.1:9")  # never contacted: nothing is flushed here
    sink = get_trace_sink()
    assert isinstance(sink, LangfuseTraceSink)
    assert type(sink.client).__module__.startswith("langfuse")
    await sink.close()


def test_langfuse_enabled_without_the_sdk_warns_and_uses_the_noop_sink(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "langfuse", None)  # makes `import langfuse` fail
    configure(langfuse_enabled=True, langfuse_public_key="pk", langfuse_secret_key="sk")
    with caplog.at_level(logging.WARNING, logger="agent_runtime_core.tracing"):
        sink = get_trace_sink()
    assert isinstance(sink, NoopTraceSink)
    assert "agent-runtime-core[langfuse]" in caplog.text


def test_building_the_langfuse_sink_without_the_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "langfuse", None)
    with pytest.raises(ImportError, match=r"pip install 'agent-runtime-core\[langfuse\]'"):
        LangfuseTraceSink(public_key="pk", secret_key="sk")


def test_importing_the_package_and_tracing_does_not_import_langfuse() -> None:
    code = (
        "import sys, agent_runtime_core, agent_runtime_core.tracing, agent_runtime_core.runner;"
        "agent_runtime_core.get_trace_sink();"
        "print('langfuse' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


class FakeSpan:
    def __init__(self, calls: list[tuple[str, Any]], kwargs: dict[str, Any]) -> None:
        self.calls = calls
        calls.append(("start", kwargs))

    def create_event(self, **kwargs: Any) -> None:
        self.calls.append(("event", kwargs))

    def update(self, **kwargs: Any) -> None:
        self.calls.append(("update", kwargs))

    def end(self) -> None:
        self.calls.append(("end", None))


class FakeLangfuse:
    """Stands in for langfuse.Langfuse: the methods the sink uses, recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def create_trace_id(self, *, seed: str | None = None) -> str:
        return f"trace-{seed}"

    def start_observation(self, **kwargs: Any) -> FakeSpan:
        return FakeSpan(self.calls, kwargs)

    def flush(self) -> None:
        self.calls.append(("flush", None))

    def shutdown(self) -> None:
        self.calls.append(("shutdown", None))


async def test_langfuse_sink_maps_a_successful_run_to_one_trace() -> None:
    client = FakeLangfuse()
    sink = LangfuseTraceSink(client=client)
    await runner_with(sink).execute(agent=EchoAgent(), run_id="lf-1", input_data={"messages": []})
    kinds = [kind for kind, _ in client.calls]
    assert kinds == ["start", "event", "update", "end"]
    start = client.calls[0][1]
    assert start["trace_context"] == {"trace_id": "trace-lf-1"}
    assert start["name"] == "run echo"
    assert start["metadata"]["run_id"] == "lf-1"
    assert client.calls[1][1]["name"] == "assistant.message"
    assert client.calls[1][1]["input"] == {"content": "hi", "role": "assistant"}
    assert client.calls[2][1]["output"] == {"said": "hi"}
    await sink.close()
    assert [kind for kind, _ in client.calls][-2:] == ["flush", "shutdown"]


async def test_langfuse_sink_marks_a_failed_run_as_an_error() -> None:
    class Failing(AgentRuntime):
        key = "failing"

        async def run(self, ctx: RunContext) -> RunResult:
            raise ValueError("kaput")

    client = FakeLangfuse()
    await runner_with(LangfuseTraceSink(client=client)).execute(
        agent=Failing(), run_id="lf-2", input_data={"messages": []}
    )
    update = next(kwargs for kind, kwargs in client.calls if kind == "update")
    assert update["level"] == "ERROR"
    assert update["status_message"] == "kaput"
    assert update["metadata"]["status"] == "failed"
    assert client.calls[-1] == ("end", None)


async def test_langfuse_sink_close_ends_open_spans() -> None:
    client = FakeLangfuse()
    sink = LangfuseTraceSink(client=client)
    await sink.trace({"run_id": "r", "seq": 1, "event_type": "run.started", "payload": {}})
    await sink.close()
    assert [kind for kind, _ in client.calls] == ["start", "end", "flush", "shutdown"]


def test_the_langfuse_sink_leaves_the_global_tracer_provider_alone() -> None:
    code = (
        "from opentelemetry import trace\n"
        "from agent_runtime_core.tracing import LangfuseTraceSink\n"
        "sink = LangfuseTraceSink(public_key='pk', secret_key='sk', host='http://127.0.0.1:9')\n"
        "print(type(trace.get_tracer_provider()).__name__)\n"
        "sink.client.shutdown()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "ProxyTracerProvider"
