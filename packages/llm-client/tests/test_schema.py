"""function_schema: type hints and docstrings -> the JSON schema a model sees."""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, NewType, NotRequired, Optional, TypedDict

import pytest
from llm_client import ToolSchemaError, function_schema
from llm_client.schema import compile_schema, parse_docstring


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclass
class Point:
    """A point on the map.

    Attributes:
        x: Horizontal position.
    """

    x: float
    y: float = 0.0
    label: str | None = None
    tags: list[str] = field(default_factory=list)


class Address(TypedDict):
    street: str
    zip: NotRequired[str]


class Loose(TypedDict, total=False):
    a: int
    b: str


UserId = NewType("UserId", int)


def props(fn: Callable[..., Any], **kw: Any) -> dict[str, Any]:
    return function_schema(fn, **kw)[1]["properties"]


def test_primitives_and_required() -> None:
    def f(a: str, b: int, c: float, d: bool, e: str = "x") -> None: ...

    desc, schema = function_schema(f)
    assert schema == {
        "type": "object",
        "properties": {
            "a": {"type": "string"},
            "b": {"type": "integer"},
            "c": {"type": "number"},
            "d": {"type": "boolean"},
            "e": {"type": "string", "default": "x"},
        },
        "required": ["a", "b", "c", "d"],
        "additionalProperties": False,
    }
    assert desc == ""


def test_optional_is_nullable_and_required_only_without_default() -> None:
    def f(a: int | None, b: Optional[str] = None) -> None: ...  # noqa: UP045 - Optional is supported too

    _, schema = function_schema(f)
    assert schema["properties"]["a"] == {"type": ["integer", "null"]}
    assert schema["properties"]["b"] == {"type": ["string", "null"], "default": None}
    assert schema["required"] == ["a"]


def test_literal_and_enum() -> None:
    def f(
        mode: Literal["fast", "slow"], color: Color, level: Level = Level.LOW, n: Literal[1, "a"] = 1
    ) -> None: ...

    p = props(f)
    assert p["mode"] == {"type": "string", "enum": ["fast", "slow"]}
    assert p["color"] == {"type": "string", "enum": ["red", "green"]}
    assert p["level"] == {"type": "integer", "enum": [1, 2], "default": 1}
    assert p["n"] == {"enum": [1, "a"], "default": 1}


def test_optional_enum_allows_null_in_enum() -> None:
    def f(color: Color | None = None) -> None: ...

    assert props(f)["color"] == {"type": ["string", "null"], "enum": ["red", "green", None], "default": None}


def test_collections() -> None:
    def f(
        a: list[int],
        b: tuple[str, ...],
        c: set[str],
        d: frozenset[int],
        e: tuple[int, str],
        g: tuple[int, int],
        h: dict[str, float],
        i: dict[str, Any],
        j: list[Any],
        k: list,  # type: ignore[type-arg]
        m: dict,  # type: ignore[type-arg]
    ) -> None: ...

    p = props(f)
    assert p["a"] == {"type": "array", "items": {"type": "integer"}}
    assert p["b"] == {"type": "array", "items": {"type": "string"}}
    assert p["c"] == {"type": "array", "items": {"type": "string"}}
    assert p["d"] == {"type": "array", "items": {"type": "integer"}}
    assert p["e"] == {
        "type": "array",
        "minItems": 2,
        "maxItems": 2,
        "prefixItems": [{"type": "integer"}, {"type": "string"}],
    }
    assert p["g"] == {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "integer"}}
    assert p["h"] == {"type": "object", "additionalProperties": {"type": "number"}}
    assert p["i"] == {"type": "object", "additionalProperties": {}}
    assert p["j"] == {"type": "array", "items": {}}
    assert p["k"] == {"type": "array"}
    assert p["m"] == {"type": "object"}


