"""ToolSchema and ToolSchemaBuilder: declaring a journey step's tools for the model.

A :class:`ToolSchema` *is* an llm-client :class:`~llm_client.Tool` declared without a handler:
the same JSON schema shape (``{"type": "object", "properties", "required",
"additionalProperties": false}``), the same name rules and the same argument validator, so there
is one schema model in the stack. The journey binds a handler per run with :meth:`ToolSchema.bind`,
because the object that executes a tool (the journey's tools instance) only exists during a run.

The builder is for hand-written schemas; ``ToolSchema.from_function`` (inherited from ``Tool``)
builds one from a function's type hints instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from llm_client import Tool, ToolSchemaError

__all__ = ["ToolSchema", "ToolSchemaBuilder", "ParamType", "PARAM_TYPES"]

ParamType = Literal["string", "number", "integer", "boolean", "array", "object"]
PARAM_TYPES: tuple[str, ...] = ("string", "number", "integer", "boolean", "array", "object")


class ToolSchema(Tool):
    """A tool the model may call, declared for the model; :meth:`bind` gives it a handler."""

    def bind(self, handler: Callable[..., Any]) -> Tool:
        """An llm-client Tool with this schema that runs ``handler(**validated_arguments)``."""
        return Tool(self.name, self.description, self.parameters, handler, strict=self.strict)

    def __repr__(self) -> str:
        return f"ToolSchema(name={self.name!r}, params={list(self.parameters.get('properties', {}))!r})"


class ToolSchemaBuilder:
    """Fluent builder: ``ToolSchemaBuilder("save_name").description(...).param(...).build()``.

    ``param(name, type, description, required=False, enum=None, items=None, properties=None)``:
    ``type`` is one of string/number/integer/boolean/array/object; ``enum`` restricts the values;
    ``items`` is an array's element type (a type name or a schema dict); ``properties`` an object's
    fields (name -> type name or schema dict; all of them required). Mistakes (unknown type, an enum
    value of the wrong type, a parameter declared twice) raise llm-client's ``ToolSchemaError``
    when they are made, not when the model first calls the tool.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._description = ""
        self._properties: dict[str, dict[str, Any]] = {}
        self._required: list[str] = []
        self._strict = False

    def description(self, text: str) -> ToolSchemaBuilder:
        self._description = text
        return self

    def strict(self, value: bool = True) -> ToolSchemaBuilder:
        """Ask providers that support it (OpenAI) to enforce the schema while generating."""
        self._strict = value
        return self

    def param(
        self,
        name: str,
        type: ParamType | str,
        description: str = "",
        required: bool = False,
        *,
        enum: Sequence[Any] | None = None,
        items: str | Mapping[str, Any] | None = None,
        properties: Mapping[str, str | Mapping[str, Any]] | None = None,
    ) -> ToolSchemaBuilder:
        where = f"tool {self._name!r}, parameter {name!r}"
        if name in self._properties:
            raise ToolSchemaError(f"{where}: declared twice")
        schema = _type_schema(type, where)
        if description:
            schema["description"] = description
        if enum is not None:
            values = list(enum)
            if not values:
                raise ToolSchemaError(f"{where}: enum must list at least one value")
            for value in values:
                if not _fits(type, value):
                    raise ToolSchemaError(f"{where}: enum value {value!r} is not a {type}")
            schema["enum"] = values
        if items is not None:
            if type != "array":
                raise ToolSchemaError(f"{where}: items= applies to type 'array', not {type!r}")
            schema["items"] = _sub_schema(items, f"{where} items")
        if properties is not None:
            if type != "object":
                raise ToolSchemaError(f"{where}: properties= applies to type 'object', not {type!r}")
            props = {k: _sub_schema(v, f"{where}.{k}") for k, v in properties.items()}
            schema.update(properties=props, required=list(props), additionalProperties=False)
        self._properties[name] = schema
        if required:
            self._required.append(name)
        return self

    def build(self) -> ToolSchema:
        parameters = {
            "type": "object",
            "properties": dict(self._properties),
            "required": list(self._required),
            "additionalProperties": False,
        }
        return ToolSchema(self._name, self._description, parameters, strict=self._strict)


def _type_schema(type_name: str, where: str) -> dict[str, Any]:
    if type_name not in PARAM_TYPES:
        raise ToolSchemaError(
            f"{where}: unknown type {type_name!r}; expected one of {', '.join(PARAM_TYPES)}"
        )
    return {"type": type_name}


def _sub_schema(spec: str | Mapping[str, Any], where: str) -> dict[str, Any]:
    if isinstance(spec, str):
        return _type_schema(spec, where)
    if not isinstance(spec, Mapping):
        raise ToolSchemaError(f"{where}: expected a type name or a schema dict, got {type(spec).__name__}")
    return dict(spec)


def _fits(type_name: str, value: Any) -> bool:
    if type_name == "string":
        return isinstance(value, str)
    if type_name == "boolean":
        return isinstance(value, bool)
    if type_name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return True
