"""The replay system: recording a kernel run, the recording format, and FAST / TIMED / step /
DETERMINISTIC replay with divergence reports."""

from __future__ import annotations

import builtins
import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from agent_runtime import (
    ActionSpec,
    AgentRuntimeError,
    EventFingerprint,
    ExecutionRequest,
    InMemoryEventBus,
    PolicyEngine,
    RecordedEvent,
    Recording,
    ReplayMode,
    ReplayPlayer,
    ReplayRecorder,
    ReplayResult,
    ReplayValidationError,
    RunMetadata,
    RuntimeEvent,
    RuntimeEventType,
    RuntimeKernel,
    ToolPolicy,
    ValidationError,
    current_execution,
)
from agent_runtime.actions import ActionRequiredError
from agent_runtime.replay import (
    FORMAT_VERSION,
    ReplayExhaustedError,
    ReplayProvider,
    ReplayStateError,
)
from agent_runtime.replay import player as player_module
from llm_client import (
    Agent,
    CompletionResult,
    ExecutionEngine,
    MockProvider,
    MockResponse,
    ProviderError,
    RequestSpec,
    RetryMiddleware,
    RetryPolicy,
    StreamDone,
    TextDelta,
    Tool,
)
from llm_client.providers.base import Provider
from llm_client.streaming import StreamEvent

T = RuntimeEventType


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def search(q: str) -> str:
    """Search the web."""
    return f"results for {q}"


def boom(x: int) -> str:
    """Always fails."""
    raise ValueError(f"bad x={x}")


class ForbiddenProvider(Provider):
    """A provider that must never be asked: a deterministic replay calls no live model."""

    name = "forbidden"

    def __init__(self) -> None:
        self.model = "gpt-4o-mini"
        self.calls = 0

    async def complete(self, spec: RequestSpec) -> CompletionResult:
        self.calls += 1
        raise AssertionError("the live provider was called during a deterministic replay")

    async def stream(self, spec: RequestSpec) -> AsyncIterator[StreamEvent]:
        self.calls += 1
        raise AssertionError("the live provider was called during a deterministic replay")
        yield  # pragma: no cover


def forbidden_tools(agent: Agent, calls: list[str]) -> list[Tool]:
    """The agent's tools, same schemas, with handlers that fail the test if they run."""

    def make(name: str) -> Callable[..., Any]:
        def handler(**kwargs: Any) -> Any:
            calls.append(name)
            raise AssertionError(f"tool {name} was called during a deterministic replay")

        return handler

    return [Tool(t.name, t.description, t.parameters, make(t.name)) for t in agent.tools.tools()]


@dataclass
class Recorded:
    recording: Recording
    bus: InMemoryEventBus
    agent: Agent
    provider: MockProvider
    job_id: str
    tool_calls: list[str] = field(default_factory=list)


async def record_run(
    responses: list[Any],
    *,
    tools: list[Callable[..., Any]] | None = None,
    prompt: str = "What is 1 + 2?",
    system_prompt: str | None = "Be terse.",
) -> Recorded:
    bus = InMemoryEventBus()
    recorder = ReplayRecorder(bus, RunMetadata.create(model_version="gpt-4o-mini", tools=["add", "search"]))
    provider = MockProvider(responses, model="gpt-4o-mini")
    engine = ExecutionEngine(provider=provider, middleware=[recorder.middleware()])
    agent = Agent(
        engine=engine,
        tools=recorder.wrap_tools(tools if tools is not None else [add, search]),
        system_prompt=system_prompt,
    )
    kernel = RuntimeKernel(engine, agent, event_bus=bus)
    await recorder.start(initial_input={"prompt": prompt})
    handle = await kernel.execute(ExecutionRequest(prompt=prompt))
    await handle.result()
    recording = await recorder.stop()
    return Recorded(recording, bus, agent, provider, handle.job_id)


TOOL_RUN = [
    MockResponse.tool_calls([("add", {"a": 1, "b": 2}), ("add", {"a": 3, "b": 4})]),
    MockResponse.tool_call("search", {"q": "python"}),
    MockResponse.text("1 + 2 = 3"),
]


