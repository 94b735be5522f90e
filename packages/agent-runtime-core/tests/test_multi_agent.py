"""Multi-agent: the seed's agent tools, RouterAgent, direct invocation, context modes, limits, events."""

from __future__ import annotations

import json
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
    register_runtime,
)
from agent_runtime_core.config import configure, reset_config
from agent_runtime_core.llm import reset_llm_clients
from agent_runtime_core.multi_agent import (
    SUMMARY_PROMPT,
    AgentInvocationResult,
    AgentTool,
    ContextMode,
    InvocationMode,
    SubAgentRunContext,
    invoke_agent,
    register_agent_tools,
)
from agent_runtime_core.registry import UnknownRuntimeError, clear_registry
from agent_runtime_core.testing import MockLLMClient, create_test_context, run_agent_test
from llm_client import MaxTurnsExceededError, ToolExecutionError, ToolSchemaError


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    reset_llm_clients()
    reset_config()
    clear_registry()
    # Outside run_agent_test (direct invoke_agent calls), the current MockLLMClient is the model.
    configure(model_provider="mock")
    yield
    reset_llm_clients()
    reset_config()
    clear_registry()


def tool_call(name: str, arguments: dict[str, Any], id: str = "c1") -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}],
    }


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


# --- the seed's specialist agents (bodies from the Django seed's Quick Example) ---------------------


class BillingAgent(AgentRuntime):
    @property
    def key(self) -> str:
        return "billing-specialist"

    async def run(self, ctx: RunContext) -> RunResult:
        # Handle billing questions, refunds, payments
        from agent_runtime_core.llm import get_llm_client

        llm = get_llm_client()
        response = await llm.generate(
            [
                {"role": "system", "content": "You are a billing specialist."},
                *ctx.input_messages,
            ]
        )
        await ctx.emit(EventType.ASSISTANT_MESSAGE, {"content": response.message["content"]})
        return RunResult(final_output={"response": response.message["content"]})


class TechSupportAgent(AgentRuntime):
    @property
    def key(self) -> str:
        return "tech-support"

    async def run(self, ctx: RunContext) -> RunResult:
        # Handle technical issues
        from agent_runtime_core.llm import get_llm_client

        response = await get_llm_client().generate(list(ctx.input_messages))
        return RunResult(final_output={"response": response.content, "ticket": "T-1"})


# Wrap agents as tools (as written in the seed)
billing_tool = AgentTool(
    agent=BillingAgent(),
    name="billing_specialist",
    description="Handles billing questions, refunds, and payment issues. Use when customer has billing-related questions.",  # noqa: E501
    invocation_mode=InvocationMode.DELEGATE,
    context_mode=ContextMode.FULL,
)

tech_support_tool = AgentTool(
    agent=TechSupportAgent(),
    name="tech_support",
    description="Handles technical issues and troubleshooting. Use for technical problems.",
    invocation_mode=InvocationMode.HANDOFF,  # Transfer control completely
)


# --- the seed's Router Agent Pattern, as written ------------------------------------------------------


class RouterAgent(AgentRuntime):
    """Routes customer requests to appropriate specialist agents."""

    def __init__(self) -> None:
        self.agent_tools = [billing_tool, tech_support_tool]

    @property
    def key(self) -> str:
        return "customer-router"

    async def run(self, ctx: RunContext) -> RunResult:
        from agent_runtime_core.llm import get_llm_client

        llm = get_llm_client()

        # Create tool registry with agent-tools
        tools = ToolRegistry()
        messages = list(ctx.input_messages)

        # Register agent-tools as callable tools
        register_agent_tools(
            registry=tools,
            agent_tools=self.agent_tools,
            get_conversation_history=lambda: messages,
            parent_ctx=ctx,
        )

        # Add system prompt for routing
        system_message = {
            "role": "system",
            "content": """You are a customer service router. Analyze the customer's
            request and delegate to the appropriate specialist:
            - billing_specialist: For billing, payments, refunds
            - tech_support: For technical issues (this will transfer the customer)

            If you can answer directly, do so. Otherwise, use the appropriate tool.""",
        }

        while True:
            response = await llm.generate(
                [system_message] + messages,  # noqa: RUF005  (as written in the seed)
                tools=tools.to_openai_format(),
            )

            messages.append(response.message)

            if not response.tool_calls:
                # No tool call - respond directly
                await ctx.emit(
                    EventType.ASSISTANT_MESSAGE,
                    {
                        "content": response.content,
                    },
                )
                break

            # Execute tool calls (which may invoke sub-agents)
            for tool_call in response.tool_calls:
                result = await tools.execute_with_events(tool_call, ctx)

                # Check for handoff
                if isinstance(result, dict) and result.get("handoff"):
                    # Sub-agent took over - we're done
                    return RunResult(
                        final_output=result.get("final_output", {}),
                        final_messages=messages,
                    )

                # Add result to conversation
                messages.append(
                    {
                        "role": "tool",
                        "tool_call_id": tool_call.id,
                        "content": str(result.get("response", result)),
                    }
                )

        return RunResult(
            final_output={"response": response.content},
            final_messages=messages,
        )