def test_dataclass_parameter_is_a_nested_object_with_its_own_required() -> None:
    def f(p: Point) -> None: ...

    assert props(f)["p"] == {
        "type": "object",
        "description": "A point on the map.",
        "properties": {
            "x": {"type": "number", "description": "Horizontal position."},
            "y": {"type": "number", "default": 0.0},
            "label": {"type": ["string", "null"], "default": None},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["x"],
        "additionalProperties": False,
    }


def test_typeddict_required_and_not_required() -> None:
    def f(a: Address, b: Loose) -> None: ...

    p = props(f)
    assert p["a"]["properties"] == {"street": {"type": "string"}, "zip": {"type": "string"}}
    assert p["a"]["required"] == ["street"]
    assert p["a"]["additionalProperties"] is False
    assert p["b"]["required"] == []


def test_annotated_description_and_unannotated_parameter() -> None:
    def f(city: Annotated[str, "The city, e.g. Paris"], anything, n: Annotated[int, 42] = 1) -> None:  # type: ignore[no-untyped-def]
        ...

    p = props(f)
    assert p["city"] == {"type": "string", "description": "The city, e.g. Paris"}
    assert p["anything"] == {}
    assert p["n"] == {"type": "integer", "default": 1}  # non-str metadata is not a description


def test_newtype_and_union_of_primitives() -> None:
    def f(user: UserId, key: int | str) -> None: ...

    p = props(f)
    assert p["user"] == {"type": "integer"}
    assert p["key"] == {"type": ["integer", "string"]}


def test_union_with_complex_arm_uses_any_of() -> None:
    def f(target: Point | str | None) -> None: ...

    schema = props(f)["target"]
    assert [s.get("type") for s in schema["anyOf"]] == ["object", "string", "null"]


def test_skip_leaves_injected_parameters_out() -> None:
    def f(query: str, ctx: object, db: Any = None) -> None: ...

    _, schema = function_schema(f, skip={"ctx", "db"})
    assert list(schema["properties"]) == ["query"]
    assert schema["required"] == ["query"]


def test_string_annotations_are_resolved() -> None:
    # This module uses `from __future__ import annotations`: every hint above was a string.
    def f(p: Point, c: Color) -> None: ...

    p = props(f)
    assert p["p"]["type"] == "object"
    assert p["c"]["enum"] == ["red", "green"]


def test_methods_partials_and_callable_objects() -> None:
    class Service:
        def lookup(self, key: str) -> str:
            """Look a key up."""
            return key

        def __call__(self, n: int) -> int:
            """Count."""
            return n

    desc, schema = function_schema(Service().lookup)
    assert desc == "Look a key up."
    assert list(schema["properties"]) == ["key"]

    def add(a: int, b: int) -> int:
        return a + b

    _, schema = function_schema(functools.partial(add, b=2))
    assert schema["properties"]["b"] == {"type": "integer", "default": 2}
    assert schema["required"] == ["a"]

    desc, schema = function_schema(Service())
    assert desc == "Count."
    assert schema["properties"] == {"n": {"type": "integer"}}


# --- docstrings ----------------------------------------------------------------------------------


def test_google_docstring() -> None:
    def f(city: str, days: int = 1) -> None:
        """Get the forecast
        for a city.

        The long description is not sent to the model.

        Args:
            city (str): Name of the city.
            days: How many days,
                at most 7.

        Returns:
            Nothing.
        """

    desc, schema = function_schema(f)
    assert desc == "Get the forecast for a city."
    assert schema["properties"]["city"]["description"] == "Name of the city."
    assert schema["properties"]["days"]["description"] == "How many days, at most 7."


def test_sphinx_docstring() -> None:
    def f(city: str, days: int = 1) -> None:
        """Get the forecast.
        :param city: Name of the city.
        :param int days: How many days,
            at most 7.
        :returns: nothing
        """

    desc, schema = function_schema(f)
    assert desc == "Get the forecast."
    assert schema["properties"]["city"]["description"] == "Name of the city."
    assert schema["properties"]["days"]["description"] == "How many days, at most 7."


def test_numpy_docstring() -> None:
    def f(city: str, days: int = 1) -> None:
        """Get the forecast.

        Parameters
        ----------
        city : str
            Name of the city.
        days : int, optional
            How many days,
            at most 7.

        Returns
        -------
        None
        """

    desc, schema = function_schema(f)
    assert desc == "Get the forecast."
    assert schema["properties"]["city"]["description"] == "Name of the city."
    assert schema["properties"]["days"]["description"] == "How many days, at most 7."


def test_annotated_description_wins_over_docstring() -> None:
    def f(city: Annotated[str, "from Annotated"]) -> None:
        """Doc.

        Args:
            city: from the docstring
        """

    assert props(f)["city"]["description"] == "from Annotated"


def test_parse_docstring_without_sections() -> None:
    assert parse_docstring(None) == ("", {})
    assert parse_docstring("Just one line.") == ("Just one line.", {})


# --- what cannot be described -----------------------------------------------------------------------


def test_var_args_and_kwargs_are_rejected_with_the_parameter_named() -> None:
    def f(a: int, *rest: int) -> None: ...

    def g(a: int, **options: Any) -> None: ...

    with pytest.raises(ToolSchemaError, match=r"'rest'.*\*rest.*'.*f'"):
        function_schema(f)
    with pytest.raises(ToolSchemaError, match=r"\*\*options"):
        function_schema(g)
    # ...unless they are injected by the caller:
    assert function_schema(g, skip={"options"})[1]["required"] == ["a"]


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        (bytes, "bytes cannot travel as JSON"),
        (Callable[[int], int], "cannot be passed as JSON"),
        (dict[int, str], "dict keys must be str"),
        (list[bytes], "bytes"),
        (complex, "unsupported type complex"),
    ],
)
def test_unsupported_types(annotation: Any, message: str) -> None:
    def f(value: Any) -> None: ...

    f.__annotations__ = {"value": annotation}
    with pytest.raises(ToolSchemaError, match=message) as info:
        function_schema(f)
    assert "'value'" in str(info.value)
    assert "f'" in str(info.value)  # the function's (qual)name