def poisoned_player(
    rec: Recorded, recording: Recording | None = None
) -> tuple[ReplayPlayer, ForbiddenProvider]:
    provider = ForbiddenProvider()
    agent = Agent(
        engine=ExecutionEngine(provider=provider),
        tools=forbidden_tools(rec.agent, rec.tool_calls),
        system_prompt=rec.agent.system_prompt,
    )
    return ReplayPlayer(recording or rec.recording, InMemoryEventBus(), agent=agent), provider


def index_of(recording: Recording, type_: RuntimeEventType, nth: int = 0) -> int:
    return [i for i, e in enumerate(recording.events) if e.event.type is type_][nth]


# --- the seed's examples ------------------------------------------------------------------------------


async def test_seed_recording_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    event_bus = InMemoryEventBus()

    metadata = RunMetadata.create(
        runtime_version="1.0.0",
        llm_client_version="0.2.0",
        model_version="gpt-4-0125",
        config={"max_turns": 10},
        tools=["search", "calculate"],
    )

    recorder = ReplayRecorder(event_bus, metadata)
    await recorder.start(initial_input={"prompt": "Hello"})

    # ... execution happens ...
    engine = ExecutionEngine(provider=MockProvider(["Hi there"]), middleware=[recorder.middleware()])
    kernel = RuntimeKernel(engine, Agent(engine=engine), event_bus=event_bus)
    await (await kernel.execute(ExecutionRequest(prompt="Hello"))).result()

    recording = await recorder.stop()
    recording.save("execution.replay.json")

    saved = json.loads((tmp_path / "execution.replay.json").read_text())
    assert saved["format_version"] == FORMAT_VERSION
    assert saved["metadata"]["model_version"] == "gpt-4-0125"
    assert saved["metadata"]["config"] == {"max_turns": 10}
    assert saved["initial_input"] == {"prompt": "Hello"}
    types = [e["event"]["type"] for e in saved["events"]]
    assert types[0] == "job.started" and types[-1] == "job.completed"
    done = next(e for e in saved["events"] if e["event"]["type"] == "model.done")
    assert done["model_response"]["result"]["content"] == "Hi there"


