"""Streaming per-token cost: llm-client's engine/agent vs iterating the raw openai SDK stream.

Not a test module. Two parts, both using peer-bench's marginal-cost method:
marginal = (median t(N tokens) - median t(1 token)) / (N - 1), over --stream-reps pairs of runs,
every variant measured in the same rep (interleaved, order rotated), each run checked to deliver
exactly N text deltas.

Wire part (stub in its own process pinned to CPU 1, client on CPU 0; SSE, N one-char chunks):
  openai_sdk_stream     async for chunk in await AsyncOpenAI.chat.completions.create(stream=True)
  engine_httpx          engine.stream(spec) via OpenAIProvider (transport="httpx"), no middleware
  engine_httpx_mw       same with default_middleware()
  engine_aiohttp        engine.stream(spec) via OpenAIProvider(transport="aiohttp")

No-wire part (MockProvider, the fake model builds a fresh MockResponse per call):
  mock_provider_floor   provider.stream(spec) iterated directly (the fake model's own cost)
  mock_engine           engine.stream(spec), no middleware
  mock_engine_mw        engine.stream(spec), default_middleware()
  mock_agent            agent.stream(prompt): tool call add(1,2), then the N-token answer
                        (peer-bench's "run" shape; compare with RESULTS.md section 3)
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common

os.environ.pop("OPENAI_API_KEY", None)
MESSAGES = [{"role": "user", "content": "say hi"}]
MODEL = "gpt-4o-mini"
KEY = "sk-local-stub"

TOOL_RUNS = 0


def add(a: int, b: int) -> int:
    """Add two integers."""
    global TOOL_RUNS
    TOOL_RUNS += 1
    return a + b


async def measure(variants: dict, tokens: int, reps: int, budget: float) -> dict:
    big: dict[str, list[float]] = {n: [] for n in variants}
    one: dict[str, list[float]] = {n: [] for n in variants}
    names = list(variants)
    deadline = time.perf_counter() + budget
    for r in range(reps):
        order = names[r % len(names) :] + names[: r % len(names)]
        for n in order:
            fn = variants[n]
            t0 = time.perf_counter()
            got = await fn(tokens)
            big[n].append(time.perf_counter() - t0)
            assert got == tokens, (n, got, tokens)
            t0 = time.perf_counter()
            got = await fn(1)
            one[n].append(time.perf_counter() - t0)
            assert got == 1, (n, got)
        if time.perf_counter() > deadline:
            break
    out = {}
    for n in names:
        mb, mo = statistics.median(big[n]), statistics.median(one[n])
        # per-rep marginal too, for a [min-max] spread
        per_rep = sorted((b - o) / (tokens - 1) * 1e6 for b, o in zip(big[n], one[n]))
        out[n] = {
            "tokens": tokens,
            "reps": len(big[n]),
            "run_ms_with_tokens": mb * 1e3,
            "run_ms_with_1_token": mo * 1e3,
            "us_per_token_total": mb / tokens * 1e6,
            "us_per_token_marginal": (mb - mo) / (tokens - 1) * 1e6,
            "marginal_per_rep_min": per_rep[0],
            "marginal_per_rep_max": per_rep[-1],
        }
    return out


async def main() -> None:
    p = common.base_argparser(__doc__)
    p.set_defaults(stream_reps=21, budget=90.0)
    p.add_argument("--stub-cpu", default="1")
    p.add_argument("--quick", action="store_true", help="smoke run: tiny counts")
    p.add_argument("--skip-wire", action="store_true")
    args = p.parse_args()
    if args.quick:
        args.stream_reps, args.stream_tokens = 3, 200
    common.pin_client(0 if args.stub_cpu else None)
    N = args.stream_tokens

    from llm_client import (
        Agent,
        AgentDone,
        ExecutionEngine,
        MockProvider,
        MockResponse,
        OpenAIProvider,
        RequestSpec,
        StreamDone,
        TextDelta,
        default_middleware,
    )

    result: dict = {"benchmark": "stream", "machine": common.machine(), "args": vars(args)}

    # --- no wire: MockProvider -------------------------------------------------------------------
    def handler(spec):
        last = spec.messages[-1]
        if last["role"] == "tool":  # second model call of an agent run: the streamed answer
            k = int(spec.extra.get("tokens", 0)) or _agent_tokens[0]
            return MockResponse(content="x" * k, chunks=("x",) * k)
        if last["role"] == "user" and last["content"] == "stream":
            k = int(spec.extra["tokens"])
            return MockResponse(content="x" * k, chunks=("x",) * k)
        return MockResponse.tool_call("add", {"a": 1, "b": 2}, id="call_1")

    _agent_tokens = [1]
    mock = MockProvider(handler=handler, model=MODEL)
    eng = ExecutionEngine(mock)
    eng_mw = ExecutionEngine(mock, middleware=default_middleware())
    agent = Agent(engine=eng, tools=[add])
    specs = {}

    def spec_for(k: int):
        s = specs.get(k)
        if s is None:
            s = specs[k] = RequestSpec.build([{"role": "user", "content": "stream"}], extra={"tokens": k})
        return s

    async def count(it) -> int:
        n = 0
        async for ev in it:
            if isinstance(ev, TextDelta):
                n += 1
            elif isinstance(ev, StreamDone):
                assert ev.result.content == "x" * n
        if len(mock.calls) > 1000:  # the mock records every request; keep memory flat
            mock.calls.clear()
        return n

    async def mock_provider_floor(k: int) -> int:
        return await count(mock.stream(spec_for(k)))

    async def mock_engine(k: int) -> int:
        return await count(eng.stream(spec_for(k)))

    async def mock_engine_mw(k: int) -> int:
        return await count(eng_mw.stream(spec_for(k)))

    async def mock_agent(k: int) -> int:
        global TOOL_RUNS
        _agent_tokens[0] = k
        before = TOOL_RUNS
        n = 0
        done = None
        async for ev in agent.stream("what is 1+2? answer with many x"):
            if isinstance(ev, TextDelta):
                n += 1
            elif isinstance(ev, AgentDone):
                done = ev
        assert done is not None and done.result.content == "x" * k and before + 1 == TOOL_RUNS
        assert done.result.turns == 2
        if len(mock.calls) > 1000:
            mock.calls.clear()
        return n

    mock_variants = {
        "mock_provider_floor": mock_provider_floor,
        "mock_engine": mock_engine,
        "mock_engine_mw": mock_engine_mw,
        "mock_agent": mock_agent,
    }
    for fn in mock_variants.values():  # warm-up
        await fn(N)
        await fn(1)
    result["mock"] = await measure(
        mock_variants, N, max(args.stream_reps, 21) if not args.quick else args.stream_reps, args.budget
    )
    floor = result["mock"]["mock_provider_floor"]["us_per_token_marginal"]
    for n, r in result["mock"].items():
        r["net_us_per_token_over_mock_floor"] = r["us_per_token_marginal"] - floor
    print("mock part done", file=sys.stderr, flush=True)

    # --- wire: stub SSE --------------------------------------------------------------------------
    if not args.skip_wire:
        from openai import AsyncOpenAI

        proc, port = common.start_stub(args.stub_cpu or None)
        base = f"http://127.0.0.1:{port}/v1"
        try:
            oa = AsyncOpenAI(base_url=base, api_key=KEY, max_retries=0)
            e_httpx = ExecutionEngine(OpenAIProvider(MODEL, base_url=base, api_key=KEY))
            e_httpx_mw = ExecutionEngine(
                OpenAIProvider(MODEL, base_url=base, api_key=KEY), middleware=default_middleware()
            )
            e_aio = ExecutionEngine(OpenAIProvider(MODEL, base_url=base, api_key=KEY, transport="aiohttp"))
            wspecs: dict[int, RequestSpec] = {}

            def wspec(k: int) -> RequestSpec:
                s = wspecs.get(k)
                if s is None:
                    s = wspecs[k] = RequestSpec.build(MESSAGES, extra={"extra_body": {"stub_tokens": k}})
                return s

            async def openai_sdk_stream(k: int) -> int:
                n = 0
                stream = await oa.chat.completions.create(
                    model=MODEL,
                    messages=MESSAGES,
                    stream=True,
                    stream_options={"include_usage": True},
                    extra_body={"stub_tokens": k},
                )
                async for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        n += 1
                return n

            async def ecount(engine, k: int) -> int:
                n = 0
                done = False
                async for ev in engine.stream(wspec(k)):
                    if isinstance(ev, TextDelta):
                        n += 1
                    elif isinstance(ev, StreamDone):
                        done = ev.result.content == "x" * n
                assert done
                return n

            async def engine_httpx(k: int) -> int:
                return await ecount(e_httpx, k)

            async def engine_httpx_mw(k: int) -> int:
                return await ecount(e_httpx_mw, k)

            async def engine_aiohttp(k: int) -> int:
                return await ecount(e_aio, k)

            wire_variants = {
                "openai_sdk_stream": openai_sdk_stream,
                "engine_httpx": engine_httpx,
                "engine_httpx_mw": engine_httpx_mw,
                "engine_aiohttp": engine_aiohttp,
            }
            before = common.stub_count(port)
            for fn in wire_variants.values():
                await fn(N)
                await fn(1)
            result["wire"] = await measure(wire_variants, N, args.stream_reps, args.budget)
            sent = 2 * len(wire_variants) * (1 + result["wire"]["openai_sdk_stream"]["reps"])
            seen = common.stub_count(port) - before
            result["stub_requests_sent"], result["stub_requests_seen"] = sent, seen
            assert seen == sent, (seen, sent)
            raw = result["wire"]["openai_sdk_stream"]["us_per_token_marginal"]
            for n, r in result["wire"].items():
                r["net_us_per_token_over_raw_sdk"] = r["us_per_token_marginal"] - raw
            await oa.close()
            for e in (e_httpx, e_httpx_mw, e_aio):
                await e.aclose()
        finally:
            common.stop_stub(proc)

    result["peak_rss_mib"] = common.peak_rss_mib()
    result["versions"] = common.versions("llm-client", "openai", "httpx2", "aiohttp", "opentelemetry-api")
    result.update(common.info_header())
    common.emit(result, args.out or os.path.join(common.RESULTS_DIR, "stream.json"))


if __name__ == "__main__":
    t0 = time.perf_counter()
    asyncio.run(main())
    print(f"bench_stream took {time.perf_counter() - t0:.1f} s", file=sys.stderr)
