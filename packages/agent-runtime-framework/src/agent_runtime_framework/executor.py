"""Executor: the model + tools loop of a journey, with the system prompt and tools able to change
between model calls.

The loop is llm-client's :class:`~llm_client.Agent` (argument validation, unknown-tool and
tool-error messages to the model, parallel tool calls, usage and cost): the executor runs it in
**segments**. A segment is one ``Agent.stream`` with one system prompt and one tool set. After each
batch of tool calls the executor asks ``next_segment()``; when it returns a new :class:`Segment`
(the journey's step changed), the current stream is closed *before* its next model call and a new
one starts from the conversation so far, with the new system prompt and tools. So the very next
model call already sees the new step, and a tool the step does not offer is unknown to the model's
loop: llm-client refuses it with a tool message, and it is never executed.

``max_iterations`` bounds model calls across all segments. ``usage`` sums every call's usage, cost
included, from llm-client's ``Usage``. The result and the events are llm-client's own
(``AgentResult``; ``TextDelta``, ``TurnComplete``, ``ToolStart``, ``ToolEnd``, ``AgentDone``,
``StreamError``): there is no second event model.

A small llm-client hook would let one ``Agent.stream`` do this without restarting (see the
framework README, "Executor"): until then a segment restart costs one ``Agent`` construction and
one message normalisation, no extra model call.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent_runtime_core.llm import LLMClient, get_llm_client
from llm_client import (
    Agent,
    AgentDone,
    MaxTurnsExceededError,
    RequestContext,
    StreamError,
    Tool,
    ToolEnd,
    ToolRegistry,
    ToolStart,
    Usage,
    aclose_stream,
)
from llm_client.agent import AgentEvent, AgentResult, ToolOutcome, TurnComplete

from .errors import MissingToolExecutorError
from .hooks import ExecutorHooks
from .tool_executors import ToolExecutor

__all__ = ["Executor", "ExecutorConfig", "Segment", "NextSegment"]


@dataclass(frozen=True, slots=True)
class ExecutorConfig:
    """``max_iterations``: model calls per run (all segments). ``model`` defaults to the client's
    default model. ``temperature``/``max_tokens``/``request_options`` (any other llm-client
    ``RequestSpec`` option, e.g. ``tool_choice``) go to every call. ``parallel_tool_calls=False``
    runs one turn's tool calls in order (they run concurrently by default, like llm-client)."""

    max_iterations: int = 10
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    parallel_tool_calls: bool = True
    request_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.max_iterations, bool) or not isinstance(self.max_iterations, int):
            raise TypeError(f"max_iterations must be an int, got {type(self.max_iterations).__name__}")
        if self.max_iterations < 1:
            raise ValueError(f"max_iterations must be >= 1, got {self.max_iterations}")

    def options(self) -> dict[str, Any]:
        out = dict(self.request_options)
        if self.temperature is not None:
            out["temperature"] = self.temperature
        if self.max_tokens is not None:
            out["max_tokens"] = self.max_tokens
        return out


@dataclass(frozen=True, slots=True)
class Segment:
    """What the model is given until the next step change: a system prompt and tools."""

    system_prompt: str | None
    tools: Sequence[Tool] = ()


#: Asked after every tool batch: a new Segment to switch to, or None to go on as is.
NextSegment = Callable[[], Awaitable[Segment | None]]


