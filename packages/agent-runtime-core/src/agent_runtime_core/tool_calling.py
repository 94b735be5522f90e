"""ToolCallingAgent: an agent defined by a system prompt and tools, with the loop done for it.

The loop is llm-client's :class:`~llm_client.Agent` (``Agent.stream``); this class only maps its
events onto the run's context:

=====================  =================================================================
llm-client event       RunContext event
=====================  =================================================================
``TextDelta``          ``assistant.delta`` ``{"delta": text}``, token by token
``ToolStart``          ``tool.call`` (same payload as ``ToolRegistry.execute_with_events``)
``ToolEnd``            ``tool.result`` (idem; ``is_error``/``error`` when the tool failed)
``AgentDone``          ``assistant.message`` ``{"content": ..., "role": "assistant"}``
``StreamError``        the typed llm-client error is raised (``.retryable`` tells the runner)
=====================  =================================================================

Decisions:

* **Tools.** The agent's ``tools`` property is read once per agent and cached (a property that
  builds a new registry on each access, as in the seed, costs nothing per run). Tools in
  ``ctx.tools`` are added for the run when their names are free: on a name clash the agent's own
  tool wins.
* **Tool failures** (unknown tool, arguments that are not JSON or do not fit the schema, a handler
  that raises) become a tool message to the model and the run goes on (llm-client's rule).
* **Handoff.** When an agent-tool in ``InvocationMode.HANDOFF`` (see ``multi_agent``) returns, the
  run ends once that turn's tools are done: the result is the sub-agent's ``final_output``.
* **Running out of turns** raises :class:`~llm_client.MaxTurnsExceededError` (not retryable; its
  ``.result.messages`` holds the conversation so far). The limit is ``max_iterations``, lowered by
  ``ctx.metadata["max_turns"]`` when present (how an ``AgentTool(max_turns=...)`` limits a sub-agent).
* **Cancellation** is checked before the first call and after every model turn and tool batch;
  when the context has an llm-client ``CancellationToken`` as ``cancel_token`` (DefaultRunContext,
  MockRunContext) it is also passed to the engine, so a streaming answer stops between tokens. A
  cancelled run returns (does not raise) a RunResult with ``final_output["cancelled"] = True``,
  the conversation so far, and an ``error`` of type ``RunCancelled``; the runner reports it as
  ``run.cancelled``.
"""

from __future__ import annotations

from typing import Any

from llm_client import (
    Agent,
    AgentDone,
    CancellationToken,
    MaxTurnsExceededError,
    RequestContext,
    StreamError,
    TextDelta,
    ToolEnd,
    ToolStart,
    Usage,
    aclose_stream,
)
from llm_client import ToolRegistry as _BaseToolRegistry
from llm_client.agent import ToolOutcome, TurnComplete

from .interfaces import AgentRuntime, ErrorInfo, EventType, RunContext, RunResult
from .llm.base import LLMClient
from .llm.factory import get_llm_client
from .tools import ToolRegistry, _jsonable

__all__ = ["ToolCallingAgent", "MAX_TURNS_METADATA_KEY"]

#: ``ctx.metadata`` key that lowers an agent's turn limit for one run (set by AgentTool).
MAX_TURNS_METADATA_KEY = "max_turns"

_DELTA = EventType.ASSISTANT_DELTA
_TOOL_CALL = EventType.TOOL_CALL
_TOOL_RESULT = EventType.TOOL_RESULT


class _Prepared:
    """What an agent computes once: its registry, event extras, and llm-client Agents per engine."""

    __slots__ = ("agents", "extras", "registry")

    def __init__(self, registry: _BaseToolRegistry) -> None:
        self.registry = registry
        self.extras: dict[str, dict[str, Any]] = {}
        for t in registry:
            extra = getattr(t, "event_payload", None)
            if extra:
                self.extras[t.name] = dict(extra)
        # (id(engine), model, max_turns) -> (engine, Agent); the engine is kept to pin its id.
        self.agents: dict[tuple[int, str | None, int], tuple[Any, Agent]] = {}


