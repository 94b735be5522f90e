"""IntentRouter and RouterAgent: routing tools, resolution, switching journeys mid-conversation."""

from __future__ import annotations

from enum import StrEnum
from types import ModuleType
from typing import Any

import pytest
from agent_runtime_core.testing import MockLLMClient, create_test_context
from agent_runtime_framework import (
    IntentRouter,
    MemoryManager,
    RouteDefinition,
    RouterAgent,
    UnknownRouteError,
)
from llm_client import MockResponse, ToolCall


class Journey(StrEnum):
    ONBOARD = "onboard"
    SUPPORT = "support"


def make_router() -> IntentRouter[Journey]:
    router = IntentRouter[Journey]()
    router.add_route(RouteDefinition(Journey.ONBOARD, "start_onboarding", "Sign up"))
    router.add_route(RouteDefinition(Journey.SUPPORT, "get_support", "Get help"))
    return router


def test_resolves_names_tool_calls_and_dicts() -> None:
    router = make_router()
    assert router.resolve_tool_call("get_support") is Journey.SUPPORT
    assert router.resolve_tool_call(ToolCall("c", "start_onboarding")) is Journey.ONBOARD
    call = {"id": "c", "function": {"name": "get_support", "arguments": "{}"}}
    assert router.resolve_tool_call(call) is Journey.SUPPORT
    assert router.is_routing_tool("get_support") and not router.is_routing_tool("save_name")


def test_unknown_and_duplicate_routes_are_clear_errors() -> None:
    router = make_router()
    with pytest.raises(
        UnknownRouteError, match="no route named 'file_claim'; known routes: 'start_onboarding'"
    ):
        router.resolve_tool_call("file_claim")
    with pytest.raises(ValueError, match="already registered"):
        router.add_route(RouteDefinition(Journey.SUPPORT, "get_support", "again"))


def support_agent(seed: ModuleType) -> Any:
    from dataclasses import dataclass

    from agent_runtime_framework import BaseJourneyState, BaseJourneyTools, JourneyAgent

    class S(StrEnum):
        OPEN = "open"

    @dataclass
    class SupportState(BaseJourneyState[S]):
        step: S = S.OPEN

        def is_complete(self) -> bool:
            return False

    class Support(JourneyAgent[SupportState, BaseJourneyTools[SupportState], S]):
        key = "support"  # type: ignore[assignment]

        def get_initial_state(self) -> SupportState:
            return SupportState()

        def get_system_prompt(self, state: SupportState) -> str:
            return "Help the user."

        def get_tool_schemas(self, state: SupportState) -> list[Any]:
            return []

        def create_tools(self, state: SupportState, ctx: Any) -> BaseJourneyTools[SupportState]:
            return BaseJourneyTools(state)

    return Support()


async def test_router_agent_switches_journeys_mid_conversation(seed: ModuleType) -> None:
    llm = MockLLMClient(
        responses=[
            MockResponse.tool_call("start_onboarding", {}),
            MockResponse.tool_call("save_name", {"name": "Ann"}),
            "What's your email?",
            MockResponse.tool_call("get_support", {}),
            "How can I help?",
            MockResponse.tool_call("start_onboarding", {}),
            "Back to onboarding: your email?",
        ]
    )
    router_agent = RouterAgent(
        make_router(),
        {Journey.ONBOARD: seed.OnboardingAgent(), Journey.SUPPORT: support_agent(seed)},
        llm_client=llm,
        memory=MemoryManager(),
    )
    meta = {"conversation_id": "c"}

    # Turn 1: no journey yet -> routing tools only; the route switches and the next call is onboarding's.
    # (The seed's WELCOME offers no tool, so onboarding starts at collect_name here.)
    seed_state = {"journey": None, "states": {"onboard": {"step": "collect_name"}}}
    await router_agent.memory.save_state("c", "router", seed_state)  # type: ignore[union-attr]
    r1 = await router_agent.run(
        create_test_context([{"role": "user", "content": "sign me up, I'm Ann"}], meta)
    )
    first, second, third = llm.calls[:3]
    assert first.messages[0]["content"] == router_agent.system_prompt
    assert [t["function"]["name"] for t in first.tools] == ["start_onboarding", "get_support"]
    assert second.messages[0]["content"] == "Collect the user's name using save_name tool."
    assert [t["function"]["name"] for t in second.tools] == ["save_name", "get_support"]
    assert [t["function"]["name"] for t in third.tools] == ["save_email", "get_support"]
    assert r1.final_output["journey"] == "onboard" and r1.final_output["step"] == "collect_email"

    # Turn 2: the user switches to support mid-conversation.
    r2 = await router_agent.run(create_test_context([{"role": "user", "content": "help!"}], meta))
    assert llm.calls[4].messages[0]["content"] == "Help the user."
    assert [t["function"]["name"] for t in llm.calls[4].tools] == ["start_onboarding"]
    assert r2.final_output["journey"] == "support"

    # Turn 3: back to onboarding, which resumes where it was.
    r3 = await router_agent.run(create_test_context([{"role": "user", "content": "continue signup"}], meta))
    assert llm.calls[6].messages[0]["content"] == "Collect the user's email using save_email tool."
    assert r3.final_output["state"] == {"step": "collect_email", "name": "Ann", "email": ""}


def test_router_agent_needs_an_agent_per_route(seed: ModuleType) -> None:
    with pytest.raises(ValueError, match="routes without a journey agent: get_support"):
        RouterAgent(make_router(), {Journey.ONBOARD: seed.OnboardingAgent()})
