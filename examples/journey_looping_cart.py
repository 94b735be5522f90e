"""Design pattern 3, a looping journey: a cart that repeats ADD_ITEM until the user is done.

START -> ADD_ITEM -> [more? ADD_ITEM] -> CHECKOUT -> DONE. ``add_item`` keeps the journey at
ADD_ITEM (the loop) while the prompt, filled from the state, shows the cart so far; ``finish``
moves to CHECKOUT, whose only tool is ``checkout``. The state uses the default dataclass
``to_dict``/``from_dict``. Scripted model (MockProvider handler), no API key needed.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
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


class CartStep(StrEnum):
    ADD_ITEM = "add_item"
    CHECKOUT = "checkout"
    DONE = "done"


@dataclass
class CartState(BaseJourneyState[CartStep]):
    step: CartStep = CartStep.ADD_ITEM
    items: dict[str, int] = field(default_factory=dict)
    order_id: str = ""

    def is_complete(self) -> bool:
        return self.step is CartStep.DONE


class CartTools(BaseJourneyTools[CartState]):
    async def add_item(self, name: str, quantity: int = 1) -> str:
        self.state.items[name] = self.state.items.get(name, 0) + quantity
        await self._notify_state_change()  # same step, new prompt (the cart changed)
        return f"added {quantity} x {name}"

    async def finish(self) -> str:
        self.state.step = CartStep.CHECKOUT
        await self._notify_state_change()
        return "ready to check out"

    async def checkout(self, confirm: bool) -> str:
        if not confirm:
            self.state.step = CartStep.ADD_ITEM
            return "back to shopping"
        self.state.order_id = f"ORD-{sum(self.state.items.values()):03d}"
        self.state.step = CartStep.DONE
        await self._notify_state_change()
        return f"order {self.state.order_id} placed"


ADD = (
    ToolSchemaBuilder("add_item")
    .description("Add an item to the cart")
    .param("name", "string", "Item", required=True)
    .param("quantity", "integer", "How many")
    .build()
)
FINISH = ToolSchemaBuilder("finish").description("The user has no more items").build()
CHECKOUT = ToolSchemaBuilder("checkout").param("confirm", "boolean", "User confirmed", required=True).build()


class CartAgent(JourneyAgent[CartState, CartTools, CartStep]):
    @property
    def key(self) -> str:
        return "cart"

    def get_initial_state(self) -> CartState:
        return CartState()

    def get_system_prompt(self, state: CartState) -> str:
        cart = ", ".join(f"{n} x{q}" for n, q in state.items.items()) or "empty"
        if state.step is CartStep.ADD_ITEM:
            return f"Cart: {cart}. Add what the user asks for; call finish when they are done."
        if state.step is CartStep.CHECKOUT:
            return f"Cart: {cart}. Ask the user to confirm, then call checkout."
        return f"Order {state.order_id} is placed. Say goodbye."

    def get_tool_schemas(self, state: CartState) -> list[ToolSchema]:
        return {CartStep.ADD_ITEM: [ADD, FINISH], CartStep.CHECKOUT: [CHECKOUT], CartStep.DONE: []}[
            state.step
        ]

    def create_tools(self, state: CartState, ctx: AgentContext) -> CartTools:
        return CartTools(state=state)


ITEM = re.compile(r"(\d+)\s+(\w+)")


def model(spec: RequestSpec) -> MockResponse:
    system = spec.messages[0]["content"]
    tools = {t["function"]["name"] for t in spec.tools}
    user_at = max(i for i, m in enumerate(spec.messages) if m["role"] == "user")
    text = spec.messages[user_at]["content"].lower()
    done_here = [m for m in spec.messages[user_at:] if m["role"] == "tool"]
    if "add_item" in tools and not done_here:
        wanted = ITEM.findall(text)
        if wanted:  # several items in one turn: parallel tool calls
            return MockResponse.tool_calls([("add_item", {"name": n, "quantity": int(q)}) for q, n in wanted])
        if "that's all" in text:
            return MockResponse.tool_call("finish", {})
    if "checkout" in tools and "yes" in text and not done_here:
        return MockResponse.tool_call("checkout", {"confirm": True})
    return MockResponse.text(system.split(". ")[0] + ".")


async def main() -> None:
    agent = CartAgent(llm_client=ExecutionEngine(MockProvider(handler=model)), memory=MemoryManager())
    for text in ["2 apples and 1 bread", "also 3 eggs", "that's all", "yes, place it"]:
        ctx = create_test_context([{"role": "user", "content": text}], metadata={"conversation_id": "cart-1"})
        result = await agent.run(ctx)
        calls = ", ".join(f"{c['name']}{c['arguments']}" for c in ctx.events_of("tool.call"))
        print(f"user:  {text}")
        print(f"agent: {result.final_output['response']}   [{result.final_output['step']}] {calls}")
    print("final state:", result.final_output["state"])


if __name__ == "__main__":
    asyncio.run(main())
