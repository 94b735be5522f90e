"""Tool, the @tool decorator and ToolRegistry: validation, conversion, invocation, errors."""

from __future__ import annotations

import asyncio
import enum
import threading
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

import pytest
from llm_client import (
    RequestSpec,
    Tool,
    ToolArgumentsError,
    ToolCall,
    ToolExecutionError,
    ToolNotFoundError,
    ToolRegistry,
    ToolSchemaError,
    tool,
)


class Unit(enum.Enum):
    C = "celsius"
    F = "fahrenheit"


@dataclass
class Item:
    sku: str
    qty: int = 1


class Filters(TypedDict):
    color: str


@tool
def get_weather(city: str, unit: Unit = Unit.C, days: int = 1) -> dict[str, Any]:
    """Get the weather for a city.

    Args:
        city: The city name.
    """
    return {"city": city, "unit": unit, "days": days}


@tool(name="place_order", description="Order items.")
async def order(
    items: list[Item], filters: Filters | None = None, mode: Literal["fast", "slow"] = "fast"
) -> Any:
    return items, filters, mode


# --- construction and format -------------------------------------------------------------------------


def test_decorator_builds_a_tool_that_is_still_callable() -> None:
    assert isinstance(get_weather, Tool)
    assert get_weather.name == "get_weather"
    assert get_weather.description == "Get the weather for a city."
    assert get_weather("Paris") == {"city": "Paris", "unit": Unit.C, "days": 1}
    assert get_weather.__name__ == "get_weather"
    assert get_weather.__doc__ is not None and "Get the weather" in get_weather.__doc__


def test_decorator_with_options() -> None:
    assert order.name == "place_order"
    assert order.description == "Order items."


def test_to_openai_format() -> None:
    fmt = get_weather.to_openai_format()
    assert fmt["type"] == "function"
    assert fmt["function"]["name"] == "get_weather"
    assert fmt["function"]["description"] == "Get the weather for a city."
    params = fmt["function"]["parameters"]
    assert params["required"] == ["city"]
    assert params["properties"]["city"] == {"type": "string", "description": "The city name."}
    assert "strict" not in fmt["function"]
    strict = Tool.from_function(get_weather.handler, strict=True)  # type: ignore[arg-type]
    assert strict.to_openai_format()["function"]["strict"] is True


def test_manual_tool_as_core_builds_it() -> None:
    t = Tool(
        name="echo",
        description="Echo text.",
        parameters={"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
        handler=lambda text: text,
    )
    assert t.to_openai_format()["function"]["parameters"]["required"] == ["text"]
    assert Tool(name="noop", description="").parameters["type"] == "object"


def test_request_spec_accepts_tools_and_registries() -> None:
    spec = RequestSpec.build("hi", tools=[get_weather])
    assert spec.tools[0]["function"]["name"] == "get_weather"
    spec = RequestSpec.build("hi", tools=ToolRegistry([get_weather, order]))
    assert [t["function"]["name"] for t in spec.tools] == ["get_weather", "place_order"]


@pytest.mark.parametrize("name", ["", "has space", "x" * 65, "dots.not.allowed"])
def test_invalid_tool_name(name: str) -> None:
    with pytest.raises(ToolSchemaError, match="invalid tool name"):
        Tool(name=name, description="", parameters={"type": "object"})


def test_parameters_must_be_an_object_schema() -> None:
    with pytest.raises(ToolSchemaError, match='"type": "object"'):
        Tool(name="t", description="", parameters={"type": "string"})
    with pytest.raises(ToolSchemaError, match="unknown JSON-schema type"):
        Tool(name="t", description="", parameters={"type": "object", "properties": {"a": {"type": "str"}}})


def test_handler_must_be_callable() -> None:
    with pytest.raises(ToolSchemaError, match="must be callable"):
        Tool(name="t", description="", parameters={}, handler="nope")  # type: ignore[arg-type]


# --- validation ----------------------------------------------------------------------------------------


def test_validate_arguments_accepts_valid_input() -> None:
    assert get_weather.validate_arguments({"city": "Paris", "unit": "fahrenheit"}) == {
        "city": "Paris",
        "unit": "fahrenheit",
    }


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({}, "argument 'city' is required (string)"),
        ({"city": 3}, "argument 'city' must be string, got integer 3"),
        ({"city": "Paris", "days": "2"}, "argument 'days' must be integer, got string '2'"),
        ({"city": "Paris", "days": 1.5}, "argument 'days' must be integer, got number 1.5"),
        ({"city": "Paris", "days": True}, "argument 'days' must be integer, got boolean True"),
        ({"city": "Paris", "unit": "kelvin"}, "argument 'unit' must be one of 'celsius', 'fahrenheit'"),
        ({"city": "Paris", "country": "FR"}, "unexpected argument 'country'; known: city, unit, days"),
        ({"city": None}, "argument 'city' must be string, got null"),
    ],
)
def test_validation_errors_name_the_tool_and_the_field(args: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ToolArgumentsError) as info:
        get_weather.validate_arguments(args)
    message = str(info.value)
    assert message.startswith("invalid arguments for tool 'get_weather': ")
    assert fragment in message


