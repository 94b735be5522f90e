"""JSON schemas for tool functions, and the small validator that checks arguments against them.

A tool's parameters are described once, from the function's type hints and docstring, so the
schema the model sees and the Python signature cannot drift apart. The same walk over the type
hints also yields converters (JSON value -> Enum member, dataclass instance, tuple, set), so a
handler receives the types it declared rather than raw JSON.

The validator covers the JSON-schema keywords tool schemas use in practice (type, enum, const,
properties, required, additionalProperties, items, prefixItems, anyOf/oneOf/allOf, local $ref,
and the numeric/length bounds). It is compiled into closures once per tool, because argument
validation sits on the hot path of every tool call; there is deliberately no jsonschema
dependency.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import re
import types
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import (
    Annotated,
    Any,
    Literal,
    NotRequired,
    Required,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)

from .errors import ToolSchemaError

__all__ = ["function_schema", "parse_docstring"]

Converter = Callable[[Any], Any]
# A compiled check: (value, path, errors) -> value, possibly coerced (an integral float for an
# "integer" becomes an int). Problems are appended to ``errors`` instead of raised, so one pass
# reports every bad field to the model at once.
Check = Callable[[Any, str, list[str]], Any]

_NoneType = type(None)
_PRIMITIVES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}
_JSON_SCALARS = (str, int, float, bool, type(None))


# --------------------------------------------------------------------------------------------------
# Docstrings
# --------------------------------------------------------------------------------------------------

_GOOGLE_HEADER = re.compile(
    r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Attributes|Fields):\s*$"
)
_GOOGLE_OTHER_HEADER = re.compile(r"^[A-Z][A-Za-z ]*:\s*$")
_GOOGLE_ENTRY = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SPHINX_PARAM = re.compile(
    r"^:(?:param|parameter|arg|argument|key|keyword)\s+(?:[^:]*?\s+)?\*{0,2}(\w+)\s*:\s*(.*)$"
)
_NUMPY_PARAM_HEADERS = frozenset({"Parameters", "Other Parameters", "Attributes"})
_NUMPY_ENTRY = re.compile(r"^\*{0,2}(\w+)\s*(?::.*)?$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _is_numpy_header(lines: list[str], i: int) -> bool:
    nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
    return bool(lines[i].strip()) and len(nxt) >= 3 and set(nxt) == {"-"}


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a docstring into (description, {parameter: description}).

    The description is the first paragraph: a model reads it on every request, so the summary
    matters and the long-form prose after it usually does not. Parameter descriptions come from
    Google ``Args:`` sections, Sphinx ``:param x:`` fields or NumPy ``Parameters`` sections,
    whichever the docstring uses.
    """
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()

    summary: list[str] = []
    for i, line in enumerate(lines):
        text = line.strip()
        if not text or _GOOGLE_HEADER.match(text) or text.startswith(":") or _is_numpy_header(lines, i):
            break
        summary.append(text)

    params: dict[str, str] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        text = line.strip()
        if _GOOGLE_HEADER.match(text):
            i = _parse_google_section(lines, i + 1, _indent(line), params)
            continue
        if text in _NUMPY_PARAM_HEADERS and _is_numpy_header(lines, i):
            i = _parse_numpy_section(lines, i + 2, _indent(line), params)
            continue
        m = _SPHINX_PARAM.match(text)
        if m:
            name, parts = m.group(1), [m.group(2).strip()]
            i += 1
            while i < len(lines) and lines[i].strip() and _indent(lines[i]) > _indent(line):
                parts.append(lines[i].strip())
                i += 1
            params[name] = " ".join(p for p in parts if p)
            continue
        i += 1
    return " ".join(summary), params


def _parse_google_section(lines: list[str], i: int, header_indent: int, params: dict[str, str]) -> int:
    entry_indent: int | None = None
    name: str | None = None
    parts: list[str] = []

    def flush() -> None:
        if name is not None:
            params[name] = " ".join(p for p in parts if p)

    while i < len(lines):
        line = lines[i]
        text = line.strip()
        if not text:
            i += 1
            continue
        indent = _indent(line)
        if indent <= header_indent:
            break
        if entry_indent is None:
            entry_indent = indent
        m = _GOOGLE_ENTRY.match(text) if indent <= entry_indent else None
        if m:
            flush()
            name, parts = m.group(1), [m.group(2).strip()]
        elif name is not None:
            parts.append(text)
        i += 1
    flush()
    return i


