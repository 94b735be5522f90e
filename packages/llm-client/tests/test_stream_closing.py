"""Streams are closed by whoever opened them, never left for the garbage collector.

An async generator abandoned while suspended is finalised by the event loop's asyncgen hook, which
schedules its ``aclose()`` through ``call_soon_threadsafe``: a self-pipe write per generator, and
until the loop turns, every middleware's ``finally`` (budget settlement, span end, timers) has not
run. The engine, every middleware and the Agent close what they iterate, so a finished call or
run leaves nothing for that hook.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from asyncgen_probe import abandoned_generators
from llm_client import Agent, ExecutionEngine, MockProvider, MockResponse, RequestContext
from llm_client.middleware import Middleware, StreamCall, default_middleware
from llm_client.streaming import StreamEvent


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def scripted(spec: Any) -> MockResponse:
    if spec.messages[-1]["role"] == "tool":
        return MockResponse(content="3")
    return MockResponse.tool_call("add", {"a": 1, "b": 2}, id="call_1")


def agent_with_production_middleware() -> Agent:
    engine = ExecutionEngine(MockProvider(handler=scripted), middleware=default_middleware())
    return Agent(engine=engine, tools=[add])


async def test_agent_run_and_stream_close_every_stream() -> None:
    agent = agent_with_production_middleware()
    context = RequestContext(max_tokens=100_000)  # the budget middleware reserves and settles
    with abandoned_generators() as abandoned:
        for _ in range(5):
            assert (await agent.run("what is 1+2?", context=context)).content == "3"
            kinds = [type(e).__name__ async for e in agent.stream("what is 1+2?", context=context)]
            assert kinds[-1] == "AgentDone"
    assert abandoned == []


async def test_engine_stream_closes_the_middleware_chain() -> None:
    engine = ExecutionEngine(MockProvider(responses=["hello there"] * 3), middleware=default_middleware())
    with abandoned_generators() as abandoned:
        for _ in range(3):
            kinds = [type(e).__name__ async for e in engine.stream("hi")]
            assert kinds[-1] == "StreamDone"
    assert abandoned == []


async def test_an_error_ending_a_stream_still_closes_the_chain() -> None:
    engine = ExecutionEngine(MockProvider(responses=["a long answer"]), middleware=default_middleware())
    with abandoned_generators() as abandoned:
        events = [e async for e in engine.stream("hi", context=RequestContext(max_tokens=1))]
    assert type(events[-1]).__name__ == "StreamError"  # refused by the budget middleware
    assert abandoned == []


async def test_a_middleware_may_return_any_async_iterator() -> None:
    """Closing is best effort: an iterator without ``aclose`` (a class, not a generator) works too."""

    class Relay:
        def __init__(self, inner: AsyncIterator[StreamEvent]) -> None:
            self.inner = inner

        def __aiter__(self) -> Relay:
            return self

        async def __anext__(self) -> StreamEvent:
            return await anext(self.inner)

    class PlainIterator(Middleware):
        def stream(
            self, spec: Any, context: RequestContext, call_next: StreamCall
        ) -> AsyncIterator[StreamEvent]:
            return Relay(call_next(spec, context))

    engine = ExecutionEngine(MockProvider(responses=["hello"]), middleware=[PlainIterator()])
    kinds = [type(e).__name__ async for e in engine.stream("hi")]
    assert kinds[-1] == "StreamDone"