def test_nested_errors_have_paths_and_all_problems_are_reported() -> None:
    with pytest.raises(ToolArgumentsError) as info:
        order.validate_arguments({"items": [{"sku": "a"}, {"qty": "2", "x": 1}], "mode": "warp"})
    message = str(info.value)
    assert "argument 'items[1].sku' is required" in message
    assert "argument 'items[1].qty' must be integer" in message
    assert "unexpected argument 'items[1].x'; known: sku, qty" in message
    assert "argument 'mode' must be one of 'fast', 'slow'" in message


def test_integral_float_for_integer_becomes_int() -> None:
    args = get_weather.validate_arguments({"city": "Paris", "days": 3.0})
    assert args["days"] == 3 and type(args["days"]) is int


def test_validate_arguments_rejects_non_mapping() -> None:
    with pytest.raises(ToolArgumentsError, match="must be a JSON object, got list"):
        get_weather.validate_arguments([1, 2])  # type: ignore[arg-type]


# --- invoke --------------------------------------------------------------------------------------------


async def test_invoke_parses_validates_and_converts() -> None:
    result = await get_weather.invoke('{"city": "Oslo", "unit": "fahrenheit", "days": 2}')
    assert result == {"city": "Oslo", "unit": Unit.F, "days": 2}


async def test_invoke_async_handler_converts_dataclasses_and_keeps_typeddicts_as_dicts() -> None:
    items, filters, mode = await order.invoke(
        {"items": [{"sku": "a", "qty": 2}, {"sku": "b"}], "filters": {"color": "red"}}
    )
    assert items == [Item("a", 2), Item("b", 1)]
    assert filters == {"color": "red"} and type(filters) is dict
    assert mode == "fast"


async def test_invoke_converts_tuples_sets_and_optional_enums() -> None:
    def f(pair: tuple[int, str], tags: set[str], unit: Unit | None = None) -> Any:
        return pair, tags, unit

    t = Tool.from_function(f)
    assert await t.invoke('{"pair": [1, "a"], "tags": ["x", "x"], "unit": "celsius"}') == (
        (1, "a"),
        {"x"},
        Unit.C,
    )
    assert (await t.invoke('{"pair": [1, "a"], "tags": [], "unit": null}'))[2] is None


async def test_invoke_union_converts_with_the_matching_arm() -> None:
    def f(target: Item | Unit) -> Any:
        return target

    t = Tool.from_function(f)
    assert await t.invoke({"target": {"sku": "z"}}) == Item("z")
    assert await t.invoke({"target": "fahrenheit"}) is Unit.F


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ('{"city": ', "are not valid JSON"),
        ("[1, 2]", "must be a JSON object, got list"),
        ("null", "must be a JSON object, got NoneType"),
    ],
)
async def test_invoke_bad_json(arguments: str, fragment: str) -> None:
    with pytest.raises(ToolArgumentsError, match="get_weather") as info:
        await get_weather.invoke(arguments)
    assert fragment in str(info.value)


async def test_invoke_runs_sync_handlers_in_the_loop_thread_by_default() -> None:
    seen: list[int] = []

    def where() -> None:
        seen.append(threading.get_ident())

    await Tool.from_function(where).invoke("{}")
    await Tool.from_function(where, run_in_thread=True).invoke("{}")
    assert seen[0] == threading.get_ident()
    assert seen[1] != threading.get_ident()


async def test_sync_handler_returning_an_awaitable_is_awaited() -> None:
    async def inner() -> str:
        return "done"

    t = Tool(name="t", description="", parameters={}, handler=lambda: inner())
    assert await t.invoke(None) == "done"


async def test_handler_error_becomes_tool_execution_error_with_original() -> None:
    boom = KeyError("missing")

    def fail(x: int) -> None:
        raise boom

    with pytest.raises(ToolExecutionError, match="tool 'fail' failed: KeyError") as info:
        await Tool.from_function(fail).invoke('{"x": 1}')
    assert info.value.original is boom
    assert info.value.__cause__ is boom


async def test_cancelled_error_propagates_untouched() -> None:
    async def cancelled() -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await Tool.from_function(cancelled).invoke("{}")


async def test_tool_without_handler() -> None:
    t = Tool(name="declared", description="", parameters={})
    with pytest.raises(ToolExecutionError, match="'declared' has no handler"):
        await t.invoke("{}")
    with pytest.raises(ToolExecutionError, match="no handler"):
        t()


async def test_rejected_conversion_is_an_arguments_error() -> None:
    @dataclass
    class Positive:
        n: int

        def __post_init__(self) -> None:
            if self.n <= 0:
                raise ValueError("n must be positive")

    def f(p: Positive) -> int:
        return p.n

    f.__annotations__ = {"p": Positive, "return": int}
    t = Tool.from_function(f)
    assert await t.invoke({"p": {"n": 2}}) == 2
    with pytest.raises(ToolArgumentsError, match="argument 'p' was rejected: n must be positive"):
        await t.invoke({"p": {"n": -1}})


