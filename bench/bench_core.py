"""agent-runtime-core's AgentRunner side by side with the peer frameworks, one process each.

Not a test module. No network at all (the fake models never leave the process).

One "run" is peer-bench's (shared/peer-bench/README.md): prompt -> the model returns the tool call
add(a=1, b=2) -> the framework runs the tool -> the model returns "3". The fake models never sleep
and build fresh framework-native responses each call; every worker checks the answer, that the
tool ran once (and for ours the event sequence) before timing.

Frameworks, each in its OWN worker process (so each peak RSS is that framework's alone), all
driven from this one parent, trial by trial, worker order rotated each trial:

  core              AgentRunner().execute(AddAgent, run_id, input): a ToolCallingAgent with an
                    `add` tool; llm_client.MockProvider(handler=...) behind
                    agent_runtime_core.llm.LLMClient(provider=..., middleware=()); the runner's
                    defaults (in-memory event bus and state store, no-op trace sink); distinct run ids
  core_mw           the same with LLMClient's default (production) middleware chain
  llm_client_agent  llm-client's own Agent(engine, tools=[add]).run (layer 0, for decomposition)
  plain             peer-bench's plain-asyncio floor (hand-written loop, json.loads args)
  pydantic_ai       Agent(FunctionModel(async fn)).run()                          (copied fakes)
  openai_agents     Runner.run() with a custom Model subclass, set_tracing_disabled(True)
  langgraph         create_react_agent(custom async BaseChatModel).ainvoke()

Measured with peer-bench's primitives (bench/common.py: `sequential`, `concurrent`, the streaming
marginal (t(N) - t(1)) / (N - 1)): check + warm-up, then --trials interleaved trials of sequential
runs, then --trials interleaved trials of gather-100 batches, then --stream-reps interleaved
streaming reps. Streaming: the second model call streams N one-character deltas; each worker also
reports its fake model's own floor, measured in the same reps. Our streaming variants:

  floor                    MockProvider.stream(spec) iterated directly (the fake model's cost)
  engine                   llm-client's ExecutionEngine.stream(spec), the same scripted reply
  llm_agent                llm-client Agent.stream(prompt): tool call, then the N-token answer
  core_direct              ToolCallingAgent.run(DefaultRunContext(..., InMemoryEventBus())): every
                           token goes through RunContext.emit -> bus.publish; deltas counted on the bus
  core_runner              AgentRunner.execute(...) of that turn; deltas counted on the bus
  core_runner_stream       async for event in AgentRunner.stream(...): a live consumer
  *_yield                  the same over a fake model that does `await asyncio.sleep(0)` after each
                           event, so the loop turns once per token as with a real network stream

Usage: .venv/bin/python bench/bench_core.py [--quick] [--out bench/results/core.json]
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402

OURS = ("core", "core_mw", "llm_client_agent")
PEERS = ("pydantic_ai", "openai_agents", "langgraph")
ALL = ("core", "core_mw", "llm_client_agent", "plain", "pydantic_ai", "openai_agents", "langgraph")
PROMPT = "what is 1+2?"

TOOL_CALLS = 0


def _count_tool() -> None:
    global TOOL_CALLS
    TOOL_CALLS += 1


@dataclass
class Harness:
    run_once: Any
    check: Any
    streams: dict[str, Any]  # name -> async fn(k) -> text deltas the consumer received
    main_stream: str | None = None  # the framework's streaming API (peers: the only one)
    floor: str | None = "floor"
    hygiene: Any = None  # called after each trial, outside timing
    stats: Any = None  # extra numbers for the result
    parts: dict[str, Any] = field(default_factory=dict)  # in-process decomposition: name -> run_once
    api: str = ""
    dists: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)


# --- ours ---------------------------------------------------------------------------------------


def build_core(mw: bool) -> Harness:
    from agent_runtime_core import AgentRunner, DefaultRunContext, RunnerConfig, ToolCallingAgent
    from agent_runtime_core.events import InMemoryEventBus
    from agent_runtime_core.llm import LLMClient
    from agent_runtime_core.state import InMemoryStateStore
    from agent_runtime_core.tools import tool
    from agent_runtime_core.tracing import NoopTraceSink
    from llm_client import Agent, AgentDone, MockProvider, MockResponse, RequestSpec, StreamDone, TextDelta

    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        _count_tool()
        return a + b

    class AddAgent(ToolCallingAgent):
        key = "add-agent"
        system_prompt = "You add numbers."
        tools = (add,)  # a sequence of tools works as well as a ToolRegistry

    def fake_model(spec):  # a fresh MockResponse per call, as a provider adapter builds one
        if spec.messages[-1]["role"] == "tool":
            return MockResponse(content="3")
        return MockResponse.tool_call("add", {"a": 1, "b": 2}, id="call_1")

    def client_for(provider) -> LLMClient:
        # middleware=None -> LLMClient's default production chain; () -> none
        return LLMClient(provider=provider) if mw else LLMClient(provider=provider, middleware=())

    provider = MockProvider(handler=fake_model)
    agent = AddAgent()
    agent.llm_client = client_for(provider)
    runner = AgentRunner()  # defaults: configure()/env -> in-memory bus and store, no-op trace sink
    assert type(runner.event_bus) is InMemoryEventBus, runner.event_bus
    assert type(runner.state_store) is InMemoryStateStore, runner.state_store
    assert type(runner.trace_sink) is NoopTraceSink, runner.trace_sink
    INPUT = {"messages": [{"role": "user", "content": PROMPT}]}
    ids = itertools.count()

    async def run_once():
        return await runner.execute(agent, f"run-{next(ids)}", INPUT)

    async def check():
        before = TOOL_CALLS
        key = f"check-{next(ids)}"
        r = await runner.execute(agent, key, INPUT)
        assert r.error is None and r.final_output == {"response": "3"}, r
        assert before + 1 == TOOL_CALLS, TOOL_CALLS
        kinds = [e.event_type for e in await runner.event_bus.get_events(key)]
        assert kinds == [
            "run.started",
            "tool.call",
            "tool.result",
            "assistant.delta",
            "assistant.message",
            "run.succeeded",
        ], kinds
        tr = (await runner.event_bus.get_events(key))[2].payload
        assert tr["result"] == 3 and tr["name"] == "add", tr
        assert [m["role"] for m in r.final_messages] == ["system", "user", "assistant", "tool", "assistant"]

    def hygiene():
        provider.calls.clear()  # the mock records every request (documented); keep memory flat

    def stats():
        h = runner.event_bus._history  # private, read for diagnosis only
        return {
            "event_bus_runs_retained": len(h),
            "event_bus_events_retained": sum(len(v) for v in h.values()),
            "runner_config": {
                "run_timeout_seconds": runner.config.run_timeout_seconds,
                "heartbeat_interval_seconds": runner.config.heartbeat_interval_seconds,
            },
            "middleware": [type(m).__name__ for m in agent.llm_client.engine.middleware]
            if hasattr(agent.llm_client.engine, "middleware")
            else None,
        }

    # --- streaming -----------------------------------------------------------------------------
    class YieldingMock(MockProvider):
        """MockProvider whose stream lets the event loop turn once per event (sleep(0), no wait)."""

        async def stream(self, spec):
            async for ev in super().stream(spec):
                yield ev
                await asyncio.sleep(0)

    def stream_model(k: int):
        def h(spec):
            last = spec.messages[-1]
            if last["role"] == "tool" or last.get("content") == "stream":
                return MockResponse(content="x" * k, chunks=("x",) * k)
            return MockResponse.tool_call("add", {"a": 1, "b": 2}, id="call_1")

        return h

    per_k: dict[tuple[int, bool], dict] = {}

    def kit(k: int, yielding: bool) -> dict:
        got = per_k.get((k, yielding))
        if got is None:
            prov = (YieldingMock if yielding else MockProvider)(handler=stream_model(k))
            client = client_for(prov)
            a = AddAgent()
            a.llm_client = client
            got = per_k[k, yielding] = {
                "provider": prov,
                "engine": client.engine,
                "agent": a,
                "llm_agent": Agent(client.engine, [add]),
                "spec": RequestSpec.build(
                    [{"role": "user", "content": "stream"}], model=client.default_model
                ),
            }
        if len(got["provider"].calls) > 200:
            got["provider"].calls.clear()
        return got

    async def count_stream(it, k) -> int:
        n = 0
        async for ev in it:
            if type(ev) is TextDelta:
                n += 1
            elif type(ev) is StreamDone:
                assert ev.result.content == "x" * n
        return n

    async def s_floor(k):
        c = kit(k, False)
        return await count_stream(c["provider"].stream(c["spec"]), k)

    async def s_engine(k, yielding=False):
        c = kit(k, yielding)
        return await count_stream(c["engine"].stream(c["spec"]), k)

    async def s_llm_agent(k):
        c = kit(k, False)
        before, n, done = TOOL_CALLS, 0, None
        async for ev in c["llm_agent"].stream(PROMPT):
            if type(ev) is TextDelta:
                n += 1
            elif type(ev) is AgentDone:
                done = ev
        assert done is not None and done.result.content == "x" * k and before + 1 == TOOL_CALLS
        return n

    async def deltas_on(bus, key) -> int:
        return sum(1 for e in await bus.get_events(key) if e.event_type == "assistant.delta")

    async def s_core_direct(k):
        c = kit(k, False)
        bus = InMemoryEventBus()
        key = f"sd-{next(ids)}"
        ctx = DefaultRunContext(key, list(INPUT["messages"]), event_bus=bus, state_store=InMemoryStateStore())
        before = TOOL_CALLS
        r = await c["agent"].run(ctx)
        assert r.final_output == {"response": "x" * k} and before + 1 == TOOL_CALLS, r
        return await deltas_on(bus, key)

    cfg = RunnerConfig()
    store = InMemoryStateStore()
    sink = NoopTraceSink()

    def fresh_runner() -> AgentRunner:  # a fresh bus per streamed run keeps memory flat
        return AgentRunner(cfg, event_bus=InMemoryEventBus(), state_store=store, trace_sink=sink)

    async def s_core_runner(k, yielding=False):
        c = kit(k, yielding)
        r_ = fresh_runner()
        key = f"sr-{next(ids)}"
        before = TOOL_CALLS
        r = await r_.execute(c["agent"], key, INPUT)
        assert r.final_output == {"response": "x" * k} and before + 1 == TOOL_CALLS, r
        return await deltas_on(r_.event_bus, key)

    async def s_core_runner_stream(k, yielding=False):
        c = kit(k, yielding)
        r_ = fresh_runner()
        before, n, last = TOOL_CALLS, 0, None
        async for ev in r_.stream(c["agent"], f"ss-{next(ids)}", INPUT):
            if ev.event_type == "assistant.delta":
                n += 1
            last = ev
        assert last is not None and last.event_type == "run.succeeded", last
        assert last.payload["output"] == {"response": "x" * k} and before + 1 == TOOL_CALLS
        return n

    # --- decomposition of one run, same provider and tool, timed in-process (interleaved) --------
    from agent_runtime_core import RunContext

    class NoopContext(RunContext):
        """A RunContext whose emit does nothing: ToolCallingAgent's own cost without the bus."""

        def __init__(self) -> None:
            self.input_messages = INPUT["messages"]
            self.metadata = {}

        tools = None  # type: ignore[assignment]

        async def emit(self, event_type, payload):
            return None

        async def checkpoint(self, state):
            return None

        async def get_state(self):
            return None

        def is_cancelled(self) -> bool:
            return False

    llm_agent = Agent(agent.llm_client.engine, [add], system_prompt="You add numbers.")
    part_bus = InMemoryEventBus()
    part_store = InMemoryStateStore()
    noop_ctx = NoopContext()

    async def p_llm_agent_run():
        r = await llm_agent.run(PROMPT)
        assert r.content == "3"

    async def p_llm_agent_stream():
        async for ev in llm_agent.stream(PROMPT):
            if type(ev) is AgentDone:
                assert ev.result.content == "3"

    async def p_tca_noop_ctx():
        r = await agent.run(noop_ctx)
        assert r.final_output["response"] == "3"

    async def p_tca_default_ctx():
        ctx = DefaultRunContext(
            f"p-{next(ids)}", INPUT["messages"], event_bus=part_bus, state_store=part_store
        )
        r = await agent.run(ctx)
        assert r.final_output["response"] == "3"

    async def p_runner_execute():
        r = await run_once()
        assert r.final_output["response"] == "3"

    parts = {
        "llm_client Agent.run": p_llm_agent_run,
        "llm_client Agent.stream (consumed)": p_llm_agent_stream,
        "ToolCallingAgent.run, no-op context": p_tca_noop_ctx,
        "ToolCallingAgent.run, DefaultRunContext + InMemoryEventBus": p_tca_default_ctx,
        "AgentRunner.execute (the benchmark's run)": p_runner_execute,
    }

    streams: dict[str, Any] = {"floor": s_floor, "engine": s_engine}
    if not mw:
        streams["llm_agent"] = s_llm_agent
        streams["core_direct"] = s_core_direct
    streams["core_runner"] = s_core_runner
    streams["core_runner_stream"] = s_core_runner_stream
    streams["engine_yield"] = lambda k: s_engine(k, True)
    if not mw:
        streams["core_runner_yield"] = lambda k: s_core_runner(k, True)
    streams["core_runner_stream_yield"] = lambda k: s_core_runner_stream(k, True)
    return Harness(
        run_once,
        check,
        streams,
        main_stream="core_runner_stream",
        hygiene=hygiene,
        stats=stats,
        parts=parts,
        api="AgentRunner().execute(ToolCallingAgent subclass, distinct run id, input); LLMClient(provider="
        "MockProvider(handler=...), " + ("default middleware" if mw else "middleware=()") + ")",
        dists=("agent-runtime-core", "llm-client", "opentelemetry-api"),
    )