async def test_router_delegates_to_billing_and_continues() -> None:
    mock = MockLLMClient(
        responses=[
            tool_call("billing_specialist", {"message": "Customer wants a refund for order #123"}),
            {"role": "assistant", "content": "Refund issued for order #123."},  # the billing agent
            {"role": "assistant", "content": "Done: your refund is on its way."},  # the router again
        ]
    )
    ctx = create_test_context(input_messages=user("I want my money back for order #123"))
    result = await run_agent_test(RouterAgent(), ctx)

    assert result.final_output == {"response": "Done: your refund is on its way."}
    # The billing agent saw the conversation's turns and the request, not the router's tool plumbing.
    billing_request = mock.calls[1].messages
    assert billing_request == (
        {"role": "system", "content": "You are a billing specialist."},
        {"role": "user", "content": "I want my money back for order #123"},
        {"role": "user", "content": "Customer wants a refund for order #123"},
    )
    # The router got the specialist's answer as the tool result.
    assert mock.calls[2].messages[-1] == {
        "role": "tool",
        "tool_call_id": "c1",
        "content": "Refund issued for order #123.",
    }

    types = ctx.event_types()
    assert types == [
        "tool.call",
        "sub_agent.start",
        "assistant.message",  # forwarded from the sub-agent
        "sub_agent.end",
        "tool.result",
        "assistant.message",  # the router's own answer
    ]
    call_event, start, forwarded, end, result_event, final = (p for _, p in ctx.events)
    assert call_event["is_agent_tool"] is True and call_event["sub_agent_key"] == "billing-specialist"
    assert result_event["is_agent_tool"] is True and result_event["sub_agent_key"] == "billing-specialist"
    assert result_event["result"]["response"] == "Refund issued for order #123."
    assert result_event["result"]["handoff"] is False
    sub_run_id = start["sub_agent_run_id"]
    assert sub_run_id != str(ctx.run_id)
    assert start["parent_run_id"] == end["parent_run_id"] == forwarded["parent_run_id"] == str(ctx.run_id)
    assert forwarded["sub_agent_run_id"] == end["sub_agent_run_id"] == sub_run_id
    assert forwarded["content"] == "Refund issued for order #123."
    assert start["invocation_mode"] == "delegate" and start["context_mode"] == "full"
    assert end["handoff"] is False and end["is_error"] is False
    assert "parent_run_id" not in final


async def test_router_hands_off_to_tech_support() -> None:
    mock = MockLLMClient(
        responses=[
            tool_call("tech_support", {"message": "App crashes on login", "context": "iOS 17"}),
            {"role": "assistant", "content": "Please reinstall the app."},  # tech support
        ]
    )
    ctx = create_test_context(input_messages=user("The app crashes when I log in"))
    result = await run_agent_test(RouterAgent(), ctx)
    assert result.final_output == {"response": "Please reinstall the app.", "ticket": "T-1"}
    assert mock.call_count == 2  # the router did not answer after the handoff
    # MESSAGE_ONLY is not the default: FULL context, plus the additional context the model gave.
    assert mock.calls[1].messages[-1] == {
        "role": "user",
        "content": "App crashes on login\n\nAdditional context: iOS 17",
    }
    end = ctx.events_of(EventType.SUB_AGENT_END)[0]
    assert end["handoff"] is True
    assert ctx.events_of("tool.result")[0]["invocation_mode"] == "handoff"


# --- the seed's Direct Invocation block -----------------------------------------------------------------