def _parse_numpy_section(lines: list[str], i: int, header_indent: int, params: dict[str, str]) -> int:
    name: str | None = None
    parts: list[str] = []
    while i < len(lines):
        line = lines[i]
        text = line.strip()
        if not text:
            i += 1
            continue
        if _is_numpy_header(lines, i) or (
            _GOOGLE_OTHER_HEADER.match(text) and _indent(line) <= header_indent
        ):
            break
        if _indent(line) <= header_indent:
            m = _NUMPY_ENTRY.match(text)
            if name is not None:
                params[name] = " ".join(parts)
            name, parts = (m.group(1) if m else None), []
        elif name is not None:
            parts.append(text)
        i += 1
    if name is not None:
        params[name] = " ".join(parts)
    return i


# --------------------------------------------------------------------------------------------------
# Type hints -> schema (+ converter)
# --------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class FunctionInfo:
    """Everything a Tool needs from its function, computed once at construction."""

    description: str
    parameters: dict[str, Any]
    converters: dict[str, Converter] = field(default_factory=dict)
    positional_only: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)


def _jsonable(value: Any) -> tuple[bool, Any]:
    """``value`` as plain JSON data, for a schema's ``default``; (False, None) when it has no JSON form."""
    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    if isinstance(value, _JSON_SCALARS):
        return True, value
    if isinstance(value, (list, tuple, set, frozenset)):
        out = []
        for item in value:
            ok, v = _jsonable(item)
            if not ok:
                return False, None
            out.append(v)
        return True, out
    if isinstance(value, Mapping):
        obj = {}
        for k, item in value.items():
            ok, v = _jsonable(item)
            if not ok or not isinstance(k, str):
                return False, None
            obj[k] = v
        return True, obj
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    return False, None


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if not schema:
        return schema  # "anything" already includes null
    kind = schema.get("type")
    if isinstance(kind, str) and "anyOf" not in schema:
        out = {**schema, "type": [kind, "null"]}
        if "enum" in schema:
            out["enum"] = [*schema["enum"], None]
        return out
    if "enum" in schema and "type" not in schema:
        return {**schema, "enum": [*schema["enum"], None]}
    return {"anyOf": [schema, {"type": "null"}]}


def _optional_converter(conv: Converter) -> Converter:
    def convert(value: Any) -> Any:
        return None if value is None else conv(value)

    return convert


