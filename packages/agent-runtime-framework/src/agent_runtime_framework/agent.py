"""JourneyAgent: a step-driven conversational agent that runs wherever core agents run.

It is an :class:`agent_runtime_core.AgentRuntime` (``key`` + ``async run(ctx) -> RunResult``), so
the core ``AgentRunner``, the test kit and the Django app run it unchanged. One run is one user
turn:

1. **load state**: this run's own checkpoint (a retried attempt resumes there), else the
   conversation's state from ``memory`` (when the run's metadata has a ``conversation_id``), else
   ``get_initial_state()``; with ``memory``, stored history is put before the run's input;
2. **build** the step's system prompt and tools (``get_system_prompt``, ``get_tool_schemas``,
   ``create_tools``);
3. **run the loop** (:class:`~agent_runtime_framework.executor.Executor`, i.e. llm-client's Agent).
   After each tool batch the step is compared: when it changed (or a tool called
   ``_notify_state_change()``), ``step.started`` is emitted, the state is checkpointed and the next
   model call gets the new step's prompt and tools. A tool of another step is refused with a tool
   message (llm-client's unknown-tool message lists what the step offers) and not executed;
4. **save state**: ``ctx.checkpoint({"agent": key, "state": ...})``, plus ``memory`` when set;
5. **events** on the way: ``assistant.delta``, ``tool.call``, ``tool.result``, ``step.started``,
   and a final ``assistant.message``.

The result's ``final_output`` is ``{"response", "step", "state", "is_complete"}``. Errors of the
loop (a provider error after retries, ``MaxTurnsExceededError``) are raised typed, as core's
``ToolCallingAgent`` does, so the runner's retry policy applies; a cancelled run returns a result
with ``final_output["cancelled"] = True``.
"""

from __future__ import annotations

import enum
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar

from agent_runtime_core import AgentRuntime, ErrorInfo, EventType, RunContext, RunResult
from agent_runtime_core.llm import LLMClient, get_llm_client
from llm_client import (
    AgentDone,
    CancellationToken,
    ExecutionEngine,
    RequestContext,
    StreamError,
    Tool,
    ToolEnd,
    Usage,
    aclose_stream,
)
from llm_client.agent import TurnComplete

from .context import AgentContext
from .events import publish
from .executor import Executor, ExecutorConfig, Segment
from .hooks import ExecutorHooks
from .journey_tools import BaseJourneyTools
from .memory import MemoryManager
from .schema import ToolSchema
from .state import BaseJourneyState
from .tool_executors import MethodToolExecutor

__all__ = ["JourneyAgent", "JourneyRuntime", "StateT", "ToolsT", "StepT"]

StateT = TypeVar("StateT", bound=BaseJourneyState[Any])
ToolsT = TypeVar("ToolsT")
StepT = TypeVar("StepT")