async def direct_invocation(ctx: RunContext, messages: list[dict[str, Any]]) -> RunResult | str | None:
    from agent_runtime_core.multi_agent import invoke_agent

    # Invoke a sub-agent directly
    result = await invoke_agent(
        agent_tool=billing_tool,
        message="Customer wants a refund for order #123",
        parent_ctx=ctx,
        conversation_history=messages,
        additional_context="Customer has been waiting 2 weeks",
    )

    if result.handoff:
        # Sub-agent took over
        return RunResult(final_output=result.run_result.final_output)
    # Use the response
    print(result.response)
    return result.response


async def test_seed_direct_invocation(capsys: pytest.CaptureFixture[str]) -> None:
    mock = MockLLMClient(responses=[{"role": "assistant", "content": "Refund approved."}])
    ctx = create_test_context()
    messages = [
        {"role": "system", "content": "router prompt"},
        {"role": "user", "content": "Where is my refund?"},
        {"role": "assistant", "content": "Let me check."},
    ]
    assert await direct_invocation(ctx, messages) == "Refund approved."
    assert capsys.readouterr().out == "Refund approved.\n"
    assert mock.calls[0].messages[1:] == (
        {"role": "user", "content": "Where is my refund?"},
        {"role": "assistant", "content": "Let me check."},
        {
            "role": "user",
            "content": "Customer wants a refund for order #123"
            "\n\nAdditional context: Customer has been waiting 2 weeks",
        },
    )
    assert ctx.event_types() == ["sub_agent.start", "assistant.message", "sub_agent.end"]


async def test_invoke_agent_result_for_a_handoff() -> None:
    MockLLMClient(responses=["Reinstall it."])
    ctx = create_test_context()
    result = await invoke_agent(tech_support_tool, "crash", ctx)
    assert isinstance(result, AgentInvocationResult)
    assert result.handoff is True
    assert result.response == "Reinstall it."
    assert result.final_output == {"response": "Reinstall it.", "ticket": "T-1"}
    assert result.sub_agent_key == "tech-support"
    assert result.sub_agent_run_id == ctx.events_of("sub_agent.start")[0]["sub_agent_run_id"]


# --- context modes -----------------------------------------------------------------------------------


HISTORY: list[dict[str, Any]] = [
    {"role": "system", "content": "parent prompt"},
    {"role": "user", "content": "My invoice is wrong."},
    {"role": "assistant", "content": "Which invoice?"},
    {"role": "user", "content": "INV-7, charged twice."},
    tool_call("billing_specialist", {"message": "Double charge on INV-7"}),
]


async def test_summary_mode_summarises_the_history_with_the_default_llm() -> None:
    mock = MockLLMClient(
        responses=[
            "Customer was charged twice on INV-7.",  # the summary
            "I will refund the duplicate charge.",  # the sub-agent
        ]
    )
    tool = AgentTool(BillingAgent(), "billing", "Billing.", context_mode=ContextMode.SUMMARY)
    result = await invoke_agent(tool, "Double charge on INV-7", create_test_context(), HISTORY)
    assert result.response == "I will refund the duplicate charge."
    summary_request = mock.calls[0].messages
    assert summary_request[0] == {"role": "system", "content": SUMMARY_PROMPT}
    assert summary_request[1]["content"] == (
        "user: My invoice is wrong.\nassistant: Which invoice?\nuser: INV-7, charged twice."
    )
    assert mock.calls[1].messages[1:] == (
        {
            "role": "user",
            "content": "Summary of the conversation so far:\nCustomer was charged twice on INV-7."
            "\n\nRequest:\nDouble charge on INV-7",
        },
    )


async def test_summary_mode_without_history_makes_no_summary_call() -> None:
    mock = MockLLMClient(responses=["ok"])
    tool = AgentTool(BillingAgent(), "billing", "Billing.", context_mode=ContextMode.SUMMARY)
    await invoke_agent(tool, "hello", create_test_context(), [])
    assert mock.call_count == 1
    assert mock.calls[0].messages[-1] == {"role": "user", "content": "hello"}


async def test_message_only_mode_passes_only_the_message() -> None:
    mock = MockLLMClient(responses=["ok"])
    tool = AgentTool(BillingAgent(), "billing", "Billing.", context_mode=ContextMode.MESSAGE_ONLY)
    await invoke_agent(tool, "Double charge on INV-7", create_test_context(), HISTORY, "VIP")
    assert mock.calls[0].messages[1:] == (
        {"role": "user", "content": "Double charge on INV-7\n\nAdditional context: VIP"},
    )


