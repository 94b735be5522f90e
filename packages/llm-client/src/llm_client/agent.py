"""The tool-calling Agent: ask the model, run the tools it calls, feed results back, repeat.

The loop is the one every upper layer reuses (core's ToolCallingAgent, the journey framework's
executor, the kernel's jobs), so its failure rules are deliberate: a tool that raises, an unknown
tool, or arguments that are not valid JSON or do not fit the schema become a tool message telling
the model what went wrong, and the run continues; the model gets a chance to correct itself.
Provider errors (after the engine's retries) end the run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from .context import RequestContext
from .engine import ExecutionEngine
from .errors import AgentInterrupted, LLMClientError, MaxTurnsExceededError, ToolInterrupt, ToolNotFoundError
from .messages import MessageLike, ToolCall, normalize_messages
from .providers.base import Provider
from .spec import CompletionResult, RequestSpec
from .streaming import StreamDone, StreamError, StreamEvent, aclose_stream
from .tools import Tool, ToolRegistry
from .usage import Usage

__all__ = [
    "Agent",
    "AgentResult",
    "ToolOutcome",
    "ToolStart",
    "ToolEnd",
    "TurnComplete",
    "AgentDone",
    "AgentEvent",
]


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """What one tool call did: the text the model saw, and the error if it failed."""

    call: ToolCall
    content: str
    error: str | None = None
    duration_ms: float = 0.0
    value: Any = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class AgentResult:
    content: str | None
    messages: list[dict[str, Any]]
    usage: Usage
    turns: int
    tool_calls: list[ToolOutcome]
    finish_reason: str | None = None
    last_response: CompletionResult | None = field(default=None, repr=False, compare=False)

    @property
    def message(self) -> dict[str, Any]:
        return self.messages[-1]


@dataclass(frozen=True, slots=True)
class ToolStart:
    call: ToolCall
    turn: int
    type: Literal["tool_start"] = "tool_start"


@dataclass(frozen=True, slots=True)
class ToolEnd:
    outcome: ToolOutcome
    turn: int
    type: Literal["tool_end"] = "tool_end"


@dataclass(frozen=True, slots=True)
class TurnComplete:
    """One model call finished (not terminal: tool calls may follow)."""

    turn: int
    response: CompletionResult
    type: Literal["turn_complete"] = "turn_complete"


@dataclass(frozen=True, slots=True)
class AgentDone:
    """Terminal event of :meth:`Agent.stream`."""

    result: AgentResult
    type: Literal["agent_done"] = "agent_done"


AgentEvent: TypeAlias = StreamEvent | ToolStart | ToolEnd | TurnComplete | AgentDone


class Agent:
    """A model with tools and a loop.

    ``engine`` (or a bare ``provider``) is how the model is called; ``use_middleware=True`` adds
    the production middleware chain (logging, timeout, retry, budget, telemetry) when the engine
    has none. ``max_turns`` bounds model calls per run. Tool calls the model makes in one turn run
    concurrently (``parallel_tool_calls=False`` runs them in order).
    """

    def __init__(
        self,
        engine: ExecutionEngine | None = None,
        tools: ToolRegistry | Iterable[Tool | Callable[..., Any]] | None = None,
        *,
        provider: Provider | None = None,
        system_prompt: str | None = None,
        model: str | None = None,
        max_turns: int = 10,
        use_middleware: bool = False,
        parallel_tool_calls: bool = True,
        request_options: Mapping[str, Any] | None = None,
    ) -> None:
        if engine is None:
            if provider is None:
                raise TypeError("Agent needs an engine (ExecutionEngine) or a provider")
            engine = ExecutionEngine(provider)
        elif provider is not None:
            raise TypeError("pass engine or provider, not both")
        if use_middleware and not engine.middleware:
            from .middleware import default_middleware

            engine = engine.with_middleware(default_middleware())
        if max_turns < 1:
            raise ValueError("max_turns must be >= 1")
        self.engine = engine
        self.tools = tools if isinstance(tools, ToolRegistry) else ToolRegistry(tools or ())
        self.system_prompt = system_prompt
        self.model = model
        self.max_turns = max_turns
        self.parallel_tool_calls = parallel_tool_calls
        self.request_options = dict(request_options or {})

    # --- public API --------------------------------------------------------------------------

    async def run(
        self,
        prompt: str | MessageLike | Sequence[MessageLike],
        *,
        context: RequestContext | None = None,
    ) -> AgentResult:
        """Run the loop to a final answer. Raises MaxTurnsExceededError when ``max_turns`` runs out."""
        messages = self._start_messages(prompt)
        usage = Usage.zero()
        outcomes: list[ToolOutcome] = []
        tools = self._tool_specs()
        for turn in range(1, self.max_turns + 1):
            response = await self.engine.complete(self._spec(messages, tools), context=context)
            usage = usage + response.usage
            messages.append(response.message)
            if not response.tool_calls:
                return AgentResult(
                    response.content, messages, usage, turn, outcomes, response.finish_reason, response
                )
            turn_outcomes = await self._run_tools(response.tool_calls)
            outcomes.extend(o for o in turn_outcomes if isinstance(o, ToolOutcome))
            self._raise_if_interrupted(response.tool_calls, turn_outcomes, messages, usage, turn)
            messages.extend(_tool_message(o) for o in turn_outcomes if isinstance(o, ToolOutcome))
        raise self._max_turns(messages, usage, outcomes)

    async def stream(
        self,
        prompt: str | MessageLike | Sequence[MessageLike],
        *,
        context: RequestContext | None = None,
    ) -> AsyncIterator[AgentEvent]:
        """Like :meth:`run`, yielding model deltas, TurnComplete, ToolStart/ToolEnd as they happen.

        Ends with exactly one AgentDone or StreamError.
        """
        try:
            messages = self._start_messages(prompt)
        except LLMClientError as exc:
            yield StreamError(exc)
            return
        usage = Usage.zero()
        outcomes: list[ToolOutcome] = []
        tools = self._tool_specs()
        for turn in range(1, self.max_turns + 1):
            response: CompletionResult | None = None
            model_stream = self.engine.stream(self._spec(messages, tools), context=context)
            try:
                async for event in model_stream:
                    if isinstance(event, StreamDone):
                        response = event.result  # the engine ends the stream right after it
                        continue
                    yield event
                    if isinstance(event, StreamError):
                        return
            finally:
                await aclose_stream(model_stream)
            assert response is not None
            usage = usage + response.usage
            messages.append(response.message)
            yield TurnComplete(turn, response)
            if not response.tool_calls:
                yield AgentDone(
                    AgentResult(
                        response.content, messages, usage, turn, outcomes, response.finish_reason, response
                    )
                )
                return
            for call in response.tool_calls:
                yield ToolStart(call, turn)
            turn_outcomes = await self._run_tools(response.tool_calls)
            done = [o for o in turn_outcomes if isinstance(o, ToolOutcome)]
            for o in done:
                yield ToolEnd(o, turn)
            outcomes.extend(done)
            try:
                self._raise_if_interrupted(response.tool_calls, turn_outcomes, messages, usage, turn)
            except AgentInterrupted as paused:
                yield StreamError(paused)
                return
            messages.extend(_tool_message(o) for o in done)
        yield StreamError(self._max_turns(messages, usage, outcomes))

    def run_sync(self, prompt: str | MessageLike | Sequence[MessageLike], **kwargs: Any) -> AgentResult:
        """Blocking :meth:`run`, for scripts without a running event loop."""
        return asyncio.run(self.run(prompt, **kwargs))

    # --- internals ---------------------------------------------------------------------------

    def _start_messages(self, prompt: str | MessageLike | Sequence[MessageLike]) -> list[dict[str, Any]]:
        messages = normalize_messages(prompt)
        if self.system_prompt and messages[0]["role"] not in ("system", "developer"):
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        return messages

    def _tool_specs(self) -> tuple[dict[str, Any], ...]:
        return tuple(self.tools.to_openai_format()) if len(self.tools) else ()

    def _spec(self, messages: list[dict[str, Any]], tools: tuple[dict[str, Any], ...]) -> RequestSpec:
        # Messages were validated once in _start_messages and are appended by us: build directly.
        return RequestSpec(
            messages=tuple(messages),
            model=self.model,
            tools=tools,
            parallel_tool_calls=None if not tools else self.parallel_tool_calls,
            **self.request_options,
        )

    async def _run_tools(self, calls: Sequence[ToolCall]) -> list[ToolOutcome | ToolInterrupt]:
        """Every call's outcome, in call order; a tool that asks to pause yields its ToolInterrupt.

        The other calls of the turn still finish, so a resumed run need not execute them again.
        """
        if len(calls) == 1 or not self.parallel_tool_calls:
            results: list[ToolOutcome | ToolInterrupt] = []
            for c in calls:
                try:
                    results.append(await self._run_tool(c))
                except ToolInterrupt as interrupt:
                    results.append(interrupt)
            return results
        gathered = await asyncio.gather(*(self._run_tool(c) for c in calls), return_exceptions=True)
        for r in gathered:
            if isinstance(r, BaseException) and not isinstance(r, ToolInterrupt):
                raise r
        return list(gathered)  # type: ignore[arg-type]

    @staticmethod
    def _raise_if_interrupted(
        calls: Sequence[ToolCall],
        results: Sequence[ToolOutcome | ToolInterrupt],
        messages: list[dict[str, Any]],
        usage: Usage,
        turn: int,
    ) -> None:
        pending = [(c, r) for c, r in zip(calls, results, strict=True) if isinstance(r, ToolInterrupt)]
        if not pending:
            return
        completed = {r.call.id: _tool_message(r) for r in results if isinstance(r, ToolOutcome)}
        raise AgentInterrupted(
            pending[0][1],
            messages=list(messages),
            completed=completed,
            pending=[c for c, _ in pending],
            usage=usage,
            turns=turn,
            interrupts=[r for _, r in pending],
        )

    async def _run_tool(self, call: ToolCall) -> ToolOutcome:
        started = time.perf_counter()
        try:
            tool = self.tools.get(call.name)
        except ToolNotFoundError:
            known = ", ".join(self.tools.names()) or "none"
            msg = f"Error: unknown tool {call.name!r}. Available tools: {known}."
            return ToolOutcome(call, msg, msg, 0.0)
        try:
            value = await tool.invoke(call.arguments)
        except LLMClientError as exc:
            msg = f"Error: {exc.message}"
            cause = exc.original
            if cause is not None and str(cause) not in msg:
                msg += f" ({type(cause).__name__}: {cause})"
            return ToolOutcome(call, msg, msg, (time.perf_counter() - started) * 1000)
        return ToolOutcome(
            call, tool.format_result(value), None, (time.perf_counter() - started) * 1000, value
        )

    def _max_turns(
        self, messages: list[dict[str, Any]], usage: Usage, outcomes: list[ToolOutcome]
    ) -> MaxTurnsExceededError:
        return MaxTurnsExceededError(
            f"agent stopped after max_turns={self.max_turns} model calls without a final answer",
            result=AgentResult(None, messages, usage, self.max_turns, outcomes, "max_turns"),
        )


def _tool_message(outcome: ToolOutcome) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": outcome.call.id, "content": outcome.content}
