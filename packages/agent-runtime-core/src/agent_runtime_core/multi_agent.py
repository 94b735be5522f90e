"""Agents as tools: a parent agent delegates to (or hands off to) sub-agents.

``AgentTool`` wraps an agent; ``register_agent_tools`` exposes AgentTools to a model as ordinary
tools in the one :class:`~agent_runtime_core.tools.ToolRegistry`; ``invoke_agent`` runs one
sub-agent directly.

A sub-agent runs with a child :class:`SubAgentRunContext`: a new run id, its own input (built
according to the :class:`ContextMode`), the parent's cancellation, and every event forwarded to the
parent's event stream with ``parent_run_id``, ``sub_agent_run_id`` and ``sub_agent_key`` added to
the payload. The parent also gets ``sub_agent.start`` and ``sub_agent.end``, and the ``tool.call``/
``tool.result`` events of an agent-tool carry ``is_agent_tool: true`` and ``sub_agent_key``.

``max_turns`` is enforced twice: ToolCallingAgent sub-agents read it from
``ctx.metadata["max_turns"]``, and for hand-written agents every ``get_llm_client()`` call during
the sub-run returns a client that refuses the call past ``max_turns`` model calls with
``MaxTurnsExceededError``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from llm_client import CancellationToken, MaxTurnsExceededError, StreamEvent
from llm_client import ToolRegistry as _BaseToolRegistry
from llm_client.messages import MessageLike

from .config import ConfigurationError
from .interfaces import AgentRuntime, EventType, RunContext, RunResult
from .llm.base import LLMClient, LLMResponse
from .llm.factory import get_llm_client, use_llm_client
from .tool_calling import MAX_TURNS_METADATA_KEY
from .tools import Tool, ToolRegistry

__all__ = [
    "InvocationMode",
    "ContextMode",
    "AgentTool",
    "AgentInvocationResult",
    "SubAgentRunContext",
    "invoke_agent",
    "register_agent_tools",
    "DEFAULT_INPUT_SCHEMA",
    "SUMMARY_PROMPT",
]


class InvocationMode(StrEnum):
    """DELEGATE: the sub-agent answers and the parent continues. HANDOFF: the sub-agent takes over."""

    DELEGATE = "delegate"
    HANDOFF = "handoff"


class ContextMode(StrEnum):
    """How much of the parent's conversation the sub-agent sees."""

    FULL = "full"
    SUMMARY = "summary"
    MESSAGE_ONLY = "message_only"


#: The parameters an agent-tool offers the model unless ``input_schema`` says otherwise.
DEFAULT_INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "message": {
            "type": "string",
            "description": "The request for this agent, with everything it needs to know.",
        },
        "context": {"type": "string", "description": "Optional additional context for the agent."},
    },
    "required": ["message"],
}

#: The instruction for ContextMode.SUMMARY's summarising call.
SUMMARY_PROMPT = (
    "Summarise the following conversation for a specialist who will take over one request. Keep "
    "facts, names, numbers, decisions and open questions; leave out pleasantries. Answer with the "
    "summary only."
)


