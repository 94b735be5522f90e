"""DefaultRunContext: events, checkpoints, cancellation, tools, run ids, tracing."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from agent_runtime_core import DefaultRunContext, EventType, NoopTraceSink, RunContext, TraceSink
from agent_runtime_core.context import RunCancelledError, normalize_run_id
from agent_runtime_core.events.memory import InMemoryEventBus
from agent_runtime_core.state.memory import InMemoryStateStore
from agent_runtime_core.tools import Tool, ToolRegistry
from llm_client import CancellationToken


class ListSink(TraceSink):
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def trace(self, event: dict[str, Any]) -> None:
        self.events.append(event)


def make_ctx(run_id: str | uuid.UUID = "run-1", **kwargs: Any) -> DefaultRunContext:
    kwargs.setdefault("event_bus", InMemoryEventBus())
    kwargs.setdefault("state_store", InMemoryStateStore())
    return DefaultRunContext(run_id, [{"role": "user", "content": "hi"}], **kwargs)


async def test_is_a_run_context_with_the_seed_attributes() -> None:
    ctx = make_ctx(metadata={"user": "u1"})
    assert isinstance(ctx, RunContext)
    assert isinstance(ctx.run_id, uuid.UUID)
    assert ctx.input_messages == [{"role": "user", "content": "hi"}]
    assert ctx.metadata == {"user": "u1"}
    assert make_ctx().metadata == {}


async def test_emit_publishes_to_the_bus_under_the_run_key() -> None:
    bus = InMemoryEventBus()
    ctx = make_ctx("run-1", event_bus=bus)
    await ctx.emit(EventType.ASSISTANT_MESSAGE, {"content": "a"})
    await ctx.emit("custom.event", {"n": 1})
    events = await bus.get_events("run-1")
    assert [(e.seq, e.event_type, e.payload) for e in events] == [
        (1, "assistant.message", {"content": "a"}),
        (2, "custom.event", {"n": 1}),
    ]


async def test_emit_rejects_a_non_json_payload() -> None:
    ctx = make_ctx()
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        await ctx.emit(EventType.TOOL_RESULT, {"result": object()})


async def test_emit_user_message_and_emit_error() -> None:
    bus = InMemoryEventBus()
    ctx = make_ctx(event_bus=bus)
    await ctx.emit_user_message("hello")
    await ctx.emit_error("oops", {"code": 7})
    events = await bus.get_events(ctx.run_key)
    assert events[0].event_type == "assistant.message"
    assert events[0].payload == {"content": "hello", "role": "assistant"}
    assert events[1].event_type == "error"
    assert events[1].payload == {"message": "oops", "details": {"code": 7}}


async def test_checkpoint_saves_emits_and_get_state_returns_the_latest() -> None:
    bus = InMemoryEventBus()
    store = InMemoryStateStore()
    ctx = make_ctx(event_bus=bus, state_store=store)
    assert await ctx.get_state() is None
    await ctx.checkpoint({"step": 1})
    await ctx.checkpoint({"step": 2, "items": [1, 2]})
    assert await ctx.get_state() == {"step": 2, "items": [1, 2]}
    assert await store.list_checkpoints("run-1") == [{"step": 1}, {"step": 2, "items": [1, 2]}]
    events = await bus.get_events("run-1")
    assert [(e.event_type, e.payload) for e in events] == [
        ("state.checkpoint", {"seq": 1}),
        ("state.checkpoint", {"seq": 2}),
    ]


async def test_checkpoint_state_is_copied() -> None:
    ctx = make_ctx()
    state: dict[str, Any] = {"items": [1]}
    await ctx.checkpoint(state)
    state["items"].append(2)
    assert await ctx.get_state() == {"items": [1]}


async def test_non_serialisable_checkpoint_is_a_clear_type_error_and_stores_nothing() -> None:
    bus = InMemoryEventBus()
    ctx = make_ctx(event_bus=bus)
    with pytest.raises(TypeError, match=r"checkpoint of run 'run-1' is not JSON-serialisable"):
        await ctx.checkpoint({"when": object()})
    with pytest.raises(TypeError, match="checkpoint state must be a dict, got list"):
        await ctx.checkpoint([1, 2])  # type: ignore[arg-type]
    assert await ctx.get_state() is None
    assert await bus.get_events("run-1") == []


async def test_is_cancelled_reads_the_llm_client_token() -> None:
    token = CancellationToken()
    ctx = make_ctx(cancel_token=token)
    assert ctx.cancel_token is token
    assert not ctx.is_cancelled()
    ctx.raise_if_cancelled()
    token.cancel("user asked")
    assert ctx.is_cancelled()
    with pytest.raises(RunCancelledError, match="was cancelled: user asked"):
        ctx.raise_if_cancelled()
    assert not make_ctx().is_cancelled()  # a fresh token by default


async def test_tools_default_to_an_empty_core_registry() -> None:
    ctx = make_ctx()
    assert isinstance(ctx.tools, ToolRegistry)
    assert ctx.tools.names() == []

    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    registry = ToolRegistry([Tool.from_function(add)])
    ctx = make_ctx(tools=registry)
    assert ctx.tools is registry
    result = await ctx.tools.execute_with_events(
        {"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'}}, ctx
    )
    assert result == 3
    assert [e.event_type for e in await ctx.event_bus.get_events(ctx.run_key)] == ["tool.call", "tool.result"]


@pytest.mark.parametrize(
    ("given", "key"),
    [
        ("run-123", "run-123"),
        ("550E8400-E29B-41D4-A716-446655440000", "550e8400-e29b-41d4-a716-446655440000"),
        (uuid.UUID("550e8400-e29b-41d4-a716-446655440000"), "550e8400-e29b-41d4-a716-446655440000"),
    ],
)
async def test_run_ids(given: str | uuid.UUID, key: str) -> None:
    run_uuid, run_key = normalize_run_id(given)
    assert run_key == key
    assert isinstance(run_uuid, uuid.UUID)
    ctx = make_ctx(given)
    assert (ctx.run_id, ctx.run_key) == (run_uuid, run_key)


async def test_a_string_run_id_maps_to_a_stable_uuid() -> None:
    assert normalize_run_id("run-123")[0] == normalize_run_id("run-123")[0]
    assert normalize_run_id("run-123")[0] != normalize_run_id("run-124")[0]
    assert make_ctx("run-123").run_id == normalize_run_id("run-123")[0]
    # 36 characters but not a UUID: still a plain key
    odd = "x" * 36
    assert normalize_run_id(odd)[1] == odd


async def test_run_id_is_fixed() -> None:
    ctx = make_ctx()
    with pytest.raises(AttributeError, match="fixed"):
        ctx.run_id = uuid.uuid4()


async def test_bad_constructor_arguments() -> None:
    with pytest.raises(TypeError, match=r"run_id must be a str or uuid\.UUID, got int"):
        make_ctx(123)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="run_id must be a non-empty string"):
        make_ctx("")
    with pytest.raises(TypeError, match="input_messages must be a list"):
        DefaultRunContext(
            "r",
            "hello",  # type: ignore[arg-type]
            event_bus=InMemoryEventBus(),
            state_store=InMemoryStateStore(),
        )
    with pytest.raises(TypeError, match="metadata must be a dict"):
        make_ctx(metadata=["x"])


async def test_a_trace_sink_gets_each_event_but_not_heartbeats() -> None:
    sink = ListSink()
    ctx = make_ctx(trace_sink=sink)
    await ctx.emit(EventType.TOOL_CALL, {"tool": "add"})
    await ctx.emit(EventType.RUN_HEARTBEAT, {})
    await ctx.checkpoint({"a": 1})
    assert [(e["event_type"], e["seq"], e["run_id"]) for e in sink.events] == [
        ("tool.call", 1, "run-1"),
        ("state.checkpoint", 3, "run-1"),
    ]
    assert sink.events[0]["payload"] == {"tool": "add"}


async def test_a_failing_trace_sink_does_not_fail_the_emit(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(TraceSink):
        async def trace(self, event: dict[str, Any]) -> None:
            raise RuntimeError("sink down")

    bus = InMemoryEventBus()
    ctx = make_ctx(event_bus=bus, trace_sink=Broken())
    with caplog.at_level(logging.ERROR, logger="agent_runtime_core.context"):
        await ctx.emit(EventType.ASSISTANT_MESSAGE, {"content": "x"})
    assert len(await bus.get_events("run-1")) == 1
    assert "sink down" in caplog.text


async def test_the_noop_sink_is_skipped() -> None:
    ctx = make_ctx(trace_sink=NoopTraceSink())
    assert ctx._trace is None