async def test_full_mode_leaves_out_system_prompts_and_tool_plumbing() -> None:
    mock = MockLLMClient(responses=["ok"])
    history = [*HISTORY, {"role": "tool", "tool_call_id": "x", "content": "old result"}]
    await invoke_agent(billing_tool, "Double charge on INV-7", create_test_context(), history)
    assert [m["content"] for m in mock.calls[0].messages[1:]] == [
        "My invoice is wrong.",
        "Which invoice?",
        "INV-7, charged twice.",
        "Double charge on INV-7",
    ]


# --- ToolCallingAgent as parent and as sub-agent ---------------------------------------------------------


class WeatherAgent(ToolCallingAgent):
    key = "weather"
    system_prompt = "Weather bot."  # type: ignore[assignment]

    @property
    def tools(self) -> ToolRegistry:
        def get_weather(city: str) -> str:
            """Weather in a city."""
            return f"sunny in {city}"

        return ToolRegistry([get_weather])


class Concierge(ToolCallingAgent):
    key = "concierge"
    system_prompt = "Concierge."  # type: ignore[assignment]


async def test_tool_calling_agent_parent_with_agent_tools_in_ctx_tools() -> None:
    mock = MockLLMClient(
        responses=[
            tool_call("weather_agent", {"message": "Weather in Rome?"}, id="p1"),  # concierge
            tool_call("get_weather", {"city": "Rome"}, id="s1"),  # weather sub-agent
            "It is sunny in Rome.",  # weather sub-agent answers
            "Rome: sunny. Enjoy!",  # concierge answers
        ]
    )
    ctx = create_test_context(input_messages=user("Should I bring an umbrella to Rome?"))
    register_agent_tools(
        ctx.tools,
        [
            AgentTool(
                WeatherAgent(), "weather_agent", "Knows the weather.", context_mode=ContextMode.MESSAGE_ONLY
            )
        ],
        lambda: ctx.input_messages,
        ctx,
    )
    result = await run_agent_test(Concierge(), ctx)
    assert result.final_output == {"response": "Rome: sunny. Enjoy!"}
    assert mock.calls[1].messages == (
        {"role": "system", "content": "Weather bot."},
        {"role": "user", "content": "Weather in Rome?"},
    )
    # Sub-agent events are forwarded with the ids; the parent's agent-tool events are tagged.
    tagged = [(t, p.get("sub_agent_run_id") is not None) for t, p in ctx.events if t != "assistant.delta"]
    assert tagged == [
        ("tool.call", False),
        ("sub_agent.start", True),
        ("tool.call", True),
        ("tool.result", True),
        ("assistant.message", True),
        ("sub_agent.end", True),
        ("tool.result", False),
        ("assistant.message", False),
    ]
    parent_call = ctx.events_of("tool.call")[0]
    assert parent_call["is_agent_tool"] is True and parent_call["sub_agent_key"] == "weather"
    inner_call = ctx.events_of("tool.call")[1]
    assert inner_call["tool"] == "get_weather" and inner_call["sub_agent_key"] == "weather"
    assert "is_agent_tool" not in inner_call
    sub_deltas = [p for t, p in ctx.events if t == "assistant.delta" and "sub_agent_run_id" in p]
    assert "".join(d["delta"] for d in sub_deltas) == "It is sunny in Rome."


async def test_max_turns_limits_a_tool_calling_sub_agent() -> None:
    MockLLMClient(responses=[tool_call("get_weather", {"city": "X"}, id=f"s{i}") for i in range(2)])
    tool = AgentTool(WeatherAgent(), "weather_agent", "Weather.", max_turns=2)
    ctx = create_test_context()
    with pytest.raises(MaxTurnsExceededError, match="max_turns=2"):
        await invoke_agent(tool, "loop forever", ctx)
    end = ctx.events_of("sub_agent.end")[0]
    assert end["is_error"] is True and end["error_type"] == "MaxTurnsExceededError"


async def test_max_turns_limits_a_hand_written_sub_agent() -> None:
    class Chatty(AgentRuntime):
        @property
        def key(self) -> str:
            return "chatty"

        async def run(self, ctx: RunContext) -> RunResult:
            from agent_runtime_core.llm import get_llm_client

            llm = get_llm_client()
            for _ in range(5):
                await llm.generate(ctx.input_messages)
            return RunResult(final_output={"response": "never"})

    mock = MockLLMClient(responses=["a", "b", "c", "d", "e"])
    ctx = create_test_context()
    with pytest.raises(MaxTurnsExceededError, match="'chatty' exceeded its max_turns=2"):
        await invoke_agent(AgentTool(Chatty(), "chatty", "Talks.", max_turns=2), "hi", ctx)
    assert mock.call_count == 2


