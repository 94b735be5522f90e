"""Tools a model can call: a schema for the model, a validated path to the Python handler.

The model's arguments are untrusted input. A :class:`Tool` checks them against its schema before
the handler runs and reports every problem in one :class:`ToolArgumentsError` that names the tool
and the field, so an agent can hand the message back to the model and let it correct itself.
Everything derivable from the schema or the signature is computed when the Tool is built, because
``invoke`` runs on every tool call.

:class:`ToolRegistry` is the one registry of the whole stack; upper layers subclass it (to emit
events around ``execute``) rather than keep their own.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import functools
import inspect
import json
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import Any, overload

from .errors import ToolArgumentsError, ToolExecutionError, ToolInterrupt, ToolNotFoundError, ToolSchemaError
from .messages import parse_tool_arguments
from .schema import Check, Converter, analyze_function, compile_schema

__all__ = ["Tool", "ToolRegistry", "tool"]

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_NAME_RULE = "providers accept 1-64 characters of letters, digits, '_' and '-'"
_EMPTY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {},
    "required": [],
    "additionalProperties": False,
}


# Results that cannot be awaitables: skips inspect.isawaitable's ABC check on the hot path.
_PLAIN_RESULTS = frozenset({str, int, float, bool, dict, list, tuple, type(None), bytes})


def _is_async_callable(fn: Any) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or (
        not inspect.isfunction(fn) and inspect.iscoroutinefunction(getattr(fn, "__call__", None))  # noqa: B004
    )


def _json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return list(value)
    dump = getattr(value, "model_dump", None)  # pydantic models, without importing pydantic
    if callable(dump):
        return dump(mode="json")
    return str(value)


class Tool:
    """A function the model may call: name, description, JSON-schema parameters and a handler.

    Build one from a function with :meth:`from_function` (or the :func:`tool` decorator), or by
    hand with a schema you wrote. A Tool stays callable like its handler, so decorated functions
    still work in plain code. Treat a Tool as immutable: its validator is compiled from
    ``parameters`` at construction.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    handler: Callable[..., Any] | None
    strict: bool
    run_in_thread: bool

    def __init__(
        self,
        name: str,
        description: str = "",
        parameters: Mapping[str, Any] | None = None,
        handler: Callable[..., Any] | None = None,
        *,
        strict: bool = False,
        run_in_thread: bool = False,
    ) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ToolSchemaError(f"invalid tool name {name!r}: {_NAME_RULE}")
        if parameters is None or parameters == {}:
            parameters = _EMPTY_SCHEMA
        if not isinstance(parameters, Mapping) or parameters.get("type") != "object":
            raise ToolSchemaError(
                f'parameters of tool {name!r} must be a JSON schema with "type": "object", got {parameters!r}'
            )
        if handler is not None and not callable(handler):
            raise ToolSchemaError(f"handler of tool {name!r} must be callable, got {type(handler).__name__}")
        self.name = name
        self.description = description or ""
        self.parameters = dict(parameters)
        self.handler = handler
        self.strict = strict
        self.run_in_thread = run_in_thread
        self._check: Check | None = compile_schema(self.parameters)
        self._is_async = handler is not None and _is_async_callable(handler)
        # Filled by from_function: conversions back to the annotated types, and the parameters
        # that can only be passed by position.
        self._converters: tuple[tuple[str, Converter], ...] = ()
        self._positional: tuple[tuple[str, Any], ...] = ()

    # --- construction ---------------------------------------------------------------------------

    @classmethod
    def from_function(
        cls,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        strict: bool = False,
        run_in_thread: bool = False,
        skip: Collection[str] = (),
    ) -> Tool:
        """A Tool whose schema comes from ``fn``'s type hints and docstring.

        ``skip`` leaves injected parameters out of the schema; pass their values to
        :meth:`invoke` as ``injected``. ``run_in_thread`` runs a sync handler in a worker thread,
        for handlers that block (file or network I/O without asyncio).
        """
        if isinstance(fn, Tool):
            raise ToolSchemaError(f"{fn.name!r} is already a Tool")
        info = analyze_function(fn, skip=skip)
        tool_name = name or getattr(fn, "__name__", None) or type(fn).__name__
        self = cls(
            tool_name,
            info.description if description is None else description,
            info.parameters,
            fn,
            strict=strict,
            run_in_thread=run_in_thread,
        )
        self._converters = tuple(info.converters.items())
        self._positional = tuple(
            (p, info.defaults.get(p, inspect.Parameter.empty)) for p in info.positional_only
        )
        functools.update_wrapper(self, fn, updated=())
        return self

    def with_name(self, name: str) -> Tool:
        """A copy under another name (to register one function twice, or to avoid a clash)."""
        if not _NAME.match(name):
            raise ToolSchemaError(f"invalid tool name {name!r}: {_NAME_RULE}")
        clone = copy.copy(self)
        clone.name = name
        return clone

    # --- what the model sees --------------------------------------------------------------------

    def to_openai_format(self) -> dict[str, Any]:
        function: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
        }
        if self.strict:
            function["strict"] = True
        return {"type": "function", "function": function}

    # --- calling --------------------------------------------------------------------------------

    def validate_arguments(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Check ``args`` against the schema and return them as a dict.

        Integral floats given for "integer" fields come back as ints. Every problem is reported at
        once in a :class:`ToolArgumentsError` that names the tool and the field.
        """
        if not isinstance(args, Mapping):
            raise ToolArgumentsError(
                f"arguments for tool {self.name!r} must be a JSON object, got {type(args).__name__}"
            )
        values = args if type(args) is dict else dict(args)
        check = self._check
        if check is not None:
            errors: list[str] = []
            values = check(values, "", errors)
            if errors:
                raise ToolArgumentsError(f"invalid arguments for tool {self.name!r}: " + "; ".join(errors))
        return values

    async def invoke(
        self, arguments: str | Mapping[str, Any] | None = None, *, injected: Mapping[str, Any] | None = None
    ) -> Any:
        """Parse, validate and convert the model's arguments, run the handler, return its result.

        ``injected`` supplies the parameters left out of the schema with ``skip`` (they are not
        validated). A handler that raises becomes :class:`ToolExecutionError` with the exception as
        ``original``; cancellation propagates untouched.
        """
        handler = self.handler
        if handler is None:
            raise ToolExecutionError(
                f"tool {self.name!r} has no handler: it was declared for the model only; "
                "execute its calls yourself or build it with a handler"
            )
        args: Any = None
        if type(arguments) is str:  # the model's JSON: the common case, without ABC checks
            try:
                args = json.loads(arguments)
            except ValueError:
                pass
        if type(args) is not dict:
            args = parse_tool_arguments(self.name, arguments)  # other inputs, or the precise error
        check = self._check
        if check is not None:
            errors: list[str] = []
            args = check(args, "", errors)
            if errors:
                raise ToolArgumentsError(f"invalid arguments for tool {self.name!r}: " + "; ".join(errors))
        for key, convert in self._converters:
            if key in args:
                try:
                    args[key] = convert(args[key])
                except Exception as exc:  # e.g. a dataclass __post_init__ rejecting the value
                    raise ToolArgumentsError(
                        f"invalid arguments for tool {self.name!r}: argument {key!r} was rejected: {exc}",
                        original=exc,
                    ) from exc
        if injected:
            args.update(injected)
        positional: list[Any] = []
        for key, default in self._positional:
            if key in args:
                positional.append(args.pop(key))
            elif default is not inspect.Parameter.empty:
                positional.append(default)
            else:
                break
        try:
            if self._is_async:
                return await handler(*positional, **args)
            if self.run_in_thread:
                import asyncio

                return await asyncio.to_thread(handler, *positional, **args)
            result = handler(*positional, **args)
            if type(result) not in _PLAIN_RESULTS and inspect.isawaitable(result):
                result = await result
            return result
        except ToolInterrupt:
            raise  # a request to pause the run, not a failure of the tool
        except Exception as exc:
            raise ToolExecutionError(
                f"tool {self.name!r} failed: {type(exc).__name__}: {exc}", original=exc
            ) from exc

    @staticmethod
    def format_result(value: Any) -> str:
        """The tool message content for a handler's return value.

        Strings pass through (the handler chose the words); everything else becomes JSON, with
        dataclasses, Enums, sets and pydantic models turned into their plain data and anything
        else into ``str``, so formatting a result never fails.
        """
        if isinstance(value, str):
            return value
        if value is None:
            return ""
        return json.dumps(value, default=_json_default, ensure_ascii=False)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.handler is None:
            raise ToolExecutionError(f"tool {self.name!r} has no handler to call")
        return self.handler(*args, **kwargs)

    # --- value semantics --------------------------------------------------------------------------

    def __repr__(self) -> str:
        description = self.description if len(self.description) <= 60 else self.description[:57] + "..."
        return f"Tool(name={self.name!r}, description={description!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tool):
            return NotImplemented
        return (
            self.name == other.name
            and self.description == other.description
            and self.parameters == other.parameters
            and self.handler == other.handler
            and self.strict == other.strict
        )

    def __hash__(self) -> int:
        return hash((Tool, self.name))


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    strict: bool = False,
    run_in_thread: bool = False,
    skip: Collection[str] = (),
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    strict: bool = False,
    run_in_thread: bool = False,
    skip: Collection[str] = (),
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a function a :class:`Tool`: ``@tool`` or ``@tool(name=..., description=...)``."""

    def wrap(f: Callable[..., Any]) -> Tool:
        return Tool.from_function(
            f, name=name, description=description, strict=strict, run_in_thread=run_in_thread, skip=skip
        )

    return wrap if fn is None else wrap(fn)


class ToolRegistry:
    """The tools available to a model, by name.

    Iterating yields the Tools, so a registry can be passed wherever a list of tools is expected
    (``RequestSpec.build(tools=registry)``). Subclasses hook in by overriding :meth:`execute`
    or :meth:`register`; all lookups go through :meth:`get`.
    """

    def __init__(self, tools: Iterable[Tool | Callable[..., Any]] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.register(t)

    def register(
        self, tool: Tool | Callable[..., Any], *, name: str | None = None, replace: bool = False
    ) -> Tool:
        """Add a Tool (or a function, made into one); returns the registered Tool.

        Works as a decorator too. A second tool under the same name is an error unless
        ``replace=True``: silently shadowing a tool is how a model ends up calling the wrong one.
        """
        if isinstance(tool, Tool):
            t = tool if name is None or name == tool.name else tool.with_name(name)
        elif callable(tool):
            t = Tool.from_function(tool, name=name)
        else:
            raise TypeError(f"register() takes a Tool or a function, got {type(tool).__name__}")
        if not replace and t.name in self._tools:
            raise ValueError(
                f"a tool named {t.name!r} is already registered (pass replace=True to replace it)"
            )
        self._tools[t.name] = t
        return t

    def unregister(self, name: str) -> Tool:
        tool = self.get(name)
        del self._tools[name]
        return tool

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            known = ", ".join(repr(n) for n in self._tools) or "none registered"
            raise ToolNotFoundError(f"no tool named {name!r}; available tools: {known}") from None

    async def execute(
        self,
        name: str,
        arguments: str | Mapping[str, Any] | None = None,
        *,
        injected: Mapping[str, Any] | None = None,
    ) -> Any:
        """Run the tool ``name`` with the model's arguments; returns the handler's raw result."""
        return await self.get(name).invoke(arguments, injected=injected)

    def names(self) -> list[str]:
        return list(self._tools)

    def tools(self) -> list[Tool]:
        return list(self._tools.values())

    def to_openai_format(self) -> list[dict[str, Any]]:
        return [t.to_openai_format() for t in self._tools.values()]

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.names()!r})"
