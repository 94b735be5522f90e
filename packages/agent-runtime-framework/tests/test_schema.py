"""ToolSchemaBuilder builds llm-client's schema shape, and its Tools validate arguments."""

from __future__ import annotations

from typing import Literal

import pytest
from agent_runtime_framework import ToolSchema, ToolSchemaBuilder
from llm_client import Tool, ToolArgumentsError, ToolSchemaError


def test_builder_matches_llm_client_function_schemas() -> None:
    def quote(kind: Literal["home", "car"], value: int, tags: list[str], urgent: bool = False) -> str:
        """Make a quote."""
        return ""

    built = (
        ToolSchemaBuilder("quote")
        .description("Make a quote.")
        .param("kind", "string", enum=["home", "car"], required=True)
        .param("value", "integer", required=True)
        .param("tags", "array", items="string", required=True)
        .param("urgent", "boolean")
        .build()
    )
    reference = Tool.from_function(quote)
    strip = {
        k: {kk: vv for kk, vv in v.items() if kk != "default"}
        for k, v in reference.parameters["properties"].items()
    }
    assert built.parameters["properties"] == strip
    assert built.parameters["required"] == reference.parameters["required"]
    assert built.parameters["additionalProperties"] is False
    assert isinstance(built, Tool) and built.handler is None
    assert built.to_openai_format()["function"]["name"] == "quote"


def test_object_and_number_params() -> None:
    schema = (
        ToolSchemaBuilder("address")
        .param(
            "where",
            "object",
            "Address",
            required=True,
            properties={"city": "string", "zip": {"type": "string"}},
        )
        .param("ratio", "number", enum=[0.5, 1])
        .build()
    )
    assert schema.parameters["properties"]["where"] == {
        "type": "object",
        "description": "Address",
        "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
        "required": ["city", "zip"],
        "additionalProperties": False,
    }


async def test_bound_schema_validates_before_the_handler_runs() -> None:
    calls: list[dict[str, object]] = []

    async def handler(**kwargs: object) -> str:
        calls.append(kwargs)
        return "ok"

    schema = ToolSchemaBuilder("pick").param("color", "string", enum=["red", "blue"], required=True).build()
    tool = schema.bind(handler)
    assert await tool.invoke({"color": "red"}) == "ok"
    with pytest.raises(ToolArgumentsError, match="color"):
        await tool.invoke({"color": "green"})
    with pytest.raises(ToolArgumentsError, match="argument 'color' is required"):
        await tool.invoke({})
    with pytest.raises(ToolArgumentsError, match="extra"):
        await tool.invoke({"color": "red", "extra": 1})
    assert calls == [{"color": "red"}]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda b: b.param("x", "str"), "unknown type 'str'"),
        (lambda b: b.param("x", "integer", enum=["a"]), "enum value 'a' is not a integer"),
        (lambda b: b.param("x", "boolean", enum=[]), "at least one value"),
        (lambda b: b.param("x", "string").param("x", "string"), "declared twice"),
        (lambda b: b.param("x", "string", items="string"), "items= applies to type 'array'"),
        (lambda b: b.param("x", "array", properties={"a": "string"}), "properties= applies to type 'object'"),
        (lambda b: b.param("x", "array", items="date"), "unknown type 'date'"),
    ],
)
def test_builder_mistakes_raise_tool_schema_error(build: object, message: str) -> None:
    with pytest.raises(ToolSchemaError, match=message):
        build(ToolSchemaBuilder("t"))  # type: ignore[operator]


def test_invalid_tool_name_is_llm_clients_error() -> None:
    with pytest.raises(ToolSchemaError, match="invalid tool name"):
        ToolSchemaBuilder("has space").build()
    assert "ToolSchema(name='t'" in repr(ToolSchema("t"))
