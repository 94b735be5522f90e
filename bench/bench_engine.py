"""Engine overhead with MockProvider, and the peer-bench agent "run" with Agent + MockProvider.

Not a test module. No wire at all.

Part 1, engine overhead per call: the same prebuilt RequestSpec and the same MockProvider in
handler mode (the handler returns one prebuilt CompletionResult), timed as
  direct       await provider.complete(spec)
  engine       await ExecutionEngine(provider).complete(spec)
  engine_mw    await ExecutionEngine(provider, middleware=default_middleware()).complete(spec)
in interleaved trials of --calls calls each. Overhead = us/call(engine) - us/call(direct).

Part 2, the agent run (as shared/peer-bench): prompt -> the fake model returns tool call
add(a=1, b=2) -> the tool runs -> the fake model returns "3". 2 model calls, 1 tool call. The fake
model (MockProvider handler) builds a fresh MockResponse each call, as peer-bench's fakes build
fresh framework objects. Timed with peer-bench's full_suite method (warm-up, --trials x --n
sequential runs, --trials x gather-100 batches, peak RSS), for Agent without and with
default_middleware().
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common

TOOL_RUNS = 0


def add(a: int, b: int) -> int:
    """Add two integers."""
    global TOOL_RUNS
    TOOL_RUNS += 1
    return a + b


async def time_calls(fn, calls: int, budget: float) -> dict:
    done = 0
    t0 = time.perf_counter()
    deadline = t0 + budget
    while done < calls:
        for _ in range(100):
            await fn()
        done += 100
        if time.perf_counter() > deadline:
            break
    dt = time.perf_counter() - t0
    return {"runs": done, "seconds": dt, "runs_per_s": done / dt, "us_per_run": dt / done * 1e6}


async def main() -> None:
    p = common.base_argparser(__doc__)
    p.set_defaults(n=1000, trials=5, warmup=200, budget=60.0)
    p.add_argument("--calls", type=int, default=20000, help="engine-overhead calls per trial")
    p.add_argument("--quick", action="store_true", help="smoke run: tiny counts")
    p.add_argument("--pin", type=int, default=0, help="CPU to pin to (-1: none)")
    args = p.parse_args()
    if args.quick:
        args.n, args.trials, args.warmup, args.calls = 100, 2, 10, 1000
    common.pin_client(None if args.pin < 0 else args.pin)

    rss_start = common.current_rss_mib()
    from llm_client import (
        Agent,
        CompletionResult,
        ExecutionEngine,
        MockProvider,
        MockResponse,
        RequestSpec,
        Usage,
        default_middleware,
    )

    result: dict = {
        "benchmark": "engine",
        "machine": common.machine(),
        "args": vars(args),
        "rss_mib_after_import": common.current_rss_mib(),
        "rss_mib_at_start": rss_start,
    }

    # --- part 1: engine overhead per call ------------------------------------------------------
    prebuilt = CompletionResult(
        content="hi",
        usage=Usage(input_tokens=5, output_tokens=1),
        model="mock-model",
        finish_reason="stop",
        provider="mock",
    )
    provider = MockProvider(handler=lambda spec: prebuilt, model="mock-model")
    spec = RequestSpec.build("say hi", model="mock-model")
    eng = ExecutionEngine(provider)
    eng_mw = ExecutionEngine(provider, middleware=default_middleware())

    async def direct():
        assert (await provider.complete(spec)).content == "hi"

    async def engine():
        assert (await eng.complete(spec)).content == "hi"

    async def engine_mw():
        assert (await eng_mw.complete(spec)).content == "hi"

    variants = {"direct": direct, "engine": engine, "engine_mw": engine_mw}
    for fn in variants.values():
        for _ in range(500):
            await fn()
    provider.calls.clear()

    async def measure(fn):
        r = await time_calls(fn, args.calls, args.budget)
        provider.calls.clear()  # the mock records every request; keep memory flat
        return r

    gc.collect()
    per = await common.interleaved(variants, args.trials, measure)
    eo = {}
    for n, trials in per.items():
        eo[n] = {
            "us_per_call": common.spread([t["us_per_run"] for t in trials]),
            "calls_per_trial": trials[0]["runs"],
        }
    d = [t["us_per_run"] for t in per["direct"]]
    for n in ("engine", "engine_mw"):
        # overhead per trial pairs the variant with the direct run of the same trial
        eo[n]["overhead_us"] = common.spread([t["us_per_run"] - dd for t, dd in zip(per[n], d)])
    result["engine_overhead"] = eo
    print(
        "engine overhead:",
        {n: round(v["us_per_call"]["median"], 2) for n, v in eo.items()},
        file=sys.stderr,
        flush=True,
    )

    # --- part 2: the agent run --------------------------------------------------------------------
    def fake_model(spec):
        if spec.messages[-1]["role"] == "tool":
            return MockResponse(content="3")
        return MockResponse.tool_call("add", {"a": 1, "b": 2}, id="call_1")

    runs = {}
    for label, mw in (("agent", ()), ("agent_mw", default_middleware())):
        mock = MockProvider(handler=fake_model, model="mock-model")
        agent = Agent(engine=ExecutionEngine(mock, middleware=mw), tools=[add])

        async def run_once(agent=agent, mock=mock):
            r = await agent.run("what is 1+2?")
            if len(mock.calls) > 2000:  # the mock records every request; keep memory flat
                mock.calls.clear()
            return r

        async def check(agent=agent):
            before = TOOL_RUNS
            r = await agent.run("what is 1+2?")
            assert r.content == "3" and r.turns == 2 and len(r.tool_calls) == 1, r
            assert r.tool_calls[0].content == "3" and before + 1 == TOOL_RUNS

        runs[label] = await common.full_suite(
            label,
            run_once,
            check,
            None,
            n_seq=args.n,
            warmup=args.warmup,
            width=args.width,
            trials=args.trials,
            stream_tokens=0,
            stream_reps=0,
            budget_s=args.budget,
        )
        print(
            label,
            round(runs[label]["sequential"]["median_runs_per_s"]),
            "runs/s seq",
            file=sys.stderr,
            flush=True,
        )
    result["agent_run"] = runs

    # MockProvider.calls grows by one RequestSpec per model call; measure what that costs in memory
    mock = MockProvider(handler=fake_model, model="mock-model")
    agent = Agent(engine=ExecutionEngine(mock), tools=[add])
    gc.collect()
    r0 = common.current_rss_mib()
    k = 2000 if args.quick else 10000
    for _ in range(k):
        await agent.run("what is 1+2?")
    gc.collect()
    result["mock_calls_growth"] = {
        "runs": k,
        "recorded_specs": len(mock.calls),
        "rss_growth_mib": common.current_rss_mib() - r0,
    }
    mock.calls.clear()

    result["peak_rss_mib"] = common.peak_rss_mib()
    result["versions"] = common.versions("llm-client", "opentelemetry-api")
    result.update(common.info_header())
    common.emit(result, args.out or os.path.join(common.RESULTS_DIR, "engine.json"))


if __name__ == "__main__":
    t0 = time.perf_counter()
    asyncio.run(main())
    print(f"bench_engine took {time.perf_counter() - t0:.1f} s", file=sys.stderr)