class _Describer:
    """Walks type hints. ``where`` in every error names the function and the parameter."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.stack: list[type] = []

    def fail(self, where: str, problem: str) -> ToolSchemaError:
        return ToolSchemaError(f"cannot describe {where} of tool function {self.owner!r}: {problem}")

    def describe(self, tp: Any, where: str) -> tuple[dict[str, Any], Converter | None]:
        if tp is inspect.Parameter.empty or tp is Any or tp is object:
            return {}, None
        if tp is None or tp is _NoneType:
            return {"type": "null"}, None
        primitive = _PRIMITIVES.get(tp)
        if primitive is not None:
            return {"type": primitive}, None

        origin = get_origin(tp)
        args = get_args(tp)
        if origin is Annotated:
            schema, conv = self.describe(args[0], where)
            notes = [m for m in args[1:] if isinstance(m, str)]
            if notes:
                schema = {**schema, "description": notes[-1]}
            return schema, conv
        if origin is Required or origin is NotRequired:
            return self.describe(args[0], where)
        if origin is Union or origin is types.UnionType:
            return self._union(args, where)
        if origin is Literal:
            return self._literal(args, where)
        if hasattr(tp, "__supertype__"):  # typing.NewType
            return self.describe(tp.__supertype__, where)

        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return self._enum(tp, where)
        if origin is not None:
            return self._generic(tp, origin, args, where)
        if tp in (list, tuple, set, frozenset):
            return self._generic(tp, tp, (), where)
        if tp is dict:
            return {"type": "object"}, None
        if isinstance(tp, type) and is_typeddict(tp):
            return self._typeddict(tp, where)
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            return self._dataclass(tp, where)
        if tp in (bytes, bytearray, memoryview):
            raise self.fail(where, f"{tp.__name__} cannot travel as JSON; take a str (for example base64)")
        if isinstance(tp, str):
            raise self.fail(where, f"unresolved forward reference {tp!r}")
        name = getattr(tp, "__name__", None) or repr(tp)
        raise self.fail(
            where,
            f"unsupported type {name}; use str, int, float, bool, None, list/tuple/set, dict[str, T], "
            "Literal, an Enum, a dataclass or a TypedDict",
        )

    def _union(self, args: tuple[Any, ...], where: str) -> tuple[dict[str, Any], Converter | None]:
        arms = [a for a in args if a is not _NoneType and a is not None]
        nullable = len(arms) < len(args)
        if len(arms) == 1:
            single, conv = self.describe(arms[0], where)
            if nullable:
                return _nullable(single), (None if conv is None else _optional_converter(conv))
            return single, conv
        described = [self.describe(a, where) for a in arms]
        schemas = [s for s, _ in described]
        if all(len(s) == 1 and isinstance(s.get("type"), str) for s in schemas):
            kinds = [s["type"] for s in schemas] + (["null"] if nullable else [])
            schema: dict[str, Any] = {"type": kinds}
        else:
            schema = {"anyOf": schemas + ([{"type": "null"}] if nullable else [])}
        if all(conv is None for _, conv in described):
            return schema, None
        # Pick the first arm the value validates against, and convert with that arm.
        branches = [(compile_schema(s), conv) for s, conv in described]

        def convert(value: Any) -> Any:
            if value is None:
                return None
            for check, conv in branches:
                errors: list[str] = []
                checked = check(value, "", errors) if check is not None else value
                if not errors:
                    return checked if conv is None else conv(checked)
            return value

        return schema, convert

    def _literal(self, args: tuple[Any, ...], where: str) -> tuple[dict[str, Any], Converter | None]:
        values: list[Any] = []
        for a in args:
            if isinstance(a, enum.Enum):
                a = a.value
            if not isinstance(a, _JSON_SCALARS):
                raise self.fail(where, f"Literal value {a!r} is not a JSON scalar")
            values.append(a)
        return self._enum_schema(values), None

    def _enum_schema(self, values: list[Any]) -> dict[str, Any]:
        kinds = {_PRIMITIVES.get(type(v)) or "null" for v in values}
        schema: dict[str, Any] = {}
        if len(kinds) == 1:
            schema["type"] = kinds.pop()
        schema["enum"] = values
        return schema

    def _enum(self, tp: type[enum.Enum], where: str) -> tuple[dict[str, Any], Converter | None]:
        values = [m.value for m in tp]
        for v in values:
            if not isinstance(v, _JSON_SCALARS):
                raise self.fail(where, f"value {v!r} of enum {tp.__name__} is not a JSON scalar")
        return self._enum_schema(values), tp

    def _generic(
        self, tp: Any, origin: Any, args: tuple[Any, ...], where: str
    ) -> tuple[dict[str, Any], Converter | None]:
        import collections.abc as abc

        if origin in (list, abc.Sequence, abc.MutableSequence, abc.Iterable, abc.Collection):
            if not args:
                return {"type": "array"}, None
            items, conv = self.describe(args[0], f"{where} (items)")
            if conv is None:
                return {"type": "array", "items": items}, None
            item_conv = conv
            return {"type": "array", "items": items}, lambda v: [item_conv(x) for x in v]
        if origin is tuple:
            if not args or (len(args) == 2 and args[1] is Ellipsis):
                items, conv = self.describe(args[0], f"{where} (items)") if args else ({}, None)
                schema: dict[str, Any] = {"type": "array"}
                if items:
                    schema["items"] = items
                if conv is None:
                    return schema, tuple
                item_conv = conv
                return schema, lambda v: tuple(item_conv(x) for x in v)
            if args == ((),):  # tuple[()]
                return {"type": "array", "maxItems": 0}, tuple
            described = [self.describe(a, f"{where} (item {i})") for i, a in enumerate(args)]
            schema = {"type": "array", "minItems": len(args), "maxItems": len(args)}
            first = described[0][0]
            if all(s == first for s, _ in described):
                schema["items"] = first
            else:
                schema["prefixItems"] = [s for s, _ in described]
            convs = [c for _, c in described]
            if all(c is None for c in convs):
                return schema, tuple
            return schema, lambda v: tuple(x if c is None else c(x) for c, x in zip(convs, v, strict=False))
        if origin in (set, frozenset, abc.Set, abc.MutableSet):
            factory: Converter = frozenset if origin is frozenset else set
            # No "uniqueItems": duplicates are harmless (the set drops them), and rejecting them
            # would cost the model a retry for nothing.
            if not args:
                return {"type": "array"}, factory
            items, conv = self.describe(args[0], f"{where} (items)")
            schema = {"type": "array", "items": items}
            if conv is None:
                return schema, factory
            item_conv = conv
            return schema, lambda v: factory(item_conv(x) for x in v)
        if origin in (dict, abc.Mapping, abc.MutableMapping):
            if not args:
                return {"type": "object"}, None
            key, value = args
            if key is not str and not (
                get_origin(key) is Literal and all(isinstance(k, str) for k in get_args(key))
            ):
                name = getattr(key, "__name__", None) or repr(key)
                raise self.fail(where, f"dict keys must be str (JSON object keys are strings), got {name}")
            values, conv = self.describe(value, f"{where} (values)")
            schema = {"type": "object", "additionalProperties": values}
            if conv is None:
                return schema, None
            value_conv = conv
            return schema, lambda v: {k: value_conv(x) for k, x in v.items()}
        if origin in (abc.Callable, type):
            raise self.fail(where, f"{tp!r} cannot be passed as JSON")
        raise self.fail(where, f"unsupported type {tp!r}")

    def _enter(self, tp: type, where: str) -> None:
        if tp in self.stack:
            raise self.fail(where, f"recursive type {tp.__name__} is not supported")
        self.stack.append(tp)

    def _hints(self, tp: type, where: str) -> dict[str, Any]:
        try:
            return get_type_hints(tp, include_extras=True)
        except Exception as exc:
            raise self.fail(where, f"cannot resolve the type hints of {tp.__name__}: {exc}") from exc

    def _typeddict(self, tp: type, where: str) -> tuple[dict[str, Any], Converter | None]:
        self._enter(tp, where)
        try:
            hints = self._hints(tp, where)
            _, docs = parse_docstring(tp.__doc__)
            props: dict[str, Any] = {}
            convs: dict[str, Converter] = {}
            for name, hint in hints.items():
                schema, conv = self.describe(hint, f"{where} (field {name!r} of {tp.__name__})")
                if name in docs and "description" not in schema:
                    schema = {**schema, "description": docs[name]}
                props[name] = schema
                if conv is not None:
                    convs[name] = conv
            # __required_keys__ misses NotRequired[...] written as a string annotation (PEP 563) on
            # 3.11, so the resolved hints have the last word.
            required = set(getattr(tp, "__required_keys__", hints))
            for name, hint in hints.items():
                if get_origin(hint) is NotRequired:
                    required.discard(name)
                elif get_origin(hint) is Required:
                    required.add(name)
            out = _object_schema(props, [n for n in hints if n in required], _class_description(tp))
        finally:
            self.stack.pop()
        if not convs:
            return out, None
        return out, lambda v: {k: (convs[k](x) if k in convs else x) for k, x in v.items()}

    def _dataclass(self, tp: type, where: str) -> tuple[dict[str, Any], Converter | None]:
        self._enter(tp, where)
        try:
            hints = self._hints(tp, where)
            _, docs = parse_docstring(tp.__doc__)
            props: dict[str, Any] = {}
            required: list[str] = []
            convs: dict[str, Converter] = {}
            for f in dataclasses.fields(tp):
                if not f.init:
                    continue
                schema, conv = self.describe(
                    hints.get(f.name, f.type), f"{where} (field {f.name!r} of {tp.__name__})"
                )
                if f.name in docs and "description" not in schema:
                    schema = {**schema, "description": docs[f.name]}
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    required.append(f.name)
                elif f.default is not dataclasses.MISSING:
                    ok, default = _jsonable(f.default)
                    if ok:
                        schema = {**schema, "default": default}
                props[f.name] = schema
                if conv is not None:
                    convs[f.name] = conv
            out = _object_schema(props, required, _class_description(tp))
        finally:
            self.stack.pop()
        cls = tp

        if not convs:
            return out, lambda v: cls(**v)

        def convert(value: Any) -> Any:
            return cls(**{k: (convs[k](x) if k in convs else x) for k, x in value.items()})

        return out, convert


def _class_description(tp: type) -> str:
    doc = tp.__doc__
    if not doc or doc.startswith(f"{tp.__name__}("):  # dataclasses invent "Name(field: type, ...)"
        return ""
    return parse_docstring(doc)[0]


def _object_schema(props: dict[str, Any], required: list[str], description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object"}
    if description:
        schema["description"] = description
    schema["properties"] = props
    schema["required"] = required
    schema["additionalProperties"] = False
    return schema


def _callable_name(fn: Any) -> str:
    return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__)


def _hint_target(fn: Any) -> Any:
    """The object whose annotations describe ``fn``'s parameters."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.isfunction(fn) or inspect.ismethod(fn) or inspect.isbuiltin(fn):
        return fn
    if not isinstance(fn, type) and callable(fn):
        return type(fn).__call__
    return fn


