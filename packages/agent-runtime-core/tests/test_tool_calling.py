"""ToolCallingAgent: the Django seed's WeatherAgent, streaming, tool events, limits, cancellation.

Also the seed README's "Using Tools" ToolAgent (a hand-written loop over ``llm.generate``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from agent_runtime_core import (
    AgentRuntime,
    EventType,
    RunContext,
    RunResult,
    Tool,
    ToolCallingAgent,
    ToolRegistry,
)
from agent_runtime_core.config import reset_config
from agent_runtime_core.llm import LLMClient, reset_llm_clients
from agent_runtime_core.testing import MockLLMClient, create_test_context, run_agent_test
from llm_client import (
    ExecutionEngine,
    MaxTurnsExceededError,
    MockProvider,
    MockResponse,
    RateLimitError,
    StreamInterruptedError,
    ToolCall,
)


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    reset_llm_clients()
    reset_config()
    yield
    reset_llm_clients()
    reset_config()


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def call(name: str, arguments: dict[str, Any] | str, id: str = "c1") -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": id, "function": {"name": name, "arguments": arguments}}],
    }


# --- the Django seed's "Option 2: ToolCallingAgent", as written ------------------------------------


class WeatherAgent(ToolCallingAgent):
    @property
    def key(self) -> str:
        return "weather-agent"

    @property
    def system_prompt(self) -> str:
        return "You are a helpful weather assistant. Use the get_weather tool to answer questions."

    @property
    def tools(self) -> ToolRegistry:
        registry = ToolRegistry()
        registry.register(
            Tool(
                name="get_weather",
                description="Get the current weather for a location",
                parameters={
                    "type": "object",
                    "properties": {
                        "location": {"type": "string", "description": "City name"},
                    },
                    "required": ["location"],
                },
                handler=self._get_weather,
            )
        )
        return registry

    async def _get_weather(self, location: str) -> str:
        # Your weather API call here
        return f"The weather in {location} is sunny, 72°F"


async def test_seed_weather_agent_runs_the_tool_loop() -> None:
    mock = MockLLMClient(
        responses=[
            call("get_weather", {"location": "Paris"}),
            {"role": "assistant", "content": "Sunny in Paris."},
        ]
    )
    ctx = create_test_context(input_messages=user("Weather in Paris?"))
    result = await run_agent_test(WeatherAgent(), ctx)

    assert result.final_output == {"response": "Sunny in Paris."}
    assert result.error is None
    first_request = mock.calls[0]
    assert first_request.messages[0] == {
        "role": "system",
        "content": "You are a helpful weather assistant. Use the get_weather tool to answer questions.",
    }
    assert first_request.messages[1:] == tuple(user("Weather in Paris?"))
    assert [t["function"]["name"] for t in first_request.tools] == ["get_weather"]
    assert mock.calls[1].messages[-1] == {
        "role": "tool",
        "tool_call_id": "c1",
        "content": "The weather in Paris is sunny, 72°F",
    }
    assert result.final_messages is not None
    assert [m["role"] for m in result.final_messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert result.usage["requests"] == 2
    assert result.usage["input_tokens"] > 0

    assert ctx.event_types() == [
        "tool.call",
        "tool.result",
        "assistant.delta",
        "assistant.delta",
        "assistant.delta",
        "assistant.message",
    ]
    tool_call, tool_result = ctx.events_of("tool.call")[0], ctx.events_of("tool.result")[0]
    assert tool_call == {
        "tool_call_id": "c1",
        "tool": "get_weather",
        "name": "get_weather",
        "arguments": '{"location": "Paris"}',
    }
    assert tool_result["result"] == "The weather in Paris is sunny, 72°F"
    assert tool_result["tool_call_id"] == "c1"
    assert "is_error" not in tool_result
    assert ctx.events_of("assistant.message") == [{"content": "Sunny in Paris.", "role": "assistant"}]


async def test_tool_events_have_the_same_shape_as_execute_with_events() -> None:
    agent = WeatherAgent()
    MockLLMClient(responses=[call("get_weather", {"location": "Oslo"}), "done"])
    ctx = create_test_context(input_messages=user("?"))
    await run_agent_test(agent, ctx)

    reference = create_test_context()
    await agent.tools.execute_with_events(ToolCall("c1", "get_weather", '{"location": "Oslo"}'), reference)
    ours = [(t, sorted(p)) for t, p in ctx.events if t in ("tool.call", "tool.result")]
    theirs = [(t, sorted(p)) for t, p in reference.events]
    assert ours == theirs
    for (_, a), (_, b) in zip(ctx.events[:2], reference.events, strict=True):
        assert {k: v for k, v in a.items() if k != "duration_ms"} == {
            k: v for k, v in b.items() if k != "duration_ms"
        }


async def test_deltas_stream_token_by_token_in_order() -> None:
    words = [f"w{i} " for i in range(200)]
    MockLLMClient(responses=[MockResponse.text("".join(words), chunks=words)])
    ctx = create_test_context(input_messages=user("talk"))
    result = await run_agent_test(WeatherAgent(), ctx)
    deltas = ctx.events_of(EventType.ASSISTANT_DELTA)
    assert [d["delta"] for d in deltas] == words
    assert ctx.event_types()[-1] == "assistant.message"
    assert result.final_output["response"] == "".join(words)


async def test_tool_failures_go_back_to_the_model_and_the_run_continues() -> None:
    calls: list[str] = []

    class Flaky(ToolCallingAgent):
        key = "flaky"

        @property
        def tools(self) -> ToolRegistry:
            def explode(x: int) -> int:
                """Always fails."""
                calls.append("explode")
                raise RuntimeError("kaboom")

            def double(x: int) -> int:
                """Doubles."""
                calls.append("double")
                return 2 * x

            return ToolRegistry([explode, double])

    mock = MockLLMClient(
        responses=[
            call("double", {"x": "two"}, id="bad-args"),  # does not fit the schema
            call("double", "{not json", id="bad-json"),
            call("explode", {"x": 1}, id="raises"),
            call("missing_tool", {}, id="unknown"),
            call("double", {"x": 2}, id="good"),
            "finally 4",
        ]
    )
    ctx = create_test_context(input_messages=user("go"))
    result = await run_agent_test(Flaky(), ctx)
    assert result.final_output == {"response": "finally 4"}
    assert calls == ["explode", "double"]  # bad arguments never reach the handler

    tool_messages = [s.messages[-1] for s in mock.calls[1:]]
    assert [m["tool_call_id"] for m in tool_messages] == ["bad-args", "bad-json", "raises", "unknown", "good"]
    assert "argument 'x' must be integer" in tool_messages[0]["content"]
    assert "not valid JSON" in tool_messages[1]["content"] or "JSON" in tool_messages[1]["content"]
    assert "kaboom" in tool_messages[2]["content"]
    assert "unknown tool 'missing_tool'" in tool_messages[3]["content"]
    assert tool_messages[4]["content"] == "4"

    results = ctx.events_of("tool.result")
    assert [r.get("is_error", False) for r in results] == [True, True, True, True, False]
    assert results[2]["error"].startswith("Error: ") and results[2]["result"] is None
    assert results[4]["result"] == 4  # JSON value, not its text


async def test_max_iterations_raises_max_turns_exceeded_with_the_partial_run() -> None:
    class Looping(WeatherAgent):
        max_iterations = 3

    MockLLMClient(responses=[call("get_weather", {"location": "X"}, id=f"c{i}") for i in range(3)])
    ctx = create_test_context(input_messages=user("loop"))
    with pytest.raises(MaxTurnsExceededError, match=r"'weather-agent'.*max_turns=3") as info:
        await run_agent_test(Looping(), ctx)
    assert not info.value.retryable
    partial = info.value.result
    assert [m["role"] for m in partial.messages].count("tool") == 3  # type: ignore[attr-defined]
    assert len(ctx.events_of("tool.result")) == 3
    assert ctx.events_of("assistant.message") == []


async def test_metadata_max_turns_lowers_the_limit() -> None:
    MockLLMClient(responses=[call("get_weather", {"location": "X"}, id="a"), "never reached"])
    ctx = create_test_context(input_messages=user("loop"), metadata={"max_turns": 1})
    with pytest.raises(MaxTurnsExceededError, match="max_turns=1"):
        await run_agent_test(WeatherAgent(), ctx)
    # a larger value than the agent's own limit does not raise it
    MockLLMClient(responses=[call("get_weather", {"location": "X"}, id=f"c{i}") for i in range(10)])
    ctx = create_test_context(input_messages=user("loop"), metadata={"max_turns": 50})
    with pytest.raises(MaxTurnsExceededError, match="max_turns=10"):
        await run_agent_test(WeatherAgent(), ctx)


async def test_cancellation_stops_between_turns() -> None:
    mock = MockLLMClient(responses=[call("get_weather", {"location": "X"}), "not reached"])
    ctx = create_test_context(input_messages=user("go"), cancel_on=EventType.TOOL_RESULT)
    result = await run_agent_test(WeatherAgent(), ctx)
    assert mock.call_count == 1  # no model call after the cancelled turn
    assert result.final_output == {"response": None, "cancelled": True}
    assert result.error is not None and result.error.type == "RunCancelled"
    assert result.final_messages is not None
    assert [m["role"] for m in result.final_messages] == ["system", "user", "assistant", "tool"]
    assert result.usage["requests"] == 1
    assert ctx.event_types() == ["tool.call", "tool.result"]


async def test_cancelled_before_start_makes_no_model_call() -> None:
    mock = MockLLMClient(responses=["unused"])
    ctx = create_test_context(input_messages=user("go"))
    ctx.cancel()
    result = await run_agent_test(WeatherAgent(), ctx)
    assert mock.call_count == 0
    assert result.final_output["cancelled"] is True


async def test_cancelled_during_a_model_turn_skips_its_tool_calls() -> None:
    ran: list[str] = []

    class Agent(WeatherAgent):
        async def _get_weather(self, location: str) -> str:
            ran.append(location)
            return "sunny"

    MockLLMClient(
        responses=[
            MockResponse(
                content="Let me check. ", tool_calls=[ToolCall("c1", "get_weather", '{"location": "X"}')]
            )
        ]
    )
    ctx = create_test_context(input_messages=user("go"), cancel_on=EventType.ASSISTANT_DELTA)
    result = await run_agent_test(Agent(), ctx)
    assert ran == []
    assert result.final_output["cancelled"] is True
    assert ctx.events_of("tool.call") == []


async def test_stream_errors_raise_the_typed_error() -> None:
    MockLLMClient(responses=[RateLimitError("slow down", status_code=429)])
    with pytest.raises(RateLimitError) as info:
        await run_agent_test(WeatherAgent(), create_test_context(input_messages=user("hi")))
    assert info.value.retryable  # the runner may retry it

    MockLLMClient(responses=[MockResponse.text("one two three", stream_error_after=2)])
    ctx = create_test_context(input_messages=user("hi"))
    with pytest.raises(StreamInterruptedError):
        await run_agent_test(WeatherAgent(), ctx)
    assert [d["delta"] for d in ctx.events_of("assistant.delta")] == ["one ", "two "]


async def test_tools_property_is_read_once_per_agent() -> None:
    reads: list[int] = []

    class Counting(WeatherAgent):
        @property
        def tools(self) -> ToolRegistry:
            reads.append(1)
            return super().tools

    agent = Counting()
    MockLLMClient(responses=["a", "b", "c"])
    for _ in range(3):
        await run_agent_test(agent, create_test_context(input_messages=user("hi")))
    assert reads == [1]


async def test_ctx_tools_are_added_but_the_agents_own_tool_wins() -> None:
    def get_weather(location: str) -> str:
        """An impostor."""
        return "rain from ctx"

    def get_time(zone: str) -> str:
        """Time in a zone."""
        return f"noon in {zone}"

    get_time_tool = Tool.from_function(get_time)
    get_time_tool.event_payload = {"source": "ctx"}  # type: ignore[attr-defined]
    mock = MockLLMClient(
        responses=[
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "a", "function": {"name": "get_weather", "arguments": {"location": "Rome"}}},
                    {"id": "b", "function": {"name": "get_time", "arguments": {"zone": "CET"}}},
                ],
            },
            "done",
        ]
    )
    ctx = create_test_context(input_messages=user("?"), tools=[get_weather, get_time_tool])
    await run_agent_test(WeatherAgent(), ctx)
    assert sorted(t["function"]["name"] for t in mock.calls[0].tools) == ["get_time", "get_weather"]
    tool_messages = {m["tool_call_id"]: m["content"] for m in mock.calls[1].messages if m["role"] == "tool"}
    assert tool_messages == {"a": "The weather in Rome is sunny, 72°F", "b": "noon in CET"}
    assert [e.get("source") for e in ctx.events_of("tool.call")] == [None, "ctx"]


async def test_pinned_client_model_and_request_options() -> None:
    provider = MockProvider(["pinned answer"], model="provider-default")

    class Pinned(WeatherAgent):
        model = "special-model"
        temperature = 0.2
        max_tokens = 50

    agent = Pinned()
    agent.llm_client = LLMClient(engine=ExecutionEngine(provider))
    MockLLMClient(responses=[])  # the default mock is not used: the pinned client is
    result = await run_agent_test(agent, create_test_context(input_messages=user("hi")))
    assert result.final_output == {"response": "pinned answer"}
    spec = provider.calls[0]
    assert (spec.model, spec.temperature, spec.max_tokens) == ("special-model", 0.2, 50)


async def test_default_model_comes_from_the_client() -> None:
    mock = MockLLMClient(responses=["x"], default_model="mock-4o")
    await run_agent_test(WeatherAgent(), create_test_context(input_messages=user("hi")))
    assert mock.calls[0].model == "mock-4o"


async def test_an_agent_without_tools_or_prompt_is_a_plain_chat() -> None:
    class Plain(ToolCallingAgent):
        key = "plain"

    mock = MockLLMClient(responses=["hello"])
    result = await run_agent_test(Plain(), create_test_context(input_messages=user("hi")))
    assert result.final_output == {"response": "hello"}
    assert mock.calls[0].messages == tuple(user("hi"))
    assert mock.calls[0].tools == ()


# --- the seed README's "Using Tools" block, as written ---------------------------------------------


# Define tools
def get_weather(location: str) -> str:
    """Get the current weather for a location."""
    return f"The weather in {location} is sunny, 72°F"


def search_web(query: str) -> str:
    """Search the web for information."""
    return f"Search results for: {query}"


# Create a tool registry
tools = ToolRegistry()
tools.register(Tool.from_function(get_weather))
tools.register(Tool.from_function(search_web))


class ToolAgent(AgentRuntime):
    @property
    def key(self) -> str:
        return "tool-agent"

    async def run(self, ctx: RunContext) -> RunResult:
        from agent_runtime_core.llm import get_llm_client

        llm = get_llm_client()

        messages = list(ctx.input_messages)

        while True:
            # Generate with tools
            response = await llm.generate(
                messages,
                tools=tools.to_openai_format(),
            )

            messages.append(response.message)

            # Check for tool calls
            if not response.tool_calls:
                break

            # Execute tools
            for tool_call in response.tool_calls:
                result = await tools.execute(
                    tool_call["function"]["name"],
                    tool_call["function"]["arguments"],
                )

                await ctx.emit(
                    EventType.TOOL_RESULT,
                    {
                        "tool_call_id": tool_call["id"],
                        "result": result,
                    },
                )

                messages.append(
                    {
                        "role": "tool",
                        "tool_call_id": tool_call["id"],
                        "content": str(result),
                    }
                )

        return RunResult(
            final_output={"response": response.message["content"]},
            final_messages=messages,
        )


async def test_seed_tool_agent_block() -> None:
    mock = MockLLMClient(
        responses=[
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "w", "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'}},
                    {"id": "s", "function": {"name": "search_web", "arguments": '{"query": "Paris events"}'}},
                ],
            },
            {"role": "assistant", "content": "Sunny, and there is a jazz festival."},
        ]
    )
    ctx = create_test_context(input_messages=user("What's on in Paris?"))
    result = await run_agent_test(ToolAgent(), ctx)
    assert result.final_output == {"response": "Sunny, and there is a jazz festival."}
    assert ctx.events == [
        (EventType.TOOL_RESULT, {"tool_call_id": "w", "result": "The weather in Paris is sunny, 72°F"}),
        (EventType.TOOL_RESULT, {"tool_call_id": "s", "result": "Search results for: Paris events"}),
    ]
    assert mock.calls[0].tools == tuple(tools.to_openai_format())
    assert [m["role"] for m in mock.calls[1].messages] == ["user", "assistant", "tool", "tool"]


async def test_cancellation_stops_a_streaming_answer_between_tokens() -> None:
    words = [f"w{i} " for i in range(100)]
    MockLLMClient(responses=[MockResponse.text("".join(words), chunks=words)])
    ctx = create_test_context(input_messages=user("talk"), cancel_on=EventType.ASSISTANT_DELTA)
    result = await run_agent_test(WeatherAgent(), ctx)  # returns: cancellation is not an exception
    assert [d["delta"] for d in ctx.events_of("assistant.delta")] == ["w0 "]
    assert result.final_output == {"response": None, "cancelled": True}
    assert ctx.events_of("assistant.message") == []


# --- under the AgentRunner, with DefaultRunContext and the in-memory event bus -----------------------------


async def test_under_the_runner_success_and_events() -> None:
    from agent_runtime_core import AgentRunner, RunnerConfig
    from agent_runtime_core.events.memory import InMemoryEventBus
    from agent_runtime_core.llm import use_llm_client
    from agent_runtime_core.state.memory import InMemoryStateStore

    bus = InMemoryEventBus()
    runner = AgentRunner(RunnerConfig(max_retries=0), event_bus=bus, state_store=InMemoryStateStore())
    mock = MockLLMClient(responses=[call("get_weather", {"location": "Paris"}), "Sunny in Paris."])
    with use_llm_client(mock):
        result = await runner.execute(
            agent=WeatherAgent(), run_id="run-weather", input_data={"messages": user("Paris?")}
        )
    assert result.error is None
    assert result.final_output == {"response": "Sunny in Paris."}
    types = [e.event_type for e in await bus.get_events("run-weather")]
    assert types[0] == "run.started" and types[-1] == "run.succeeded"
    assert types[1:-1] == [
        "tool.call",
        "tool.result",
        "assistant.delta",
        "assistant.delta",
        "assistant.delta",
        "assistant.message",
    ]


async def test_under_the_runner_cancel_ends_with_run_cancelled() -> None:
    from agent_runtime_core import AgentRunner, RunnerConfig
    from agent_runtime_core.events.memory import InMemoryEventBus
    from agent_runtime_core.llm import use_llm_client
    from agent_runtime_core.state.memory import InMemoryStateStore

    bus = InMemoryEventBus()
    runner = AgentRunner(RunnerConfig(max_retries=0), event_bus=bus, state_store=InMemoryStateStore())

    class Cancelling(WeatherAgent):
        async def _get_weather(self, location: str) -> str:
            assert runner.cancel("run-cancel", "user pressed stop")
            return "sunny"

    mock = MockLLMClient(responses=[call("get_weather", {"location": "Paris"}), "never"])
    with use_llm_client(mock):
        result = await runner.execute(
            agent=Cancelling(), run_id="run-cancel", input_data={"messages": user("Paris?")}
        )
    assert mock.call_count == 1
    assert result.error is not None
    types = [e.event_type for e in await bus.get_events("run-cancel")]
    assert types[-1] == "run.cancelled"
    assert "assistant.message" not in types
