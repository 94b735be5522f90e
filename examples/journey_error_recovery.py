"""Design pattern 4, error recovery: STEP -> [ERROR -> RETRY -> STEP] -> NEXT_STEP.

A payment journey. Three kinds of failure, each handled where it belongs:

* **bad arguments** (the model sends the card number as a number): llm-client's validation sends
  the error back to the model, which corrects itself; the tool never ran;
* **a backend outage** (the payment client raises): the error becomes a tool message, the journey
  stays at PAYMENT, and the model tells the user to try again;
* **a business error** (card declined): the tool moves the journey to PAYMENT_FAILED, whose prompt
  and tools (``retry_payment``, ``cancel_order``) are about recovering; ``retry_payment`` goes back.

Scripted model (MockProvider handler) and a fake payment backend; no API key needed.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from agent_runtime_core.testing import create_test_context
from agent_runtime_framework import (
    AgentContext,
    BaseJourneyState,
    BaseJourneyTools,
    MemoryManager,
    ToolSchema,
    ToolSchemaBuilder,
)
from agent_runtime_framework.adapters import RuntimeAdapter
from llm_client import ExecutionEngine, MockProvider, MockResponse, RequestSpec


class PayStep(StrEnum):
    PAYMENT = "payment"
    PAYMENT_FAILED = "payment_failed"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"


@dataclass
class PayState(BaseJourneyState[PayStep]):
    step: PayStep = PayStep.PAYMENT
    attempts: int = 0
    last_error: str = ""
    receipt: str = ""

    def is_complete(self) -> bool:
        return self.step in (PayStep.CONFIRMED, PayStep.CANCELLED)


class Declined(Exception):
    pass


class PaymentBackend:
    """Down on the first call; declines cards ending in 0; accepts the rest."""

    def __init__(self) -> None:
        self.calls = 0

    async def charge(self, card: str) -> str:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("payment service unavailable")
        if card.endswith("0"):
            raise Declined("insufficient funds")
        return f"RCPT-{card[-4:]}"


class PayTools(BaseJourneyTools[PayState]):
    async def pay(self, card_number: str) -> str:
        self.state.attempts += 1
        try:
            receipt = await self.backend_client.charge(card_number)
        except Declined as exc:  # a business error: the journey branches to recovery
            self.state.last_error = str(exc)
            self.state.step = PayStep.PAYMENT_FAILED
            await self._notify_state_change()
            return f"declined: {exc}"
        self.state.receipt = receipt
        self.state.step = PayStep.CONFIRMED
        await self._notify_state_change()
        return f"paid, receipt {receipt}"

    async def retry_payment(self) -> str:
        self.state.step = PayStep.PAYMENT
        await self._notify_state_change()
        return "ok, ask for another card"

    async def cancel_order(self) -> str:
        self.state.step = PayStep.CANCELLED
        await self._notify_state_change()
        return "order cancelled"


PAY = ToolSchemaBuilder("pay").param("card_number", "string", "Card number", required=True).build()
RETRY = ToolSchemaBuilder("retry_payment").description("Try another card").build()
CANCEL = ToolSchemaBuilder("cancel_order").description("Give up").build()


class PaymentAgent(RuntimeAdapter[PayState, PayTools, PayStep]):
    """A RuntimeAdapter: create_tools receives the host's backend client."""

    @property
    def key(self) -> str:
        return "payment"

    def get_initial_state(self) -> PayState:
        return PayState()

    def get_system_prompt(self, state: PayState) -> str:
        if state.step is PayStep.PAYMENT_FAILED:
            return f"The card was declined ({state.last_error}). Offer retry_payment or cancel_order."
        if state.step is PayStep.PAYMENT:
            return "Take the card number and call pay. If a tool fails, apologise and ask again."
        return f"The order is {state.step.value}. Close the conversation."

    def get_tool_schemas(self, state: PayState) -> list[ToolSchema]:
        return {PayStep.PAYMENT: [PAY], PayStep.PAYMENT_FAILED: [RETRY, CANCEL]}.get(state.step, [])

    def create_tools(self, state: PayState, ctx: AgentContext, backend_client: Any) -> PayTools:
        return PayTools(state=state, backend_client=backend_client)


CARD = re.compile(r"\d{4}(?:[ -]?\d{4}){3}")


def model(spec: RequestSpec) -> MockResponse:
    system = spec.messages[0]["content"]
    tools = {t["function"]["name"] for t in spec.tools}
    user_at = max(i for i, m in enumerate(spec.messages) if m["role"] == "user")
    text = spec.messages[user_at]["content"]
    results = [m["content"] for m in spec.messages[user_at:] if m["role"] == "tool"]
    last = results[-1] if results else ""
    if last.startswith("Error: invalid arguments") and "pay" in tools:  # correct the argument type
        card = CARD.search(text)
        return MockResponse.tool_call("pay", {"card_number": card.group().replace(" ", "") if card else ""})
    if last.startswith("Error:"):
        return MockResponse.text("Sorry, the payment service had a problem. Please send the card again.")
    if results:
        if last == "ok, ask for another card":
            return MockResponse.text("Sure, which card should I use?")
        return MockResponse.text(f"Update: {last}.")
    if "pay" in tools and (card := CARD.search(text)):
        digits = card.group().replace(" ", "")
        if "same" not in text and "again" not in text and "other" not in text:
            return MockResponse.tool_call("pay", {"card_number": int(digits)})  # wrong type, on purpose
        return MockResponse.tool_call("pay", {"card_number": digits})
    if "retry_payment" in tools and "another" in text:
        return MockResponse.tool_call("retry_payment", {})
    if "cancel_order" in tools and "cancel" in text:
        return MockResponse.tool_call("cancel_order", {})
    return MockResponse.text(system.split(".")[0] + ".")


async def main() -> None:
    backend = PaymentBackend()
    agent = PaymentAgent(
        llm_client=ExecutionEngine(MockProvider(handler=model)),
        backend_client=backend,
        memory=MemoryManager(),
    )
    turns = [
        "My card is 4111 1111 1111 1110",  # bad argument type, then the backend is down
        "Try again please: 4111 1111 1111 1110",  # declined -> PAYMENT_FAILED
        "Let me use another card",  # retry_payment -> back to PAYMENT
        "The other one: 5500 0000 0000 0004",  # paid -> CONFIRMED
    ]
    for text in turns:
        ctx = create_test_context([{"role": "user", "content": text}], metadata={"conversation_id": "pay-1"})
        result = await agent.run(ctx)
        print(f"user:  {text}")
        for r in ctx.events_of("tool.result"):
            outcome = r["error"] if r.get("is_error") else r["result"]
            print(f"       {r['name']} -> {outcome[:90]}")
        print(f"agent: {result.final_output['response']}   [{result.final_output['step']}]")
    assert result.final_output["state"]["step"] == "confirmed", result.final_output
    print("final state:", result.final_output["state"])


if __name__ == "__main__":
    asyncio.run(main())
