"""Wire calls/s on a local stub: llm-client's providers vs the raw openai SDK, litellm and aiohttp.

Not a test module. The stub (bench/stub_server.py) runs in its own process pinned to CPU 1; this
client pins itself to CPU 0. Variants (all return the stub's "hi", checked on every call):

  openai_sdk          AsyncOpenAI(base_url=stub, max_retries=0).chat.completions.create
  engine_openai       ExecutionEngine(OpenAIProvider(base_url=stub)).complete   (no middleware)
  engine_openai_mw    same, middleware=default_middleware()
  engine_openai_aio   ExecutionEngine(OpenAIProvider(..., transport="aiohttp")).complete
  engine_litellm      ExecutionEngine(LiteLLMProvider("openai/gpt-4o-mini", api_base=stub)).complete
  litellm_raw         litellm.acompletion(model="openai/gpt-4o-mini", api_base=stub, max_retries=0)
  aiohttp_raw         aiohttp.ClientSession.post + json() (wire floor)

Method: one warm-up per variant, then --trials interleaved trials; in each trial every variant runs
--n sequential calls, then ceil(--n / --width) asyncio.gather batches of --width calls (variants in
turn, order rotated per trial). Medians and [min-max] over trials; ratios are of medians.
The stub's /stats counter is compared with the number of calls sent.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ.pop("OPENAI_API_KEY", None)
for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(var, None)

MESSAGES = [{"role": "user", "content": "say hi"}]
MODEL = "gpt-4o-mini"
KEY = "sk-local-stub"
ALL = "openai_sdk,engine_openai,engine_openai_mw,engine_openai_aio,engine_litellm,litellm_raw,aiohttp_raw"


async def main() -> None:
    p = common.base_argparser(__doc__)
    p.set_defaults(n=400, trials=7, warmup=30, budget=60.0)
    p.add_argument("--variants", default=ALL)
    p.add_argument("--stub-cpu", default="1")
    p.add_argument("--quick", action="store_true", help="smoke run: tiny counts")
    args = p.parse_args()
    if args.quick:
        args.n, args.trials, args.warmup = 30, 2, 3
    common.pin_client(0 if args.stub_cpu else None)

    import aiohttp
    import litellm
    from llm_client import ExecutionEngine, LiteLLMProvider, OpenAIProvider, RequestSpec, default_middleware
    from openai import AsyncOpenAI

    litellm.telemetry = False
    litellm.suppress_debug_info = True

    proc, port = common.start_stub(args.stub_cpu or None)
    base = f"http://127.0.0.1:{port}/v1"
    result: dict = {"benchmark": "wire", "machine": common.machine(), "args": vars(args)}
    try:
        oa = AsyncOpenAI(base_url=base, api_key=KEY, max_retries=0)
        aio = aiohttp.ClientSession()
        payload = {"model": MODEL, "messages": MESSAGES}
        eng_oa = ExecutionEngine(OpenAIProvider(MODEL, base_url=base, api_key=KEY))
        eng_oa_mw = ExecutionEngine(
            OpenAIProvider(MODEL, base_url=base, api_key=KEY), middleware=default_middleware()
        )
        eng_aio = ExecutionEngine(OpenAIProvider(MODEL, base_url=base, api_key=KEY, transport="aiohttp"))
        eng_ll = ExecutionEngine(LiteLLMProvider("openai/" + MODEL, api_base=base, api_key=KEY))
        spec = RequestSpec.build(MESSAGES)  # built once, like a caller that reuses its request

        async def openai_sdk():
            r = await oa.chat.completions.create(model=MODEL, messages=MESSAGES)
            assert r.choices[0].message.content == "hi"

        async def engine_openai():
            assert (await eng_oa.complete(spec)).content == "hi"

        async def engine_openai_mw():
            assert (await eng_oa_mw.complete(spec)).content == "hi"

        async def engine_openai_aio():
            assert (await eng_aio.complete(spec)).content == "hi"

        async def engine_litellm():
            assert (await eng_ll.complete(spec)).content == "hi"

        async def litellm_raw():
            r = await litellm.acompletion(
                model="openai/" + MODEL, messages=MESSAGES, api_base=base, api_key=KEY, max_retries=0
            )
            assert r.choices[0].message.content == "hi"

        async def aiohttp_raw():
            async with aio.post(base + "/chat/completions", json=payload) as r:
                assert (await r.json())["choices"][0]["message"]["content"] == "hi"

        fns = {k: v for k, v in locals().items() if k in ALL.split(",")}
        variants = {n: fns[n] for n in args.variants.split(",")}
        sent = 0
        before = common.stub_count(port)
        for name, fn in variants.items():  # warm-up (connection pools, lazy SDK imports, caches)
            for _ in range(args.warmup):
                await fn()
            await common.concurrent(fn, args.width, 1, args.budget)
            sent += args.warmup + args.width
        batches = max(1, -(-args.n // args.width))

        seq: dict[str, list[dict]] = {n: [] for n in variants}
        conc: dict[str, list[dict]] = {n: [] for n in variants}
        names = list(variants)
        for t in range(args.trials):
            order = names[t % len(names) :] + names[: t % len(names)]
            for n in order:
                r = await common.sequential(variants[n], args.n, args.budget)
                seq[n].append(r)
                sent += r["runs"]
            for n in order:
                r = await common.concurrent(variants[n], args.width, batches, args.budget)
                conc[n].append(r)
                sent += r["runs"]
            print(f"trial {t + 1}/{args.trials} done", file=sys.stderr, flush=True)
        seen = common.stub_count(port) - before

        out = {}
        for n in variants:
            out[n] = {
                "sequential": common.summarize_trials(seq[n]),
                f"concurrent_{args.width}": common.summarize_trials(conc[n]),
            }
        result["variants"] = out
        result["stub_requests_sent"] = sent
        result["stub_requests_seen"] = seen
        assert seen == sent, (seen, sent)

        def ratio(a: str, b: str, key: str) -> float | None:
            if a in out and b in out:
                return out[a][key]["median_runs_per_s"] / out[b][key]["median_runs_per_s"]
            return None

        result["ratios"] = {
            key: {
                "engine_openai / openai_sdk": ratio("engine_openai", "openai_sdk", key),
                "engine_openai_mw / openai_sdk": ratio("engine_openai_mw", "openai_sdk", key),
                "engine_openai_aio / openai_sdk": ratio("engine_openai_aio", "openai_sdk", key),
                "engine_openai / litellm_raw": ratio("engine_openai", "litellm_raw", key),
                "engine_openai_aio / litellm_raw": ratio("engine_openai_aio", "litellm_raw", key),
                "engine_litellm / litellm_raw": ratio("engine_litellm", "litellm_raw", key),
                "engine_openai_aio / aiohttp_raw": ratio("engine_openai_aio", "aiohttp_raw", key),
            }
            for key in ("sequential", f"concurrent_{args.width}")
        }
        await aio.close()
        await oa.close()
        for e in (eng_oa, eng_oa_mw, eng_aio, eng_ll):
            await e.aclose()
    finally:
        common.stop_stub(proc)
    result["peak_rss_mib"] = common.peak_rss_mib()
    result["versions"] = common.versions(
        "llm-client", "openai", "httpx2", "aiohttp", "litellm", "opentelemetry-api"
    )
    result.update(common.info_header())
    out_path = args.out or os.path.join(common.RESULTS_DIR, "wire.json")
    common.emit(result, out_path)


if __name__ == "__main__":
    t0 = time.perf_counter()
    asyncio.run(main())
    print(f"bench_wire took {time.perf_counter() - t0:.1f} s", file=sys.stderr)
