"""Testing utilities: a recording RunContext, a scripted LLM client, and a helper to run agents.

``MockLLMClient`` is an :class:`~agent_runtime_core.llm.LLMClient` over llm-client's scripted
``MockProvider``, so agents under test go through the same engine and ``Agent`` loop as in
production. **Creating a MockLLMClient makes it the current mock**: ``run_agent_test`` installs the
most recently created one (unless given ``llm_client=``) as what ``get_llm_client()`` returns for
the duration of the run, and ``model_provider="mock"`` resolves to it. That is what lets the seed's
Testing block work without passing the mock to ``run_agent_test``. Call
``agent_runtime_core.llm.reset_llm_clients()`` between tests to forget it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from llm_client import (
    CancellationToken,
    CompletionResult,
    ExecutionEngine,
    LLMClientError,
    MockProvider,
    MockResponse,
    RequestSpec,
    ToolCall,
)

from .interfaces import AgentRuntime, EventType, RunContext, RunResult
from .llm.base import LLMClient
from .llm.factory import _set_current_mock, current_mock_client, use_llm_client
from .tools import Tool, ToolRegistry

__all__ = ["MockRunContext", "MockLLMClient", "create_test_context", "run_agent_test"]


class MockRunContext(RunContext):
    """A RunContext that records what the agent does.

    ``events`` is a list of ``(event_type, payload)`` in emission order (event types compare equal
    to their wire names, e.g. ``"assistant.delta"``); ``checkpoints`` every saved state. Payloads are
    checked to be JSON-serialisable, as a real event bus would (``check_json=False`` to skip).
    ``cancel()`` requests cancellation; ``cancel_on`` cancels as soon as an event of that type is
    emitted (to test what an agent does when cancelled mid-run).
    """

    def __init__(
        self,
        input_messages: Sequence[Mapping[str, Any]] | None = None,
        metadata: Mapping[str, Any] | None = None,
        tools: ToolRegistry | Iterable[Tool | Callable[..., Any]] | None = None,
        *,
        run_id: uuid.UUID | str | None = None,
        check_json: bool = True,
        cancel_on: EventType | str | None = None,
    ) -> None:
        if run_id is None:
            self.run_id = uuid.uuid4()
        else:
            self.run_id = run_id if isinstance(run_id, uuid.UUID) else uuid.UUID(str(run_id))
        self.input_messages = [dict(m) for m in input_messages or ()]
        self.metadata = dict(metadata or {})
        if isinstance(tools, ToolRegistry):
            self._tools = tools
        else:
            self._tools = ToolRegistry(tools or ())
        self.events: list[tuple[EventType | str, dict[str, Any]]] = []
        self.checkpoints: list[dict[str, Any]] = []
        self.check_json = check_json
        self.cancel_on = cancel_on
        #: Like DefaultRunContext's: agents may hand it to llm-client to stop calls in flight.
        self.cancel_token = CancellationToken()

    @property
    def tools(self) -> ToolRegistry:
        return self._tools

    async def emit(self, event_type: EventType | str, payload: dict[str, Any]) -> None:
        if self.check_json:
            try:
                json.dumps(payload)
            except (TypeError, ValueError) as exc:
                what = f"payload of event {str(event_type)!r}"
                raise TypeError(f"{what} is not JSON-serialisable: {exc}") from exc
        self.events.append((event_type, payload))
        if self.cancel_on is not None and event_type == self.cancel_on:
            self.cancel(f"cancel_on={self.cancel_on}")

    async def checkpoint(self, state: dict[str, Any]) -> None:
        """Like DefaultRunContext: refuse what is not a JSON dict, store it, emit ``state.checkpoint``."""
        if not isinstance(state, dict):
            raise TypeError(f"checkpoint state must be a dict, got {type(state).__name__}")
        try:
            copy = json.loads(json.dumps(state))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"checkpoint of run {self.run_id} is not JSON-serialisable: {exc}") from exc
        self.checkpoints.append(copy)
        await self.emit(EventType.CHECKPOINT, {"seq": len(self.checkpoints)})

    async def get_state(self) -> dict[str, Any] | None:
        return self.checkpoints[-1] if self.checkpoints else None

    def is_cancelled(self) -> bool:
        return self.cancel_token.is_cancelled

    def cancel(self, reason: str | None = None) -> None:
        self.cancel_token.cancel(reason)

    # --- assertions helpers ----------------------------------------------------------------------

    def event_types(self) -> list[str]:
        return [str(t) for t, _ in self.events]

    def events_of(self, event_type: EventType | str) -> list[dict[str, Any]]:
        """Payloads of the events of one type, in order."""
        return [p for t, p in self.events if t == event_type]


def _mock_tool_call(call: Any, where: str) -> ToolCall:
    if isinstance(call, ToolCall):
        return call
    if not isinstance(call, Mapping):
        raise TypeError(f"{where}: a tool call must be a dict or a ToolCall, got {type(call).__name__}")
    fn = call.get("function", call)  # OpenAI shape, or the flat {"name": ..., "arguments": ...}
    name = fn.get("name")
    if not isinstance(name, str) or not name:
        raise TypeError(f"{where}: tool call needs a name, got {dict(call)!r}")
    args = fn.get("arguments", "{}")
    if not isinstance(args, str):
        args = json.dumps(args)
    return ToolCall(id=str(call.get("id") or ""), name=name, arguments=args)  # "" -> call_<n>


def _mock_item(item: Any, index: int) -> Any:
    """A scripted response: an assistant message dict, or anything MockProvider accepts."""
    if not isinstance(item, Mapping):
        return item  # str, MockResponse, ToolCall(s), CompletionResult, LLMClientError
    where = f"MockLLMClient response {index}"
    role = item.get("role", "assistant")
    if role != "assistant":
        raise TypeError(f"{where}: responses are assistant messages, got role {role!r}")
    content = item.get("content")
    if content is not None and not isinstance(content, str):
        raise TypeError(f"{where}: content must be a string or None, got {type(content).__name__}")
    calls = tuple(_mock_tool_call(c, where) for c in item.get("tool_calls") or ())
    return MockResponse(content=content, tool_calls=calls)


class MockLLMClient(LLMClient):
    """A scripted model: ``MockLLMClient(responses=[{"role": "assistant", "content": "Hi!"}])``.

    Each call (``generate`` or a streamed turn) consumes one response. A response is an assistant
    message dict, optionally with ``tool_calls`` (OpenAI shape, arguments as a JSON string or a dict,
    ``id`` optional), or anything llm-client's ``MockProvider`` accepts (a string,
    ``MockResponse``, an ``LLMClientError`` to raise). ``handler=fn(spec)`` computes answers instead.
    Running out of responses raises ``MockExhaustedError``. Requests are recorded in ``calls``.
    The new client becomes the current mock (see the module docstring).
    """

    provider_name = "mock"

    def __init__(
        self,
        responses: Sequence[Mapping[str, Any] | str | MockResponse | CompletionResult | LLMClientError]
        | None = None,
        *,
        handler: Callable[[RequestSpec], Any] | None = None,
        default_model: str = "mock-model",
    ) -> None:
        if responses is None and handler is None:
            responses = []
        if isinstance(responses, (str, Mapping)):
            raise TypeError(
                "responses must be a list, e.g. responses=[{'role': 'assistant', 'content': 'Hi'}]"
            )
        script = None if responses is None else [_mock_item(r, i) for i, r in enumerate(responses)]
        self.mock_provider = MockProvider(script, handler=handler, model=default_model)
        super().__init__(engine=ExecutionEngine(self.mock_provider), default_model=default_model)
        _set_current_mock(self)

    def add_response(self, *responses: Mapping[str, Any] | str | MockResponse | LLMClientError) -> None:
        start = len(self.mock_provider.calls) + (self.mock_provider.remaining or 0)
        self.mock_provider.add(*(_mock_item(r, start + i) for i, r in enumerate(responses)))

    @property
    def calls(self) -> list[RequestSpec]:
        """Every request made, in order (``calls[0].messages`` is what the model saw first)."""
        return self.mock_provider.calls

    @property
    def call_count(self) -> int:
        return self.mock_provider.call_count


def create_test_context(
    input_messages: Sequence[Mapping[str, Any]] | None = None,
    metadata: Mapping[str, Any] | None = None,
    tools: ToolRegistry | Iterable[Tool | Callable[..., Any]] | None = None,
    **kwargs: Any,
) -> MockRunContext:
    """A :class:`MockRunContext` (``kwargs``: ``run_id``, ``check_json``, ``cancel_on``)."""
    return MockRunContext(input_messages=input_messages, metadata=metadata, tools=tools, **kwargs)


async def run_agent_test(
    agent: AgentRuntime,
    ctx: RunContext | None = None,
    llm_client: LLMClient | None = None,
) -> RunResult:
    """Run ``agent`` with ``llm_client`` (default: the most recently created MockLLMClient) as what
    ``get_llm_client()`` returns during the run; returns its RunResult. With no client at all the
    agent runs against the normal default. Errors raised by the agent propagate."""
    if ctx is None:
        ctx = create_test_context()
    client = llm_client if llm_client is not None else current_mock_client()
    if client is None:
        return await agent.run(ctx)
    with use_llm_client(client):
        return await agent.run(ctx)