async def test_seed_replaying_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rec = await record_run(TOOL_RUN)
    monkeypatch.chdir(tmp_path)
    rec.recording.save("execution.replay.json")
    event_bus = InMemoryEventBus()
    seen: list[RuntimeEvent] = []
    await event_bus.subscribe(seen.append, queue_size=10_000)
    slept: list[float] = []

    async def fake_sleep(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr(player_module, "_default_sleep", fake_sleep)
    prompts: list[str] = []
    monkeypatch.setattr(builtins, "input", lambda prompt="": prompts.append(prompt) or "")
    printed: list[Any] = []
    print = printed.append  # the seed prints each stepped event

    from agent_runtime import Recording, ReplayMode, ReplayPlayer

    recording = Recording.load("execution.replay.json")
    player = ReplayPlayer(recording, event_bus)

    # Validate recording
    is_valid, issues = await player.validate_recording()

    # Fast replay (as fast as possible)
    result = await player.replay(mode=ReplayMode.FAST)

    # Timed replay (original timing)
    result = await player.replay(mode=ReplayMode.TIMED)

    # Deterministic replay (use recorded responses)
    result = await player.replay(mode=ReplayMode.DETERMINISTIC)

    # Step through manually
    async for event in player.step():
        print(event)
        input("Press enter for next event...")

    n = len(recording.events)
    assert is_valid, issues
    assert [i for i in issues if i.severity == "error"] == []
    assert result.mode is ReplayMode.DETERMINISTIC and result.success, result.divergence
    assert result.fingerprints_compared == n
    assert result.execution is not None and result.execution.content == "1 + 2 = 3"
    assert len(printed) == n and len(prompts) == n
    assert all(isinstance(p, RecordedEvent) for p in printed)
    assert all(d >= 0 for d in slept)
    await event_bus.flush()
    # FAST + TIMED + step each republished every event; DETERMINISTIC ran the job again on the bus.
    assert len(seen) == 4 * n


def test_seed_recording_format_block() -> None:
    event = RuntimeEvent(event_id="evt-1", type=T.MODEL_DONE, job_id="job-1", data={"turn": 1})
    recording = Recording(
        format_version=1,
        metadata=RunMetadata(run_id="run-1", model_version="gpt-4-0125"),
        initial_input={"prompt": "..."},
        events=[
            RecordedEvent(
                event=event,
                fingerprint=EventFingerprint.of(event, model_response="..."),
                relative_timestamp_ms=0.0,
                model_response="...",  # For deterministic replay
            ),
        ],
    )
    assert recording.format_version == 1
    only = recording.events[0]
    assert only.response is not None and only.response["result"] == {"content": "..."}
    assert only.fingerprint == only.compute_fingerprint()
    assert Recording.from_json(recording.to_json()).to_dict() == recording.to_dict()


# --- deterministic replay: the owner's acceptance test ------------------------------------------------


async def test_deterministic_replay_of_unchanged_recording_matches_without_live_calls() -> None:
    rec = await record_run(TOOL_RUN)
    assert rec.provider.call_count == 3
    player, provider = poisoned_player(rec)

    result = await player.replay(mode=ReplayMode.DETERMINISTIC)

    assert result.success, result.divergence
    assert provider.calls == 0 and rec.tool_calls == []
    assert result.fingerprints_compared == len(rec.recording.events)
    assert result.replay_recording is not None
    assert result.replay_recording.fingerprints == rec.recording.fingerprints
    assert result.execution is not None and result.execution.content == "1 + 2 = 3"
    assert result.job_ids[rec.job_id] != rec.job_id


async def test_changed_tool_result_is_reported_at_that_event() -> None:
    rec = await record_run(TOOL_RUN)
    recording = rec.recording
    target = index_of(recording, T.TOOL_END, 1)  # the second add call: add(3, 4) -> "7"
    edited = recording.events[target]
    assert edited.tool_result is not None and edited.tool_result["content"] == "7"
    recording.events[target] = dataclasses.replace(edited, tool_result={**edited.tool_result, "content": "8"})
    player, provider = poisoned_player(rec, recording)

    result = await player.replay(mode=ReplayMode.DETERMINISTIC)

    assert not result.success
    divergence = result.divergence
    assert divergence is not None
    assert divergence.recording_index == target == divergence.index
    assert divergence.expected == edited.fingerprint
    assert divergence.actual is not None and divergence.actual.event_type == "tool.end"
    assert divergence.actual_event is not None
    assert divergence.actual_event.data["tool_call_id"] == edited.event.data["tool_call_id"]
    assert "tool.end event differs" in str(divergence)
    assert result.fingerprints_compared == target
    assert provider.calls == 0 and rec.tool_calls == []
    is_valid, issues = await player.validate_recording()
    assert not is_valid
    assert [i.event_index for i in issues if i.severity == "error"] == [target]


async def test_changed_model_response_is_reported_at_its_model_done() -> None:
    rec = await record_run(TOOL_RUN)
    recording = rec.recording
    target = index_of(recording, T.MODEL_DONE, 2)
    edited = recording.events[target]
    assert edited.response is not None
    response = {**edited.response, "result": {**edited.response["result"], "content": "1 + 2 = 4"}}
    recording.events[target] = dataclasses.replace(edited, model_response=response)

    result = await poisoned_player(rec, recording)[0].replay(mode=ReplayMode.DETERMINISTIC)

    assert result.divergence is not None and result.divergence.index == target
    assert result.execution is not None and result.execution.content == "1 + 2 = 4"


async def test_changed_agent_is_reported_at_the_first_model_call() -> None:
    rec = await record_run(TOOL_RUN)
    agent = Agent(
        engine=ExecutionEngine(ForbiddenProvider()), tools=[add, search], system_prompt="Be verbose."
    )

    result = await ReplayPlayer(rec.recording, InMemoryEventBus(), agent=agent).replay(
        ReplayMode.DETERMINISTIC
    )

    divergence = result.divergence
    assert divergence is not None and divergence.index == index_of(rec.recording, T.MODEL_DONE)
    assert divergence.reason.startswith("model.done event differs")


async def test_replay_without_agent_rebuilds_it_from_the_recorded_request() -> None:
    rec = await record_run(TOOL_RUN)
    loaded = Recording.from_json(rec.recording.to_json())

    result = await ReplayPlayer(loaded, InMemoryEventBus()).replay(ReplayMode.DETERMINISTIC)

    assert result.success, result.divergence
    assert rec.provider.call_count == 3  # still only the recorded run's calls


async def test_tool_failures_replay_with_the_same_error() -> None:
    rec = await record_run(
        [MockResponse.tool_call("boom", {"x": 1}), MockResponse.text("it failed")], tools=[boom]
    )
    error_event = rec.recording.events[index_of(rec.recording, T.TOOL_ERROR)]
    assert error_event.tool_result is not None
    assert error_event.tool_result["error"] == {"type": "ValueError", "message": "bad x=1"}

    result = await poisoned_player(rec)[0].replay(ReplayMode.DETERMINISTIC)

    assert result.success, result.divergence
    assert result.replay_recording is not None
    replayed = result.replay_recording.events[index_of(result.replay_recording, T.TOOL_ERROR)]
    assert replayed.event.data["error"] == error_event.event.data["error"]
    assert "ValueError: bad x=1" in replayed.event.data["error"]


async def test_model_failures_replay_with_the_same_error() -> None:
    rec = await record_run([MockResponse.tool_call("add", {"a": 1, "b": 2}), ProviderError("HTTP 500")])
    final = rec.recording.events[index_of(rec.recording, T.FINAL_ERROR)]
    assert final.response is not None and final.response["error"]["type"] == "ProviderError"

    result = await poisoned_player(rec)[0].replay(ReplayMode.DETERMINISTIC)

    assert result.success, result.divergence
    assert result.execution is not None and result.execution.status == "failed"
    assert result.execution.error == "ProviderError: HTTP 500"


async def test_more_model_calls_than_recorded_fail_the_rerun_with_a_typed_error() -> None:
    provider = ReplayProvider([{"result": {"content": "only one"}, "chunks": [["text", "only one"]]}])
    spec = RequestSpec.build("hi")
    events = [e async for e in provider.stream(spec)]
    assert [type(e) for e in events] == [TextDelta, StreamDone]
    assert provider.remaining == 0
    with pytest.raises(ReplayExhaustedError, match="holds 1 model responses"):
        await provider.complete(spec)
    assert isinstance(ReplayExhaustedError("x"), AgentRuntimeError)


async def test_context_taking_tools_still_get_the_job_context_when_wrapped() -> None:
    seen: list[str | None] = []

    def whoami(context: Any = None) -> str:
        """Report the job."""
        seen.append(getattr(context, "job_id", None))
        ctx = current_execution()
        return ctx.job_id if ctx is not None and ctx.job_id is not None else "none"

    tool = Tool("whoami", "Report the job.", {"type": "object", "properties": {}}, whoami)
    rec = await record_run([MockResponse.tool_call("whoami", {}), MockResponse.text("ok")], tools=[tool])

    assert seen == [rec.job_id]
    end = rec.recording.events[index_of(rec.recording, T.TOOL_END)]
    assert end.tool_result is not None and end.tool_result["content"] == rec.job_id
    # The re-run returns the recorded job id (not its own), so it stays identical.
    assert (await poisoned_player(rec)[0].replay(ReplayMode.DETERMINISTIC)).success


async def test_deterministic_replay_refuses_unreplayable_recordings() -> None:
    bus = InMemoryEventBus()
    recorder = ReplayRecorder(bus, RunMetadata.create())
    engine = ExecutionEngine(provider=MockProvider(["hi"]))  # no recording middleware
    kernel = RuntimeKernel(engine, Agent(engine=engine), event_bus=bus)
    await recorder.start(initial_input={"prompt": "Hello"})
    await (await kernel.execute(ExecutionRequest(prompt="Hello"))).result()
    recording = await recorder.stop()
    player = ReplayPlayer(recording, bus)

    is_valid, issues = await player.validate_recording()
    assert not is_valid
    assert any("recorder.middleware()" in str(i) for i in issues)
    with pytest.raises(ReplayValidationError, match="cannot be replayed deterministically") as info:
        await player.replay(ReplayMode.DETERMINISTIC)
    assert info.value.issues


async def test_runs_that_waited_for_a_human_are_not_reexecuted() -> None:
    bus = InMemoryEventBus()
    recorder = ReplayRecorder(bus, RunMetadata.create())
    holder: dict[str, RuntimeKernel] = {}

    async def approve(amount: int) -> str:
        """Needs approval."""
        ctx = current_execution()
        assert ctx is not None
        action = await holder["k"].actions.require_action(
            ActionSpec(job_id=str(ctx.job_id), type="approval", payload={"amount": amount})
        )
        raise ActionRequiredError(action)

    engine = ExecutionEngine(
        provider=MockProvider([MockResponse.tool_call("approve", {"amount": 5})]),
        middleware=[recorder.middleware()],
    )
    kernel = holder["k"] = RuntimeKernel(
        engine, Agent(engine=engine, tools=recorder.wrap_tools([approve])), event_bus=bus
    )
    await recorder.start(initial_input={"prompt": "pay"})
    handle = await kernel.execute(ExecutionRequest(prompt="pay"))
    async for event in handle.events():
        if event.type is T.JOB_STATUS_CHANGED:
            break
    await kernel.cancel(handle.job_id)
    recording = await recorder.stop()

    with pytest.raises(ReplayValidationError, match="waited for a human"):
        await ReplayPlayer(recording, bus).replay(ReplayMode.DETERMINISTIC)


async def test_several_jobs_need_a_job_id() -> None:
    bus = InMemoryEventBus()
    recorder = ReplayRecorder(bus, RunMetadata.create())
    engine = ExecutionEngine(provider=MockProvider(["one", "two"]), middleware=[recorder.middleware()])
    kernel = RuntimeKernel(engine, Agent(engine=engine), event_bus=bus)
    await recorder.start(initial_input={})
    first = await kernel.execute(ExecutionRequest(prompt="first"))
    await first.result()
    second = await kernel.execute(ExecutionRequest(prompt="second"))
    await second.result()
    recording = await recorder.stop()
    player = ReplayPlayer(recording, bus)

    assert recording.job_ids == [first.job_id, second.job_id]
    with pytest.raises(ReplayValidationError, match="pass job_id="):
        await player.replay(ReplayMode.DETERMINISTIC)
    with pytest.raises(ReplayValidationError, match="no events of job"):
        await player.replay(ReplayMode.DETERMINISTIC, job_id="job-nope")
    result = await player.replay(ReplayMode.DETERMINISTIC, job_id=second.job_id)
    assert result.success, result.divergence
    assert result.execution is not None and result.execution.content == "two"


async def test_kernel_factory_must_use_the_replay_engine() -> None:
    rec = await record_run(TOOL_RUN)
    live = ExecutionEngine(ForbiddenProvider())

    def wrong(engine: ExecutionEngine, agent: Agent, bus: Any) -> RuntimeKernel:
        return RuntimeKernel(live, agent, event_bus=bus)

    player = ReplayPlayer(rec.recording, InMemoryEventBus(), agent=rec.agent, kernel_factory=wrong)
    with pytest.raises(ReplayValidationError, match="kernel_factory"):
        await player.replay(ReplayMode.DETERMINISTIC)


# --- FAST, TIMED, step --------------------------------------------------------------------------------


async def test_fast_replay_republishes_every_event_under_a_fresh_job_id() -> None:
    rec = await record_run(TOOL_RUN)
    bus = InMemoryEventBus()
    seen: list[RuntimeEvent] = []
    await bus.subscribe(seen.append)

    result = await ReplayPlayer(rec.recording, bus).replay(ReplayMode.FAST)
    await bus.flush()

    originals = [e.event for e in rec.recording.events]
    assert isinstance(result, ReplayResult) and result.success
    assert result.events_replayed == len(originals) and result.events_per_second > 0
    new_job = result.job_ids[rec.job_id]
    assert new_job != rec.job_id
    assert [(e.type, e.data) for e in seen] == [(e.type, e.data) for e in originals]
    assert {e.job_id for e in seen} == {new_job}
    assert not {e.event_id for e in seen} & {e.event_id for e in originals}


async def test_fast_replay_can_preserve_ids() -> None:
    rec = await record_run(TOOL_RUN)
    bus = InMemoryEventBus()
    seen: list[RuntimeEvent] = []
    await bus.subscribe(seen.append)
    await ReplayPlayer(rec.recording, bus, preserve_ids=True).replay("fast")
    await bus.flush()
    assert seen == [e.event for e in rec.recording.events]


def _timed_recording(offsets_ms: list[float]) -> Recording:
    return Recording(
        metadata=RunMetadata(run_id="run-t"),
        events=[
            RecordedEvent(
                event=RuntimeEvent(type=T.PROGRESS, job_id="job-t", data={"i": i}), relative_timestamp_ms=ms
            )
            for i, ms in enumerate(offsets_ms)
        ],
    )


@pytest.mark.parametrize(("speed", "expected"), [(1.0, [0.1, 0.25]), (2.0, [0.05, 0.125])])
async def test_timed_replay_keeps_the_recorded_gaps(speed: float, expected: list[float]) -> None:
    now = [100.0]
    slept: list[float] = []
    published_at: list[float] = []

    async def sleep(delay: float) -> None:
        slept.append(delay)
        now[0] += delay

    bus = InMemoryEventBus()
    await bus.subscribe(lambda e: None)
    original_publish = bus.publish

    async def publish(event: RuntimeEvent) -> None:
        published_at.append(now[0])
        await original_publish(event)

    bus.publish = publish  # type: ignore[method-assign]
    player = ReplayPlayer(_timed_recording([0.0, 100.0, 350.0]), bus, sleep=sleep, clock=lambda: now[0])

    result = await player.replay(ReplayMode.TIMED, speed=speed)

    assert result.events_replayed == 3
    assert slept == pytest.approx(expected)
    assert [t - 100.0 for t in published_at] == pytest.approx([0.0, expected[0], expected[0] + expected[1]])


async def test_timed_replay_rejects_a_bad_speed_and_modes_are_checked() -> None:
    player = ReplayPlayer(_timed_recording([0.0]), InMemoryEventBus())
    with pytest.raises(ReplayValidationError, match="speed"):
        await player.replay(ReplayMode.TIMED, speed=0)
    with pytest.raises(ReplayValidationError, match="unknown replay mode 'slow'"):
        await player.replay("slow")


async def test_step_publishes_one_event_per_iteration() -> None:
    bus = InMemoryEventBus()
    seen: list[RuntimeEvent] = []
    await bus.subscribe(seen.append)
    player = ReplayPlayer(_timed_recording([0.0, 1.0, 2.0]), bus)
    counts: list[int] = []
    async for recorded in player.step():
        await bus.flush()
        counts.append(len(seen))
        assert seen[-1].data == recorded.event.data
    assert counts == [1, 2, 3]


# --- the format -----------------------------------------------------------------------------------------


async def test_save_and_load_round_trip(tmp_path: Path) -> None:
    rec = await record_run(TOOL_RUN)
    path = tmp_path / "run.replay.json"
    rec.recording.save(path)
    loaded = Recording.load(path)
    assert loaded.to_dict() == rec.recording.to_dict()
    assert loaded.fingerprints == rec.recording.fingerprints
    assert [e.compute_fingerprint() for e in loaded.events] == loaded.fingerprints
    assert list(tmp_path.iterdir()) == [path]


def _saved(**changes: Any) -> dict[str, Any]:
    data = _timed_recording([0.0]).to_dict()
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_saved(format_version=FORMAT_VERSION + 1), "newer than this agent-runtime reads"),
        (_saved(format_version=0), "unknown recording format_version 0"),
        (_saved(format_version="1"), "format_version must be an integer"),
        ({k: v for k, v in _saved().items() if k != "format_version"}, "no format_version"),
        (_saved(format="something-else"), "not an agent-runtime recording"),
        (_saved(events={}), "'events' must be a list"),
        (_saved(events=[{"event": {"type": "nope"}}]), r"events\[0\]"),
        (_saved(dropped_events=-1), "dropped_events"),
    ],
)
def test_unreadable_recordings_are_clear_errors(tmp_path: Path, data: dict[str, Any], message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ReplayValidationError, match=message) as info:
        Recording.load(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValidationError) and isinstance(info.value, AgentRuntimeError)


