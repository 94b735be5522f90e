"""Publishing the loop's llm-client events on a run's context, with core's event names.

The payloads are those of core's ``ToolCallingAgent`` (and ``ToolRegistry.execute_with_events``), so
a UI cannot tell a journey agent's tool events from any other agent's:

=====================  =================================================================
llm-client event       RunContext event
=====================  =================================================================
``TextDelta``          ``assistant.delta`` ``{"delta": text}``
``ToolStart``          ``tool.call`` ``{"tool_call_id", "tool", "name", "arguments"}``
``ToolEnd``            ``tool.result`` (``is_error``/``error`` when the tool failed or was refused)
=====================  =================================================================

The final ``assistant.message`` is emitted by the agent, which knows the journey's state by then.
"""

from __future__ import annotations

import json
from typing import Any

from agent_runtime_core import EventType, RunContext
from llm_client import TextDelta, ToolEnd, ToolStart
from llm_client.agent import AgentEvent, ToolOutcome

__all__ = ["publish", "tool_result_payload"]


async def publish(ctx: RunContext, event: AgentEvent) -> None:
    """Emit the run event for one loop event (events without one are ignored)."""
    kind = type(event)
    if kind is TextDelta:
        assert isinstance(event, TextDelta)
        await ctx.emit(EventType.ASSISTANT_DELTA, {"delta": event.text})
    elif kind is ToolStart:
        assert isinstance(event, ToolStart)
        call = event.call
        await ctx.emit(
            EventType.TOOL_CALL,
            {"tool_call_id": call.id, "tool": call.name, "name": call.name, "arguments": call.arguments},
        )
    elif kind is ToolEnd:
        assert isinstance(event, ToolEnd)
        await ctx.emit(EventType.TOOL_RESULT, tool_result_payload(event.outcome))


def tool_result_payload(outcome: ToolOutcome) -> dict[str, Any]:
    call = outcome.call
    payload: dict[str, Any] = {"tool_call_id": call.id, "tool": call.name, "name": call.name}
    if outcome.error is None:
        payload["result"] = _jsonable(outcome.value, outcome.content)
    else:
        payload.update(result=None, error=outcome.error, is_error=True)
    payload["duration_ms"] = outcome.duration_ms
    return payload


def _jsonable(value: Any, text: str) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return text
    return value
