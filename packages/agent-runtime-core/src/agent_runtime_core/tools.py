"""Tools for core agents: llm-client's Tool and ToolRegistry, plus event emission.

There is one tool implementation in the stack (``llm_client.tools``). This module adds what a run
needs on top: ``execute_with_events`` publishes ``tool.call`` and ``tool.result`` on the run's
context around each execution.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llm_client import LLMClientError, ToolCall
from llm_client.tools import Tool, tool
from llm_client.tools import ToolRegistry as _BaseToolRegistry

from .interfaces import EventType

if TYPE_CHECKING:
    from .interfaces import RunContext

__all__ = ["Tool", "ToolRegistry", "ToolCallData", "tool", "as_tool_call"]


class ToolCallData(dict[str, Any]):
    """A tool call in OpenAI's dict shape that also reads as attributes.

    The seed's agents use both ``tool_call["function"]["name"]`` and ``tool_call.id``; this type lets
    both work on the same object, and it serialises as the plain dict it is.
    """

    @classmethod
    def of(cls, call: ToolCall) -> ToolCallData:
        return cls(call.to_dict())

    @property
    def id(self) -> str:
        return str(self["id"])

    @property
    def name(self) -> str:
        return str(self["function"]["name"])

    @property
    def arguments(self) -> str:
        args = self["function"].get("arguments", "{}")
        return args if isinstance(args, str) else json.dumps(args)

    @property
    def function(self) -> dict[str, Any]:
        fn: dict[str, Any] = self["function"]
        return fn


def as_tool_call(call: ToolCall | Mapping[str, Any]) -> ToolCall:
    """Any tool-call shape (llm-client ToolCall, OpenAI dict, ToolCallData) as a ToolCall."""
    if isinstance(call, ToolCall):
        return call
    return ToolCall.from_dict(call)


class ToolRegistry(_BaseToolRegistry):
    """llm-client's registry, with event emission for runs."""

    async def execute_with_events(self, tool_call: ToolCall | Mapping[str, Any], ctx: RunContext) -> Any:
        """Run one tool call, emitting ``tool.call`` before and ``tool.result`` after.

        A failing tool emits ``tool.result`` with ``is_error: true`` and then raises its typed
        error (ToolNotFoundError, ToolArgumentsError or ToolExecutionError), so the caller decides
        whether the run goes on.
        """
        call = as_tool_call(tool_call)
        extra: dict[str, Any] = {}
        if call.name in self:
            extra = dict(getattr(self.get(call.name), "event_payload", None) or {})
        await ctx.emit(
            EventType.TOOL_CALL,
            {
                "tool_call_id": call.id,
                "tool": call.name,
                "name": call.name,
                "arguments": call.arguments,
                **extra,
            },
        )
        started = time.perf_counter()
        try:
            result = await self.execute(call.name, call.arguments)
        except LLMClientError as exc:
            await ctx.emit(
                EventType.TOOL_RESULT,
                {
                    "tool_call_id": call.id,
                    "tool": call.name,
                    "name": call.name,
                    "result": None,
                    "error": str(exc),
                    "is_error": True,
                    "duration_ms": (time.perf_counter() - started) * 1000,
                    **extra,
                },
            )
            raise
        await ctx.emit(
            EventType.TOOL_RESULT,
            {
                "tool_call_id": call.id,
                "tool": call.name,
                "name": call.name,
                "result": _jsonable(result),
                "duration_ms": (time.perf_counter() - started) * 1000,
                **extra,
            },
        )
        return result


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return Tool.format_result(value)
    return value