def build_llm_client_agent() -> Harness:
    from llm_client import Agent, ExecutionEngine, MockProvider, MockResponse, tool

    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        _count_tool()
        return a + b

    def fake_model(spec):
        if spec.messages[-1]["role"] == "tool":
            return MockResponse(content="3")
        return MockResponse.tool_call("add", {"a": 1, "b": 2}, id="call_1")

    provider = MockProvider(handler=fake_model)
    agent = Agent(ExecutionEngine(provider), [add], system_prompt="You add numbers.")

    async def run_once():
        return await agent.run(PROMPT)

    async def check():
        before = TOOL_CALLS
        r = await agent.run(PROMPT)
        assert r.content == "3" and r.turns == 2 and before + 1 == TOOL_CALLS, r

    return Harness(
        run_once,
        check,
        {},
        floor=None,
        hygiene=lambda: provider.calls.clear(),
        api="llm_client.Agent(ExecutionEngine(MockProvider(handler=...)), [add]).run(prompt), no middleware",
        dists=("llm-client",),
    )


# --- plain asyncio floor (copied from shared/peer-bench/bench_plain.py) --------------------------


def build_plain() -> Harness:
    def add(a: int, b: int) -> int:
        _count_tool()
        return a + b

    tools = {"add": add}

    async def fake_model(messages: list[dict]) -> dict:
        if messages[-1]["role"] == "tool":
            return {"role": "assistant", "content": "3"}
        return {
            "role": "assistant",
            "tool_calls": [{"id": "call_1", "name": "add", "arguments": '{"a": 1, "b": 2}'}],
        }

    async def run_once() -> str:
        messages = [{"role": "user", "content": PROMPT}]
        for _ in range(10):  # bounded agent loop
            reply = await fake_model(messages)
            messages.append(reply)
            calls = reply.get("tool_calls")
            if not calls:
                return reply["content"]
            for c in calls:
                out = tools[c["name"]](**json.loads(c["arguments"]))
                messages.append({"role": "tool", "tool_call_id": c["id"], "content": json.dumps(out)})
        raise RuntimeError("loop bound hit")

    async def check():
        before = TOOL_CALLS
        assert await run_once() == "3" and before + 1 == TOOL_CALLS

    async def tokens(k: int):
        for _ in range(k):
            yield "x"

    async def stream_run(k: int) -> int:
        q: asyncio.Queue = asyncio.Queue()

        async def producer():
            async for t in tokens(k):
                q.put_nowait(t)
                await asyncio.sleep(0)
            q.put_nowait(None)

        task = asyncio.create_task(producer())
        n = 0
        while (await q.get()) is not None:
            n += 1
        await task
        return n

    async def floor(k: int) -> int:
        n = 0
        async for _ in tokens(k):
            n += 1
        return n

    def calib_ns_per_call(n: int = 1_000_000) -> float:
        def f(x):
            return x + 1

        t0 = time.perf_counter()
        for i in range(n):
            f(i)
        return (time.perf_counter() - t0) / n * 1e9

    return Harness(
        run_once,
        check,
        {"floor": floor, "queue_hop": stream_run},
        main_stream="queue_hop",
        stats=lambda: {"calibration_ns_per_python_call": sorted(calib_ns_per_call() for _ in range(3))[1]},
        api="hand-written loop; stream = producer task -> asyncio.Queue -> consumer, sleep(0) per token",
    )


