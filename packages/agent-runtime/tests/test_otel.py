"""OpenTelemetryAdapter: the span tree and attributes of real kernel runs, read back from the SDK's
in-memory exporter; PII switches; sampling; the seed's examples."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from agent_runtime import (
    ActionRequiredError,
    ActionSpec,
    ExecutionContext,
    ExecutionRequest,
    InMemoryEventBus,
    OpenTelemetryAdapter,
    OTelConfig,
    RuntimeEvent,
    RuntimeEventType,
    RuntimeKernel,
)
from agent_runtime.errors import ValidationError
from llm_client import Agent, ExecutionEngine, Tool
from llm_client.errors import MissingDependencyError
from llm_client.providers.mock import MockProvider, MockResponse

pytest.importorskip("opentelemetry.sdk")
import itertools

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from opentelemetry.util._once import Once

T = RuntimeEventType
PROMPT = "Weather in Paris? My card is 4111-1111"
SECRET_ARG = "prod-cluster-7"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


class Scenario:
    """A kernel whose agent calls a plain tool, then a tool that waits for a human, then answers."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.bus = InMemoryEventBus()

        def lookup(city: str) -> str:
            """Weather for a city."""
            return f"sunny in {city}"

        async def deploy(target: str, context: ExecutionContext) -> str:
            """Deploy somewhere, once a human confirms."""
            action = await self.kernel.actions.require_action(
                ActionSpec(job_id=str(context.job_id), type="confirm", payload={"target": target})
            )
            assert action.resume_token is not None
            self.tokens.append(action.resume_token)
            raise ActionRequiredError(action)

        engine = ExecutionEngine(
            provider=MockProvider(
                [
                    MockResponse.tool_call("lookup", {"city": "Paris"}),
                    MockResponse.tool_call("deploy", {"target": SECRET_ARG}),
                    MockResponse.text("All done, deployed"),
                ]
            )
        )
        agent = Agent(
            engine=engine, tools=[Tool.from_function(lookup), Tool.from_function(deploy, skip=("context",))]
        )
        self.kernel = RuntimeKernel(engine, agent, event_bus=self.bus)

    async def run(self) -> str:
        handle = await self.kernel.execute(ExecutionRequest(prompt=PROMPT, scope_id="tenant-1"))
        async for event in handle.events():
            if event.type is T.JOB_STATUS_CHANGED and event.data["status"] == "waiting_action":
                break
        await self.bus.flush()  # every subscriber has seen the job start before it can finish
        await self.kernel.actions.resolve(self.tokens[0], {"approved": True})
        result = await handle.result()
        assert result.succeeded
        await self.bus.flush()
        return handle.job_id


def by_name(spans: Any, name: str) -> list[ReadableSpan]:
    return sorted((s for s in spans if s.name == name), key=lambda s: s.start_time or 0)


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def all_attribute_text(spans: Any) -> str:
    parts = [json.dumps(dict(s.attributes or {}), default=str) for s in spans]
    parts += [json.dumps(dict(e.attributes or {}), default=str) for s in spans for e in s.events]
    return "\n".join(parts)


