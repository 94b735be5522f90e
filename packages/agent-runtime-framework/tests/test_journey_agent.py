"""JourneyAgent behaviour: per-step prompts and tools, refusals, events, the runner, limits."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from agent_runtime_core import AgentRunner, InMemoryEventBus, InMemoryStateStore, RunnerConfig
from agent_runtime_core.llm import set_llm_client
from agent_runtime_core.testing import MockLLMClient, create_test_context
from agent_runtime_framework import ExecutorConfig
from llm_client import MaxTurnsExceededError, MockResponse, ProviderError, ToolCall


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def at_step(agent: Any, step: str, text: str, **kwargs: Any) -> Any:
    ctx = create_test_context(input_messages=user(text), **kwargs)
    ctx.checkpoints.append({"agent": agent.key, "state": {"step": step, "name": "Alice"}})
    return ctx


def tool_names(spec: Any) -> list[str]:
    return [t["function"]["name"] for t in spec.tools]


async def test_prompt_and_tools_follow_the_step_within_one_turn(seed: ModuleType) -> None:
    llm = MockLLMClient(handler=seed.scripted_model)
    agent = seed.OnboardingAgent(llm_client=llm)
    ctx = at_step(agent, "collect_name", "I'm Bob, bob@example.com")
    result = await agent.run(ctx)
    assert [(c.messages[0]["content"], tool_names(c)) for c in llm.calls] == [
        ("Collect the user's name using save_name tool.", ["save_name"]),
        ("Collect the user's email using save_email tool.", ["save_email"]),
        ("Thank the user for completing onboarding.", []),
    ]
    # The conversation carries over the switch: the third call saw both tool results.
    assert [m["role"] for m in llm.calls[2].messages] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
    ]
    assert result.final_output["step"] == "complete"
    started = ctx.events_of("step.started")
    assert [(e["previous_step"], e["step"]) for e in started] == [
        ("collect_name", "collect_email"),
        ("collect_email", "complete"),
    ]
    # Each step change is checkpointed before the next model call, then the end of the turn.
    assert [c["state"]["step"] for c in ctx.checkpoints[1:]] == ["collect_email", "complete", "complete"]
    assert ctx.event_types()[-1] == "assistant.message"
    assert result.usage["requests"] == 3


async def test_a_tool_of_another_step_is_refused_and_not_executed(seed: ModuleType) -> None:
    llm = MockLLMClient(
        responses=[
            MockResponse.tool_call("save_email", {"email": "x@example.com"}, id="c1"),
            "Sorry, your name?",
        ]
    )
    agent = seed.OnboardingAgent(llm_client=llm)
    ctx = at_step(agent, "collect_name", "x@example.com")
    result = await agent.run(ctx)
    refusal = llm.calls[1].messages[-1]
    assert refusal["role"] == "tool" and refusal["tool_call_id"] == "c1"
    assert "unknown tool 'save_email'" in refusal["content"] and "save_name" in refusal["content"]
    assert result.final_output["state"] == {"step": "collect_name", "name": "Alice", "email": ""}
    [event] = ctx.events_of("tool.result")
    assert event["is_error"] is True and event["name"] == "save_email"


async def test_arguments_missing_a_required_field_go_back_to_the_model(seed: ModuleType) -> None:
    llm = MockLLMClient(
        responses=[
            [ToolCall("c1", "save_name", "{}")],
            MockResponse.tool_call("save_name", {"name": "Carol"}, id="c2"),
            "Thanks Carol",
        ]
    )
    agent = seed.OnboardingAgent(llm_client=llm)
    result = await agent.run(at_step(agent, "collect_name", "Carol"))
    error = llm.calls[1].messages[-1]["content"]
    assert error.startswith("Error: invalid arguments for tool 'save_name'") and "'name'" in error
    # The bad call did not move the journey; the corrected one did.
    assert llm.calls[1].messages[0]["content"].startswith("Collect the user's name")
    assert llm.calls[2].messages[0]["content"].startswith("Collect the user's email")
    assert result.final_output["state"]["name"] == "Carol"


async def test_runs_under_the_core_runner_with_checkpoints_and_events(seed: ModuleType) -> None:
    bus, store = InMemoryEventBus(), InMemoryStateStore()
    runner = AgentRunner(RunnerConfig(max_retries=0), event_bus=bus, state_store=store)
    llm = MockLLMClient(handler=seed.scripted_model)
    agent = seed.OnboardingAgent(llm_client=llm)
    await store.save_checkpoint("run-1", {"agent": agent.key, "state": {"step": "collect_name"}})
    result = await runner.execute(agent=agent, run_id="run-1", input_data={"messages": user("I am Dan")})
    assert result.succeeded, result.error
    assert result.final_output["state"]["name"] == "Dan"
    assert (await store.get_checkpoint("run-1"))["state"]["step"] == "collect_email"
    types = [e.event_type for e in await bus.get_events("run-1")]
    assert types[0] == "run.started" and types[-1] == "run.succeeded"
    assert "tool.call" in types and "step.started" in types and "state.checkpoint" in types


async def test_provider_errors_are_raised_typed_and_retried_by_the_runner(seed: ModuleType) -> None:
    llm = MockLLMClient(responses=[ProviderError("overloaded"), "Hi! What's your name?"])
    agent = seed.OnboardingAgent(llm_client=llm)
    with pytest.raises(ProviderError):
        await agent.run(create_test_context(input_messages=user("hi")))
    runner = AgentRunner(
        RunnerConfig(max_retries=1, retry_backoff_seconds=0),
        event_bus=InMemoryEventBus(),
        state_store=InMemoryStateStore(),
    )
    result = await runner.execute(agent=agent, run_id="r2", input_data={"messages": user("hi")})
    assert result.succeeded and result.final_output["response"] == "Hi! What's your name?"


async def test_without_llm_client_the_agent_uses_core_get_llm_client(seed: ModuleType) -> None:
    llm = MockLLMClient(responses=["from the process client"])
    set_llm_client(llm)
    result = await seed.OnboardingAgent().run(create_test_context(input_messages=user("hi")))
    assert result.final_output["response"] == "from the process client"


async def test_max_iterations_bounds_model_calls_across_steps(seed: ModuleType) -> None:
    loop = [MockResponse.tool_call("save_name", {"name": "Eve"}), MockResponse.tool_call("nope", {})]
    llm = MockLLMClient(responses=loop)
    agent = seed.OnboardingAgent(llm_client=llm, config=ExecutorConfig(max_iterations=2))
    with pytest.raises(MaxTurnsExceededError) as info:
        await agent.run(at_step(agent, "collect_name", "Eve"))
    assert llm.call_count == 2
    assert "max_iterations=2" in str(info.value)
    assert info.value.result.usage.requests == 2  # type: ignore[attr-defined]


async def test_a_cancelled_run_stops_after_the_tool_batch_and_keeps_the_state(seed: ModuleType) -> None:
    llm = MockLLMClient(handler=seed.scripted_model)
    agent = seed.OnboardingAgent(llm_client=llm)
    ctx = at_step(agent, "collect_name", "I am Finn", cancel_on="tool.result")
    result = await agent.run(ctx)
    assert result.final_output == {"response": None, "cancelled": True}
    assert result.error is not None and result.error.type == "RunCancelled"
    assert llm.call_count == 1
    assert ctx.checkpoints[-1]["state"]["step"] == "collect_email"


async def test_state_replaced_by_a_tool_is_the_state_saved(seed: ModuleType) -> None:
    class ResettingTools(seed.OnboardingTools):  # type: ignore[name-defined,misc]
        async def save_name(self, name: str) -> str:
            self.state = seed.OnboardingState(step=seed.OnboardingStep.COMPLETE, name=name)
            return "reset"

    class Agent(seed.OnboardingAgent):  # type: ignore[name-defined,misc]
        def create_tools(self, state: Any, ctx: Any) -> Any:
            return ResettingTools(state=state)

    llm = MockLLMClient(responses=[MockResponse.tool_call("save_name", {"name": "Gil"}), "done"])
    agent = Agent(llm_client=llm)
    result = await agent.run(at_step(agent, "collect_name", "Gil"))
    assert result.final_output["state"] == {"step": "complete", "name": "Gil", "email": ""}
    assert llm.calls[1].messages[0]["content"] == "Thank the user for completing onboarding."