async def test_a_failing_sub_agent_is_reported_to_a_tool_calling_parent() -> None:
    mock = MockLLMClient(
        responses=[
            tool_call("ghost", {"message": "boo"}),
            "The specialist is unavailable, sorry.",
        ]
    )
    ctx = create_test_context(input_messages=user("help"))
    register_agent_tools(ctx.tools, [AgentTool("no-such-agent", "ghost", "Not registered.")], None, ctx)
    result = await run_agent_test(Concierge(), ctx)
    assert result.final_output == {"response": "The specialist is unavailable, sorry."}
    tool_message = mock.calls[1].messages[-1]
    assert "no agent runtime registered with key 'no-such-agent'" in tool_message["content"]
    assert ctx.events_of("tool.result")[0]["is_error"] is True


async def test_unknown_sub_agent_key_raises_before_any_event() -> None:
    ctx = create_test_context()
    with pytest.raises(UnknownRuntimeError, match="'no-such-agent'"):
        await invoke_agent(AgentTool("no-such-agent", "ghost", "?"), "hi", ctx)
    assert ctx.events == []


async def test_a_registered_key_is_resolved_at_invocation() -> None:
    tool = AgentTool("billing-specialist", "billing", "Billing.")  # registered later
    assert tool.sub_agent_key == "billing-specialist"
    register_runtime(BillingAgent())
    MockLLMClient(responses=["resolved"])
    result = await invoke_agent(tool, "hi", create_test_context())
    assert result.response == "resolved"


async def test_seed_router_propagates_a_sub_agent_that_returns_nothing() -> None:
    class Unfinished(AgentRuntime):
        @property
        def key(self) -> str:
            return "unfinished"

        async def run(self, ctx: RunContext) -> RunResult:
            # the seed's placeholder body: `...`
            return None  # type: ignore[return-value]

    tools = ToolRegistry()
    ctx = create_test_context()
    register_agent_tools(tools, [AgentTool(Unfinished(), "unfinished", "?")], list, ctx)
    with pytest.raises(ToolExecutionError, match="returned NoneType, expected a RunResult"):
        await tools.execute_with_events(
            {"id": "c", "function": {"name": "unfinished", "arguments": '{"message": "hi"}'}}, ctx
        )
    assert ctx.event_types() == ["tool.call", "sub_agent.start", "sub_agent.end", "tool.result"]
    assert ctx.events_of("tool.result")[0]["is_error"] is True


# --- AgentTool options, schemas and validation -----------------------------------------------------------


async def test_seed_agent_tool_options_block() -> None:
    my_agent = BillingAgent()
    tool = AgentTool(
        agent=my_agent,  # Required: The agent to wrap
        name="specialist",  # Required: Tool name
        description="When to use this agent",  # Required: Shown to parent LLM
        invocation_mode=InvocationMode.DELEGATE,  # DELEGATE or HANDOFF
        context_mode=ContextMode.FULL,  # FULL, SUMMARY, or MESSAGE_ONLY
        max_turns=10,  # Optional: Limit sub-agent turns
        input_schema={
            "type": "object",
            "properties": {"order_id": {"type": "string"}, "reason": {"type": "string"}},
            "required": ["order_id"],
        },  # Optional: Custom input schema
        metadata={"category": "billing"},  # Optional: Additional metadata
    )
    registry = ToolRegistry()
    ctx = create_test_context(metadata={"tenant": "acme", "max_turns": 99})
    (registered,) = register_agent_tools(registry, [tool], list, ctx)
    assert isinstance(registered, Tool)
    assert registered.to_openai_format()["function"]["parameters"]["required"] == ["order_id"]
    assert registered.event_payload == {  # type: ignore[attr-defined]
        "is_agent_tool": True,
        "sub_agent_key": "billing-specialist",
        "invocation_mode": "delegate",
    }

    seen: dict[str, Any] = {}

    class Spy(BillingAgent):
        async def run(self, ctx: RunContext) -> RunResult:
            seen["metadata"] = dict(ctx.metadata)
            seen["input"] = list(ctx.input_messages)
            return RunResult(final_output={"response": "ok"})

    tool.agent = Spy()
    out = await registry.execute("specialist", {"order_id": "123", "reason": "late"})
    assert out["response"] == "ok" and out["handoff"] is False and out["final_output"] == {"response": "ok"}
    assert json.loads(seen["input"][-1]["content"]) == {"order_id": "123", "reason": "late"}
    metadata = seen["metadata"]
    assert metadata["tenant"] == "acme"  # inherited from the parent run
    assert metadata["max_turns"] == 10  # the tool's limit, not the parent's
    assert metadata["agent_tool_metadata"] == {"category": "billing"}
    assert metadata["parent_run_id"] == str(ctx.run_id)