# --- peers (fakes copied from shared/peer-bench/bench_*.py, unchanged in behaviour) --------------


def build_pydantic_ai() -> Harness:
    from pydantic_ai import Agent
    from pydantic_ai.messages import ModelRequest, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
    from pydantic_ai.models.function import DeltaToolCall, FunctionModel
    from pydantic_ai.usage import RequestUsage

    def _after_tool(messages) -> bool:
        last = messages[-1]
        return isinstance(last, ModelRequest) and any(isinstance(p, ToolReturnPart) for p in last.parts)

    async def model_fn(messages, info) -> ModelResponse:
        usage = RequestUsage(input_tokens=10, output_tokens=5)
        if _after_tool(messages):
            return ModelResponse(parts=[TextPart("3")], usage=usage)
        return ModelResponse(
            parts=[ToolCallPart("add", {"a": 1, "b": 2}, tool_call_id="call_1")], usage=usage
        )

    def make_stream_fn(tokens: int):
        async def stream_fn(messages, info):
            if _after_tool(messages):
                for _ in range(tokens):
                    yield "x"
            else:
                yield {0: DeltaToolCall(name="add", json_args='{"a": 1, "b": 2}')}

        return stream_fn

    def make_agent(model) -> Agent:
        agent = Agent(model)

        @agent.tool_plain
        def add(a: int, b: int) -> int:
            """Add two integers."""
            _count_tool()
            return a + b

        return agent

    agent = make_agent(FunctionModel(model_fn))
    stream_agents: dict[int, Agent] = {}

    async def run_once():
        return await agent.run(PROMPT)

    async def check():
        before = TOOL_CALLS
        r = await run_once()
        assert r.output == "3" and before + 1 == TOOL_CALLS and len(r.all_messages()) == 4

    async def stream_run(k: int) -> int:
        a = stream_agents.get(k)
        if a is None:
            a = stream_agents[k] = make_agent(FunctionModel(stream_function=make_stream_fn(k)))
        n = 0
        async with a.run_stream(PROMPT) as result:
            async for _delta in result.stream_text(delta=True, debounce_by=None):
                n += 1
        return n

    async def floor(k: int) -> int:
        n = 0
        async for _ in make_stream_fn(k)([ModelRequest(parts=[ToolReturnPart("add", 3, "c")])], None):
            n += 1
        return n

    return Harness(
        run_once,
        check,
        {"floor": floor, "run_stream": stream_run},
        main_stream="run_stream",
        api="Agent(FunctionModel(async fn)).run; run_stream + stream_text(delta=True, debounce_by=None)",
        dists=("pydantic-ai-slim", "pydantic", "pydantic-core"),
    )


