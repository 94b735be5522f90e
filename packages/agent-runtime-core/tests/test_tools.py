from __future__ import annotations

import uuid
from typing import Any

import pytest
from agent_runtime_core import EventType, RunContext, Tool, ToolCallData, ToolRegistry
from llm_client import ToolArgumentsError, ToolCall, ToolExecutionError, ToolNotFoundError


class RecordingContext(RunContext):
    def __init__(self) -> None:
        self.run_id = uuid.uuid4()
        self.input_messages = []
        self.metadata = {}
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._tools = ToolRegistry()

    @property
    def tools(self) -> ToolRegistry:
        return self._tools

    async def emit(self, event_type: EventType | str, payload: dict[str, Any]) -> None:
        self.events.append((str(event_type), payload))

    async def checkpoint(self, state: dict[str, Any]) -> None:
        pass

    async def get_state(self) -> dict[str, Any] | None:
        return None

    def is_cancelled(self) -> bool:
        return False


ROME = '{"location": "Rome"}'


def get_weather(location: str) -> str:
    """Get the current weather for a location."""
    return f"The weather in {location} is sunny, 72°F"


def search_web(query: str) -> str:
    """Search the web for information."""
    return f"Search results for: {query}"


async def test_seed_tool_registry_block() -> None:
    tools = ToolRegistry()
    tools.register(Tool.from_function(get_weather))
    tools.register(Tool.from_function(search_web))
    spec = tools.to_openai_format()
    assert [t["function"]["name"] for t in spec] == ["get_weather", "search_web"]
    assert spec[0]["function"]["parameters"]["required"] == ["location"]
    assert (
        await tools.execute("get_weather", '{"location": "Paris"}') == "The weather in Paris is sunny, 72°F"
    )
    assert await tools.execute("search_web", {"query": "python"}) == "Search results for: python"


async def test_hand_written_tool_as_in_the_django_seed() -> None:
    async def handler(location: str) -> str:
        return f"sunny in {location}"

    registry = ToolRegistry()
    registry.register(
        Tool(
            name="get_weather",
            description="Get the current weather for a location",
            parameters={
                "type": "object",
                "properties": {"location": {"type": "string", "description": "City name"}},
                "required": ["location"],
            },
            handler=handler,
        )
    )
    assert await registry.execute("get_weather", {"location": "Oslo"}) == "sunny in Oslo"
    with pytest.raises(ToolArgumentsError, match="location"):
        await registry.execute("get_weather", {})


@pytest.mark.parametrize(
    "call",
    [
        {
            "id": "c1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"location": "Rome"}'},
        },
        ToolCall("c1", "get_weather", ROME),
        ToolCallData.of(ToolCall("c1", "get_weather", ROME)),
    ],
)
async def test_execute_with_events_emits_call_and_result(call: Any) -> None:
    registry = ToolRegistry([get_weather])
    ctx = RecordingContext()
    result = await registry.execute_with_events(call, ctx)
    assert result == "The weather in Rome is sunny, 72°F"
    (t1, p1), (t2, p2) = ctx.events
    assert (t1, t2) == ("tool.call", "tool.result")
    assert p1["tool_call_id"] == p2["tool_call_id"] == "c1"
    assert p1["tool"] == "get_weather" and p1["arguments"] == '{"location": "Rome"}'
    assert p2["result"] == result and "error" not in p2


async def test_execute_with_events_reports_failures_then_raises() -> None:
    def broken(x: int) -> int:
        """Always fails."""
        raise RuntimeError("disk on fire")

    registry = ToolRegistry([broken])
    ctx = RecordingContext()
    with pytest.raises(ToolExecutionError, match="disk on fire"):
        await registry.execute_with_events(ToolCall("c9", "broken", '{"x": 1}'), ctx)
    assert ctx.events[-1][1]["is_error"] is True and "disk on fire" in ctx.events[-1][1]["error"]
    with pytest.raises(ToolNotFoundError, match="broken"):
        await registry.execute_with_events(ToolCall("c10", "missing", "{}"), RecordingContext())


def test_tool_call_data_reads_as_dict_and_attributes() -> None:
    data = ToolCallData.of(ToolCall("c1", "f", '{"a": 1}'))
    assert data["function"]["name"] == data.name == "f"
    assert data.id == "c1" and data.arguments == '{"a": 1}'
    assert dict(data) == {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