def analyze_function(fn: Callable[..., Any], *, skip: Collection[str] = ()) -> FunctionInfo:
    """Describe ``fn`` for a Tool: schema, docstring and the converters for its parameters."""
    owner = _callable_name(fn)
    if not callable(fn):
        raise ToolSchemaError(f"a tool needs a function, got {type(fn).__name__}")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise ToolSchemaError(f"cannot read the signature of tool function {owner!r}: {exc}") from exc
    target = _hint_target(fn)
    try:
        hints = get_type_hints(target, include_extras=True)
    except Exception as exc:
        raise ToolSchemaError(
            f"cannot resolve the type hints of tool function {owner!r}: {exc} "
            "(types used in annotations must be importable from the function's module)"
        ) from exc
    doc = inspect.getdoc(target if not isinstance(fn, functools.partial) else fn.func)
    description, param_docs = parse_docstring(doc)

    describer = _Describer(owner)
    props: dict[str, Any] = {}
    required: list[str] = []
    info = FunctionInfo(description=description, parameters={})
    positional_only: list[str] = []
    for p in signature.parameters.values():
        if p.name in skip:
            continue
        where = f"parameter {p.name!r}"
        if p.kind is inspect.Parameter.VAR_POSITIONAL or p.kind is inspect.Parameter.VAR_KEYWORD:
            star = "*" if p.kind is inspect.Parameter.VAR_POSITIONAL else "**"
            raise ToolSchemaError(
                f"cannot describe {where} ({star}{p.name}) of tool function {owner!r}: a model passes "
                f"named arguments only; declare each one as a parameter (or pass skip={{{p.name!r}}})"
            )
        schema, conv = describer.describe(hints.get(p.name, inspect.Parameter.empty), where)
        if "description" not in schema and param_docs.get(p.name):
            schema = {**schema, "description": param_docs[p.name]}
        if p.default is inspect.Parameter.empty:
            required.append(p.name)
        else:
            info.defaults[p.name] = p.default
            ok, default = _jsonable(p.default)
            if ok:
                schema = {**schema, "default": default}
        props[p.name] = schema
        if conv is not None:
            info.converters[p.name] = conv
        if p.kind is inspect.Parameter.POSITIONAL_ONLY:
            positional_only.append(p.name)
    info.parameters = _object_schema(props, required)
    info.positional_only = tuple(positional_only)
    return info