class ToolCallingAgent(AgentRuntime):
    """Subclass and define ``key``, ``system_prompt`` and ``tools``; the loop is done for you.

    Optional class attributes: ``model`` (default: the client's default model),
    ``max_iterations`` (model calls per run, default 10), ``temperature``, ``max_tokens``,
    ``parallel_tool_calls``. ``llm_client`` defaults to ``get_llm_client()`` at each run (so
    ``use_llm_client``/``MockLLMClient`` apply); assign ``self.llm_client = ...`` to pin one.
    """

    model: str | None = None
    max_iterations: int = 10
    temperature: float | None = None
    max_tokens: int | None = None
    parallel_tool_calls: bool = True

    @property
    def system_prompt(self) -> str:
        """The system prompt (override). Empty means none."""
        return ""

    @property
    def tools(self) -> ToolRegistry:
        """The agent's tools (override). Read once per agent instance and cached."""
        return ToolRegistry()

    @property
    def llm_client(self) -> LLMClient:
        client: LLMClient | None = self.__dict__.get("_llm_client")
        return client if client is not None else get_llm_client()

    @llm_client.setter
    def llm_client(self, client: LLMClient | None) -> None:
        self.__dict__["_llm_client"] = client

    # --- machinery -------------------------------------------------------------------------------

    def _prepared(self) -> _Prepared:
        prepared: _Prepared | None = self.__dict__.get("_tool_calling_prepared")
        if prepared is None:
            registry: Any = self.tools
            if not isinstance(registry, _BaseToolRegistry):  # a list of tools works too
                registry = ToolRegistry(registry)
            prepared = self.__dict__["_tool_calling_prepared"] = _Prepared(registry)
        return prepared

    def _agent(
        self, prepared: _Prepared, client: LLMClient, max_turns: int, ctx: RunContext
    ) -> tuple[Agent, dict[str, dict[str, Any]]]:
        model = self.model or client.default_model
        extra_tools = ctx.tools
        if extra_tools is not None and any(n not in prepared.registry for n in extra_tools.names()):
            merged = ToolRegistry(prepared.registry)
            extras = dict(prepared.extras)
            for t in extra_tools:
                if t.name not in merged:
                    merged.register(t)
                    extra = getattr(t, "event_payload", None)
                    if extra:
                        extras[t.name] = dict(extra)
            return self._new_agent(client, merged, model, max_turns), extras
        key = (id(client.engine), model, max_turns)
        hit = prepared.agents.get(key)
        if hit is None or hit[0] is not client.engine:
            if len(prepared.agents) > 32:
                prepared.agents.clear()
            hit = prepared.agents[key] = (
                client.engine,
                self._new_agent(client, prepared.registry, model, max_turns),
            )
        return hit[1], prepared.extras

    def _new_agent(self, client: LLMClient, registry: _BaseToolRegistry, model: str, max_turns: int) -> Agent:
        options: dict[str, Any] = {}
        if self.temperature is not None:
            options["temperature"] = self.temperature
        if self.max_tokens is not None:
            options["max_tokens"] = self.max_tokens
        return Agent(
            client.engine,
            registry,
            model=model,
            max_turns=max_turns,
            parallel_tool_calls=self.parallel_tool_calls,
            request_options=options,
        )

    def _max_turns(self, ctx: RunContext) -> int:
        limit = self.max_iterations
        override = ctx.metadata.get(MAX_TURNS_METADATA_KEY) if ctx.metadata else None
        if isinstance(override, int) and not isinstance(override, bool) and override >= 1:
            limit = min(limit, override)
        return limit

    def build_messages(self, ctx: RunContext) -> list[dict[str, Any]]:
        """System prompt + ``ctx.input_messages`` (override to add context)."""
        prompt = self.system_prompt
        messages = [dict(m) for m in ctx.input_messages]
        if prompt:
            messages.insert(0, {"role": "system", "content": prompt})
        return messages

    # --- the run -----------------------------------------------------------------------------------

    async def run(self, ctx: RunContext) -> RunResult:
        messages = self.build_messages(ctx)
        if ctx.is_cancelled():
            return _cancelled(messages, Usage.zero())
        prepared = self._prepared()
        agent, extras = self._agent(prepared, self.llm_client, self._max_turns(ctx), ctx)
        # A context with an llm-client CancellationToken (DefaultRunContext's ``cancel_token``) also
        # stops a streaming answer between tokens and interrupts a model call in flight.
        token = getattr(ctx, "cancel_token", None)
        request = RequestContext(cancellation_token=token) if isinstance(token, CancellationToken) else None
        emit = ctx.emit
        # The conversation as it grows, kept only to report a cancelled run's partial state.
        partial = messages
        usage = Usage.zero()
        pending_tools = 0
        handoff: dict[str, Any] | None = None
        stream = agent.stream(messages, context=request)
        try:
            async for event in stream:
                kind = type(event)
                if kind is TextDelta:
                    await emit(_DELTA, {"delta": event.text})  # type: ignore[union-attr]
                elif kind is ToolStart:
                    assert isinstance(event, ToolStart)
                    call = event.call
                    pending_tools += 1
                    await emit(
                        _TOOL_CALL,
                        {
                            "tool_call_id": call.id,
                            "tool": call.name,
                            "name": call.name,
                            "arguments": call.arguments,
                            **extras.get(call.name, _NO_EXTRA),
                        },
                    )
                elif kind is ToolEnd:
                    assert isinstance(event, ToolEnd)
                    outcome = event.outcome
                    partial.append(
                        {"role": "tool", "tool_call_id": outcome.call.id, "content": outcome.content}
                    )
                    await emit(_TOOL_RESULT, _tool_result_payload(outcome, extras))
                    pending_tools -= 1
                    value = outcome.value
                    if (
                        type(value) is dict
                        and value.get("handoff") is True
                        and extras.get(outcome.call.name, _NO_EXTRA).get("is_agent_tool")
                    ):
                        handoff = value  # an agent-tool in HANDOFF mode: the sub-agent took over
                    if pending_tools == 0:  # the turn's tools are all done
                        if ctx.is_cancelled():
                            return _cancelled(partial, usage)
                        if handoff is not None:
                            return RunResult(
                                final_output=dict(handoff.get("final_output") or {}),
                                final_messages=partial,
                                usage=usage.to_dict(),
                            )
                elif kind is TurnComplete:
                    assert isinstance(event, TurnComplete)
                    response = event.response
                    if partial is messages:
                        partial = list(messages)
                    partial.append(response.message)
                    usage = usage + response.usage
                    if response.tool_calls and ctx.is_cancelled():
                        return _cancelled(partial, usage)
                elif kind is AgentDone:
                    assert isinstance(event, AgentDone)
                    result = event.result
                    content = result.content
                    await emit(EventType.ASSISTANT_MESSAGE, {"content": content, "role": "assistant"})
                    return RunResult(
                        final_output={"response": content},
                        final_messages=result.messages,
                        usage=result.usage.to_dict(),
                    )
                elif kind is StreamError:
                    assert isinstance(event, StreamError)
                    error = event.error
                    if ctx.is_cancelled():  # e.g. RequestCancelledError from the token
                        return _cancelled(partial, usage)
                    if isinstance(error, MaxTurnsExceededError):
                        raise MaxTurnsExceededError(
                            f"agent {self.key!r}: {error.message}", result=error.result
                        ) from None
                    raise error
        finally:
            await aclose_stream(stream)
        raise RuntimeError("llm-client Agent.stream ended without a terminal event")  # pragma: no cover


_NO_EXTRA: dict[str, Any] = {}


def _tool_result_payload(outcome: ToolOutcome, extras: dict[str, dict[str, Any]]) -> dict[str, Any]:
    call = outcome.call
    payload: dict[str, Any] = {"tool_call_id": call.id, "tool": call.name, "name": call.name}
    if outcome.error is None:
        payload["result"] = _jsonable(outcome.value)
    else:
        payload["result"] = None
        payload["error"] = outcome.error
        payload["is_error"] = True
    payload["duration_ms"] = outcome.duration_ms
    extra = extras.get(call.name)
    if extra:
        payload.update(extra)
    return payload


def _cancelled(messages: list[dict[str, Any]], usage: Usage) -> RunResult:
    return RunResult(
        final_output={"response": None, "cancelled": True},
        final_messages=messages,
        error=ErrorInfo(type="RunCancelled", message="the run was cancelled", retryable=False),
        usage=usage.to_dict(),
    )