def build_openai_agents() -> Harness:
    os.environ.pop("OPENAI_API_KEY", None)
    from agents import Agent, Runner, function_tool, set_tracing_disabled
    from agents.items import ModelResponse
    from agents.models.interface import Model
    from agents.usage import Usage
    from openai.types.responses import (
        Response,
        ResponseCompletedEvent,
        ResponseFunctionToolCall,
        ResponseOutputMessage,
        ResponseOutputText,
        ResponseTextDeltaEvent,
    )
    from openai.types.responses.response_usage import (
        InputTokensDetails,
        OutputTokensDetails,
        ResponseUsage,
    )

    set_tracing_disabled(True)

    def _after_tool(input) -> bool:
        if isinstance(input, str) or not input:
            return False
        last = input[-1]
        t = last.get("type") if isinstance(last, dict) else getattr(last, "type", None)
        return t == "function_call_output"

    def _tool_call():
        return ResponseFunctionToolCall(
            type="function_call",
            call_id="call_1",
            name="add",
            arguments='{"a": 1, "b": 2}',
            id="fc_1",
            status="completed",
        )

    def _message(text: str):
        return ResponseOutputMessage(
            id="msg_1",
            type="message",
            role="assistant",
            status="completed",
            content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
        )

    class FakeModel(Model):
        def __init__(self, stream_tokens: int = 1):
            self.stream_tokens = stream_tokens

        async def get_response(
            self,
            system_instructions,
            input,
            model_settings,
            tools,
            output_schema,
            handoffs,
            tracing,
            *,
            previous_response_id=None,
            conversation_id=None,
            prompt=None,
            **kwargs,
        ) -> ModelResponse:
            out = [_message("3")] if _after_tool(input) else [_tool_call()]
            return ModelResponse(
                output=out,
                usage=Usage(requests=1, input_tokens=10, output_tokens=5, total_tokens=15),
                response_id=None,
            )

        async def stream_response(
            self,
            system_instructions,
            input,
            model_settings,
            tools,
            output_schema,
            handoffs,
            tracing,
            *,
            previous_response_id=None,
            conversation_id=None,
            prompt=None,
            **kwargs,
        ):
            seq = 0
            if _after_tool(input):
                text = []
                for _ in range(self.stream_tokens):
                    seq += 1
                    text.append("x")
                    yield ResponseTextDeltaEvent(
                        type="response.output_text.delta",
                        item_id="msg_1",
                        output_index=0,
                        content_index=0,
                        delta="x",
                        sequence_number=seq,
                        logprobs=[],
                    )
                output = [_message("".join(text))]
            else:
                output = [_tool_call()]
            usage = ResponseUsage(
                input_tokens=10,
                output_tokens=5,
                total_tokens=15,
                input_tokens_details=InputTokensDetails(cached_tokens=0, cache_write_tokens=0),
                output_tokens_details=OutputTokensDetails(reasoning_tokens=0),
            )
            resp = Response(
                id="resp_1",
                created_at=0,
                model="fake",
                object="response",
                output=output,
                tool_choice="auto",
                tools=[],
                top_p=None,
                parallel_tool_calls=False,
                usage=usage,
            )
            yield ResponseCompletedEvent(type="response.completed", response=resp, sequence_number=seq + 1)

    @function_tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        _count_tool()
        return a + b

    def make_agent(model) -> Agent:
        return Agent(name="bench", instructions="You add numbers.", model=model, tools=[add])

    agent = make_agent(FakeModel())
    stream_agents: dict[int, Agent] = {}

    async def run_once():
        return await Runner.run(agent, PROMPT)

    async def check():
        before = TOOL_CALLS
        r = await run_once()
        assert r.final_output == "3" and before + 1 == TOOL_CALLS

    async def stream_run(k: int) -> int:
        a = stream_agents.get(k)
        if a is None:
            a = stream_agents[k] = make_agent(FakeModel(k))
        n = 0
        result = Runner.run_streamed(a, PROMPT)
        async for ev in result.stream_events():
            if ev.type == "raw_response_event" and isinstance(ev.data, ResponseTextDeltaEvent):
                n += 1
        assert result.final_output == "x" * k
        return n

    async def floor(k: int) -> int:
        n = 0
        async for _ in FakeModel(k).stream_response(
            None, [{"type": "function_call_output", "call_id": "c", "output": "3"}], None, [], None, [], None
        ):
            n += 1
        return n

    return Harness(
        run_once,
        check,
        {"floor": floor, "run_streamed": stream_run},
        main_stream="run_streamed",
        api="Runner.run / Runner.run_streamed + stream_events() (raw ResponseTextDeltaEvent); tracing off",
        dists=("openai-agents", "openai", "pydantic", "pydantic-core"),
    )