def test_invalid_json_and_constructor_checks() -> None:
    with pytest.raises(ReplayValidationError, match="not valid JSON"):
        Recording.from_json("{nope")
    with pytest.raises(ReplayValidationError, match="newer"):
        Recording(format_version=FORMAT_VERSION + 1, metadata=RunMetadata())
    with pytest.raises(ReplayValidationError, match="exactly one of 'result' or 'error'"):
        RecordedEvent(event=RuntimeEvent(type=T.MODEL_DONE), model_response={"chunks": []})
    with pytest.raises(ReplayValidationError, match="relative_timestamp_ms"):
        RecordedEvent(event=RuntimeEvent(type=T.PROGRESS), relative_timestamp_ms=-1)
    with pytest.raises(ReplayValidationError, match="config must be a dict"):
        RunMetadata(config=[])  # type: ignore[arg-type]


def test_run_metadata_defaults_to_installed_versions_and_round_trips() -> None:
    metadata = RunMetadata.create(model_version="m", config={"max_turns": 3}, tools=["a"])
    assert metadata.runtime_version and metadata.llm_client_version
    assert RunMetadata.from_dict(json.loads(json.dumps(metadata.to_dict()))) == metadata
    with pytest.raises(ReplayValidationError, match="tools"):
        RunMetadata(tools="abc")  # type: ignore[arg-type]