def test_agent_tool_validation() -> None:
    with pytest.raises(ToolSchemaError, match="invalid tool name"):
        AgentTool(BillingAgent(), "has spaces", "?")
    with pytest.raises(ValueError, match="max_turns must be an int >= 1"):
        AgentTool(BillingAgent(), "ok", "?", max_turns=0)
    with pytest.raises(TypeError, match="agent must be an AgentRuntime"):
        AgentTool(object(), "ok", "?")  # type: ignore[arg-type]
    with pytest.raises(ToolSchemaError):
        AgentTool(BillingAgent(), "ok", "?", input_schema={"type": "string"})
    with pytest.raises(ValueError):
        AgentTool(BillingAgent(), "ok", "?", context_mode="everything")  # type: ignore[arg-type]
    tool = AgentTool(BillingAgent(), "ok", "?", invocation_mode="handoff")  # type: ignore[arg-type]
    assert tool.invocation_mode is InvocationMode.HANDOFF
    with pytest.raises(TypeError, match="AgentTool items"):
        register_agent_tools(ToolRegistry(), [BillingAgent()], None, create_test_context())  # type: ignore[list-item]
    with pytest.raises(TypeError, match="parent_ctx"):
        register_agent_tools(ToolRegistry(), [tool], None)
    with pytest.raises(ValueError, match="already registered"):
        registry = ToolRegistry()
        register_agent_tools(registry, [tool, tool], None, create_test_context())


# --- the child context -----------------------------------------------------------------------------------


async def test_nested_sub_contexts_keep_the_innermost_ids_and_share_cancellation() -> None:
    root = create_test_context()
    middle = SubAgentRunContext(root, sub_agent_key="middle", input_messages=[], metadata={})
    inner = SubAgentRunContext(middle, sub_agent_key="inner", input_messages=[], metadata={})
    await inner.emit(EventType.ASSISTANT_DELTA, {"delta": "x"})
    ((event_type, payload),) = root.events
    assert event_type == EventType.ASSISTANT_DELTA
    assert payload == {
        "delta": "x",
        "parent_run_id": str(middle.run_id),
        "sub_agent_run_id": str(inner.run_id),
        "sub_agent_key": "inner",
    }
    await inner.checkpoint({"step": 1})
    assert await inner.get_state() == {"step": 1}
    assert root.checkpoints == []  # the parent's checkpoint is untouched
    assert not inner.is_cancelled()
    root.cancel()
    assert inner.is_cancelled() and middle.is_cancelled()
    assert len(inner.tools) == 0


async def test_a_tool_calling_parent_ends_on_handoff() -> None:
    mock = MockLLMClient(
        responses=[
            tool_call("tech_support", {"message": "Crash on start"}, id="h1"),  # concierge hands off
            "Reinstall the app.",  # tech support
        ]
    )
    ctx = create_test_context(input_messages=user("it crashes"))
    register_agent_tools(ctx.tools, [tech_support_tool], lambda: ctx.input_messages, ctx)
    result = await run_agent_test(Concierge(), ctx)
    assert mock.call_count == 2  # the concierge was not asked again
    assert result.final_output == {"response": "Reinstall the app.", "ticket": "T-1"}
    assert result.final_messages is not None and result.final_messages[-1]["role"] == "tool"
    assert ctx.events_of("sub_agent.end")[0]["handoff"] is True
    assert ctx.events_of("assistant.message") == []  # the concierge said nothing after the handoff


async def test_a_handoff_shaped_result_from_an_ordinary_tool_is_just_a_result() -> None:
    def fake(message: str) -> dict[str, Any]:
        """Looks like a handoff but is not an agent-tool."""
        return {"handoff": True, "final_output": {"response": "hijacked"}}

    MockLLMClient(responses=[tool_call("fake", {"message": "x"}), "normal end"])
    ctx = create_test_context(input_messages=user("go"), tools=[fake])
    result = await run_agent_test(Concierge(), ctx)
    assert result.final_output == {"response": "normal end"}
