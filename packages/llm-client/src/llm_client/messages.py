"""Chat messages in one wire-neutral form: OpenAI's chat format as plain dicts.

Plain dicts are what users already have (from a database, a request body, another SDK), so every
API accepts them. The frozen dataclasses here are a typed way to build the same dicts; providers
translate the dict form into their own wire format, and nothing else does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from .errors import InvalidMessageError, ToolArgumentsError

__all__ = [
    "Role",
    "ROLES",
    "ToolCall",
    "Message",
    "MessageLike",
    "normalize_messages",
    "parse_tool_arguments",
    "validate_message",
]

Role: TypeAlias = Literal["system", "developer", "user", "assistant", "tool"]
ROLES: frozenset[str] = frozenset({"system", "developer", "user", "assistant", "tool"})


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call requested by the model. ``arguments`` is the raw JSON text the model wrote."""

    id: str
    name: str
    arguments: str = "{}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolCall:
        if isinstance(data, ToolCall):
            return data
        if not isinstance(data, Mapping):
            raise InvalidMessageError(f"a tool call must be a dict or a ToolCall, got {type(data).__name__}")
        fn = data.get("function")
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise InvalidMessageError(f"tool call needs function.name, got {dict(data)!r}")
        call_id = data.get("id")
        if not isinstance(call_id, str) or not call_id:
            raise InvalidMessageError(f"tool call {fn['name']!r} needs a non-empty string 'id'")
        args = fn.get("arguments", "{}")
        if isinstance(args, Mapping):
            args = json.dumps(args)
        elif args is None or args == "":
            args = "{}"
        elif not isinstance(args, str):
            raise InvalidMessageError(
                f"tool call {fn['name']!r}: arguments must be a JSON string or an object, "
                f"got {type(args).__name__}"
            )
        return cls(id=call_id, name=fn["name"], arguments=args)

    def parse_arguments(self) -> dict[str, Any]:
        """The arguments as a dict; :class:`ToolArgumentsError` when the model wrote bad JSON."""
        return parse_tool_arguments(self.name, self.arguments)


def parse_tool_arguments(tool_name: str, arguments: str | Mapping[str, Any] | None) -> dict[str, Any]:
    if arguments is None or arguments == "":
        return {}
    if isinstance(arguments, Mapping):
        return dict(arguments)
    if not isinstance(arguments, str):
        raise ToolArgumentsError(
            f"arguments for tool {tool_name!r} must be a JSON string or an object, "
            f"got {type(arguments).__name__}"
        )
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError as exc:
        raise ToolArgumentsError(
            f"arguments for tool {tool_name!r} are not valid JSON ({exc.msg} at position {exc.pos}): "
            f"{arguments[:200]!r}"
        ) from exc
    if not isinstance(value, dict):
        raise ToolArgumentsError(
            f"arguments for tool {tool_name!r} must be a JSON object, got {type(value).__name__}: "
            f"{arguments[:200]!r}"
        )
    return value


@dataclass(frozen=True, slots=True)
class Message:
    """A typed chat message. ``to_dict()`` gives the wire-neutral dict every API accepts."""

    role: Role
    content: str | list[dict[str, Any]] | None = None
    tool_calls: tuple[ToolCall, ...] = field(default_factory=tuple)
    tool_call_id: str | None = None
    name: str | None = None
    reasoning: str | None = None

    def __post_init__(self) -> None:
        validate_message(self.to_dict())

    @classmethod
    def system(cls, content: str) -> Message:
        return cls(role="system", content=content)

    @classmethod
    def user(cls, content: str | list[dict[str, Any]]) -> Message:
        return cls(role="user", content=content)

    @classmethod
    def assistant(cls, content: str | None = None, tool_calls: Sequence[ToolCall] = ()) -> Message:
        return cls(role="assistant", content=content, tool_calls=tuple(tool_calls))

    @classmethod
    def tool(cls, tool_call_id: str, content: str, name: str | None = None) -> Message:
        return cls(role="tool", content=content, tool_call_id=tool_call_id, name=name)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [tc.to_dict() for tc in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            out["name"] = self.name
        if self.reasoning is not None:
            out["reasoning"] = self.reasoning
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Message:
        d = validate_message(data)
        return cls(
            role=d["role"],
            content=d.get("content"),
            tool_calls=tuple(ToolCall.from_dict(tc) for tc in d.get("tool_calls") or ()),
            tool_call_id=d.get("tool_call_id"),
            name=d.get("name"),
            reasoning=d.get("reasoning"),
        )


MessageLike: TypeAlias = Message | Mapping[str, Any]


def validate_message(message: Mapping[str, Any], index: int | None = None) -> dict[str, Any]:
    """Check one message and return it as a plain dict (a shallow copy when it needed fixing)."""
    where = f"message {index}" if index is not None else "message"
    if not isinstance(message, Mapping):
        raise InvalidMessageError(f"{where} must be a dict or a Message, got {type(message).__name__}")
    role = message.get("role")
    if not isinstance(role, str) or role not in ROLES:
        raise InvalidMessageError(
            f"{where} has unknown role {role!r}; expected one of {', '.join(sorted(ROLES))}"
        )
    content = message.get("content")
    if content is not None and not isinstance(content, (str, list)):
        raise InvalidMessageError(
            f"{where} ({role}): content must be a string, a list of content parts or None, "
            f"got {type(content).__name__}"
        )
    out: dict[str, Any] = message if type(message) is dict else dict(message)
    if role == "assistant":
        tool_calls = message.get("tool_calls")
        if tool_calls:
            if not isinstance(tool_calls, list):
                raise InvalidMessageError(f"{where} (assistant): tool_calls must be a list")
            fixed = [ToolCall.from_dict(tc).to_dict() for tc in tool_calls]
            if fixed != tool_calls:
                out = {**out, "tool_calls": fixed}
        elif content is None:
            raise InvalidMessageError(f"{where} (assistant) has neither content nor tool_calls")
    elif role == "tool":
        if not message.get("tool_call_id"):
            raise InvalidMessageError(f"{where} (tool) is missing 'tool_call_id'")
        if content is None:
            raise InvalidMessageError(f"{where} (tool) is missing 'content'")
    elif content is None or content == "":
        raise InvalidMessageError(f"{where} ({role}) is missing 'content'")
    return out


def normalize_messages(messages: str | MessageLike | Iterable[MessageLike]) -> list[dict[str, Any]]:
    """Validate messages and return them as a new list of wire-neutral dicts.

    A bare string is one user message, as every chat SDK treats a prompt.
    """
    if isinstance(messages, str):
        if not messages:
            raise InvalidMessageError("prompt is empty")
        return [{"role": "user", "content": messages}]
    if isinstance(messages, (Message, Mapping)):
        messages = [messages]
    elif not isinstance(messages, Iterable):
        raise InvalidMessageError(
            "messages must be a string, a message dict, a Message or a list of them, "
            f"got {type(messages).__name__}"
        )
    out: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        out.append(m.to_dict() if isinstance(m, Message) else validate_message(m, i))
    if not out:
        raise InvalidMessageError("messages is empty: send at least one message")
    return out
