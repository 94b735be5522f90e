from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest
from llm_client import (
    Agent,
    AgentDone,
    AgentInterrupted,
    ExecutionEngine,
    MaxTurnsExceededError,
    MockProvider,
    MockResponse,
    ProviderError,
    RequestContext,
    RequestSpec,
    StreamError,
    TextDelta,
    Tool,
    ToolCall,
    ToolEnd,
    ToolInterrupt,
    ToolStart,
    TurnComplete,
    Usage,
)


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def explode(reason: str) -> str:
    """Always fails."""
    raise RuntimeError(f"kaboom: {reason}")


def agent_with(responses: list, tools: list | None = None, **kw) -> tuple[Agent, MockProvider]:  # type: ignore[type-arg]
    provider = MockProvider(responses, model="gpt-4o-mini")
    return Agent(
        engine=ExecutionEngine(provider=provider), tools=tools if tools is not None else [add], **kw
    ), provider


async def test_tool_loop_answers_and_reports_usage_turns_and_tool_calls() -> None:
    u = Usage(input_tokens=100, output_tokens=10)
    agent, provider = agent_with(
        [
            MockResponse.tool_call("add", {"a": 1, "b": 2}, id="c1", usage=u),
            MockResponse.text("3", usage=u),
        ]
    )
    result = await agent.run("What is 1 + 2?")
    assert result.content == "3"
    assert result.turns == 2
    assert [(o.call.name, o.content, o.error) for o in result.tool_calls] == [("add", "3", None)]
    assert result.usage.input_tokens == 200 and result.usage.output_tokens == 20
    assert result.usage.cost == Decimal("0.000042")  # 200 * 0.15/M + 20 * 0.60/M
    # the second request carried the assistant tool call and our tool result
    second = provider.calls[1].messages
    assert second[-2]["tool_calls"][0]["function"]["name"] == "add"
    assert second[-1] == {"role": "tool", "tool_call_id": "c1", "content": "3"}
    assert provider.calls[0].tools[0]["function"]["name"] == "add"


async def test_system_prompt_is_prepended() -> None:
    agent, provider = agent_with(["hi"], system_prompt="Be brief.")
    await agent.run("hello")
    assert provider.calls[0].messages[0] == {"role": "system", "content": "Be brief."}


async def test_parallel_tool_calls_run_concurrently() -> None:
    both_started = asyncio.Event()
    started = 0

    async def wait_for_peer(name: str) -> str:
        """Returns only once both calls have started: deadlocks if run one after the other."""
        nonlocal started
        started += 1
        if started == 2:
            both_started.set()
        await both_started.wait()
        return name

    agent, _ = agent_with(
        [
            MockResponse.tool_calls([("wait_for_peer", {"name": "x"}), ("wait_for_peer", {"name": "y"})]),
            "done",
        ],
        tools=[wait_for_peer],
    )
    async with asyncio.timeout(5):
        result = await agent.run("go")
    assert [o.content for o in result.tool_calls] == ["x", "y"]


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (ToolCall("c1", "nope", "{}"), "unknown tool 'nope'"),
        (ToolCall("c1", "add", '{"a": 1, "b": '), "not valid JSON"),
        (ToolCall("c1", "add", '{"a": 1}'), "b"),
        (ToolCall("c1", "add", '{"a": "one", "b": 2}'), "a"),
        (ToolCall("c1", "explode", '{"reason": "test"}'), "kaboom: test"),
    ],
)
async def test_broken_tool_calls_become_tool_messages_and_the_run_continues(
    call: ToolCall, expected: str
) -> None:
    agent, provider = agent_with([[call], "recovered"], tools=[add, explode])
    result = await agent.run("go")
    assert result.content == "recovered"
    outcome = result.tool_calls[0]
    assert outcome.error is not None and expected in outcome.error
    tool_msg = provider.calls[1].messages[-1]
    assert tool_msg["role"] == "tool" and expected in tool_msg["content"]
    if call.name == "nope":
        assert "add" in tool_msg["content"]  # tells the model what exists


async def test_max_turns_raises_with_the_partial_result() -> None:
    loop_forever = [MockResponse.tool_call("add", {"a": 1, "b": 1})] * 3
    agent, _ = agent_with(loop_forever, max_turns=3)
    with pytest.raises(MaxTurnsExceededError, match="max_turns=3") as info:
        await agent.run("go")
    partial = info.value.result
    assert partial.turns == 3 and len(partial.tool_calls) == 3


async def test_provider_error_ends_the_run() -> None:
    agent, _ = agent_with([ProviderError("down")])
    with pytest.raises(ProviderError):
        await agent.run("go")


async def test_stream_yields_tokens_tool_events_and_one_terminal() -> None:
    agent, _ = agent_with(
        [MockResponse.tool_call("add", {"a": 2, "b": 3}), MockResponse.text("the answer is 5")]
    )
    events = [e async for e in agent.stream("2+3?")]
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("ToolStart") < kinds.index("ToolEnd") < kinds.index("TextDelta")
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "the answer is 5"
    assert sum(isinstance(e, TurnComplete) for e in events) == 2
    assert (
        isinstance(events[-1], AgentDone)
        and sum(isinstance(e, (AgentDone, StreamError)) for e in events) == 1
    )
    done = events[-1].result
    assert done.content == "the answer is 5" and done.turns == 2
    end = next(e for e in events if isinstance(e, ToolEnd))
    start = next(e for e in events if isinstance(e, ToolStart))
    assert end.outcome.content == "5" and start.call.name == "add"


