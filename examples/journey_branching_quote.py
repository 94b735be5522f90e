"""Design pattern 2, a branching journey: an insurance quote whose path depends on the answer.

WELCOME -> CHOOSE_TYPE -> HOME_DETAILS or CAR_DETAILS -> QUOTE_READY. ``choose_type`` takes an enum
("home" | "car") and picks the branch; each branch offers only its own detail tool, and the prompt
is a PromptTemplate filled from the state by a PromptManager. Two conversations take the two
branches against a scripted model (MockProvider handler), no API key needed.
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
    PromptManager,
    PromptTemplate,
    StepPromptMapping,
    ToolSchema,
    ToolSchemaBuilder,
)
from llm_client import ExecutionEngine, MockProvider, MockResponse, RequestSpec


class QuoteStep(StrEnum):
    CHOOSE_TYPE = "choose_type"
    HOME_DETAILS = "home_details"
    CAR_DETAILS = "car_details"
    QUOTE_READY = "quote_ready"


@dataclass
class QuoteState(BaseJourneyState[QuoteStep]):
    step: QuoteStep = QuoteStep.CHOOSE_TYPE
    kind: str = ""
    home_value: float = 0.0
    car_year: int = 0
    premium: float = 0.0

    def is_complete(self) -> bool:
        return self.step is QuoteStep.QUOTE_READY


class QuoteTools(BaseJourneyTools[QuoteState]):
    async def choose_type(self, kind: str) -> str:
        self.state.kind = kind
        self.state.step = QuoteStep.HOME_DETAILS if kind == "home" else QuoteStep.CAR_DETAILS
        await self._notify_state_change()
        return f"{kind} insurance selected"

    async def set_home_value(self, value: float) -> str:
        self.state.home_value = value
        self.state.premium = round(value * 0.003, 2)
        self.state.step = QuoteStep.QUOTE_READY
        await self._notify_state_change()
        return f"home quote: {self.state.premium} per year"

    async def set_car_year(self, year: int) -> str:
        self.state.car_year = year
        self.state.premium = 400.0 + max(0, 2025 - year) * 25
        self.state.step = QuoteStep.QUOTE_READY
        await self._notify_state_change()
        return f"car quote: {self.state.premium} per year"


PROMPTS = PromptManager[QuoteStep](
    StepPromptMapping(
        {
            QuoteStep.CHOOSE_TYPE: "Ask whether the user wants home or car insurance; call choose_type.",
            QuoteStep.HOME_DETAILS: "Ask for the home's value; call set_home_value.",
            QuoteStep.CAR_DETAILS: "Ask for the car's model year; call set_car_year.",
            QuoteStep.QUOTE_READY: PromptTemplate("Present the $kind quote of $$$premium per year."),
        }
    ),
    context_enricher=lambda s: {"kind": s.kind, "premium": s.premium},
)
TOOLS = {
    QuoteStep.CHOOSE_TYPE: [
        ToolSchemaBuilder("choose_type")
        .param("kind", "string", "Insurance type", True, enum=["home", "car"])
        .build()
    ],
    QuoteStep.HOME_DETAILS: [
        ToolSchemaBuilder("set_home_value").param("value", "number", "USD", True).build()
    ],
    QuoteStep.CAR_DETAILS: [
        ToolSchemaBuilder("set_car_year").param("year", "integer", "Model year", True).build()
    ],
    QuoteStep.QUOTE_READY: [],
}


class QuoteAgent(JourneyAgent[QuoteState, QuoteTools, QuoteStep]):
    @property
    def key(self) -> str:
        return "quote"

    def get_initial_state(self) -> QuoteState:
        return QuoteState()

    def get_system_prompt(self, state: QuoteState) -> str:
        return PROMPTS.get_prompt(state)

    def get_tool_schemas(self, state: QuoteState) -> list[ToolSchema]:
        return TOOLS[state.step]

    def create_tools(self, state: QuoteState, ctx: AgentContext) -> QuoteTools:
        return QuoteTools(state=state)


def model(spec: RequestSpec) -> MockResponse:
    system = spec.messages[0]["content"]
    tools = {t["function"]["name"] for t in spec.tools}
    last = spec.messages[-1]
    if last["role"] == "tool" and "Present" not in system:
        return MockResponse.text(last["content"])
    if "Present" in system:  # the QUOTE_READY prompt carries the numbers
        return MockResponse.text(
            system.replace("Present the", "Your").replace(" quote of", " insurance costs")
        )
    text = last["content"].lower()
    if "choose_type" in tools:
        for kind in ("home", "car"):
            if kind in text:
                return MockResponse.tool_call("choose_type", {"kind": kind})
        return MockResponse.text("Home or car insurance?")
    number = re.search(r"\d+", text)
    if "set_home_value" in tools:
        if number:
            return MockResponse.tool_call("set_home_value", {"value": float(number.group())})
        return MockResponse.text("What is your home worth?")
    if "set_car_year" in tools and number:
        return MockResponse.tool_call("set_car_year", {"year": int(number.group())})
    return MockResponse.text("Which year is your car?")


async def converse(agent: QuoteAgent, conversation: str, turns: list[str]) -> None:
    print(f"--- conversation {conversation}")
    for text in turns:
        ctx = create_test_context(
            [{"role": "user", "content": text}], metadata={"conversation_id": conversation}
        )
        result = await agent.run(ctx)
        calls = ", ".join(f"{c['name']}{c['arguments']}" for c in ctx.events_of("tool.call"))
        print(f"user:  {text}")
        print(f"agent: {result.final_output['response']}   [{result.final_output['step']}] {calls}")


async def main() -> None:
    agent = QuoteAgent(llm_client=ExecutionEngine(MockProvider(handler=model)), memory=MemoryManager())
    await converse(agent, "A", ["I need insurance for my home", "It is worth 350000"])
    await converse(agent, "B", ["Car insurance please", "A 2019 model"])


if __name__ == "__main__":
    asyncio.run(main())