@dataclass
class AgentTool:
    """An agent offered to another agent's model as a tool.

    ``agent`` is an AgentRuntime, or the key of a registered one (looked up at each invocation, so
    registration order does not matter). ``max_turns`` limits the sub-agent's model calls.
    ``input_schema`` replaces the default ``{"message", "context"}`` parameters; with a custom
    schema the arguments are sent to the sub-agent as JSON unless they include ``message``.
    """

    agent: AgentRuntime | str
    name: str
    description: str
    invocation_mode: InvocationMode = InvocationMode.DELEGATE
    context_mode: ContextMode = ContextMode.FULL
    max_turns: int | None = None
    input_schema: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = field(default=None)

    def __post_init__(self) -> None:
        if not isinstance(self.agent, (AgentRuntime, str)) or self.agent == "":
            raise TypeError(
                f"AgentTool {self.name!r}: agent must be an AgentRuntime or a registered agent key, "
                f"got {type(self.agent).__name__}"
            )
        self.invocation_mode = InvocationMode(self.invocation_mode)
        self.context_mode = ContextMode(self.context_mode)
        if self.max_turns is not None and (
            not isinstance(self.max_turns, int) or isinstance(self.max_turns, bool) or self.max_turns < 1
        ):
            raise ValueError(
                f"AgentTool {self.name!r}: max_turns must be an int >= 1, got {self.max_turns!r}"
            )
        self.metadata = dict(self.metadata or {})
        # Validates the name and schema now rather than when a model first calls it.
        Tool(self.name, self.description, self.input_schema or DEFAULT_INPUT_SCHEMA)

    @property
    def sub_agent_key(self) -> str:
        return self.agent if isinstance(self.agent, str) else self.agent.key

    def resolve_agent(self) -> AgentRuntime:
        """The agent instance (a key is looked up in the registry: UnknownRuntimeError if absent)."""
        if isinstance(self.agent, str):
            from .registry import get_runtime

            return get_runtime(self.agent)
        return self.agent

    def to_tool(
        self,
        parent_ctx: RunContext,
        get_conversation_history: Callable[[], Sequence[Mapping[str, Any]]] | None = None,
    ) -> Tool:
        """This agent as a Tool bound to a parent run; its handler returns
        ``{"response", "handoff", "final_output", "sub_agent_run_id"}`` (plus ``"error"`` when the
        sub-run reported one)."""
        agent_tool = self

        async def invoke(**arguments: Any) -> dict[str, Any]:
            message, extra = _message_from(arguments)
            history = get_conversation_history() if get_conversation_history is not None else None
            result = await invoke_agent(agent_tool, message, parent_ctx, history, extra)
            out: dict[str, Any] = {
                "response": result.response,
                "handoff": result.handoff,
                "final_output": result.run_result.final_output,
                "sub_agent_run_id": result.sub_agent_run_id,
            }
            if result.run_result.error is not None:
                out["error"] = result.run_result.error.message
            return out

        tool = Tool(self.name, self.description, self.input_schema or DEFAULT_INPUT_SCHEMA, invoke)
        tool.event_payload = {  # type: ignore[attr-defined]  # read by execute_with_events
            "is_agent_tool": True,
            "sub_agent_key": self.sub_agent_key,
            "invocation_mode": self.invocation_mode.value,
        }
        return tool


def _message_from(arguments: dict[str, Any]) -> tuple[str, str | None]:
    message = arguments.pop("message", None)
    context = arguments.pop("context", None)
    if message is None:  # a custom input schema: the sub-agent gets the arguments themselves
        message = json.dumps(arguments, ensure_ascii=False, default=str)
    elif arguments:
        context = "\n".join(
            filter(None, [context if isinstance(context, str) else None, json.dumps(arguments, default=str)])
        )
    return str(message), (None if context is None else str(context))


@dataclass(frozen=True, slots=True)
class AgentInvocationResult:
    """What a sub-agent invocation produced. ``handoff`` is True for InvocationMode.HANDOFF."""

    response: str | None
    handoff: bool
    run_result: RunResult
    sub_agent_run_id: str
    sub_agent_key: str = ""

    @property
    def final_output(self) -> dict[str, Any]:
        return self.run_result.final_output


class SubAgentRunContext(RunContext):
    """The RunContext a sub-agent runs with: new run id, events forwarded to the parent."""

    def __init__(
        self,
        parent: RunContext,
        *,
        sub_agent_key: str,
        input_messages: list[dict[str, Any]],
        metadata: dict[str, Any],
        run_id: uuid.UUID | None = None,
        tools: _BaseToolRegistry | None = None,
    ) -> None:
        self.parent = parent
        self.run_id = run_id or uuid.uuid4()
        self.input_messages = input_messages
        self.metadata = metadata
        self.sub_agent_key = sub_agent_key
        self._tools = tools if tools is not None else ToolRegistry()
        self._state: dict[str, Any] | None = None
        self._cancelled = False
        # Added to every forwarded payload; an inner sub-agent's own ids win (setdefault order).
        self._tags = {
            "parent_run_id": str(parent.run_id),
            "sub_agent_run_id": str(self.run_id),
            "sub_agent_key": sub_agent_key,
        }
        self._parent_emit = parent.emit

    @property
    def tools(self) -> ToolRegistry:
        return self._tools  # type: ignore[return-value]

    async def emit(self, event_type: EventType | str, payload: dict[str, Any]) -> None:
        await self._parent_emit(event_type, {**self._tags, **payload})

    async def checkpoint(self, state: dict[str, Any]) -> None:
        """Kept with the sub-run (in memory): it must not overwrite the parent's checkpoint."""
        self._state = json.loads(json.dumps(state))

    async def get_state(self) -> dict[str, Any] | None:
        return self._state

    def is_cancelled(self) -> bool:
        return self._cancelled or self.parent.is_cancelled()

    @property
    def cancel_token(self) -> CancellationToken | None:
        """The parent's llm-client token, if it has one (cancelling the parent stops the sub-run)."""
        token = getattr(self.parent, "cancel_token", None)
        return token if isinstance(token, CancellationToken) else None

    def cancel(self) -> None:
        self._cancelled = True