async def test_stream_ends_with_error_event_on_provider_failure() -> None:
    agent, _ = agent_with([ProviderError("down")])
    events = [e async for e in agent.stream("go")]
    assert len(events) == 1 and isinstance(events[0], StreamError)


async def test_stream_max_turns_is_a_terminal_error() -> None:
    agent, _ = agent_with([MockResponse.tool_call("add", {"a": 1, "b": 1})] * 2, max_turns=2)
    events = [e async for e in agent.stream("go")]
    assert isinstance(events[-1], StreamError) and isinstance(events[-1].error, MaxTurnsExceededError)


async def test_context_reaches_the_engine() -> None:
    seen: list[RequestSpec] = []

    def handler(spec: RequestSpec) -> str:
        seen.append(spec)
        return "ok"

    agent = Agent(engine=ExecutionEngine(provider=MockProvider(handler=handler)), use_middleware=True)
    ctx = RequestContext(scope_id="tenant-123", max_tokens=10)
    with pytest.raises(Exception, match="budget"):
        await agent.run("x" * 1000, context=ctx)
    assert seen == []


async def test_use_middleware_installs_the_production_chain() -> None:
    agent = Agent(engine=ExecutionEngine(provider=MockProvider(["ok"])), use_middleware=True)
    names = [type(m).__name__ for m in agent.engine.middleware]
    assert names == [
        "TelemetryMiddleware",
        "LoggingMiddleware",
        "BudgetMiddleware",
        "RetryMiddleware",
        "TimeoutMiddleware",
    ]


async def test_tools_accept_tool_objects_and_results_are_json() -> None:
    lookup = Tool.from_function(lambda_city_info)
    agent, provider = agent_with(
        [MockResponse.tool_call("lambda_city_info", {"city": "Oslo"}), "ok"], tools=[lookup]
    )
    await agent.run("go")
    content = provider.calls[1].messages[-1]["content"]
    assert json.loads(content) == {"city": "Oslo", "population": 700000}


def lambda_city_info(city: str) -> dict[str, object]:
    """City facts."""
    return {"city": city, "population": 700000}


def test_agent_requires_engine_or_provider() -> None:
    with pytest.raises(TypeError):
        Agent()
    assert Agent(provider=MockProvider(["x"])).run_sync("hi").content == "x"


class NeedsApproval(ToolInterrupt):
    pass


async def test_tool_interrupt_pauses_the_run_and_resumes_without_rerunning_done_calls() -> None:
    executed: list[str] = []

    def lookup(city: str) -> str:
        """Look a city up."""
        executed.append(city)
        return f"{city}: ok"

    def deploy(target: str) -> str:
        """Deploy (needs a human)."""
        raise NeedsApproval(f"approve deploy to {target}?")

    provider = MockProvider(
        [MockResponse.tool_calls([("lookup", {"city": "Oslo"}), ("deploy", {"target": "prod"})]), "deployed"],
        model="gpt-4o-mini",
    )
    agent = Agent(engine=ExecutionEngine(provider=provider), tools=[lookup, deploy])
    with pytest.raises(AgentInterrupted) as info:
        await agent.run("ship it")
    paused = info.value
    assert isinstance(paused.interrupt, NeedsApproval)
    assert [c.name for c in paused.pending] == ["deploy"]
    assert executed == ["Oslo"] and provider.call_count == 1
    state = json.loads(json.dumps(paused.to_state()))  # persistable
    assert state["pending"][0]["name"] == "deploy"

    resumed = paused.resume_messages({paused.pending[0].id: "approved by alice"})
    result = await agent.run(resumed)
    assert result.content == "deployed"
    assert executed == ["Oslo"]  # the finished call was not executed again
    tool_msgs = [m for m in provider.calls[1].messages if m["role"] == "tool"]
    assert [m["content"] for m in tool_msgs] == ["Oslo: ok", "approved by alice"]


async def test_stream_ends_with_the_interrupt_as_its_terminal_event() -> None:
    def deploy(target: str) -> str:
        """Deploy."""
        raise NeedsApproval("approve?")

    agent, _ = agent_with([MockResponse.tool_call("deploy", {"target": "prod"})], tools=[deploy])
    events = [e async for e in agent.stream("go")]
    assert isinstance(events[-1], StreamError) and isinstance(events[-1].error, AgentInterrupted)


def test_resume_messages_requires_every_pending_result() -> None:
    paused = AgentInterrupted(
        NeedsApproval("x"),
        messages=[{"role": "assistant", "content": None, "tool_calls": [ToolCall("c1", "f").to_dict()]}],
        completed={},
        pending=[ToolCall("c1", "f")],
    )
    with pytest.raises(ValueError, match="c1"):
        paused.resume_messages({})