def test_fingerprints_ignore_ids_timestamps_and_durations() -> None:
    a = RuntimeEvent(type=T.TOOL_END, job_id="j1", data={"tool": "add", "duration_ms": 1.5})
    b = RuntimeEvent(type=T.TOOL_END, job_id="j2", data={"tool": "add", "duration_ms": 9.0})
    c = RuntimeEvent(type=T.TOOL_END, job_id="j1", data={"tool": "sub", "duration_ms": 1.5})
    assert EventFingerprint.of(a) == EventFingerprint.of(b) != EventFingerprint.of(c)
    result = {"tool": "add", "content": "3"}
    changed = {**result, "content": "4"}
    assert EventFingerprint.of(a, tool_result=result) != EventFingerprint.of(a, tool_result=changed)


async def test_recorder_state_errors() -> None:
    recorder = ReplayRecorder(InMemoryEventBus(), RunMetadata())
    with pytest.raises(ReplayStateError):
        await recorder.stop()
    await recorder.start()
    with pytest.raises(ReplayStateError):
        await recorder.start()
    recording = await recorder.stop()
    assert recording.events == [] and not recorder.recording
    with pytest.raises(ReplayStateError):
        await recorder.start()
    with pytest.raises(ReplayValidationError, match="event_bus"):
        ReplayRecorder(object(), RunMetadata())  # type: ignore[arg-type]