class Executor:
    """Runs the loop. ``llm_client`` defaults to core's ``get_llm_client()`` at each run.

    Tools may be llm-client Tools with handlers, or declaration-only :class:`ToolSchema` objects
    (or OpenAI-format dicts), which ``tool_executor`` runs by name.
    """

    def __init__(
        self,
        llm_client: LLMClient | None = None,
        tool_executor: ToolExecutor | None = None,
        config: ExecutorConfig | None = None,
        hooks: ExecutorHooks | None = None,
    ) -> None:
        self._llm_client = llm_client
        self.tool_executor = tool_executor
        self.config = config if config is not None else ExecutorConfig()
        self.hooks = hooks if hooks is not None else ExecutorHooks()

    @property
    def llm_client(self) -> LLMClient:
        return self._llm_client if self._llm_client is not None else get_llm_client()

    async def run(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Iterable[Tool | Mapping[str, Any]] = (),
        system_prompt: str | None = None,
        *,
        next_segment: NextSegment | None = None,
        context: RequestContext | None = None,
    ) -> AgentResult:
        """Run to a final answer; raises the loop's typed error (e.g. ``MaxTurnsExceededError``)."""
        stream = self.stream(messages, tools, system_prompt, next_segment=next_segment, context=context)
        try:
            async for event in stream:
                if isinstance(event, AgentDone):
                    return event.result
                if isinstance(event, StreamError):
                    raise event.error
        finally:
            await aclose_stream(stream)
        raise RuntimeError("executor stream ended without a terminal event")  # pragma: no cover

    async def stream(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Iterable[Tool | Mapping[str, Any]] = (),
        system_prompt: str | None = None,
        *,
        next_segment: NextSegment | None = None,
        context: RequestContext | None = None,
    ) -> AsyncIterator[AgentEvent]:
        """The loop's llm-client events, across segments; ends with one AgentDone or StreamError.

        ``messages`` is the conversation; a leading system message in it is replaced by
        ``system_prompt`` when one is given.
        """
        client = self.llm_client
        config = self.config
        hooks = self.hooks
        model = config.model or client.default_model
        options = config.options()
        conversation = [dict(m) for m in messages]
        if system_prompt is not None and conversation and conversation[0].get("role") == "system":
            conversation.pop(0)
        segment: Segment | None = Segment(system_prompt, tuple(tools))  # type: ignore[arg-type]
        usage = Usage.zero()
        outcomes: list[ToolOutcome] = []
        turns = 0
        while segment is not None:
            current = segment
            segment = None
            remaining = config.max_iterations - turns
            if remaining < 1:
                error = _max_turns(config.max_iterations, current, conversation, usage, outcomes)
                await hooks.on_error(error)
                yield StreamError(error)
                return
            try:
                registry = self._registry(current.tools)
            except MissingToolExecutorError as exc:
                await hooks.on_error(exc)
                raise
            agent = Agent(
                client.engine,
                registry,
                model=model,
                max_turns=remaining,
                parallel_tool_calls=config.parallel_tool_calls,
                request_options=options,
            )
            start = _with_system(current.system_prompt, conversation)
            pending = 0
            inner = agent.stream(start, context=context)
            try:
                async for event in inner:
                    kind = type(event)
                    if kind is TurnComplete:
                        assert isinstance(event, TurnComplete)
                        turns += 1
                        usage = usage + event.response.usage
                        conversation.append(event.response.message)
                        await hooks.on_llm_response(event.response)
                    elif kind is ToolStart:
                        assert isinstance(event, ToolStart)
                        pending += 1
                        await hooks.on_tool_start(event.call.name, _arguments(event.call.arguments))
                    elif kind is ToolEnd:
                        assert isinstance(event, ToolEnd)
                        outcome = event.outcome
                        pending -= 1
                        outcomes.append(outcome)
                        conversation.append(
                            {"role": "tool", "tool_call_id": outcome.call.id, "content": outcome.content}
                        )
                        if outcome.error is None:
                            await hooks.on_tool_end(outcome.call.name, outcome.content)
                        else:
                            await hooks.on_tool_error(outcome.call.name, outcome.error)
                        yield event
                        if pending == 0 and next_segment is not None:
                            segment = await next_segment()
                            if segment is not None:
                                break  # before the inner loop's next model call
                        continue
                    elif kind is AgentDone:
                        assert isinstance(event, AgentDone)
                        last = event.result
                        result = AgentResult(
                            last.content,
                            _with_system(current.system_prompt, conversation),
                            usage,
                            turns,
                            outcomes,
                            last.finish_reason,
                            last.last_response,
                        )
                        await hooks.on_complete(result)
                        yield AgentDone(result)
                        return
                    elif kind is StreamError:
                        assert isinstance(event, StreamError)
                        failure = event.error
                        if isinstance(failure, MaxTurnsExceededError):
                            failure = _max_turns(
                                config.max_iterations, current, conversation, usage, outcomes
                            )
                            event = StreamError(failure)
                        await hooks.on_error(failure)
                        yield event
                        return
                    yield event
            finally:
                await aclose_stream(inner)

    def _registry(self, tools: Iterable[Tool | Mapping[str, Any]]) -> ToolRegistry:
        registry = ToolRegistry()
        for item in tools:
            tool = _as_tool(item)
            if tool.handler is None:
                executor = self.tool_executor
                if executor is None:
                    raise MissingToolExecutorError(
                        f"tool {tool.name!r} is declared without a handler and the Executor has no "
                        "tool_executor: pass tool_executor=MethodToolExecutor(tools) or Tools with handlers"
                    )
                tool = Tool(tool.name, tool.description, tool.parameters, _dispatch(executor, tool.name))
            registry.register(tool)
        return registry


def _as_tool(item: Tool | Mapping[str, Any]) -> Tool:
    if isinstance(item, Tool):
        return item
    if isinstance(item, Mapping):  # OpenAI format, {"type": "function", "function": {...}}
        fn = item.get("function", item)
        return Tool(fn.get("name", ""), fn.get("description", ""), fn.get("parameters"))
    raise TypeError(f"tools must be llm_client Tools (e.g. ToolSchema) or dicts, got {type(item).__name__}")


def _dispatch(executor: ToolExecutor, name: str) -> Callable[..., Awaitable[Any]]:
    async def handler(**arguments: Any) -> Any:
        return await executor.execute(name, arguments)

    return handler


def _with_system(prompt: str | None, conversation: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"role": "system", "content": prompt}, *conversation] if prompt else list(conversation)


def _arguments(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _max_turns(
    limit: int,
    current: Segment,
    conversation: list[dict[str, Any]],
    usage: Usage,
    outcomes: list[ToolOutcome],
) -> MaxTurnsExceededError:
    result = AgentResult(
        None, _with_system(current.system_prompt, conversation), usage, limit, outcomes, "max_turns"
    )
    return MaxTurnsExceededError(
        f"stopped after max_iterations={limit} model calls without a final answer", result=result
    )