class _TurnLimitedClient(LLMClient):
    """The default client, refusing model calls past a sub-agent's ``max_turns``."""

    provider_name = "limited"

    def __init__(self, base: LLMClient, limit: int, agent_key: str) -> None:
        super().__init__(engine=base.engine, default_model=base.default_model)
        self.base = base
        self.limit = limit
        self.agent_key = agent_key
        self.calls = 0

    def _count(self) -> None:
        self.calls += 1
        if self.calls > self.limit:
            raise MaxTurnsExceededError(
                f"sub-agent {self.agent_key!r} exceeded its max_turns={self.limit} model calls"
            )

    async def generate(
        self, messages: str | MessageLike | Iterable[MessageLike], **kwargs: Any
    ) -> LLMResponse:
        self._count()
        return await self.base.generate(messages, **kwargs)

    def stream(
        self, messages: str | MessageLike | Iterable[MessageLike], **kwargs: Any
    ) -> AsyncIterator[StreamEvent]:
        self._count()
        return self.base.stream(messages, **kwargs)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return "" if content is None else str(content)


def conversation_turns(history: Iterable[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """The user and assistant turns of a conversation, for a sub-agent.

    System prompts and the tool-call plumbing of the parent (assistant ``tool_calls`` and ``tool``
    results, including the very call that is invoking the sub-agent) are left out: the sub-agent has
    its own prompt and tools, and a tool call without its result is rejected by providers.
    """
    turns: list[dict[str, Any]] = []
    for m in history or ():
        role = m.get("role")
        content = m.get("content")
        if role == "user" and content:
            turns.append({"role": "user", "content": content})
        elif role == "assistant" and content:
            turns.append({"role": "assistant", "content": content})
    return turns


async def summarize_conversation(history: Iterable[Mapping[str, Any]] | None) -> str:
    """A summary of the conversation's turns by ``get_llm_client()`` ("" for no history)."""
    turns = conversation_turns(history)
    if not turns:
        return ""
    transcript = "\n".join(f"{t['role']}: {_text(t['content'])}" for t in turns)
    response = await _unlimited(get_llm_client()).generate(
        [{"role": "system", "content": SUMMARY_PROMPT}, {"role": "user", "content": transcript}]
    )
    return response.content or ""


async def _input_messages(
    agent_tool: AgentTool,
    message: str,
    history: Sequence[Mapping[str, Any]] | None,
    additional_context: str | None,
) -> list[dict[str, Any]]:
    request = message if not additional_context else f"{message}\n\nAdditional context: {additional_context}"
    mode = agent_tool.context_mode
    if mode is ContextMode.FULL:
        return [*conversation_turns(history), {"role": "user", "content": request}]
    if mode is ContextMode.SUMMARY:
        summary = await summarize_conversation(history)
        if summary:
            request = f"Summary of the conversation so far:\n{summary}\n\nRequest:\n{request}"
    return [{"role": "user", "content": request}]


def _response_of(result: RunResult) -> str | None:
    response = result.final_output.get("response") if isinstance(result.final_output, Mapping) else None
    if isinstance(response, str):
        return response
    if response is not None:
        return json.dumps(response, ensure_ascii=False, default=str)
    for m in reversed(result.final_messages or ()):
        if m.get("role") == "assistant" and m.get("content"):
            return _text(m["content"])
    return None


async def invoke_agent(
    agent_tool: AgentTool,
    message: str,
    parent_ctx: RunContext,
    conversation_history: Sequence[Mapping[str, Any]] | None = None,
    additional_context: str | None = None,
) -> AgentInvocationResult:
    """Run ``agent_tool``'s agent on ``message`` as a sub-run of ``parent_ctx``.

    Emits ``sub_agent.start`` and ``sub_agent.end`` on the parent (``is_error: true`` and the error
    when the sub-agent raised, which then propagates). Raises ``UnknownRuntimeError`` when the
    agent is a key nobody registered.
    """
    if not isinstance(agent_tool, AgentTool):
        raise TypeError(f"invoke_agent expects an AgentTool, got {type(agent_tool).__name__}")
    agent = agent_tool.resolve_agent()
    key = agent.key
    metadata = {k: v for k, v in (parent_ctx.metadata or {}).items() if k != MAX_TURNS_METADATA_KEY}
    metadata.update(
        {
            "parent_run_id": str(parent_ctx.run_id),
            "sub_agent_key": key,
            "agent_tool": agent_tool.name,
            "invocation_mode": agent_tool.invocation_mode.value,
            "context_mode": agent_tool.context_mode.value,
            "agent_tool_metadata": dict(agent_tool.metadata or {}),
        }
    )
    if agent_tool.max_turns is not None:
        metadata[MAX_TURNS_METADATA_KEY] = agent_tool.max_turns
    inputs = await _input_messages(agent_tool, message, conversation_history, additional_context)
    child = SubAgentRunContext(parent_ctx, sub_agent_key=key, input_messages=inputs, metadata=metadata)
    ids = {
        "parent_run_id": str(parent_ctx.run_id),
        "sub_agent_run_id": str(child.run_id),
        "sub_agent_key": key,
    }
    await parent_ctx.emit(
        EventType.SUB_AGENT_START,
        {
            **ids,
            "agent_tool": agent_tool.name,
            "invocation_mode": agent_tool.invocation_mode.value,
            "context_mode": agent_tool.context_mode.value,
            "message": message,
        },
    )
    try:
        result = await _run_limited(agent, child, agent_tool.max_turns)
        if not isinstance(result, RunResult):
            raise TypeError(f"sub-agent {key!r} run() returned {type(result).__name__}, expected a RunResult")
    except BaseException as exc:
        await parent_ctx.emit(
            EventType.SUB_AGENT_END,
            {**ids, "handoff": False, "is_error": True, "error": str(exc), "error_type": type(exc).__name__},
        )
        raise
    response = _response_of(result)
    handoff = agent_tool.invocation_mode is InvocationMode.HANDOFF
    end: dict[str, Any] = {
        **ids,
        "handoff": handoff,
        "is_error": result.error is not None,
        "response": response,
    }
    if result.error is not None:
        end["error"] = result.error.message
    await parent_ctx.emit(EventType.SUB_AGENT_END, end)
    return AgentInvocationResult(response, handoff, result, str(child.run_id), key)


def _unlimited(client: LLMClient) -> LLMClient:
    while isinstance(client, _TurnLimitedClient):
        client = client.base
    return client


async def _run_limited(agent: AgentRuntime, ctx: SubAgentRunContext, max_turns: int | None) -> RunResult:
    """Run with a turn-limited default client; a limit set for an outer sub-agent does not apply."""
    try:
        base = get_llm_client()
    except ConfigurationError:  # no default model at all: nothing to limit
        return await agent.run(ctx)
    if max_turns is not None:
        with use_llm_client(_TurnLimitedClient(_unlimited(base), max_turns, agent.key)):
            return await agent.run(ctx)
    if isinstance(base, _TurnLimitedClient):
        with use_llm_client(_unlimited(base)):
            return await agent.run(ctx)
    return await agent.run(ctx)


def register_agent_tools(
    registry: _BaseToolRegistry,
    agent_tools: Iterable[AgentTool],
    get_conversation_history: Callable[[], Sequence[Mapping[str, Any]]] | None = None,
    parent_ctx: RunContext | None = None,
) -> list[Tool]:
    """Register each AgentTool in ``registry`` as a tool bound to ``parent_ctx``; returns the Tools.

    ``get_conversation_history`` is called at each invocation (so the sub-agent sees the
    conversation as it is then).
    """
    if parent_ctx is None:
        raise TypeError("register_agent_tools needs parent_ctx: the RunContext of the parent run")
    tools = []
    for agent_tool in agent_tools:
        if not isinstance(agent_tool, AgentTool):
            raise TypeError(f"register_agent_tools expects AgentTool items, got {type(agent_tool).__name__}")
        tools.append(registry.register(agent_tool.to_tool(parent_ctx, get_conversation_history)))
    return tools