def function_schema(fn: Callable[..., Any], *, skip: Collection[str] = ()) -> tuple[str, dict[str, Any]]:
    """(description, parameters schema) for ``fn``, in the shape OpenAI's ``parameters`` expects.

    ``skip`` names parameters the caller injects itself (a context object, a database handle):
    they stay out of the schema, so the model never sees or fills them.
    Raises :class:`ToolSchemaError` naming the function and the parameter when a type has no
    JSON form.
    """
    info = analyze_function(fn, skip=skip)
    return info.description, info.parameters


# --------------------------------------------------------------------------------------------------
# Schema -> compiled validator
# --------------------------------------------------------------------------------------------------


def _show(value: Any) -> str:
    """A short description of a bad value, for an error message the model can act on."""
    kind = _json_kind(value)
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return kind if value is None else f"{kind} {text}"


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _at(path: str) -> str:
    return f"argument {path!r}" if path else "arguments"


def expected(schema: Any) -> str:
    """A human phrase for what ``schema`` accepts ("string", "one of 'c', 'f'", ...)."""
    if not isinstance(schema, Mapping) or not schema:
        return "any JSON value"
    if "enum" in schema:
        return "one of " + ", ".join(repr(v) if v is not None else "null" for v in schema["enum"])
    if "const" in schema:
        return f"exactly {schema['const']!r}"
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(str(k) for k in kind)
    if kind == "array" and isinstance(schema.get("items"), Mapping) and schema["items"]:
        return f"array of {expected(schema['items'])}"
    if kind:
        return str(kind)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(expected(s) for s in schema[key])
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    return "a value matching the schema"


