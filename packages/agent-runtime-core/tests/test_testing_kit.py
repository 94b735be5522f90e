"""The testing kit: MockRunContext, MockLLMClient, create_test_context, run_agent_test.

Includes the seed README's "Creating an Agent" and "Testing" blocks as written.
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
    get_runtime,
    register_runtime,
)
from agent_runtime_core.config import ConfigurationError, configure, reset_config
from agent_runtime_core.llm import LLMClient, get_llm_client, reset_llm_clients, use_llm_client
from agent_runtime_core.registry import clear_registry
from agent_runtime_core.testing import (
    MockLLMClient,
    MockRunContext,
    create_test_context,
    run_agent_test,
)
from agent_runtime_core.tools import ToolRegistry
from llm_client import MockExhaustedError, RateLimitError


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    reset_llm_clients()
    reset_config()
    clear_registry()
    yield
    reset_llm_clients()
    reset_config()
    clear_registry()


# --- the seed's "Creating an Agent" block, as written --------------------------------------------


class MyAgent(AgentRuntime):
    """A simple conversational agent."""

    @property
    def key(self) -> str:
        return "my-agent"

    async def run(self, ctx: RunContext) -> RunResult:
        # Access input messages
        messages = ctx.input_messages

        # Get an LLM client
        from agent_runtime_core.llm import get_llm_client

        llm = get_llm_client()

        # Generate a response
        response = await llm.generate(messages)

        # Emit events for observability
        await ctx.emit(
            EventType.ASSISTANT_MESSAGE,
            {
                "content": response.message["content"],
            },
        )

        # Return the result
        return RunResult(
            final_output={"response": response.message["content"]},
            final_messages=[response.message],
        )


async def test_seed_testing_block_as_written() -> None:
    # Register the agent (the seed's "Creating an Agent" block)
    register_runtime(MyAgent())
    assert isinstance(get_runtime("my-agent"), MyAgent)

    # Create a mock context
    ctx = create_test_context(input_messages=[{"role": "user", "content": "Hello!"}])

    # Create a mock LLM client with predefined responses
    mock_llm = MockLLMClient(responses=[{"role": "assistant", "content": "Hi there!"}])

    # Run your agent
    result = await run_agent_test(MyAgent(), ctx)
    assert result.final_output["response"] == "Hi there!"

    # ... and what happened around it
    assert ctx.events == [(EventType.ASSISTANT_MESSAGE, {"content": "Hi there!"})]
    assert result.final_messages == [{"role": "assistant", "content": "Hi there!"}]
    assert mock_llm.call_count == 1
    assert mock_llm.calls[0].messages == ({"role": "user", "content": "Hello!"},)


async def test_run_agent_test_uses_the_most_recent_mock_and_restores_the_default() -> None:
    MockLLMClient(responses=[{"role": "assistant", "content": "old"}])
    newest = MockLLMClient(responses=[{"role": "assistant", "content": "new"}])
    ctx = create_test_context(input_messages=[{"role": "user", "content": "Hello!"}])
    result = await run_agent_test(MyAgent(), ctx)
    assert result.final_output == {"response": "new"}
    assert newest.call_count == 1
    # Outside run_agent_test the configured provider is back (default "openai").
    assert get_llm_client().provider_name == "openai"


async def test_run_agent_test_with_an_explicit_client_wins_over_the_current_mock() -> None:
    MockLLMClient(responses=[])  # would raise MockExhaustedError if used
    explicit = MockLLMClient(responses=["explicit"])
    MockLLMClient(responses=[])  # the current mock now, unused
    ctx = create_test_context(input_messages=[{"role": "user", "content": "Hello!"}])
    result = await run_agent_test(MyAgent(), ctx, llm_client=explicit)
    assert result.final_output == {"response": "explicit"}


async def test_run_agent_test_without_any_client_runs_against_the_default() -> None:
    class NoModel(AgentRuntime):
        @property
        def key(self) -> str:
            return "no-model"

        async def run(self, ctx: RunContext) -> RunResult:
            return RunResult(final_output={"n": len(ctx.input_messages)})

    result = await run_agent_test(NoModel())  # a fresh empty context
    assert result.final_output == {"n": 0}


async def test_agent_errors_propagate_from_run_agent_test() -> None:
    MockLLMClient(responses=[RateLimitError("slow down")])
    ctx = create_test_context(input_messages=[{"role": "user", "content": "Hello!"}])
    with pytest.raises(RateLimitError, match="slow down"):
        await run_agent_test(MyAgent(), ctx)


async def test_exhausted_script_says_so() -> None:
    MockLLMClient(responses=[{"role": "assistant", "content": "only one"}])
    ctx = create_test_context(input_messages=[{"role": "user", "content": "Hello!"}])
    await run_agent_test(MyAgent(), ctx)
    with pytest.raises(MockExhaustedError, match="1 scripted response"):
        await run_agent_test(MyAgent(), ctx)


# --- MockLLMClient -----------------------------------------------------------------------------------


async def test_mock_client_is_an_llm_client_and_speaks_tool_calls() -> None:
    mock = MockLLMClient(
        responses=[
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"function": {"name": "lookup", "arguments": {"q": "x"}}},  # no id: assigned
                    {"id": "mine", "type": "function", "function": {"name": "other", "arguments": "{}"}},
                ],
            },
            "plain string",
        ]
    )
    assert isinstance(mock, LLMClient)
    first = await mock.generate([{"role": "user", "content": "go"}])
    assert first.content is None
    assert [c.id for c in first.tool_calls] == ["call_1", "mine"]
    assert first.tool_calls[0]["function"]["name"] == "lookup"
    assert first.tool_calls[0].arguments == '{"q": "x"}'
    assert first.message["tool_calls"][1]["id"] == "mine"
    second = await mock.generate("next")
    assert second.content == "plain string"
    mock.add_response({"role": "assistant", "content": "added later"})
    assert (await mock.generate("again")).content == "added later"


def test_mock_client_rejects_what_it_cannot_script() -> None:
    with pytest.raises(TypeError, match="must be a list"):
        MockLLMClient(responses={"role": "assistant", "content": "Hi"})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="assistant messages"):
        MockLLMClient(responses=[{"role": "user", "content": "Hi"}])
    with pytest.raises(TypeError, match="needs a name"):
        MockLLMClient(responses=[{"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}])


async def test_mock_client_handler_mode_answers_per_request() -> None:
    mock = MockLLMClient(handler=lambda spec: f"echo: {spec.messages[-1]['content']}")
    assert (await mock.generate("ping")).content == "echo: ping"
    assert (await mock.generate("pong")).content == "echo: pong"


async def test_model_provider_mock_resolves_to_the_current_mock() -> None:
    configure(model_provider="mock")
    with pytest.raises(ConfigurationError, match="MockLLMClient"):
        get_llm_client()
    mock = MockLLMClient(responses=["hi"])
    assert get_llm_client() is mock
    reset_llm_clients()
    with pytest.raises(ConfigurationError, match="set_llm_client"):
        get_llm_client()


async def test_use_llm_client_scopes_the_override() -> None:
    mock = MockLLMClient(responses=["scoped"])
    configure(model_provider="openai", openai_api_key="sk-test")
    default = get_llm_client()
    with use_llm_client(mock):
        assert get_llm_client() is mock
    assert get_llm_client() is default


# --- MockRunContext ----------------------------------------------------------------------------------


async def test_mock_run_context_records_events_checkpoints_and_cancellation() -> None:
    tools = ToolRegistry()
    ctx = create_test_context(
        input_messages=[{"role": "user", "content": "Hello!"}],
        metadata={"user_id": 7},
        tools=tools,
        run_id="12345678-1234-5678-1234-567812345678",
    )
    assert isinstance(ctx, MockRunContext)
    assert str(ctx.run_id) == "12345678-1234-5678-1234-567812345678"
    assert ctx.metadata == {"user_id": 7}
    assert ctx.tools is tools
    await ctx.emit(EventType.TOOL_CALL, {"tool": "x"})
    await ctx.emit("custom.event", {"n": 1})
    assert ctx.event_types() == ["tool.call", "custom.event"]
    assert ctx.events_of("tool.call") == [{"tool": "x"}]
    assert await ctx.get_state() is None
    state: dict[str, Any] = {"step": 1}
    await ctx.checkpoint(state)
    state["step"] = 2  # a later mutation does not rewrite history
    await ctx.checkpoint(state)
    assert ctx.checkpoints == [{"step": 1}, {"step": 2}]
    assert await ctx.get_state() == {"step": 2}
    assert not ctx.is_cancelled()
    ctx.cancel()
    assert ctx.is_cancelled()
    await ctx.emit_user_message("shown")
    assert ctx.events[-1] == ("assistant.message", {"content": "shown", "role": "assistant"})


async def test_mock_run_context_refuses_payloads_a_real_bus_would_refuse() -> None:
    ctx = create_test_context()
    with pytest.raises(TypeError, match=r"'tool\.result'.*not JSON-serialisable"):
        await ctx.emit(EventType.TOOL_RESULT, {"result": object()})
    assert ctx.events == []
    lenient = create_test_context(check_json=False)
    await lenient.emit(EventType.TOOL_RESULT, {"result": object()})
    assert len(lenient.events) == 1


async def test_cancel_on_cancels_when_the_event_is_emitted() -> None:
    ctx = create_test_context(cancel_on=EventType.TOOL_RESULT)
    await ctx.emit(EventType.TOOL_CALL, {})
    assert not ctx.is_cancelled()
    await ctx.emit(EventType.TOOL_RESULT, {})
    assert ctx.is_cancelled()


def test_create_test_context_builds_a_registry_from_functions() -> None:
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    ctx = create_test_context(tools=[add])
    assert ctx.tools.names() == ["add"]
    assert isinstance(ctx.tools, ToolRegistry)
