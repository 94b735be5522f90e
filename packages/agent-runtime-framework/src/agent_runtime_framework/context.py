"""AgentContext: what a journey's hooks (``create_tools``, ``load_state``, ...) see of a run.

It wraps core's :class:`~agent_runtime_core.RunContext` (``run_context``) rather than copying its
API, and adds what a journey needs on top: the conversation id that ties turns together, and the
turn's full message list (stored history plus this run's input).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from agent_runtime_core import EventType, RunContext

__all__ = ["AgentContext", "CONVERSATION_ID_KEY"]

#: ``RunContext.metadata`` key naming the conversation a run belongs to (one run per user turn).
CONVERSATION_ID_KEY = "conversation_id"


@dataclass
class AgentContext:
    run_context: RunContext
    conversation_id: str | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_run_context(cls, ctx: RunContext) -> AgentContext:
        metadata = dict(ctx.metadata or {})
        conversation = metadata.get(CONVERSATION_ID_KEY)
        return cls(
            run_context=ctx,
            conversation_id=None if conversation is None else str(conversation),
            messages=[dict(m) for m in ctx.input_messages],
            metadata=metadata,
        )

    @property
    def run_id(self) -> uuid.UUID:
        return self.run_context.run_id

    async def emit(self, event_type: EventType | str, payload: dict[str, Any]) -> None:
        await self.run_context.emit(event_type, payload)
