"""The seed README's onboarding journey, as written (steps 1-4), plus a scripted model for it.

Not a test module: tests load it through the ``seed`` fixture (conftest.py), and
``test_persistence.py`` runs it as a script in a fresh process to continue a conversation.
The only addition to the seed's code is ``scripted_model``, which plays the model: it reads the
request's system prompt, tools and last message and answers as a model following them would.
"""

import json
import re
from dataclasses import dataclass
from enum import Enum

from agent_runtime_framework import (
    AgentContext,
    BaseJourneyState,
    BaseJourneyTools,
    JourneyAgent,
    ToolSchema,
    ToolSchemaBuilder,
)
from llm_client import MockResponse, RequestSpec


# 1. Define your journey steps
class OnboardingStep(str, Enum):  # noqa: UP042 (as the seed writes it)
    WELCOME = "welcome"
    COLLECT_NAME = "collect_name"
    COLLECT_EMAIL = "collect_email"
    COMPLETE = "complete"


# 2. Define your state
@dataclass
class OnboardingState(BaseJourneyState[OnboardingStep]):
    step: OnboardingStep = OnboardingStep.WELCOME
    name: str = ""
    email: str = ""

    def is_complete(self) -> bool:
        return self.step == OnboardingStep.COMPLETE

    def to_dict(self) -> dict:
        return {
            "step": self.step.value,
            "name": self.name,
            "email": self.email,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "OnboardingState":
        return cls(
            step=OnboardingStep(data.get("step", "welcome")),
            name=data.get("name", ""),
            email=data.get("email", ""),
        )


# 3. Define your tools
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


# 4. Define your agent
class OnboardingAgent(JourneyAgent[OnboardingState, OnboardingTools, OnboardingStep]):
    @property
    def key(self) -> str:
        return "onboarding-agent"

    def get_initial_state(self) -> OnboardingState:
        return OnboardingState()

    def get_system_prompt(self, state: OnboardingState) -> str:
        prompts = {
            OnboardingStep.WELCOME: "Welcome! Ask for the user's name.",
            OnboardingStep.COLLECT_NAME: "Collect the user's name using save_name tool.",
            OnboardingStep.COLLECT_EMAIL: "Collect the user's email using save_email tool.",
            OnboardingStep.COMPLETE: "Thank the user for completing onboarding.",
        }
        return prompts[state.step]

    def get_tool_schemas(self, state: OnboardingState) -> list[ToolSchema]:
        if state.step == OnboardingStep.COLLECT_NAME:
            return [
                ToolSchemaBuilder("save_name")
                .description("Save the user's name")
                .param("name", "string", "The user's name", required=True)
                .build()
            ]
        if state.step == OnboardingStep.COLLECT_EMAIL:
            return [
                ToolSchemaBuilder("save_email")
                .description("Save the user's email")
                .param("email", "string", "The user's email", required=True)
                .build()
            ]
        return []

    def create_tools(self, state: OnboardingState, ctx: AgentContext) -> OnboardingTools:
        return OnboardingTools(state=state)

    async def execute_tool(self, tools: OnboardingTools, name: str, arguments: dict) -> str:
        method = getattr(tools, name)
        return await method(**arguments)


# --- the scripted model (not in the seed) ----------------------------------------------------------

EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
NAME = re.compile(r"(?:name is|I am|I'm|call me)\s+([A-Z][a-z]+)")


def scripted_model(spec: RequestSpec) -> MockResponse:
    """Answers like a model that follows its system prompt and uses the tools it is offered: it
    calls an offered tool when the user's last message has what the tool needs (and it has not
    called that tool since), otherwise it relays the last tool result or follows the prompt."""
    system = spec.messages[0]["content"] if spec.messages[0]["role"] == "system" else ""
    tools = {t["function"]["name"] for t in spec.tools}
    user_at = max(i for i, m in enumerate(spec.messages) if m["role"] == "user")
    text = spec.messages[user_at].get("content") or ""
    called = {c["function"]["name"] for m in spec.messages[user_at:] for c in m.get("tool_calls") or ()}
    if "save_name" in tools and "save_name" not in called and (m := NAME.search(text)):
        return MockResponse.tool_call("save_name", {"name": m.group(1)})
    if "save_email" in tools and "save_email" not in called and (m := EMAIL.search(text)):
        return MockResponse.tool_call("save_email", {"email": m.group(0)})
    last = spec.messages[-1]
    if last["role"] == "tool":
        return MockResponse.text(last["content"])  # relay what the tool said
    if "Thank" in system:
        return MockResponse.text("Thanks for completing onboarding!")
    if "email" in system:
        return MockResponse.text("What's your email address?")
    return MockResponse.text("Hi! What's your name?")


if __name__ == "__main__":  # one turn of a conversation kept in SQLite: argv = db, conversation, text
    import asyncio
    import sys

    from agent_runtime_core.state import SQLiteStateStore
    from agent_runtime_core.testing import MockLLMClient, create_test_context
    from agent_runtime_framework import MemoryManager

    async def turn(db: str, conversation: str, text: str) -> None:
        store = SQLiteStateStore(db_path=db)
        llm = MockLLMClient(handler=scripted_model)
        agent = OnboardingAgent(llm_client=llm, memory=MemoryManager.from_backend(store))
        ctx = create_test_context(
            input_messages=[{"role": "user", "content": text}], metadata={"conversation_id": conversation}
        )
        result = await agent.run(ctx)
        await store.close()
        requests = [
            {"system": c.messages[0]["content"], "tools": [t["function"]["name"] for t in c.tools]}
            for c in llm.calls
        ]
        print(json.dumps({"output": result.final_output, "requests": requests}))

    asyncio.run(turn(*sys.argv[1:4]))
