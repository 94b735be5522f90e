"""The agent-runtime demo: an Agent with two tools answers a question, streaming its answer.

Runs with no API key and no server: the model is llm-client's scripted MockProvider, playing a
model that calls the tools and then answers from their results. Set OPENAI_API_KEY or
ANTHROPIC_API_KEY to run the same agent against the real model instead (DEMO_MODEL picks it).

    make demo        # or: uv run python examples/demo.py
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from llm_client import (
    Agent,
    AgentDone,
    ExecutionEngine,
    MockProvider,
    MockResponse,
    Provider,
    RequestSpec,
    StreamError,
    TextDelta,
    ToolEnd,
    ToolStart,
)

CITIES = {"paris": 18.0, "london": 14.5, "tokyo": 22.0}
QUESTION = "What's the weather in Paris right now, in Fahrenheit?"


def get_weather(city: str) -> dict[str, Any]:
    """Current weather for a city.

    Args:
        city: The city name, e.g. "Paris".
    """
    celsius = CITIES.get(city.lower())
    if celsius is None:
        raise ValueError(f"no weather station for {city!r}; try one of {sorted(CITIES)}")
    return {"city": city, "celsius": celsius, "sky": "clear"}


def celsius_to_fahrenheit(celsius: float) -> float:
    """Convert a temperature from Celsius to Fahrenheit.

    Args:
        celsius: Degrees Celsius.
    """
    return round(celsius * 9 / 5 + 32, 1)


def scripted_model(spec: RequestSpec) -> MockResponse:
    """Plays the model: asks for the weather, then the conversion, then answers from the results."""
    results = {m.get("tool_call_id"): m["content"] for m in spec.messages if m["role"] == "tool"}
    if not results:
        return MockResponse.tool_call("get_weather", {"city": "Paris"}, id="call_weather")
    weather = json.loads(results["call_weather"])
    if "call_convert" not in results:
        return MockResponse.tool_call(
            "celsius_to_fahrenheit", {"celsius": weather["celsius"]}, id="call_convert"
        )
    fahrenheit = results["call_convert"]
    return MockResponse.text(
        f"It is {weather['sky']} in {weather['city']} right now: {weather['celsius']:g} °C, "
        f"which is {fahrenheit} °F."
    )


def choose_provider() -> Provider:
    if os.environ.get("OPENAI_API_KEY"):
        from llm_client import OpenAIProvider

        return OpenAIProvider(model=os.environ.get("DEMO_MODEL", "gpt-4o-mini"))
    if os.environ.get("ANTHROPIC_API_KEY"):
        from llm_client import AnthropicProvider

        return AnthropicProvider(model=os.environ.get("DEMO_MODEL", "claude-haiku-4-5"))
    # Named after a real model so the shipped price table can price the scripted usage.
    return MockProvider(handler=scripted_model, model="gpt-4o-mini")


async def main() -> int:
    provider = choose_provider()
    engine = ExecutionEngine(provider=provider)
    agent = Agent(
        engine=engine,
        tools=[get_weather, celsius_to_fahrenheit],
        system_prompt="You answer weather questions. Use the tools; never guess a temperature.",
        use_middleware=True,
    )
    print(f"model: {provider.name}/{provider.model}")
    print(f"user:  {QUESTION}")
    print("agent: ", end="", flush=True)
    async for event in agent.stream(QUESTION):
        if isinstance(event, TextDelta):
            print(event.text, end="", flush=True)
        elif isinstance(event, ToolStart):
            print(f"\n  -> {event.call.name}({event.call.arguments})", flush=True)
        elif isinstance(event, ToolEnd):
            print(f"  <- {event.outcome.content}", flush=True)
            print("agent: ", end="", flush=True)
        elif isinstance(event, StreamError):
            print(f"\nerror: {event.error}", file=sys.stderr)
            return 1
        elif isinstance(event, AgentDone):
            result = event.result
            u = result.usage
            cost = "unknown (no price for this model)" if u.cost is None else f"${u.cost:.8f}"
            print()
            print(
                f"usage: {result.turns} model calls, {len(result.tool_calls)} tool calls, "
                f"{u.input_tokens} input + {u.output_tokens} output = {u.total_tokens} tokens; cost {cost}"
            )
    await engine.aclose()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