async def test_a_rerun_that_starts_waiting_for_a_human_is_cancelled_and_reported() -> None:
    rec = await record_run(TOOL_RUN)

    def needs_approval(engine: ExecutionEngine, agent: Agent, bus: Any) -> RuntimeKernel:
        policy = PolicyEngine()
        policy.add_rule(ToolPolicy("add", "require_approval"))
        return RuntimeKernel(engine, agent, event_bus=bus, policy_engine=policy)

    player = ReplayPlayer(rec.recording, InMemoryEventBus(), agent=rec.agent, kernel_factory=needs_approval)
    result = await player.replay(ReplayMode.DETERMINISTIC)

    assert result.execution is None  # cancelled instead of waiting forever
    divergence = result.divergence
    assert divergence is not None and divergence.index == index_of(rec.recording, T.TOOL_END)
    assert divergence.actual is not None and divergence.actual.event_type == "action.required"


async def test_retried_attempts_inside_the_recorder_are_not_replayed() -> None:
    bus = InMemoryEventBus()
    recorder = ReplayRecorder(bus, RunMetadata.create())
    slept: list[float] = []

    async def no_wait(delay: float) -> None:
        slept.append(delay)

    retry = RetryMiddleware(RetryPolicy(initial_delay=0.5, jitter=0), sleep=no_wait)
    provider = MockProvider(
        [ProviderError("overloaded"), MockResponse.tool_call("add", {"a": 1, "b": 2}), "3"]
    )
    engine = ExecutionEngine(provider=provider, middleware=[retry, recorder.middleware()])
    agent = Agent(engine=engine, tools=recorder.wrap_tools([add]))
    kernel = RuntimeKernel(engine, agent, event_bus=bus)
    await recorder.start(initial_input={"prompt": "1 + 2?"})
    await (await kernel.execute(ExecutionRequest(prompt="1 + 2?"))).result()
    recording = await recorder.stop()

    assert provider.call_count == 3 and slept == [0.5]
    responses = [e.response for e in recording.events if e.response is not None]
    assert [r["error"] for r in responses] == [None, None]
    assert "request" in responses[0]
    result = await ReplayPlayer(recording, InMemoryEventBus()).replay(ReplayMode.DETERMINISTIC)
    assert result.success, result.divergence