class JourneyRuntime(AgentRuntime, Generic[StateT, ToolsT, StepT]):
    """The machinery shared by :class:`JourneyAgent` and the runtime adapter; they differ only in
    how tools are created (``_build_tools``)."""

    def __init__(
        self,
        llm_client: LLMClient | ExecutionEngine | None = None,
        *,
        memory: MemoryManager | None = None,
        config: ExecutorConfig | None = None,
        hooks: ExecutorHooks | None = None,
    ) -> None:
        if isinstance(llm_client, ExecutionEngine):
            llm_client = LLMClient(engine=llm_client)
        elif llm_client is not None and not isinstance(llm_client, LLMClient):
            raise TypeError(
                f"llm_client must be an agent_runtime_core LLMClient or an llm_client ExecutionEngine, "
                f"got {type(llm_client).__name__}"
            )
        self._llm_client = llm_client
        self.memory = memory
        self.config = config if config is not None else ExecutorConfig()
        self.hooks = hooks

    @property
    def llm_client(self) -> LLMClient:
        """The client given at construction, else core's ``get_llm_client()`` (read at each run)."""
        return self._llm_client if self._llm_client is not None else get_llm_client()

    # --- what a journey defines ------------------------------------------------------------------

    @abstractmethod
    def get_initial_state(self) -> StateT:
        """The state of a conversation that has none yet."""

    @abstractmethod
    def get_system_prompt(self, state: StateT) -> str:
        """The system prompt for the state's step."""

    @abstractmethod
    def get_tool_schemas(self, state: StateT) -> list[ToolSchema]:
        """The tools the model may call at the state's step (others are refused)."""

    async def execute_tool(self, tools: ToolsT, name: str, arguments: dict[str, Any]) -> Any:
        """Run one tool call with validated ``arguments``. Default: the public method ``name`` of
        ``tools``; override to dispatch differently."""
        return await MethodToolExecutor(tools).execute(name, arguments)

    async def load_state(self, ctx: AgentContext) -> StateT | None:
        """This run's checkpoint, else the conversation's stored state, else None (module docstring)."""
        checkpoint = await ctx.run_context.get_state()
        if isinstance(checkpoint, Mapping) and checkpoint.get("agent") == self.key:
            data = checkpoint.get("state")
            if isinstance(data, Mapping):
                return self.state_from_dict(data)
        if self.memory is not None and ctx.conversation_id is not None:
            stored = await self.memory.state_store.load(ctx.conversation_id, self.key)
            if stored is not None:
                return self.state_from_dict(stored)
        return None

    async def save_state(self, ctx: AgentContext, state: StateT) -> None:
        """Checkpoint the state on the run's context, and save it to ``memory`` when configured."""
        data = state.to_dict()
        await ctx.run_context.checkpoint({"agent": self.key, "state": data})
        if self.memory is not None and ctx.conversation_id is not None:
            await self.memory.save_state(ctx.conversation_id, self.key, data)

    def is_terminal_state(self, state: StateT) -> bool:
        """Whether the journey is over (reported as ``final_output["is_complete"]``)."""
        return state.is_complete()

    def state_from_dict(self, data: Mapping[str, Any]) -> StateT:
        """A state from its stored dict, through the state class's ``from_dict``."""
        state_type = type(self.get_initial_state())
        state: StateT = state_type.from_dict(dict(data))
        return state

    @abstractmethod
    def _build_tools(self, state: StateT, ctx: AgentContext) -> ToolsT: ...

    # --- the turn ---------------------------------------------------------------------------------

    def _segment(self, state: StateT, tools: ToolsT) -> Segment:
        bound: list[Tool] = []
        for schema in self.get_tool_schemas(state):
            if not isinstance(schema, Tool):
                raise TypeError(
                    f"get_tool_schemas must return ToolSchema objects, got {type(schema).__name__}"
                )
            bound.append(_bind(self, tools, schema))
        return Segment(self.get_system_prompt(state), tuple(bound))

    async def run(self, ctx: RunContext) -> RunResult:
        actx = AgentContext.from_run_context(ctx)
        if ctx.is_cancelled():
            return _cancelled(actx.messages, Usage.zero())
        if self.memory is not None and actx.conversation_id is not None:
            history = await self.memory.conversation_store.get_messages(actx.conversation_id)
            actx.messages = history + actx.messages
        loaded = await self.load_state(actx)
        state: StateT = loaded if loaded is not None else self.get_initial_state()
        tools = self._build_tools(state, actx)
        dirty = False

        def mark_dirty(_: object = None) -> None:
            nonlocal dirty
            dirty = True

        if isinstance(tools, BaseJourneyTools):
            tools.on_state_change = _chain(tools.on_state_change, mark_dirty)

        def current() -> StateT:
            live = getattr(tools, "state", state)  # a tool may replace the state object
            return live if isinstance(live, BaseJourneyState) else state  # type: ignore[return-value]

        segment = self._segment(state, tools)
        step = state.step

        async def next_segment() -> Segment | None:
            nonlocal segment, step, dirty
            live = current()
            if live.step == step and not dirty:
                return None
            dirty = False
            if live.step != step:
                previous, step = step, live.step
                await ctx.emit(
                    EventType.STEP_STARTED,
                    {"journey": self.key, "step": _label(step), "previous_step": _label(previous)},
                )
                await ctx.checkpoint({"agent": self.key, "state": live.to_dict()})
            new = self._segment(live, tools)
            if new.system_prompt == segment.system_prompt and _same_tools(new.tools, segment.tools):
                return None
            segment = new
            return new

        token = getattr(ctx, "cancel_token", None)
        request = RequestContext(cancellation_token=token) if isinstance(token, CancellationToken) else None
        executor = Executor(self.llm_client, config=self.config, hooks=self.hooks)
        usage = Usage.zero()
        partial: list[dict[str, Any]] = actx.messages
        stream = executor.stream(
            actx.messages,
            segment.tools,
            segment.system_prompt,
            next_segment=next_segment,
            context=request,
        )
        try:
            async for event in stream:
                kind = type(event)
                if kind is TurnComplete:
                    assert isinstance(event, TurnComplete)
                    usage = usage + event.response.usage
                    partial = [*partial, event.response.message]
                    if event.response.tool_calls and ctx.is_cancelled():
                        return await self._stop(actx, current(), partial, usage)
                elif kind is ToolEnd:
                    assert isinstance(event, ToolEnd)
                    await publish(ctx, event)
                    call = event.outcome.call
                    partial = [
                        *partial,
                        {"role": "tool", "tool_call_id": call.id, "content": event.outcome.content},
                    ]
                    if ctx.is_cancelled():
                        return await self._stop(actx, current(), partial, usage)
                elif kind is AgentDone:
                    assert isinstance(event, AgentDone)
                    return await self._finish(actx, current(), event.result.content, event.result)
                elif kind is StreamError:
                    assert isinstance(event, StreamError)
                    if ctx.is_cancelled():
                        return await self._stop(actx, current(), partial, usage)
                    raise event.error
                else:
                    await publish(ctx, event)
        finally:
            await aclose_stream(stream)
        raise RuntimeError("executor stream ended without a terminal event")  # pragma: no cover

    async def _finish(self, actx: AgentContext, state: StateT, content: str | None, result: Any) -> RunResult:
        await self.save_state(actx, state)
        messages: list[dict[str, Any]] = result.messages
        if self.memory is not None and actx.conversation_id is not None:
            await self.memory.save_messages(
                actx.conversation_id, [m for m in messages if m.get("role") != "system"]
            )
        await actx.emit(EventType.ASSISTANT_MESSAGE, {"content": content, "role": "assistant"})
        return RunResult(
            final_output={
                "response": content,
                "step": _label(state.step),
                "state": state.to_dict(),
                "is_complete": self.is_terminal_state(state),
            },
            final_messages=messages,
            usage=result.usage.to_dict(),
        )

    async def _stop(
        self, actx: AgentContext, state: StateT, messages: list[dict[str, Any]], usage: Usage
    ) -> RunResult:
        await actx.run_context.checkpoint({"agent": self.key, "state": state.to_dict()})
        return _cancelled(messages, usage)