def build_langgraph() -> Harness:
    import warnings

    warnings.filterwarnings("ignore")
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
    from langchain_core.tools import tool
    from langgraph.prebuilt import create_react_agent

    class FakeToolChat(BaseChatModel):
        stream_tokens: int = 1

        @property
        def _llm_type(self) -> str:
            return "fake-tool-chat"

        def bind_tools(self, tools, **kwargs):
            return self

        @staticmethod
        def _reply(messages) -> AIMessage:
            if isinstance(messages[-1], ToolMessage):
                return AIMessage(content="3")
            return AIMessage(
                content="",
                tool_calls=[{"name": "add", "args": {"a": 1, "b": 2}, "id": "call_1", "type": "tool_call"}],
            )

        def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
            return ChatResult(generations=[ChatGeneration(message=self._reply(messages))])

        async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
            return ChatResult(generations=[ChatGeneration(message=self._reply(messages))])

        async def _astream(self, messages, stop=None, run_manager=None, **kwargs):
            if isinstance(messages[-1], ToolMessage):
                for _ in range(self.stream_tokens):
                    yield ChatGenerationChunk(message=AIMessageChunk(content="x"))
            else:
                yield ChatGenerationChunk(
                    message=AIMessageChunk(
                        content="",
                        tool_call_chunks=[
                            {
                                "name": "add",
                                "args": '{"a": 1, "b": 2}',
                                "id": "call_1",
                                "index": 0,
                                "type": "tool_call_chunk",
                            }
                        ],
                    )
                )

    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        _count_tool()
        return a + b

    def make_graph(k: int = 1):
        return create_react_agent(FakeToolChat(stream_tokens=k), [add])

    graph = make_graph()
    graphs: dict[int, Any] = {}

    async def run_once():
        return await graph.ainvoke({"messages": [HumanMessage(PROMPT)]})

    async def check():
        before = TOOL_CALLS
        msgs = (await run_once())["messages"]
        assert msgs[-1].content == "3" and before + 1 == TOOL_CALLS and len(msgs) == 4

    async def stream_run(k: int) -> int:
        g = graphs.get(k)
        if g is None:
            g = graphs[k] = make_graph(k)
        n = 0
        async for chunk, _meta in g.astream({"messages": [HumanMessage(PROMPT)]}, stream_mode="messages"):
            if isinstance(chunk, AIMessageChunk) and chunk.content:
                n += 1
        return n

    async def floor(k: int) -> int:
        n = 0
        async for _ in FakeToolChat(stream_tokens=k)._astream([ToolMessage("3", tool_call_id="c")]):
            n += 1
        return n

    return Harness(
        run_once,
        check,
        {"floor": floor, "astream_messages": stream_run},
        main_stream="astream_messages",
        api="create_react_agent(custom async BaseChatModel).ainvoke / .astream(stream_mode='messages'); "
        "no checkpointer, LangSmith off",
        dists=("langgraph", "langgraph-prebuilt", "langchain-core", "pydantic", "pydantic-core"),
    )


