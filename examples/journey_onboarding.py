"""The seed's onboarding journey, run for four turns against a scripted model (no API key needed).

WELCOME -> COLLECT_EMAIL -> COMPLETE, one user turn per run, state and history kept between turns
by a MemoryManager (in memory here; pass ``MemoryManager.from_backend(SQLiteStateStore(...))`` to
keep them on disk). One change to the seed: its WELCOME step offered no tool, so nothing could
leave it; here WELCOME offers ``save_name`` too.

The "model" is llm-client's MockProvider with a handler: it reads the system prompt, the tools it
is offered and the last message, and answers as a model following them would.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from enum import StrEnum

from agent_runtime_core.testing import create_test_context
from agent_runtime_framework import (
    AgentContext,
    BaseJourneyState,
    BaseJourneyTools,
    JourneyAgent,
    MemoryManager,
    ToolSchema,
    ToolSchemaBuilder,
)
from llm_client import ExecutionEngine, MockProvider, MockResponse, RequestSpec


class OnboardingStep(StrEnum):
    WELCOME = "welcome"
    COLLECT_EMAIL = "collect_email"
    COMPLETE = "complete"


@dataclass
class OnboardingState(BaseJourneyState[OnboardingStep]):
    step: OnboardingStep = OnboardingStep.WELCOME
    name: str = ""
    email: str = ""

    def is_complete(self) -> bool:
        return self.step == OnboardingStep.COMPLETE


class OnboardingTools(BaseJourneyTools[OnboardingState]):
    async def save_name(self, name: str) -> str:
        self.state.name = name
        self.state.step = OnboardingStep.COLLECT_EMAIL
        await self._notify_state_change()
        return f"Great, {name}! Now, what's your email?"

    async def save_email(self, email: str) -> str:
        self.state.email = email
        self.state.step = OnboardingStep.COMPLETE
        await self._notify_state_change()
        return f"Perfect! You're all set, {self.state.name}!"


PROMPTS = {
    OnboardingStep.WELCOME: "Welcome the user and save their name with save_name.",
    OnboardingStep.COLLECT_EMAIL: "Collect the user's email using save_email.",
    OnboardingStep.COMPLETE: "Thank the user for completing onboarding.",
}
TOOLS = {
    OnboardingStep.WELCOME: [
        ToolSchemaBuilder("save_name")
        .description("Save the user's name")
        .param("name", "string", required=True)
        .build()
    ],
    OnboardingStep.COLLECT_EMAIL: [
        ToolSchemaBuilder("save_email")
        .description("Save the email")
        .param("email", "string", required=True)
        .build()
    ],
    OnboardingStep.COMPLETE: [],
}


class OnboardingAgent(JourneyAgent[OnboardingState, OnboardingTools, OnboardingStep]):
    @property
    def key(self) -> str:
        return "onboarding-agent"

    def get_initial_state(self) -> OnboardingState:
        return OnboardingState()

    def get_system_prompt(self, state: OnboardingState) -> str:
        return PROMPTS[state.step]

    def get_tool_schemas(self, state: OnboardingState) -> list[ToolSchema]:
        return TOOLS[state.step]

    def create_tools(self, state: OnboardingState, ctx: AgentContext) -> OnboardingTools:
        return OnboardingTools(state=state)


NAME = re.compile(r"(?:name is|I am|I'm)\s+([A-Z][a-z]+)")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


def model(spec: RequestSpec) -> MockResponse:
    system = spec.messages[0]["content"]
    tools = {t["function"]["name"] for t in spec.tools}
    last = spec.messages[-1]
    if last["role"] == "tool":
        return MockResponse.text(last["content"])
    text = last["content"]
    if "save_name" in tools and (m := NAME.search(text)):
        return MockResponse.tool_call("save_name", {"name": m.group(1)})
    if "save_email" in tools and (m := EMAIL.search(text)):
        return MockResponse.tool_call("save_email", {"email": m.group(0)})
    if "Thank" in system:
        return MockResponse.text("Thank you, and welcome aboard!")
    if "email" in system:
        return MockResponse.text("I still need your email address.")
    return MockResponse.text("Hi there! What's your name?")


async def main() -> None:
    agent = OnboardingAgent(llm_client=ExecutionEngine(MockProvider(handler=model)), memory=MemoryManager())
    for text in ["Hello!", "My name is Alice", "it's alice@example.com", "Thanks!"]:
        ctx = create_test_context([{"role": "user", "content": text}], metadata={"conversation_id": "demo"})
        result = await agent.run(ctx)
        print(f"user:  {text}")
        for call in ctx.events_of("tool.call"):
            print(f"       -> {call['name']}({call['arguments']})")
        print(f"agent: {result.final_output['response']}   [step: {result.final_output['step']}]")
    assert result.final_output["is_complete"]
    print("final state:", result.final_output["state"])


if __name__ == "__main__":
    asyncio.run(main())
