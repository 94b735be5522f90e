"""Intent routing: tools that let the model pick (or switch) the journey a conversation is in.

Each :class:`RouteDefinition` becomes a parameterless tool (a :class:`ToolSchema`) whose name the
model calls; :meth:`IntentRouter.resolve_tool_call` maps the call back to its journey, and an
unknown name raises :class:`~agent_runtime_framework.errors.UnknownRouteError` listing the routes.

:class:`RouterAgent` puts the router in front of several journey agents. Each turn the model sees
the active journey's step prompt and tools **plus** the routing tools, so the user can switch
journeys mid-conversation ("actually, I want to file a claim"): the routing call switches, and the
next model call already has the new journey's prompt and tools (the executor's segment switch).
Each journey keeps its own state, so switching back resumes it where it was. Before any journey
is active the model sees ``system_prompt`` and the routing tools only.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from agent_runtime_core import AgentRuntime, EventType, RunContext, RunResult
from agent_runtime_core.llm import LLMClient, get_llm_client
from llm_client import AgentDone, StreamError, Tool, ToolCall, Usage, aclose_stream

from .agent import JourneyRuntime
from .context import AgentContext
from .errors import UnknownRouteError
from .events import publish
from .executor import Executor, ExecutorConfig, Segment
from .hooks import ExecutorHooks
from .memory import MemoryManager
from .schema import ToolSchema

__all__ = ["RouteDefinition", "IntentRouter", "RouterAgent"]

JourneyT = TypeVar("JourneyT")


@dataclass(frozen=True)
class RouteDefinition(Generic[JourneyT]):
    """``name`` is the tool the model calls to enter ``journey``; ``description`` tells it when."""

    journey: JourneyT
    name: str
    description: str


class IntentRouter(Generic[JourneyT]):
    def __init__(self) -> None:
        self._routes: dict[str, RouteDefinition[JourneyT]] = {}
        self._schemas: dict[str, ToolSchema] = {}

    def add_route(self, route: RouteDefinition[JourneyT]) -> None:
        """Register a route; a second route under the same tool name is a ValueError."""
        if route.name in self._routes:
            raise ValueError(f"a route named {route.name!r} is already registered")
        schema = ToolSchema(route.name, route.description)  # checks the name the way llm-client does
        self._routes[route.name] = route
        self._schemas[route.name] = schema

    @property
    def routes(self) -> list[RouteDefinition[JourneyT]]:
        return list(self._routes.values())

    def get_tool_schemas(self) -> list[ToolSchema]:
        """One tool per route, for the model."""
        return list(self._schemas.values())

    def is_routing_tool(self, name: str) -> bool:
        return name in self._routes

    def route_for(self, journey: JourneyT) -> RouteDefinition[JourneyT] | None:
        return next((r for r in self._routes.values() if r.journey == journey), None)

    def resolve_tool_call(self, call: str | ToolCall | Mapping[str, Any]) -> JourneyT:
        """The journey a routing tool call asks for (a tool name, an llm-client ToolCall or an
        OpenAI-format tool call dict). Unknown names raise UnknownRouteError."""
        if isinstance(call, ToolCall):
            name = call.name
        elif isinstance(call, Mapping):
            name = str(call.get("function", call).get("name", ""))
        else:
            name = call
        route = self._routes.get(name)
        if route is None:
            raise UnknownRouteError(name, list(self._routes))
        return route.journey


class RouterAgent(AgentRuntime, Generic[JourneyT]):
    """Routes a conversation between journey agents (see the module docstring).

    State (checkpointed, and kept in ``memory`` per ``conversation_id``) is
    ``{"journey": <active journey value or None>, "states": {<journey value>: <state dict>}}``.
    ``final_output`` is ``{"response", "journey", "step", "state"}``.
    """

    def __init__(
        self,
        router: IntentRouter[JourneyT],
        journeys: Mapping[JourneyT, JourneyRuntime[Any, Any, Any]],
        *,
        key: str = "router",
        system_prompt: str = "Find out what the user wants and call the matching tool.",
        llm_client: LLMClient | None = None,
        memory: MemoryManager | None = None,
        config: ExecutorConfig | None = None,
        hooks: ExecutorHooks | None = None,
    ) -> None:
        missing = [r.name for r in router.routes if r.journey not in journeys]
        if missing:
            raise ValueError(f"routes without a journey agent: {', '.join(missing)}")
        self.router = router
        self.journeys = dict(journeys)
        self._key = key
        self.system_prompt = system_prompt
        self._llm_client = llm_client
        self.memory = memory
        self.config = config if config is not None else ExecutorConfig()
        self.hooks = hooks

    @property
    def key(self) -> str:
        return self._key

    @property
    def llm_client(self) -> LLMClient:
        return self._llm_client if self._llm_client is not None else get_llm_client()

    async def _load(self, actx: AgentContext) -> dict[str, Any]:
        checkpoint = await actx.run_context.get_state()
        if isinstance(checkpoint, Mapping) and checkpoint.get("agent") == self.key:
            return dict(checkpoint["state"])
        if self.memory is not None and actx.conversation_id is not None:
            stored = await self.memory.state_store.load(actx.conversation_id, self.key)
            if stored is not None:
                return stored
        return {"journey": None, "states": {}}

    async def run(self, ctx: RunContext) -> RunResult:
        actx = AgentContext.from_run_context(ctx)
        if self.memory is not None and actx.conversation_id is not None:
            history = await self.memory.conversation_store.get_messages(actx.conversation_id)
            actx.messages = history + actx.messages
        saved = await self._load(actx)
        by_value = {_label(j): j for j in self.journeys}
        active: JourneyT | None = by_value.get(saved.get("journey"))
        states: dict[JourneyT, Any] = {}
        tools: dict[JourneyT, Any] = {}
        for value, data in (saved.get("states") or {}).items():
            journey = by_value.get(value)
            if journey is not None:
                states[journey] = self.journeys[journey].state_from_dict(data)

        def enter(journey: JourneyT) -> None:
            agent = self.journeys[journey]
            if journey not in states:
                states[journey] = agent.get_initial_state()
            if journey not in tools:
                tools[journey] = agent._build_tools(states[journey], actx)

        def routing_tool(schema: ToolSchema) -> Tool:
            journey = self.router.resolve_tool_call(schema.name)

            async def switch() -> str:
                nonlocal active
                active = journey
                enter(journey)
                return f"Switched to the {_label(journey)} journey."

            return schema.bind(switch)

        def snapshot() -> dict[str, Any]:
            live = {j: getattr(tools.get(j), "state", s) for j, s in states.items()}
            return {
                "journey": None if active is None else _label(active),
                "states": {_label(j): s.to_dict() for j, s in live.items()},
            }

        def segment() -> Segment:
            routes = [routing_tool(s) for s in self.router.get_tool_schemas()]
            if active is None:
                return Segment(self.system_prompt, tuple(routes))
            agent = self.journeys[active]
            enter(active)
            state = getattr(tools[active], "state", states[active])
            inner = agent._segment(state, tools[active])
            own = self.router.route_for(active)
            others = [r for r in routes if own is None or r.name != own.name]
            return Segment(inner.system_prompt, (*inner.tools, *others))

        def position() -> tuple[Any, Any]:
            if active is None:
                return None, None
            return active, getattr(getattr(tools.get(active), "state", states.get(active)), "step", None)

        where = position()

        async def next_segment() -> Segment | None:
            nonlocal where
            now = position()
            if now == where:
                return None
            if now[0] != where[0]:
                await ctx.emit(
                    EventType.STEP_STARTED,
                    {"journey": _label(now[0]), "step": _label(now[1]), "previous_journey": _label(where[0])},
                )
            where = now
            await ctx.checkpoint({"agent": self.key, "state": snapshot()})
            return segment()

        first = segment()
        executor = Executor(self.llm_client, config=self.config, hooks=self.hooks)
        stream = executor.stream(actx.messages, first.tools, first.system_prompt, next_segment=next_segment)
        try:
            async for event in stream:
                if isinstance(event, AgentDone):
                    return await self._finish(
                        actx, snapshot(), event.result.content, event.result.messages, event.result.usage
                    )
                if isinstance(event, StreamError):
                    raise event.error
                await publish(ctx, event)
        finally:
            await aclose_stream(stream)
        raise RuntimeError("executor stream ended without a terminal event")  # pragma: no cover

    async def _finish(
        self,
        actx: AgentContext,
        state: dict[str, Any],
        content: str | None,
        messages: list[dict[str, Any]],
        usage: Usage,
    ) -> RunResult:
        await actx.run_context.checkpoint({"agent": self.key, "state": state})
        if self.memory is not None and actx.conversation_id is not None:
            await self.memory.save_state(actx.conversation_id, self.key, state)
            await self.memory.save_messages(
                actx.conversation_id, [m for m in messages if m.get("role") != "system"]
            )
        await actx.emit(EventType.ASSISTANT_MESSAGE, {"content": content, "role": "assistant"})
        journey = state["journey"]
        current = state["states"].get(journey) if journey is not None else None
        return RunResult(
            final_output={
                "response": content,
                "journey": journey,
                "step": None if current is None else current.get("step"),
                "state": current,
            },
            final_messages=messages,
            usage=usage.to_dict(),
        )


def _label(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value