BUILDERS = {
    "core": lambda: build_core(False),
    "core_mw": lambda: build_core(True),
    "llm_client_agent": build_llm_client_agent,
    "plain": build_plain,
    "pydantic_ai": build_pydantic_ai,
    "openai_agents": build_openai_agents,
    "langgraph": build_langgraph,
}
LABELS = {
    "core": "agent-runtime-core AgentRunner + ToolCallingAgent (middleware=())",
    "core_mw": "agent-runtime-core, LLMClient default middleware",
    "llm_client_agent": "llm-client Agent (layer 0, reference)",
    "plain": "plain asyncio (floor, no framework)",
    "pydantic_ai": "pydantic-ai",
    "openai_agents": "openai-agents, tracing off",
    "langgraph": "langgraph create_react_agent",
}


# --- worker side --------------------------------------------------------------------------------


async def worker_main(name: str) -> None:
    rss0 = common.current_rss_mib()
    t0 = time.perf_counter()
    h = BUILDERS[name]()
    import_s = time.perf_counter() - t0
    rss_import = common.current_rss_mib()
    runs = [0]

    def mem() -> dict:
        now = common.current_rss_mib()  # ru_maxrss can lag the current RSS slightly
        return {"rss_mib": now, "peak_rss_mib": max(now, common.peak_rss_mib()), "runs_done": runs[0]}

    async def check(warmup: int) -> dict:
        await h.check()
        for _ in range(warmup):
            await h.run_once()
        runs[0] += warmup + 1
        if h.hygiene:
            h.hygiene()
        for k in (1, 2):  # check every streaming variant once (also a warm-up)
            for sname, fn in h.streams.items():
                got = await fn(k)
                assert got == k or (sname == h.floor and got == k + 1), (sname, got, k)
        gc.collect()
        return mem()

    async def seq(n: int, budget: float) -> dict:
        r = await common.sequential(h.run_once, n, budget)
        runs[0] += r["runs"]
        if h.hygiene:
            h.hygiene()
        return {**r, **mem()}

    async def conc(width: int, batches: int, budget: float) -> dict:
        r = await common.concurrent(h.run_once, width, batches, budget)
        runs[0] += r["runs"]
        if h.hygiene:
            h.hygiene()
        return {**r, **mem()}

    async def stream(tokens: int, rep: int) -> dict:
        names = list(h.streams)
        order = names[rep % len(names) :] + names[: rep % len(names)]
        out = {}
        for sname in order:
            fn = h.streams[sname]
            t = time.perf_counter()
            got = await fn(tokens)
            tb = time.perf_counter() - t
            slack = 1 if sname == h.floor else 0  # a floor may count the model's final event too
            assert tokens <= got <= tokens + slack, (sname, got, tokens)
            t = time.perf_counter()
            got = await fn(1)
            to = time.perf_counter() - t
            assert 1 <= got <= 1 + slack, (sname, got)
            out[sname] = [tb, to]
        return out

    async def parts(n: int, trials: int, budget: float) -> dict:
        async def measure(fn):
            r = await common.sequential(fn, n, budget)
            if h.hygiene:
                h.hygiene()
            return r

        per = await common.interleaved(h.parts, trials, measure)
        out = {k: common.spread([t["us_per_run"] for t in v]) for k, v in per.items()}
        return {"parts": out, **mem()}

    async def stats() -> dict:
        return {
            **mem(),
            "tool_calls_total": TOOL_CALLS,
            **(h.stats() if h.stats else {}),
        }

    ready = {
        "name": name,
        "pid": os.getpid(),
        "rss_mib_before_import": rss0,
        "rss_mib_after_import": rss_import,
        "import_and_build_s": import_s,
        "streams": list(h.streams),
        "parts": list(h.parts),
        "main_stream": h.main_stream,
        "floor": h.floor,
        "api": h.api,
        "versions": common.versions(*h.dists),
    }
    await common.serve_worker(
        {"check": check, "seq": seq, "conc": conc, "stream": stream, "stats": stats, "parts": parts}, ready
    )


