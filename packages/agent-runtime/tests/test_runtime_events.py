"""Runtime events, the in-memory bus and the SSE adapter."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from decimal import Decimal
from types import SimpleNamespace

import pytest
from agent_runtime import (
    EventBus,
    EventSubscription,
    InMemoryEventBus,
    RuntimeEvent,
    RuntimeEventType,
    SSEEventAdapter,
    ValidationError,
)
from agent_runtime.events import TERMINAL_EVENT_TYPES, EventBusClosedError, EventStream, format_sse

T = RuntimeEventType


def ev(type_: RuntimeEventType, job_id: str | None = "job-1", **data: object) -> RuntimeEvent:
    return RuntimeEvent(type=type_, job_id=job_id, data=dict(data))


async def collect(stream: EventStream) -> list[RuntimeEvent]:
    return [e async for e in stream]


# --- RuntimeEvent -------------------------------------------------------------------------------------


def test_seed_runtime_event_block() -> None:
    event = RuntimeEvent(
        event_id="evt-123",
        type=RuntimeEventType.JOB_STARTED,
        timestamp=time.time(),
        job_id="job-456",
        run_id="run-789",
        trace_id="trace-abc",
        scope_id="tenant-123",
        principal_id="user-456",
        data={"model": "gpt-4", "prompt_tokens": 100},
    )

    sse_string = event.to_sse()

    lines = sse_string.split("\n")
    assert lines[0] == "id: evt-123"
    assert lines[1] == "event: job.started"
    assert lines[2].startswith("data: ")
    assert json.loads(lines[2].removeprefix("data: ")) == event.to_dict()
    assert sse_string.endswith("\n\n")

    ctx = SimpleNamespace(
        job_id="job-1", run_id="run-1", trace_id="tr-1", scope_id="tenant-1", principal_id="user-1"
    )
    event = RuntimeEvent.from_context(ctx, RuntimeEventType.PROGRESS, {"progress": 0.5})
    assert (event.type, event.data) == (T.PROGRESS, {"progress": 0.5})
    assert (event.job_id, event.run_id, event.trace_id, event.scope_id, event.principal_id) == (
        "job-1",
        "run-1",
        "tr-1",
        "tenant-1",
        "user-1",
    )


def test_from_context_with_the_kernel_execution_context() -> None:
    context = pytest.importorskip("agent_runtime.context")
    ctx = context.ExecutionContext(scope_id="tenant-9", principal_id="user-9", job_id="job-9")
    event = RuntimeEvent.from_context(ctx, "progress", {"progress": 1.0})
    assert (event.scope_id, event.principal_id, event.job_id) == ("tenant-9", "user-9", "job-9")
    assert (event.run_id, event.trace_id) == (ctx.run_id, ctx.trace_id)


def test_from_context_tolerates_missing_fields_and_refuses_none() -> None:
    event = RuntimeEvent.from_context(SimpleNamespace(job_id="j"), T.TOOL_START)
    assert (event.job_id, event.run_id, event.data) == ("j", None, {})
    with pytest.raises(ValidationError, match="needs a context"):
        RuntimeEvent.from_context(None, T.TOOL_START)


def test_event_ids_and_timestamps_are_generated() -> None:
    before = time.time()
    a, b = RuntimeEvent(type=T.PROGRESS), RuntimeEvent(type=T.PROGRESS)
    assert a.event_id != b.event_id
    assert a.event_id.startswith("evt-")
    assert before <= a.timestamp <= time.time()


def test_every_seed_event_type_has_a_dotted_value() -> None:
    expected = {
        "PROGRESS": "progress",
        "MODEL_TOKEN": "model.token",
        "MODEL_REASONING": "model.reasoning",
        "MODEL_DONE": "model.done",
        "TOOL_START": "tool.start",
        "TOOL_END": "tool.end",
        "TOOL_ERROR": "tool.error",
        "ACTION_REQUIRED": "action.required",
        "ACTION_RESOLVED": "action.resolved",
        "ACTION_EXPIRED": "action.expired",
        "ACTION_CANCELLED": "action.cancelled",
        "ARTIFACT_CREATED": "artifact.created",
        "ARTIFACT_UPDATED": "artifact.updated",
        "JOB_STARTED": "job.started",
        "JOB_STATUS_CHANGED": "job.status_changed",
        "JOB_COMPLETED": "job.completed",
        "JOB_FAILED": "job.failed",
        "JOB_CANCELLED": "job.cancelled",
        "FINAL_RESULT": "final.result",
        "FINAL_ERROR": "final.error",
    }
    assert {t.name: t.value for t in RuntimeEventType} == expected
    # The seed prints f"{event.type}": it must read as the wire name.
    assert f"{RuntimeEventType.MODEL_TOKEN}" == "model.token"
    assert frozenset({T.JOB_COMPLETED, T.JOB_FAILED, T.JOB_CANCELLED}) == TERMINAL_EVENT_TYPES
    assert T.JOB_FAILED.is_terminal and not T.FINAL_RESULT.is_terminal


def test_dict_and_json_round_trip() -> None:
    event = RuntimeEvent(type=T.MODEL_DONE, job_id="j", run_id="r", data={"text": "hi\nthere", "n": [1, 2]})
    assert RuntimeEvent.from_dict(event.to_dict()) == event
    assert RuntimeEvent.from_dict(json.loads(event.to_json())) == event
    assert event.to_dict()["type"] == "model.done"


def test_data_is_copied_and_decimal_costs_stay_exact() -> None:
    data = {"cost": Decimal("0.000123"), "tags": {"a"}}
    event = RuntimeEvent(type=T.MODEL_DONE, data=data)
    data["cost"] = Decimal("9")
    assert event.data["cost"] == Decimal("0.000123")
    assert json.loads(event.to_json())["data"] == {"cost": "0.000123", "tags": ["a"]}


def test_bad_events_are_refused_with_clear_errors() -> None:
    with pytest.raises(ValidationError, match=r"unknown runtime event type 'job\.exploded'.*job\.started"):
        RuntimeEvent(type="job.exploded")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="not JSON-serialisable"):
        RuntimeEvent(type=T.PROGRESS, data={"x": object()})
    with pytest.raises(ValidationError, match="data must be a dict"):
        RuntimeEvent(type=T.PROGRESS, data=[1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="job_id must be a string"):
        RuntimeEvent(type=T.PROGRESS, job_id=42)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="no 'type'"):
        RuntimeEvent.from_dict({"event_id": "e"})
    with pytest.raises(ValidationError, match="mapping"):
        RuntimeEvent.from_dict("not a dict")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="timestamp"):
        RuntimeEvent(type=T.PROGRESS, timestamp="yesterday")  # type: ignore[arg-type]


# --- SSE wire format ------------------------------------------------------------------------------------


def test_to_sse_is_exact() -> None:
    event = RuntimeEvent(event_id="e1", type=T.PROGRESS, timestamp=1.5, job_id="j", data={"progress": 0.5})
    assert event.to_sse() == (
        "id: e1\n"
        "event: progress\n"
        'data: {"event_id":"e1","type":"progress","timestamp":1.5,"job_id":"j","run_id":null,'
        '"trace_id":null,"scope_id":null,"principal_id":null,"data":{"progress":0.5}}\n'
        "\n"
    )


def test_multi_line_data_becomes_several_data_lines() -> None:
    assert format_sse("one\ntwo\r\nthree\rfour", event="x", event_id="7") == (
        "id: 7\nevent: x\ndata: one\ndata: two\ndata: three\ndata: four\n\n"
    )
    assert format_sse("") == "data: \n\n"
    event = RuntimeEvent(event_id="e2", type=T.MODEL_TOKEN, data={"text": "a\nb"})
    message = event.to_sse(indent=2)
    body = message.split("\n")[2:-2]
    assert len(body) > 1 and all(line.startswith("data: ") for line in body)
    # What a browser reassembles: the data lines joined with "\n".
    assert json.loads("\n".join(line.removeprefix("data: ") for line in body)) == event.to_dict()


def test_sse_fields_that_cannot_be_split_refuse_line_breaks() -> None:
    with pytest.raises(ValidationError, match="id must not contain"):
        format_sse("x", event_id="a\nb")
    with pytest.raises(ValidationError, match="event name"):
        format_sse("x", event="a\rb")
    assert format_sse("x", retry_ms=3000) == "retry: 3000\ndata: x\n\n"


# --- EventBus -----------------------------------------------------------------------------------------


async def test_seed_event_bus_block() -> None:
    bus = InMemoryEventBus()
    assert isinstance(bus, EventBus)
    seen: list[RuntimeEvent] = []

    async def handler(event: RuntimeEvent) -> None:
        seen.append(event)

    subscription = await bus.subscribe(
        handler,
        event_types={RuntimeEventType.JOB_STARTED, RuntimeEventType.JOB_COMPLETED},
    )
    assert isinstance(subscription, EventSubscription)

    await bus.publish(RuntimeEvent(type=RuntimeEventType.JOB_STARTED, job_id="job-123"))
    await bus.publish(RuntimeEvent(type=RuntimeEventType.PROGRESS, job_id="job-123"))
    await bus.flush()
    assert [(e.type, e.job_id) for e in seen] == [(T.JOB_STARTED, "job-123")]

    await subscription.unsubscribe()
    assert not subscription.active
    await bus.publish(RuntimeEvent(type=RuntimeEventType.JOB_COMPLETED, job_id="job-123"))
    await bus.flush()
    assert len(seen) == 1
    await subscription.unsubscribe()  # twice is harmless
    await bus.close()


async def test_job_filter_and_sync_handlers() -> None:
    async with InMemoryEventBus() as bus:
        seen: list[str | None] = []
        await bus.subscribe(lambda e: seen.append(e.job_id), job_id="b")
        for job in ("a", "b", "a", "b"):
            await bus.publish(ev(T.PROGRESS, job))
        await bus.flush()
        assert seen == ["b", "b"]


async def test_a_slow_subscriber_blocks_neither_publisher_nor_others() -> None:
    bus = InMemoryEventBus()
    gate = asyncio.Event()
    slow_seen: list[RuntimeEvent] = []
    fast_seen: list[RuntimeEvent] = []

    async def slow(event: RuntimeEvent) -> None:
        await gate.wait()
        slow_seen.append(event)

    async def fast(event: RuntimeEvent) -> None:
        fast_seen.append(event)

    slow_sub = await bus.subscribe(slow)
    fast_sub = await bus.subscribe(fast)
    events = [ev(T.MODEL_TOKEN, text=str(i)) for i in range(5)]
    async with asyncio.timeout(5):  # a deadlock fails the test instead of hanging it
        for event in events:
            await bus.publish(event)
        await fast_sub.wait_idle()
    assert fast_seen == events
    assert slow_seen == []
    assert slow_sub.pending >= 4  # still queued behind the blocked handler
    gate.set()
    await bus.flush()
    assert slow_seen == events
    assert slow_sub.dropped == 0
    await bus.close()


async def test_overflow_drops_oldest_non_terminal_events_and_counts_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = InMemoryEventBus(queue_size=2)
    started, gate = asyncio.Event(), asyncio.Event()
    seen: list[RuntimeEvent] = []

    async def handler(event: RuntimeEvent) -> None:
        started.set()
        await gate.wait()
        seen.append(event)

    sub = await bus.subscribe(handler)
    first = ev(T.JOB_STARTED)
    await bus.publish(first)
    await started.wait()  # the handler holds `first`; the queue is empty
    tokens = [ev(T.MODEL_TOKEN, i=i) for i in range(3)]
    done = ev(T.JOB_COMPLETED)
    with caplog.at_level(logging.WARNING, logger="agent_runtime.events"):
        for event in [*tokens, done]:
            await bus.publish(event)
    # t0,t1 queued; t2 pushes out t0; the terminal event pushes out t1, never itself.
    assert sub.dropped == 2
    assert "too slow" in caplog.text
    gate.set()
    await bus.flush()
    assert seen == [first, tokens[2], done]
    await bus.close()


async def test_terminal_events_are_never_dropped_even_past_the_bound() -> None:
    bus = InMemoryEventBus(queue_size=1)
    started, gate = asyncio.Event(), asyncio.Event()
    seen: list[RuntimeEvent] = []

    async def handler(event: RuntimeEvent) -> None:
        started.set()
        await gate.wait()
        seen.append(event)

    sub = await bus.subscribe(handler)
    await bus.publish(ev(T.PROGRESS, "x"))
    await started.wait()
    terminals = [ev(T.JOB_COMPLETED, "a"), ev(T.JOB_FAILED, "b"), ev(T.JOB_CANCELLED, "c")]
    for event in terminals:
        await bus.publish(event)
    assert sub.dropped == 0
    gate.set()
    await bus.flush()
    assert seen[1:] == terminals
    await bus.close()


async def test_a_raising_handler_is_logged_and_isolated(caplog: pytest.LogCaptureFixture) -> None:
    bus = InMemoryEventBus()
    good: list[RuntimeEvent] = []

    async def bad(event: RuntimeEvent) -> None:
        raise RuntimeError("boom")

    async def fine(event: RuntimeEvent) -> None:
        good.append(event)

    bad_sub = await bus.subscribe(bad)
    await bus.subscribe(fine)
    with caplog.at_level(logging.ERROR, logger="agent_runtime.events"):
        await bus.publish(ev(T.PROGRESS))
        await bus.publish(ev(T.PROGRESS))
        await bus.flush()
    assert len(good) == 2
    assert (bad_sub.errors, bad_sub.delivered, bad_sub.active) == (2, 0, True)
    assert "boom" in caplog.text and bad_sub.subscription_id in caplog.text
    await bus.close()


async def test_a_handler_may_unsubscribe_itself() -> None:
    bus = InMemoryEventBus()
    seen: list[RuntimeEvent] = []
    holder: dict[str, EventSubscription] = {}

    async def once(event: RuntimeEvent) -> None:
        seen.append(event)
        await holder["sub"].unsubscribe()

    holder["sub"] = await bus.subscribe(once)
    await bus.publish(ev(T.PROGRESS))
    await bus.publish(ev(T.PROGRESS))
    await bus.flush()
    assert len(seen) == 1
    assert bus.subscriptions == []
    await bus.close()


async def test_close_stops_blocked_handlers_and_refuses_new_work() -> None:
    bus = InMemoryEventBus()
    started = asyncio.Event()

    async def stuck(event: RuntimeEvent) -> None:
        started.set()
        await asyncio.Event().wait()

    sub = await bus.subscribe(stuck)
    await bus.publish(ev(T.PROGRESS))
    await started.wait()
    async with asyncio.timeout(5):
        await bus.close()
    assert not sub.active and bus.closed
    with pytest.raises(EventBusClosedError):
        await bus.publish(ev(T.PROGRESS))
    with pytest.raises(EventBusClosedError):
        await bus.subscribe(stuck)
    await bus.close()  # idempotent


async def test_bad_bus_arguments_are_refused() -> None:
    bus = InMemoryEventBus()
    with pytest.raises(ValidationError, match="handler must be callable"):
        await bus.subscribe("not a function")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="unknown runtime event type"):
        await bus.subscribe(lambda e: None, event_types={"nope"})
    with pytest.raises(ValidationError, match="publish\\(\\) takes a RuntimeEvent"):
        await bus.publish({"type": "progress"})  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="queue_size"):
        await bus.subscribe(lambda e: None, queue_size=0)
    with pytest.raises(ValidationError, match="history_size"):
        InMemoryEventBus(history_size=0)
    await bus.close()


# --- streams ---------------------------------------------------------------------------------------


async def test_a_late_stream_replays_the_job_and_ends_at_its_terminal_event() -> None:
    bus = InMemoryEventBus()
    job = [ev(T.JOB_STARTED), ev(T.MODEL_TOKEN, text="hi"), ev(T.FINAL_RESULT, content="hi")]
    for event in job:
        await bus.publish(event)
    await bus.publish(ev(T.PROGRESS, "other-job"))
    stream = bus.stream(job_id="job-1")
    consumer = asyncio.create_task(collect(stream))
    done = ev(T.JOB_COMPLETED)
    await bus.publish(done)
    await bus.publish(ev(T.PROGRESS))  # after the end: not part of the job's stream
    async with asyncio.timeout(5):
        assert await consumer == [*job, done]
    # A stream opened after the end replays everything and ends at once.
    assert await collect(bus.stream(job_id="job-1")) == [*job, done]
    await bus.close()


async def test_stream_filters_resume_after_an_event_id_and_still_end() -> None:
    bus = InMemoryEventBus()
    job = [ev(T.JOB_STARTED), ev(T.MODEL_TOKEN, i=1), ev(T.MODEL_TOKEN, i=2), ev(T.JOB_FAILED)]
    for event in job:
        await bus.publish(event)
    tokens = bus.stream(job_id="job-1", event_types={T.MODEL_TOKEN})
    assert await collect(tokens) == job[1:3]  # ends although the terminal event is filtered out
    resumed = bus.stream(job_id="job-1", after_event_id=job[1].event_id)
    assert await collect(resumed) == job[2:]
    await bus.close()


async def test_history_is_bounded_per_job_and_in_jobs() -> None:
    bus = InMemoryEventBus(history_size=2, max_history_jobs=2)
    events = [ev(T.MODEL_TOKEN, "a", i=i) for i in range(3)]
    for event in events:
        await bus.publish(event)
    assert bus.history("a") == events[1:]
    await bus.publish(ev(T.PROGRESS, "b"))
    await bus.publish(ev(T.PROGRESS, "c"))
    assert bus.history("a") == []
    assert len(bus.history("b")) == len(bus.history("c")) == 1
    await bus.close()


async def test_closing_the_bus_ends_open_streams() -> None:
    bus = InMemoryEventBus()
    stream = bus.stream()  # all jobs: only close ends it
    consumer = asyncio.create_task(collect(stream))
    first = ev(T.JOB_COMPLETED, "a")
    await bus.publish(first)
    await bus.close()
    async with asyncio.timeout(5):
        assert await consumer == [first]


async def test_cancelling_a_stream_consumer_propagates() -> None:
    bus = InMemoryEventBus()
    reading = asyncio.Event()

    async def consume() -> None:
        async with bus.stream(job_id="j") as stream:
            reading.set()
            async for _ in stream:
                pass

    task = asyncio.create_task(consume())
    await reading.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await bus.close()


async def test_a_slow_stream_drops_oldest_tokens_but_keeps_the_end() -> None:
    bus = InMemoryEventBus(queue_size=2)
    stream = bus.stream(job_id="job-1")
    events = [ev(T.MODEL_TOKEN, i=i) for i in range(4)]
    done = ev(T.JOB_COMPLETED)
    for event in [*events, done]:
        await bus.publish(event)
    assert await collect(stream) == [events[3], done]
    assert stream.dropped == 3
    await bus.close()


# --- SSE adapter -------------------------------------------------------------------------------------


async def test_seed_sse_adapter_block_fed_with_adapt() -> None:
    sse_adapter = SSEEventAdapter()
    await sse_adapter.start()
    events = [ev(T.JOB_STARTED), ev(T.MODEL_TOKEN, text="a\nb")]
    for event in events:
        await sse_adapter.adapt(event)
    await sse_adapter.stop()

    received = []
    async for sse_string in sse_adapter.events():
        received.append(sse_string)
    assert received == [e.to_sse() for e in events]


async def test_sse_adapter_on_a_bus_streams_one_job_from_the_start() -> None:
    bus = InMemoryEventBus()
    started = ev(T.JOB_STARTED)
    await bus.publish(started)
    adapter = SSEEventAdapter(bus, job_id="job-1", keepalive_seconds=None)
    out: list[str] = []

    async def consume() -> None:
        async for message in adapter.events():
            out.append(message)

    task = asyncio.create_task(consume())
    done = ev(T.JOB_COMPLETED)
    await bus.publish(ev(T.PROGRESS, "job-2"))
    await bus.publish(done)
    async with asyncio.timeout(5):
        await task
    assert out == [started.to_sse(), done.to_sse()]
    await bus.close()


async def test_sse_adapter_resumes_after_last_event_id_and_sends_retry() -> None:
    bus = InMemoryEventBus()
    job = [ev(T.JOB_STARTED), ev(T.PROGRESS), ev(T.JOB_COMPLETED)]
    for event in job:
        await bus.publish(event)
    adapter = SSEEventAdapter(bus, job_id="job-1", last_event_id=job[0].event_id, retry_ms=2000)
    out = [m async for m in adapter.events()]
    assert out == ["retry: 2000\n\n", job[1].to_sse(), job[2].to_sse()]
    await bus.close()


async def test_sse_adapter_sends_keepalive_comments_while_idle() -> None:
    adapter = SSEEventAdapter(keepalive_seconds=0.01)
    stream = adapter.events()
    async with asyncio.timeout(5):
        assert await anext(stream) == ": keepalive\n\n"
        event = ev(T.PROGRESS)
        await adapter.adapt(event)
        message = await anext(stream)
        while message == ": keepalive\n\n":
            message = await anext(stream)
        assert message == event.to_sse()
    await adapter.stop()
    assert [m async for m in stream if m != ": keepalive\n\n"] == []


async def test_sse_adapter_can_subscribe_as_a_handler_and_filters_types() -> None:
    bus = InMemoryEventBus()
    adapter = SSEEventAdapter(event_types={T.FINAL_RESULT})
    await bus.subscribe(adapter.adapt)
    final = ev(T.FINAL_RESULT, content="ok")
    await bus.publish(ev(T.PROGRESS))
    await bus.publish(final)
    await bus.flush()
    await adapter.stop()
    assert [m async for m in adapter.events()] == [final.to_sse()]
    await bus.close()


async def test_sse_adapter_refuses_bad_arguments() -> None:
    with pytest.raises(ValidationError, match="keepalive_seconds"):
        SSEEventAdapter(keepalive_seconds=0)
    with pytest.raises(ValidationError, match="EventBus"):
        SSEEventAdapter(object())  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="unknown runtime event type"):
        SSEEventAdapter(event_types=["job.started", "bogus"])
    with pytest.raises(ValidationError, match="RuntimeEvent"):
        await SSEEventAdapter().adapt({"type": "progress"})  # type: ignore[arg-type]


async def test_closing_the_sse_generator_detaches_the_adapter() -> None:
    bus = InMemoryEventBus()
    adapter = SSEEventAdapter(bus, job_id="job-1", keepalive_seconds=None)
    first = ev(T.JOB_STARTED)
    await bus.publish(first)
    messages = adapter.events()
    assert await anext(messages) == first.to_sse()
    await messages.aclose()  # what a web framework does when the client disconnects
    await bus.publish(ev(T.PROGRESS))
    assert adapter.dropped == 0
    assert "streams=0" in repr(bus)
    await bus.close()