def _is_integer(v: Any) -> bool:
    return (type(v) is int) or (isinstance(v, int) and not isinstance(v, bool))


def _type_check(kind: str) -> Callable[[Any], bool]:
    if kind == "string":
        return lambda v: isinstance(v, str)
    if kind == "integer":
        return lambda v: _is_integer(v) or (isinstance(v, float) and v.is_integer())
    if kind == "number":
        return lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
    if kind == "boolean":
        return lambda v: isinstance(v, bool)
    if kind == "null":
        return lambda v: v is None
    if kind == "object":
        return lambda v: type(v) is dict or isinstance(v, Mapping)
    if kind == "array":
        return lambda v: isinstance(v, (list, tuple))
    raise ToolSchemaError(
        f"unknown JSON-schema type {kind!r}; expected string, integer, number, boolean, null, object or array"
    )


def _single_type_check(kind: str, want: str) -> Check:
    """The check for one JSON type, specialised: it runs for every argument of every call."""
    if kind == "string":

        def string(v: Any, path: str, errors: list[str]) -> Any:
            if type(v) is not str and not isinstance(v, str):
                errors.append(f"{_at(path)} must be {want}, got {_show(v)}")
            return v

        return string
    if kind == "integer":

        def integer(v: Any, path: str, errors: list[str]) -> Any:
            if type(v) is int:
                return v
            if type(v) is float and v.is_integer():
                return int(v)
            if not _is_integer(v):
                errors.append(f"{_at(path)} must be {want}, got {_show(v)}")
            return v

        return integer
    pred = _type_check(kind)

    def check(v: Any, path: str, errors: list[str]) -> Any:
        if not pred(v):
            errors.append(f"{_at(path)} must be {want}, got {_show(v)}")
        return v

    return check


