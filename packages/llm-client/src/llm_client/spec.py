"""What one model call asks for (RequestSpec) and what it returns (CompletionResult)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .errors import InvalidRequestError
from .messages import MessageLike, ToolCall, normalize_messages
from .usage import Usage

if TYPE_CHECKING:
    from .tools import Tool

__all__ = ["RequestSpec", "CompletionResult"]


def _tool_dicts(tools: Iterable[Any] | None) -> tuple[dict[str, Any], ...]:
    if not tools:
        return ()
    out: list[dict[str, Any]] = []
    for t in tools:
        if hasattr(t, "to_openai_format"):
            out.append(t.to_openai_format())
        elif isinstance(t, Mapping):
            if t.get("type") == "function" and isinstance(t.get("function"), Mapping):
                out.append(dict(t))
            elif "name" in t:  # bare function description
                out.append({"type": "function", "function": dict(t)})
            else:
                raise InvalidRequestError(f"tool definition needs a 'function' or a 'name': {dict(t)!r}")
        else:
            raise InvalidRequestError(f"a tool must be a Tool or a dict, got {type(t).__name__}")
    return tuple(out)


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """One request to a model, in provider-neutral form.

    ``model=None`` means the provider's own model. ``response_format`` takes OpenAI's shape
    (``{"type": "json_schema", "json_schema": {...}}`` or ``{"type": "json_object"}``).
    ``extra`` is passed to the provider SDK as-is, for options this spec does not name.
    """

    messages: tuple[dict[str, Any], ...]
    model: str | None = None
    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] | None = None
    response_format: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    thinking_budget: int | None = None
    timeout: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        messages: str | MessageLike | Iterable[MessageLike],
        *,
        tools: Iterable[Tool | Mapping[str, Any]] | None = None,
        stop: str | Sequence[str] | None = None,
        **options: Any,
    ) -> RequestSpec:
        """Validate messages and tools and build a spec; unknown options are an error."""
        unknown = set(options) - _OPTION_NAMES
        if unknown:
            raise InvalidRequestError(
                f"unknown request option(s) {sorted(unknown)}; known: {sorted(_OPTION_NAMES)} "
                "(put provider-specific options in extra={...})"
            )
        stops = (stop,) if isinstance(stop, str) else (tuple(stop) if stop is not None else None)
        return cls(
            messages=tuple(normalize_messages(messages)), tools=_tool_dicts(tools), stop=stops, **options
        )

    @classmethod
    def coerce(
        cls, value: RequestSpec | str | MessageLike | Iterable[MessageLike], **options: Any
    ) -> RequestSpec:
        if isinstance(value, RequestSpec):
            return value.with_options(**options) if options else value
        return cls.build(value, **options)

    def with_options(self, **changes: Any) -> RequestSpec:
        if "messages" in changes:
            changes["messages"] = tuple(normalize_messages(changes["messages"]))
        if "tools" in changes:
            changes["tools"] = _tool_dicts(changes["tools"])
        return replace(self, **changes)

    def fingerprint(self) -> str:
        """A stable digest of everything that defines the request (for idempotency checks)."""
        import hashlib

        body = json.dumps(
            {
                "messages": self.messages,
                "model": self.model,
                "tools": self.tools,
                "tool_choice": self.tool_choice,
                "temperature": self.temperature,
                "top_p": self.top_p,
                "max_tokens": self.max_tokens,
                "stop": self.stop,
                "response_format": self.response_format,
                "reasoning_effort": self.reasoning_effort,
                "thinking_budget": self.thinking_budget,
                "extra": dict(self.extra),
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(body.encode()).hexdigest()


_OPTION_NAMES = frozenset(RequestSpec.__dataclass_fields__) - {"messages", "tools", "stop"}


@dataclass(frozen=True, slots=True)
class CompletionResult:
    """The model's answer: text and/or tool calls, with usage and (when known) cost."""

    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = field(default_factory=Usage)
    model: str | None = None
    finish_reason: str | None = None
    reasoning: str | None = None
    provider: str | None = None
    raw: Any = field(default=None, repr=False, compare=False)

    @property
    def message(self) -> dict[str, Any]:
        """The assistant message to append to the conversation, in wire-neutral form."""
        msg: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            msg["tool_calls"] = [tc.to_dict() for tc in self.tool_calls]
        return msg

    @property
    def has_tool_calls(self) -> bool:
        return bool(self.tool_calls)

    def parsed(self) -> Any:
        """The content parsed as JSON, for structured output; ``MalformedResponseError`` if not JSON."""
        from .errors import MalformedResponseError

        try:
            return json.loads(self.content or "")
        except json.JSONDecodeError as exc:
            raise MalformedResponseError(
                f"model output is not valid JSON: {(self.content or '')[:200]!r}", provider=self.provider
            ) from exc