def test_arbitrary_class_is_rejected() -> None:
    class Client:
        pass

    def f(client: Client) -> None: ...

    f.__annotations__ = {"client": Client}
    with pytest.raises(ToolSchemaError, match=r"parameter 'client'.*unsupported type Client"):
        function_schema(f)


def test_unsupported_field_inside_a_dataclass_names_the_field() -> None:
    @dataclass
    class Blob:
        data: bytes

    def f(blob: Blob) -> None: ...

    f.__annotations__ = {"blob": Blob}
    with pytest.raises(ToolSchemaError, match="field 'data' of Blob"):
        function_schema(f)


def test_recursive_dataclass_is_rejected() -> None:
    @dataclass
    class Node:
        children: list[Node]

    def f(tree: Node) -> None: ...

    f.__annotations__ = {"tree": Node}
    Node.__annotations__ = {"children": list[Node]}
    with pytest.raises(ToolSchemaError, match="recursive type Node"):
        function_schema(f)


def test_unresolvable_forward_reference() -> None:
    def f(x: DoesNotExist) -> None: ...  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(ToolSchemaError, match=r"cannot resolve the type hints.*DoesNotExist"):
        function_schema(f)


def test_not_a_function() -> None:
    with pytest.raises(ToolSchemaError, match="needs a function"):
        function_schema(42)  # type: ignore[arg-type]


# --- the compiled validator on user-written schemas ---------------------------------------------------


def check(schema: dict[str, Any], value: Any) -> tuple[Any, list[str]]:
    compiled = compile_schema(schema)
    assert compiled is not None
    errors: list[str] = []
    return compiled(value, "", errors), errors


def test_validator_refs_bounds_and_patterns() -> None:
    schema = {
        "type": "object",
        "$defs": {"Qty": {"type": "integer", "minimum": 1, "maximum": 10}},
        "properties": {
            "qty": {"$ref": "#/$defs/Qty"},
            "code": {"type": "string", "pattern": "^[A-Z]{3}$", "maxLength": 3},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2, "uniqueItems": True},
            "kind": {"const": "order"},
        },
    }
    _, errors = check(schema, {"qty": 5, "code": "ABC", "tags": ["a"], "kind": "order"})
    assert errors == []
    _, errors = check(schema, {"qty": 0, "code": "abcd", "tags": ["a", "a", "b"], "kind": "x"})
    text = "; ".join(errors)
    assert "argument 'qty' must be at least 1" in text
    assert "argument 'code' must be at most 3 characters" in text
    assert "argument 'code' must match the pattern" in text
    assert "argument 'tags' must have at most 2 items" in text
    assert "argument 'tags' must not contain duplicate items" in text
    assert "argument 'kind' must be 'order'" in text


def test_validator_any_of_and_integral_float_coercion() -> None:
    schema = {"type": "object", "properties": {"v": {"anyOf": [{"type": "integer"}, {"type": "boolean"}]}}}
    value, errors = check(schema, {"v": 3.0})
    assert errors == [] and value["v"] == 3 and type(value["v"]) is int
    _, errors = check(schema, {"v": "x"})
    assert errors == ["argument 'v' must be integer or boolean, got string 'x'"]


def test_validator_rejects_bad_schemas() -> None:
    with pytest.raises(ToolSchemaError, match="unknown JSON-schema type 'text'"):
        compile_schema({"type": "object", "properties": {"a": {"type": "text"}}})
    with pytest.raises(ToolSchemaError, match="does not resolve"):
        compile_schema({"type": "object", "properties": {"a": {"$ref": "#/$defs/Missing"}}})
    with pytest.raises(ToolSchemaError, match="invalid 'pattern'"):
        compile_schema({"type": "string", "pattern": "("})