class _Compiler:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, Check | None] = {}

    def ref(self, ref: str) -> Check:
        if not ref.startswith("#/"):
            raise ToolSchemaError(f"only local $ref ('#/...') is supported in tool schemas, got {ref!r}")
        compiled = self.refs

        def check(value: Any, path: str, errors: list[str]) -> Any:
            if ref not in compiled:
                compiled[ref] = None  # recursion guard while compiling
                compiled[ref] = self.compile(self.resolve(ref))
            target = compiled[ref]
            return value if target is None else target(value, path, errors)

        self.resolve(ref)  # fail at construction, not on the first call
        return check

    def resolve(self, ref: str) -> Any:
        node: Any = self.root
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, Mapping) or part not in node:
                raise ToolSchemaError(f"$ref {ref!r} does not resolve inside the tool schema")
            node = node[part]
        return node

    def compile(self, schema: Any) -> Check | None:
        if schema is True or schema == {}:
            return None
        if schema is False:

            def reject(v: Any, path: str, errors: list[str]) -> Any:
                errors.append(f"{_at(path)} is not allowed")
                return v

            return reject
        if not isinstance(schema, Mapping):
            raise ToolSchemaError(
                f"a JSON schema must be an object or a boolean, got {type(schema).__name__}"
            )

        checks: list[Check] = []
        want = expected(schema)

        if "$ref" in schema:
            checks.append(self.ref(str(schema["$ref"])))

        kind = schema.get("type")
        has_object_keywords = any(k in schema for k in ("properties", "required", "additionalProperties"))
        if kind == "object" and has_object_keywords:
            pass  # the object check below reports a non-object itself: one call per value, not two
        elif isinstance(kind, str):
            checks.append(_single_type_check(kind, want))
        elif kind is not None:
            kinds = list(kind)
            preds = [_type_check(k) for k in kinds]
            coerce_int = "integer" in kinds and "number" not in kinds

            def type_check(v: Any, path: str, errors: list[str]) -> Any:
                for pred in preds:
                    if pred(v):
                        return int(v) if coerce_int and type(v) is float else v
                errors.append(f"{_at(path)} must be {want}, got {_show(v)}")
                return v

            checks.append(type_check)

        if "enum" in schema:
            options = list(schema["enum"])

            def enum_check(v: Any, path: str, errors: list[str]) -> Any:
                if v not in options or (isinstance(v, bool) and not any(o is v for o in options)):
                    errors.append(f"{_at(path)} must be one of {_options(options)}, got {_show(v)}")
                return v

            checks.append(enum_check)
        if "const" in schema:
            const = schema["const"]

            def const_check(v: Any, path: str, errors: list[str]) -> Any:
                if v != const:
                    errors.append(f"{_at(path)} must be {const!r}, got {_show(v)}")
                return v

            checks.append(const_check)

        self._numbers(schema, checks)
        self._strings(schema, checks)
        if has_object_keywords:
            checks.append(self._object(schema, want if kind == "object" else None))
        if any(k in schema for k in ("items", "prefixItems", "minItems", "maxItems", "uniqueItems")):
            checks.append(self._array(schema))
        for key in ("anyOf", "oneOf"):
            if key in schema:
                checks.append(self._any_of(list(schema[key])))
        for sub in schema.get("allOf", ()):
            compiled = self.compile(sub)
            if compiled is not None:
                checks.append(compiled)

        if not checks:
            return None
        if len(checks) == 1:
            return checks[0]
        all_checks = tuple(checks)

        def combined(v: Any, path: str, errors: list[str]) -> Any:
            before = len(errors)
            for check in all_checks:
                v = check(v, path, errors)
                if len(errors) != before:  # a failed type check makes the rest noise
                    break
            return v

        return combined

    def _numbers(self, schema: Mapping[str, Any], checks: list[Check]) -> None:
        bounds = [
            (schema.get("minimum"), lambda v, b: v >= b, "at least"),
            (schema.get("maximum"), lambda v, b: v <= b, "at most"),
            (schema.get("exclusiveMinimum"), lambda v, b: v > b, "greater than"),
            (schema.get("exclusiveMaximum"), lambda v, b: v < b, "less than"),
        ]
        for bound, ok, phrase in bounds:
            if isinstance(bound, (int, float)) and not isinstance(bound, bool):

                def number_check(
                    v: Any, path: str, errors: list[str], b: Any = bound, ok: Any = ok, p: str = phrase
                ) -> Any:
                    if isinstance(v, (int, float)) and not isinstance(v, bool) and not ok(v, b):
                        errors.append(f"{_at(path)} must be {p} {b}, got {v!r}")
                    return v

                checks.append(number_check)

    def _strings(self, schema: Mapping[str, Any], checks: list[Check]) -> None:
        low, high, pattern = schema.get("minLength"), schema.get("maxLength"), schema.get("pattern")
        if low is None and high is None and pattern is None:
            return
        try:
            regex = re.compile(pattern) if isinstance(pattern, str) else None
        except re.error as exc:
            raise ToolSchemaError(f"invalid 'pattern' {pattern!r} in tool schema: {exc}") from exc

        def string_check(v: Any, path: str, errors: list[str]) -> Any:
            if not isinstance(v, str):
                return v
            if low is not None and len(v) < low:
                errors.append(f"{_at(path)} must be at least {low} characters long, got {len(v)}")
            if high is not None and len(v) > high:
                errors.append(f"{_at(path)} must be at most {high} characters long, got {len(v)}")
            if regex is not None and not regex.search(v):
                errors.append(f"{_at(path)} must match the pattern {pattern!r}, got {_show(v)}")
            return v

        checks.append(string_check)

    def _object(self, schema: Mapping[str, Any], want: str | None) -> Check:
        props: dict[str, Check | None] = {
            k: self.compile(s) for k, s in (schema.get("properties") or {}).items()
        }
        wants = {k: expected(s) for k, s in (schema.get("properties") or {}).items()}
        required = tuple(schema.get("required") or ())
        extra_schema = schema.get("additionalProperties", True)
        closed = extra_schema is False
        extra = None if closed else self.compile(extra_schema)
        known = ", ".join(props) or "none"
        missing = object()

        def object_check(v: Any, path: str, errors: list[str]) -> Any:
            if type(v) is not dict and not isinstance(v, Mapping):
                if want is not None:
                    errors.append(f"{_at(path)} must be {want}, got {_show(v)}")
                return v
            for name in required:
                if name not in v:
                    errors.append(
                        f"{_at(_join(path, name))} is required ({wants.get(name, 'any JSON value')})"
                    )
            for key, item in v.items():
                check = props.get(key, missing)
                if check is missing:
                    if closed:
                        errors.append(f"unexpected {_at(_join(path, key))}; known: {known}")
                        continue
                    check = extra
                if check is not None:
                    new = check(item, _join(path, key), errors)  # type: ignore[operator]
                    if new is not item and isinstance(v, dict):
                        v[key] = new
            return v

        return object_check

    def _array(self, schema: Mapping[str, Any]) -> Check:
        items = self.compile(schema["items"]) if "items" in schema else None
        prefix = [self.compile(s) for s in schema.get("prefixItems", ())]
        low, high = schema.get("minItems"), schema.get("maxItems")
        unique = bool(schema.get("uniqueItems"))

        def array_check(v: Any, path: str, errors: list[str]) -> Any:
            if not isinstance(v, (list, tuple)):
                return v
            n = len(v)
            if low is not None and n < low:
                errors.append(f"{_at(path)} must have at least {low} items, got {n}")
            if high is not None and n > high:
                errors.append(f"{_at(path)} must have at most {high} items, got {n}")
            for i, item in enumerate(v):
                check = prefix[i] if i < len(prefix) else items
                if check is not None:
                    new = check(item, f"{path}[{i}]", errors)
                    if new is not item and isinstance(v, list):
                        v[i] = new
            if unique and not _all_unique(v):
                errors.append(f"{_at(path)} must not contain duplicate items")
            return v

        return array_check

    def _any_of(self, schemas: list[Any]) -> Check:
        arms = [self.compile(s) for s in schemas]
        if any(a is None for a in arms):
            return lambda v, path, errors: v
        want = " or ".join(expected(s) for s in schemas)

        def any_of_check(v: Any, path: str, errors: list[str]) -> Any:
            for arm in arms:
                scratch: list[str] = []
                new = arm(v, path, scratch)  # type: ignore[misc]
                if not scratch:
                    return new
            errors.append(f"{_at(path)} must be {want}, got {_show(v)}")
            return v

        return any_of_check


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _options(options: list[Any]) -> str:
    return ", ".join("null" if o is None else repr(o) for o in options)


def _all_unique(items: Any) -> bool:
    seen: list[Any] = []
    for item in items:
        if any(item == s and type(item) is type(s) for s in seen):
            return False
        seen.append(item)
    return True


def compile_schema(schema: Mapping[str, Any]) -> Check | None:
    """Compile ``schema`` into a check, once; None when it accepts every value."""
    return _Compiler(schema).compile(schema)