async def test_injected_parameters_are_skipped_in_schema_and_supplied_at_invoke() -> None:
    def lookup(key: str, db: dict[str, str]) -> str:
        return db[key]

    t = Tool.from_function(lookup, skip={"db"})
    assert list(t.parameters["properties"]) == ["key"]
    assert await t.invoke('{"key": "a"}', injected={"db": {"a": "1"}}) == "1"


async def test_positional_only_parameters() -> None:
    def f(a: int, b: int = 10, /, c: int = 0) -> int:
        return a * 100 + b + c

    t = Tool.from_function(f)
    assert await t.invoke({"a": 1, "c": 1}) == 111
    assert await t.invoke({"a": 1, "b": 2}) == 102


async def test_invoke_does_not_mutate_the_callers_mapping() -> None:
    args = {"city": "Paris", "unit": "celsius"}
    await get_weather.invoke(args)
    assert args == {"city": "Paris", "unit": "celsius"}


def test_from_function_rejects_a_tool() -> None:
    with pytest.raises(ToolSchemaError, match="already a Tool"):
        Tool.from_function(get_weather)


# --- format_result ---------------------------------------------------------------------------------------


def test_format_result() -> None:
    assert Tool.format_result("plain") == "plain"
    assert Tool.format_result(None) == ""
    assert Tool.format_result({"a": [1, 2]}) == '{"a": [1, 2]}'
    assert Tool.format_result(Item("x", 2)) == '{"sku": "x", "qty": 2}'
    assert Tool.format_result({"unit": Unit.F, "item": Item("y")}) == (
        '{"unit": "fahrenheit", "item": {"sku": "y", "qty": 1}}'
    )
    assert Tool.format_result(3.5) == "3.5"
    assert Tool.format_result({"when": object}) == '{"when": "<class \'object\'>"}'
    assert Tool.format_result("é") == "é"


# --- registry -----------------------------------------------------------------------------------------------


def test_registry_basics() -> None:
    def add(a: int, b: int) -> int:
        return a + b

    reg = ToolRegistry([get_weather])
    registered = reg.register(add)
    assert isinstance(registered, Tool) and registered.name == "add"
    assert "add" in reg and "nope" not in reg
    assert len(reg) == 2
    assert reg.names() == ["get_weather", "add"]
    assert reg.tools() == [get_weather, registered]
    assert list(reg) == [get_weather, registered]
    assert [d["function"]["name"] for d in reg.to_openai_format()] == ["get_weather", "add"]
    assert reg.unregister("add") is registered
    assert reg.names() == ["get_weather"]


def test_registry_duplicate_names() -> None:
    reg = ToolRegistry([get_weather])
    with pytest.raises(ValueError, match=r"'get_weather' is already registered.*replace=True"):
        reg.register(get_weather)
    replacement = Tool(name="get_weather", description="new", parameters={})
    reg.register(replacement, replace=True)
    assert reg.get("get_weather") is replacement


def test_registry_register_under_another_name_copies_the_tool() -> None:
    reg = ToolRegistry()
    renamed = reg.register(get_weather, name="weather")
    assert renamed.name == "weather" and get_weather.name == "get_weather"
    assert reg.names() == ["weather"]


def test_registry_register_rejects_non_callables() -> None:
    with pytest.raises(TypeError, match="takes a Tool or a function, got int"):
        ToolRegistry().register(3)  # type: ignore[arg-type]


def test_tool_not_found_lists_known_names() -> None:
    reg = ToolRegistry([get_weather, order])
    with pytest.raises(
        ToolNotFoundError, match="no tool named 'weather'; available tools: 'get_weather', 'place_order'"
    ):
        reg.get("weather")
    with pytest.raises(ToolNotFoundError, match="none registered"):
        ToolRegistry().get("x")
    with pytest.raises(ToolNotFoundError):
        reg.unregister("weather")


async def test_registry_execute() -> None:
    reg = ToolRegistry([get_weather])
    call = ToolCall(id="c1", name="get_weather", arguments='{"city": "Rome"}')
    assert await reg.execute(call.name, call.arguments) == {"city": "Rome", "unit": Unit.C, "days": 1}
    with pytest.raises(ToolNotFoundError):
        await reg.execute("missing", "{}")


async def test_registry_is_subclass_friendly() -> None:
    events: list[str] = []

    class EventRegistry(ToolRegistry):
        async def execute(self, name: str, arguments: Any = None, *, injected: Any = None) -> Any:
            events.append(f"start {name}")
            result = await super().execute(name, arguments, injected=injected)
            events.append(f"end {name}")
            return result

    reg = EventRegistry([get_weather])
    await reg.execute("get_weather", {"city": "Rome"})
    assert events == ["start get_weather", "end get_weather"]
    assert repr(reg) == "EventRegistry(['get_weather'])"