class JourneyAgent(JourneyRuntime[StateT, ToolsT, StepT]):
    """Subclass and define ``key``, ``get_initial_state``, ``get_system_prompt``,
    ``get_tool_schemas`` and ``create_tools`` (``execute_tool``, ``load_state``, ``save_state`` and
    ``is_terminal_state`` have defaults). ``llm_client`` defaults to core's ``get_llm_client()``;
    ``memory`` keeps state and history per ``conversation_id``; ``config`` bounds the loop."""

    @abstractmethod
    def create_tools(self, state: StateT, ctx: AgentContext) -> ToolsT:
        """The object the step's tools run on, for one run (usually a BaseJourneyTools)."""

    def _build_tools(self, state: StateT, ctx: AgentContext) -> ToolsT:
        return self.create_tools(state, ctx)


def _bind(agent: JourneyRuntime[Any, Any, Any], tools: Any, schema: Tool) -> Tool:
    name = schema.name

    async def handler(**arguments: Any) -> Any:
        return await agent.execute_tool(tools, name, arguments)

    return Tool(name, schema.description, schema.parameters, handler, strict=schema.strict)


def _chain(first: Any, second: Any) -> Any:
    if first is None:
        return second

    async def both(state: object) -> None:
        result = first(state)
        if hasattr(result, "__await__"):
            await result
        second(state)

    return both


def _same_tools(a: Sequence[Tool], b: Sequence[Tool]) -> bool:
    return len(a) == len(b) and all(
        x.name == y.name and x.description == y.description and x.parameters == y.parameters
        for x, y in zip(a, b, strict=True)
    )


def _label(step: Any) -> Any:
    return step.value if isinstance(step, enum.Enum) else step


def _cancelled(messages: list[dict[str, Any]], usage: Usage) -> RunResult:
    return RunResult(
        final_output={"response": None, "cancelled": True},
        final_messages=messages,
        error=ErrorInfo(type="RunCancelled", message="the run was cancelled", retryable=False),
        usage=usage.to_dict(),
    )