async def test_kernel_run_builds_the_job_run_tool_action_tree(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    scenario = Scenario()
    adapter = OpenTelemetryAdapter(scenario.bus, OTelConfig(service_name="svc"), tracer_provider=provider)
    await adapter.start()
    job_id = await scenario.run()
    await adapter.stop()
    spans = exporter.get_finished_spans()

    [job] = by_name(spans, "agent.job")
    runs = by_name(spans, "agent.run")
    tools = by_name(spans, "agent.tool")
    [action] = by_name(spans, "agent.action")
    assert len(spans) == 1 + 3 + 2 + 1
    assert job.parent is None
    assert job.context is not None
    assert {s.context.trace_id for s in spans if s.context} == {job.context.trace_id}
    assert [parent_of(r) for r in runs] == [job.context.span_id] * 3
    run_ids = [r.context.span_id for r in runs if r.context]
    assert [(t.attributes or {})["gen_ai.tool.name"] for t in tools] == ["lookup", "deploy"]
    assert [parent_of(t) for t in tools] == [run_ids[0], run_ids[1]]
    assert parent_of(action) == run_ids[1]

    job_attrs: dict[str, Any] = dict(job.attributes or {})
    assert job_attrs["gen_ai.operation.name"] == "invoke_agent"
    assert job_attrs["agent_runtime.job.id"] == job_id
    assert job_attrs["agent_runtime.scope.id"] == "tenant-1"
    assert job_attrs["agent_runtime.job.status"] == "succeeded"
    assert job_attrs["agent_runtime.service.name"] == "svc"
    assert job_attrs["gen_ai.usage.input_tokens"] > 0
    assert job_attrs["gen_ai.usage.output_tokens"] > 0
    assert job.status.status_code is StatusCode.OK

    assert [dict(r.attributes or {}) for r in runs] == [
        {
            "gen_ai.operation.name": "chat",
            "agent_runtime.turn": 1,
            "gen_ai.response.finish_reasons": ("tool_calls",),
        },
        {
            "gen_ai.operation.name": "chat",
            "agent_runtime.turn": 2,
            "gen_ai.response.finish_reasons": ("tool_calls",),
        },
        {
            "gen_ai.operation.name": "chat",
            "agent_runtime.turn": 3,
            "gen_ai.response.finish_reasons": ("stop",),
        },
    ]
    lookup, deploy = (dict(t.attributes or {}) for t in tools)
    assert lookup["gen_ai.operation.name"] == "execute_tool"
    assert lookup["gen_ai.tool.type"] == "function"
    assert lookup["gen_ai.tool.call.id"] == "call_1"
    assert isinstance(lookup["agent_runtime.tool.duration_ms"], float)
    assert deploy["agent_runtime.tool.interrupted"] is True
    action_attrs = dict(action.attributes or {})
    assert action_attrs["agent_runtime.action.type"] == "confirm"
    assert action_attrs["agent_runtime.action.status"] == "resolved"

    # Children sit inside their parents' time range, and the turns follow each other.
    for child in [*runs, *tools, action]:
        parent = next(s for s in spans if s.context and s.context.span_id == parent_of(child))
        assert parent.start_time is not None and parent.end_time is not None
        assert parent.start_time <= (child.start_time or 0) <= (child.end_time or 0) <= parent.end_time
    assert all((a.end_time or 0) <= (b.start_time or 0) for a, b in itertools.pairwise(runs))
    assert adapter.open_jobs == 0


async def test_pii_is_left_out_by_default(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    scenario = Scenario()
    async with OpenTelemetryAdapter(
        scenario.bus, OTelConfig(), tracer_provider=provider, jobs=scenario.kernel.jobs
    ):
        await scenario.run()
        await scenario.bus.publish(
            RuntimeEvent(type=T.TOOL_START, job_id="j2", data={"tool": "t", "arguments": {"x": SECRET_ARG}})
        )
        await scenario.bus.flush()
    text = all_attribute_text(exporter.get_finished_spans())
    for secret in ("Paris", "4111", SECRET_ARG, "All done", "approved"):
        assert secret not in text
    assert "gen_ai.input.messages" not in text
    assert "gen_ai.output.messages" not in text
    assert "gen_ai.tool.call.arguments" not in text


async def test_pii_switches_record_prompt_output_and_tool_args(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    scenario = Scenario()
    config = OTelConfig(capture_input=True, capture_output=True, capture_tool_args=True)
    async with OpenTelemetryAdapter(
        scenario.bus, config, tracer_provider=provider, jobs=scenario.kernel.jobs
    ):
        await scenario.run()
        await scenario.bus.publish(
            RuntimeEvent(
                type=T.TOOL_START,
                job_id="job-direct",
                data={"tool": "t", "tool_call_id": "c1", "arguments": {"x": SECRET_ARG}},
            )
        )
        await scenario.bus.flush()
    spans = exporter.get_finished_spans()
    jobs = by_name(spans, "agent.job")
    kernel_job = next(j for j in jobs if "gen_ai.input.messages" in (j.attributes or {}))
    attrs = dict(kernel_job.attributes or {})
    assert attrs["gen_ai.input.messages"] == PROMPT
    assert attrs["gen_ai.output.messages"] == "All done, deployed"
    last_run = by_name(spans, "agent.run")[2]
    assert (last_run.attributes or {})["gen_ai.output.messages"] == "All done, deployed"
    [action] = by_name(spans, "agent.action")
    assert json.loads(str((action.attributes or {})["agent_runtime.action.payload"])) == {
        "target": SECRET_ARG
    }
    assert json.loads(str((action.attributes or {})["agent_runtime.action.resolution"])) == {"approved": True}
    direct_tool = next(
        t for t in by_name(spans, "agent.tool") if (t.attributes or {})["gen_ai.tool.name"] == "t"
    )
    assert json.loads(str((direct_tool.attributes or {})["gen_ai.tool.call.arguments"])) == {"x": SECRET_ARG}
    assert (direct_tool.attributes or {})["agent_runtime.unfinished"] is True


async def test_sampling_rate_zero_records_nothing(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    scenario = Scenario()
    async with OpenTelemetryAdapter(scenario.bus, OTelConfig(sampling_rate=0.0), tracer_provider=provider):
        await scenario.run()
    assert exporter.get_finished_spans() == ()


def test_sampling_is_a_stable_fraction_of_job_ids() -> None:
    config = OTelConfig(sampling_rate=0.25)
    ids = [f"job-{n}" for n in range(4000)]
    kept = [i for i in ids if config.sampled(i)]
    assert kept == [i for i in ids if config.sampled(i)]
    assert 0.2 < len(kept) / len(ids) < 0.3
    assert all(OTelConfig(sampling_rate=1.0).sampled(i) for i in ids[:50])


async def _publish(
    bus: InMemoryEventBus, job_id: str, *events: tuple[RuntimeEventType, dict[str, Any]]
) -> None:
    for type_, data in events:
        await bus.publish(RuntimeEvent(type=type_, job_id=job_id, data=data))


@pytest.mark.parametrize("record", [True, False])
async def test_failures_mark_spans_as_errors(
    provider: TracerProvider, exporter: InMemorySpanExporter, record: bool
) -> None:
    bus = InMemoryEventBus()
    async with OpenTelemetryAdapter(bus, OTelConfig(record_exceptions=record), tracer_provider=provider):
        await _publish(
            bus,
            "job-f",
            (T.JOB_STARTED, {"status": "running"}),
            (T.MODEL_DONE, {"turn": 1, "finish_reason": "tool_calls"}),
            (T.TOOL_START, {"tool": "boom", "tool_call_id": "c1"}),
            (T.TOOL_ERROR, {"tool": "boom", "tool_call_id": "c1", "duration_ms": 1.0, "error": "kaput"}),
            (T.FINAL_ERROR, {"error": "RuntimeError: kaput", "status": "failed"}),
            (T.JOB_FAILED, {"status": "failed", "error": "RuntimeError: kaput"}),
        )
        await bus.flush()
    spans = exporter.get_finished_spans()
    [job] = by_name(spans, "agent.job")
    [tool] = by_name(spans, "agent.tool")
    assert job.status.status_code is StatusCode.ERROR
    assert tool.status.status_code is StatusCode.ERROR
    assert (job.attributes or {})["error.type"] == "failed"
    assert (tool.attributes or {})["error.type"] == "tool_error"
    exceptions = [e for s in (job, tool) for e in s.events if e.name == "exception"]
    if record:
        assert [(e.attributes or {})["exception.message"] for e in exceptions] == [
            "RuntimeError: kaput",
            "kaput",
        ]
    else:
        assert exceptions == []


async def test_stop_ends_open_spans_as_unfinished(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    bus = InMemoryEventBus()
    adapter = OpenTelemetryAdapter(bus, tracer_provider=provider)
    await adapter.start()
    await _publish(bus, "job-open", (T.JOB_STARTED, {}), (T.TOOL_START, {"tool": "x", "tool_call_id": "c"}))
    await adapter.stop()
    spans = exporter.get_finished_spans()
    assert sorted(s.name for s in spans) == ["agent.job", "agent.run", "agent.tool"]
    assert all((s.attributes or {}).get("agent_runtime.unfinished") for s in spans if s.name != "agent.run")


async def test_max_open_jobs_evicts_the_least_recent(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    bus = InMemoryEventBus()
    async with OpenTelemetryAdapter(bus, OTelConfig(max_open_jobs=2), tracer_provider=provider) as adapter:
        for n in range(3):
            await _publish(bus, f"job-{n}", (T.JOB_STARTED, {}))
        await bus.flush()
        assert adapter.open_jobs == 2
        [evicted] = by_name(exporter.get_finished_spans(), "agent.job")
        assert (evicted.attributes or {})["agent_runtime.job.id"] == "job-0"
        assert (evicted.attributes or {})["agent_runtime.job.evicted"] is True


# --- the seed's examples ------------------------------------------------------------------------


@pytest.fixture
def fresh_global_provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The seed sets the process-wide provider, which OTel allows once: give it a fresh slot and
    restore the previous one afterwards, so other tests see the global state they expect."""
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", Once())
    yield


async def test_seed_observability_example(fresh_global_provider: None) -> None:
    event_bus = InMemoryEventBus()
    exporter = InMemorySpanExporter()

    # Set up OTel
    trace.set_tracer_provider(TracerProvider())
    global_provider: Any = trace.get_tracer_provider()
    global_provider.add_span_processor(SimpleSpanProcessor(exporter))

    # Create adapter
    adapter = OpenTelemetryAdapter(
        event_bus,
        config=OTelConfig(
            tracer_name="agent_runtime",
            service_name="my-service",
            capture_tool_args=False,  # PII concern
            record_exceptions=True,
        ),
    )

    await adapter.start()

    await _publish(
        event_bus,
        "job-seed",
        (T.JOB_STARTED, {"status": "running"}),
        (T.MODEL_DONE, {"turn": 1, "finish_reason": "stop"}),
        (T.JOB_COMPLETED, {"status": "succeeded"}),
    )

    await adapter.stop()

    spans = exporter.get_finished_spans()
    assert sorted(s.name for s in spans) == ["agent.job", "agent.run"]
    assert {s.instrumentation_scope.name for s in spans if s.instrumentation_scope} == {"agent_runtime"}


def test_seed_otel_config_reference_runs_as_written() -> None:
    config = OTelConfig(
        tracer_name="agent_runtime",
        service_name="my-service",
        capture_input=False,  # PII concern
        capture_output=False,  # PII concern
        capture_tool_args=False,  # PII concern
        record_exceptions=True,
        sampling_rate=1.0,
    )
    assert config == OTelConfig(service_name="my-service")


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sampling_rate": 1.5}, "sampling_rate"),
        ({"sampling_rate": -0.1}, "sampling_rate"),
        ({"tracer_name": ""}, "tracer_name"),
        ({"capture_input": "yes"}, "capture_input"),
        ({"max_open_jobs": 0}, "max_open_jobs"),
    ],
)
def test_bad_otel_config_is_refused(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        OTelConfig(**kwargs)


def test_missing_opentelemetry_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(MissingDependencyError, match=r"agent-runtime\[otel\]"):
        OpenTelemetryAdapter(InMemoryEventBus())