# --- parent side --------------------------------------------------------------------------------


def rotate(names: list[str], t: int) -> list[str]:
    i = t % len(names)
    return names[i:] + names[:i]


def main() -> None:
    p = common.base_argparser(__doc__)
    p.set_defaults(n=2000, trials=7, warmup=200, stream_reps=15, budget=60.0)
    p.add_argument("--peer-n", type=int, default=150, help="sequential runs per trial for the peers")
    p.add_argument("--peer-warmup", type=int, default=50)
    p.add_argument("--plain-n", type=int, default=20000, help="sequential runs per trial, plain floor")
    p.add_argument("--frameworks", default=",".join(ALL))
    p.add_argument("--pin", type=int, default=0, help="CPU every worker pins itself to (-1: none)")
    p.add_argument("--quick", action="store_true", help="smoke run: tiny counts")
    p.add_argument("--worker", default=None, help=argparse_hidden())
    args = p.parse_args()
    if args.worker:
        common.pin_client(None if args.pin < 0 else args.pin)
        asyncio.run(worker_main(args.worker))
        return
    if args.quick:
        args.n, args.peer_n, args.plain_n, args.trials, args.warmup, args.peer_warmup = (
            200,
            20,
            2000,
            2,
            20,
            5,
        )
        args.stream_reps, args.stream_tokens = 3, 200
    t_start = time.perf_counter()
    names = [n for n in args.frameworks.split(",") if n]
    n_of = {n: args.peer_n if n in PEERS else args.plain_n if n == "plain" else args.n for n in names}
    warm_of = {n: args.peer_warmup if n in PEERS else args.warmup for n in names}

    workers: dict[str, common.WorkerProc] = {}
    result: dict = {
        "benchmark": "core",
        "machine": common.machine(),
        "args": vars(args),
        "labels": {n: LABELS[n] for n in names},
        "runs_per_trial": n_of,
        "frameworks": {},
    }
    try:
        for n in names:  # start them all; they import in parallel
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", n, "--pin", str(args.pin)]
            workers[n] = common.WorkerProc(n, cmd, timeout=max(120.0, args.budget * 2))
        for n, w in workers.items():
            w.wait_ready(timeout=300)
            result["frameworks"][n] = {"ready": w.info}
        log(f"workers ready after {time.perf_counter() - t_start:.1f} s")
        for n, w in workers.items():
            result["frameworks"][n]["after_warmup"] = w.call("check", warmup=warm_of[n])
        log("checked + warmed up")

        seq: dict[str, list[dict]] = {n: [] for n in names}
        for t in range(args.trials):
            for n in rotate(names, t):
                seq[n].append(workers[n].call("seq", n=n_of[n], budget=args.budget))
        log(f"sequential done at {time.perf_counter() - t_start:.1f} s")
        width = args.width
        for n in names:  # warm the gather path once, as peer-bench does
            workers[n].call("conc", width=width, batches=1, budget=args.budget)
        conc: dict[str, list[dict]] = {n: [] for n in names}
        for t in range(args.trials):
            for n in rotate(names, t):
                b = max(1, n_of[n] // width)
                conc[n].append(workers[n].call("conc", width=width, batches=b, budget=args.budget))
        log(f"gather-{width} done at {time.perf_counter() - t_start:.1f} s")
        for n in names:
            fr = result["frameworks"][n]
            fr["sequential"] = common.summarize_trials(seq[n])
            fr["sequential"]["rss_mib_after_each_trial"] = [round(x["rss_mib"], 1) for x in seq[n]]
            fr["sequential"]["runs_per_s_each_trial"] = [round(x["runs_per_s"]) for x in seq[n]]
            fr[f"concurrent_{width}"] = common.summarize_trials(conc[n])
            fr[f"concurrent_{width}"]["runs_per_s_each_trial"] = [round(x["runs_per_s"]) for x in conc[n]]
            fr["after_first_seq_trial"] = {k: seq[n][0][k] for k in ("rss_mib", "peak_rss_mib", "runs_done")}
            fr["after_runs"] = workers[n].call("stats")

        tokens = args.stream_tokens
        samples: dict[str, dict[str, list]] = {n: {} for n in names}
        for rep in range(args.stream_reps):
            for n in rotate(names, rep):
                if not workers[n].info["streams"]:
                    continue
                for sname, (tb, to) in workers[n].call("stream", tokens=tokens, rep=rep).items():
                    samples[n].setdefault(sname, [[], []])
                    samples[n][sname][0].append(tb)
                    samples[n][sname][1].append(to)
        log(f"streaming done at {time.perf_counter() - t_start:.1f} s")
        for n in names:
            fr = result["frameworks"][n]
            if not samples[n]:
                continue
            st = {s: common.marginal_us(b, o, tokens) for s, (b, o) in samples[n].items()}
            floor = st.get("floor", {}).get("us_per_token_marginal")
            for s, v in st.items():
                if floor is not None:
                    v["net_us_per_token_over_floor"] = v["us_per_token_marginal"] - floor
            # our added cost per token over llm-client's engine.stream of the same scripted reply
            for base in ("engine", "engine_yield"):
                if base in st:
                    for s, v in st.items():
                        if s.startswith("core") and s.endswith("_yield") == base.endswith("_yield"):
                            v[f"added_us_per_token_over_{base}"] = (
                                v["us_per_token_marginal"] - st[base]["us_per_token_marginal"]
                            )
            fr["stream"] = st
        for n in names:  # decomposition of our run (in-process, interleaved), after everything else
            fr = result["frameworks"][n]
            if workers[n].info["parts"]:
                pn = max(200, args.n // 2)
                fr["decomposition_us_per_run"] = workers[n].call(
                    "parts", n=pn, trials=args.trials, budget=args.budget
                )["parts"]
                fr["decomposition_runs_per_trial"] = pn
            fr["end"] = workers[n].call("stats")
    finally:
        for w in workers.values():
            w.close()

    fw = result["frameworks"]
    best_peer = {}
    for metric in ("sequential", f"concurrent_{args.width}"):
        peers = {n: fw[n][metric]["median_runs_per_s"] for n in names if n in PEERS}
        if peers:
            bp = max(peers, key=peers.get)
            best_peer[metric] = {"framework": bp, "runs_per_s": peers[bp]}
            for n in names:
                fw[n].setdefault("ratio_to_best_peer", {})[metric] = (
                    fw[n][metric]["median_runs_per_s"] / peers[bp]
                )
    result["best_peer"] = best_peer
    result["seconds"] = time.perf_counter() - t_start
    result.update(common.info_header())
    common.emit(result, args.out or os.path.join(common.RESULTS_DIR, "core.json"))
    log(f"bench_core took {result['seconds']:.1f} s")


def argparse_hidden():
    import argparse

    return argparse.SUPPRESS


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
