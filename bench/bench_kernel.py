"""RuntimeKernel.execute end to end against agent-runtime-core's AgentRunner, one process each.

Not a test module, never collected. No network at all (the scripted model never leaves the process).

One "job" is peer-bench's run (shared/peer-bench/README.md) under the kernel's governance: prompt ->
the model returns the tool call add(a=1, b=2) -> the tool runs -> the model returns "3". The model
is llm-client's MockProvider(handler=...) building a fresh MockResponse per call (as bench_core.py).

Variants, each in its OWN worker process (so each peak RSS is that variant's alone), all driven from
this parent, trial by trial, worker order rotated each trial:

  kernel           RuntimeKernel.create(engine, agent, policy_engine=PolicyEngine(3 rules)) with a
                   ledger Budget for the job's scope (daily tokens, monthly cost, daily tool calls):
                   `await (await kernel.execute(ExecutionRequest(...))).result()`; in-memory job,
                   action and ledger stores and event bus (the defaults), one long-lived kernel, as
                   a serving process keeps it. Policy is asked before both model calls and the tool
                   call; the ledger reserves and settles around all three.
  kernel_nobudget  the same kernel and policy, no Budget set (the ledger still reserves/records,
                   but has no budget to sum usage for): isolates the cost of the budget check
  core             agent-runtime-core AgentRunner().execute(ToolCallingAgent) exactly as
                   bench_core.py's `core` (LLMClient(middleware=()), in-memory bus/store)
  llm_agent        llm-client Agent(engine, tools=[add]).run(prompt): the loop the kernel drives

Measured with per-job latencies: check + warm-up, then --trials interleaved trials of --n
sequential jobs (each bounded by --budget seconds), then --trials interleaved trials of gather-100
batches (latency of a job = from the batch's start to that job's result). Reported: jobs/s per
trial (median [min-max] over trials), p50/p99 latency over all jobs of all trials, peak RSS, and
what each process retains after the runs. At the end the kernel worker measures how the budget
check scales with the ledger's size (--probe jobs on a fresh kernel whose in-memory ledger holds
0, 3k, 10k usage events of the scope, pre-written through ledger.writer.write).

Usage: .venv/bin/python bench/bench_kernel.py [--quick] [--out bench/results/kernel.json]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402

VARIANTS = ("kernel", "kernel_nobudget", "core", "llm_agent")
LABELS = {
    "kernel": "RuntimeKernel.execute + result, policy (3 rules) + ledger Budget for the scope",
    "kernel_nobudget": "RuntimeKernel.execute + result, same policy, no Budget set",
    "core": "agent-runtime-core AgentRunner.execute(ToolCallingAgent), middleware=()",
    "llm_agent": "llm-client Agent.run (the loop the kernel drives, no governance)",
}
PROMPT = "what is 1+2?"
SCOPE = "tenant-bench"
TOOL_CALLS = 0


def _count_tool() -> None:
    global TOOL_CALLS
    TOOL_CALLS += 1


# --- builders (worker side) ----------------------------------------------------------------------


def fake_model(spec):
    from llm_client import MockResponse

    if spec.messages[-1]["role"] == "tool":
        return MockResponse(content="3")
    return MockResponse.tool_call("add", {"a": 1, "b": 2}, id="call_1")


def add(a: int, b: int) -> int:
    """Add two integers."""
    _count_tool()
    return a + b


def make_kernel(with_budget: bool):
    from agent_runtime import (
        Budget,
        ConstraintPolicy,
        ModelPolicy,
        PolicyEngine,
        RuntimeKernel,
        ToolPolicy,
    )
    from llm_client import Agent, ExecutionEngine, MockProvider

    provider = MockProvider(handler=fake_model, model="gpt-5-nano")
    engine = ExecutionEngine(provider=provider)
    agent = Agent(engine=engine, tools=[add])
    policy = PolicyEngine(
        [
            ToolPolicy(["delete_*"], decision="deny", reason="destructive"),
            ModelPolicy(["gpt-4*"], max_tokens_per_request=8000),
            ConstraintPolicy(max_cost_per_request="0.50"),
        ]
    )
    kernel = RuntimeKernel.create(engine=engine, agent=agent, policy_engine=policy)
    if with_budget:
        kernel.ledger.set_budget(
            Budget(
                scope_id=SCOPE,
                max_tokens_daily=10**12,
                max_cost_monthly="1000000",
                max_tool_calls_daily=10**9,
            )
        )
    return kernel, provider


def build(name: str) -> dict:
    if name in ("kernel", "kernel_nobudget"):
        from agent_runtime import ExecutionRequest

        kernel, provider = make_kernel(name == "kernel")
        request = ExecutionRequest(prompt=PROMPT, scope_id=SCOPE, principal_id="user-bench")

        async def run_once():
            r = await (await kernel.execute(request)).result()
            if r.content != "3":
                raise AssertionError(r)
            return r

        async def check():
            before = TOOL_CALLS
            handle = await kernel.execute(request)
            r = await handle.result()
            assert r.status == "succeeded" and r.content == "3" and r.turns == 2, r
            assert before + 1 == TOOL_CALLS, TOOL_CALLS
            kinds = [e.type.value async for e in handle.events()]
            assert kinds[0] == "job.started" and kinds[-1] == "job.completed", kinds
            assert "tool.start" in kinds and "tool.end" in kinds, kinds
            led = [e.type.value for e in await kernel.ledger.writer.list_events(job_id=handle.job_id)]
            assert sorted(led) == ["model_usage", "model_usage", "tool_usage"], led
            if name == "kernel":
                assert kernel.ledger.budgets_for(kernel._context_for(await handle.job())), "no budget"

        def stats():
            w = kernel.ledger.writer
            bus = kernel.event_bus
            return {
                "jobs_retained": len(getattr(kernel.jobs.store, "_jobs", {}) or {})
                if hasattr(kernel.jobs, "store")
                else None,
                "ledger_events_retained": len(getattr(w, "_events", [])),
                "event_bus_events_retained": sum(len(v) for v in getattr(bus, "_history", {}).values()),
                "budgets": len(kernel.ledger.budgets),
                "policy_rules": len(getattr(kernel.policy_engine, "_rules", ())),
            }

        return {
            "run_once": run_once,
            "check": check,
            "hygiene": provider.calls.clear,
            "stats": stats,
            "dists": ("agent-runtime", "llm-client"),
        }
    if name == "core":
        from agent_runtime_core import AgentRunner, ToolCallingAgent
        from agent_runtime_core.llm import LLMClient
        from agent_runtime_core.tools import tool
        from llm_client import MockProvider

        core_add = tool(add)

        class AddAgent(ToolCallingAgent):
            key = "add-agent"
            system_prompt = "You add numbers."
            tools = (core_add,)

        provider = MockProvider(handler=fake_model)
        agent = AddAgent()
        agent.llm_client = LLMClient(provider=provider, middleware=())
        runner = AgentRunner()
        INPUT = {"messages": [{"role": "user", "content": PROMPT}]}
        ids = itertools.count()

        async def run_once():
            r = await runner.execute(agent, f"run-{next(ids)}", INPUT)
            if r.final_output != {"response": "3"}:
                raise AssertionError(r)
            return r

        async def check():
            before = TOOL_CALLS
            r = await run_once()
            assert r.error is None and before + 1 == TOOL_CALLS, r

        def stats():
            h = getattr(runner.event_bus, "_history", {})
            return {
                "event_bus_runs_retained": len(h),
                "event_bus_events_retained": sum(len(v) for v in h.values()),
            }

        return {
            "run_once": run_once,
            "check": check,
            "hygiene": provider.calls.clear,
            "stats": stats,
            "dists": ("agent-runtime-core", "llm-client"),
        }
    if name == "llm_agent":
        from llm_client import Agent, ExecutionEngine, MockProvider

        provider = MockProvider(handler=fake_model, model="gpt-5-nano")
        agent = Agent(engine=ExecutionEngine(provider=provider), tools=[add])

        async def run_once():
            r = await agent.run(PROMPT)
            if r.content != "3":
                raise AssertionError(r)
            return r

        async def check():
            before = TOOL_CALLS
            r = await run_once()
            assert r.turns == 2 and before + 1 == TOOL_CALLS, r

        return {
            "run_once": run_once,
            "check": check,
            "hygiene": provider.calls.clear,
            "stats": dict,
            "dists": ("llm-client",),
        }
    raise SystemExit(f"unknown variant {name}")


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


async def worker_main(name: str) -> None:
    t0 = time.perf_counter()
    rss0 = common.current_rss_mib()
    h = build(name)
    import_s = time.perf_counter() - t0
    rss_import = common.current_rss_mib()
    run_once = h["run_once"]

    def mem() -> dict:
        now = common.current_rss_mib()
        return {"rss_mib": now, "peak_rss_mib": max(now, common.peak_rss_mib())}

    async def check(warmup: int) -> dict:
        await h["check"]()
        for _ in range(warmup):
            await run_once()
        h["hygiene"]()
        gc.collect()
        return mem()

    async def seq(n: int, budget: float) -> dict:
        lat = []
        c0 = time.process_time()
        t_start = time.perf_counter()
        deadline = t_start + budget
        for _ in range(n):
            t = time.perf_counter()
            await run_once()
            lat.append(time.perf_counter() - t)
            if t > deadline:
                break
        dt = time.perf_counter() - t_start
        cpu = time.process_time() - c0
        h["hygiene"]()
        return {
            "runs": len(lat),
            "seconds": dt,
            "runs_per_s": len(lat) / dt,
            "cpu_per_wall": cpu / dt,
            "lat": lat,
            **mem(),
        }

    async def conc(width: int, batches: int, budget: float) -> dict:
        lat: list[float] = []

        async def timed(start: float) -> None:
            await run_once()
            lat.append(time.perf_counter() - start)

        t_start = time.perf_counter()
        deadline = t_start + budget
        for _ in range(batches):
            b0 = time.perf_counter()
            await asyncio.gather(*(timed(b0) for _ in range(width)))
            if time.perf_counter() > deadline:
                break
        dt = time.perf_counter() - t_start
        h["hygiene"]()
        return {"runs": len(lat), "seconds": dt, "runs_per_s": len(lat) / dt, "lat": lat, **mem()}

    async def stats() -> dict:
        return {"stats": h["stats"](), **mem()}

    async def probe(jobs: int, sizes: list[int]) -> dict:
        """Budget-check scaling: a fresh kernel per ledger size, `jobs` sequential jobs each."""
        from agent_runtime import ExecutionRequest, LedgerEvent, LedgerEventType

        out = []
        for size in sizes:
            kernel, provider = make_kernel(True)
            now = time.time()
            for i in range(size):  # usage events of the scope, as earlier jobs would leave
                await kernel.ledger.writer.write(
                    LedgerEvent(
                        type=LedgerEventType.MODEL_USAGE if i % 3 else LedgerEventType.TOOL_USAGE,
                        timestamp=now,
                        scope_id=SCOPE,
                        principal_id="user-bench",
                        job_id=f"old-{i // 3}",
                        input_tokens=4,
                        output_tokens=3,
                        total_tokens=7,
                        tool_name=None if i % 3 else "add",
                        requests=1 if i % 3 else 0,
                    )
                )
            req = ExecutionRequest(prompt=PROMPT, scope_id=SCOPE, principal_id="user-bench")
            await (await kernel.execute(req)).result()
            t = time.perf_counter()
            for _ in range(jobs):
                r = await (await kernel.execute(req)).result()
                assert r.content == "3", r
            dt = time.perf_counter() - t
            provider.calls.clear()
            out.append(
                {
                    "ledger_events_before": size,
                    "jobs": jobs,
                    "jobs_per_s": jobs / dt,
                    "ms_per_job": dt / jobs * 1e3,
                }
            )
            del kernel
            gc.collect()
        return {"probe": out, **mem()}

    await common.serve_worker(
        {"check": check, "seq": seq, "conc": conc, "stats": stats, "probe": probe},
        {
            "name": name,
            "import_s": import_s,
            "rss_mib_start": rss0,
            "rss_mib_after_build": rss_import,
            "versions": common.versions(*h["dists"]),
        },
    )


# --- parent side ---------------------------------------------------------------------------------


def summarize(trials: list[dict]) -> dict:
    rps = [t["runs_per_s"] for t in trials]
    lat = [x for t in trials for x in t["lat"]]
    return {
        "trials": len(trials),
        "runs_per_trial": [t["runs"] for t in trials],
        "runs_per_s_by_trial": [round(x, 1) for x in rps],
        "median_runs_per_s": statistics.median(rps),
        "min_runs_per_s": min(rps),
        "max_runs_per_s": max(rps),
        "p50_ms": pct(lat, 0.50) * 1e3,
        "p99_ms": pct(lat, 0.99) * 1e3,
        "max_ms": max(lat) * 1e3,
        "median_cpu_per_wall": statistics.median(t.get("cpu_per_wall", float("nan")) for t in trials),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--n", type=int, default=1000, help="sequential jobs per trial")
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--width", type=int, default=100)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--budget", type=float, default=10.0, help="max seconds per timed loop")
    ap.add_argument("--probe-jobs", type=int, default=50)
    ap.add_argument("--probe-sizes", default="0,3000,10000")
    ap.add_argument("--quick", action="store_true", help="--n 200 --trials 3 --warmup 20, small probe")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.worker:
        asyncio.run(worker_main(args.worker))
        return
    if args.quick:
        args.n, args.trials, args.warmup, args.budget = 200, 3, 20, 6.0
        args.probe_jobs, args.probe_sizes = 30, "0,3000,10000"
    names = [v for v in args.variants.split(",") if v]
    t_all = time.perf_counter()
    workers: dict[str, common.WorkerProc] = {}
    result: dict = {"machine": common.machine(), "args": vars(args), "labels": LABELS, "variants": {}}
    try:
        for n in names:
            w = common.WorkerProc(n, [sys.executable, os.path.abspath(__file__), "--worker", n], timeout=600)
            w.wait_ready()
            workers[n] = w
        checks = {n: w.call("check", warmup=args.warmup) for n, w in workers.items()}
        seq: dict[str, list[dict]] = {n: [] for n in names}
        conc: dict[str, list[dict]] = {n: [] for n in names}
        batches = max(1, args.n // args.width)
        for t in range(args.trials):
            order = names[t % len(names) :] + names[: t % len(names)]
            for n in order:
                seq[n].append(workers[n].call("seq", n=args.n, budget=args.budget))
            print(f"seq trial {t + 1}/{args.trials} at {time.perf_counter() - t_all:.1f} s", file=sys.stderr)
        for n in names:  # warm the gather path once (first gather allocates a lot)
            workers[n].call("conc", width=args.width, batches=1, budget=args.budget)
        for t in range(args.trials):
            order = names[t % len(names) :] + names[: t % len(names)]
            for n in order:
                conc[n].append(workers[n].call("conc", width=args.width, batches=batches, budget=args.budget))
            print(f"conc trial {t + 1}/{args.trials} at {time.perf_counter() - t_all:.1f} s", file=sys.stderr)
        for n in names:
            st = workers[n].call("stats")
            result["variants"][n] = {
                "label": LABELS[n],
                "worker": workers[n].info,
                "after_check": checks[n],
                "sequential": summarize(seq[n]),
                f"concurrent_{args.width}": summarize(conc[n]),
                "rss_mib_end": st["rss_mib"],
                "peak_rss_mib": st["peak_rss_mib"],
                "retained": st["stats"],
            }
        if "kernel" in workers:
            sizes = [int(s) for s in args.probe_sizes.split(",") if s]
            result["budget_scaling_probe"] = workers["kernel"].call(
                "probe", jobs=args.probe_jobs, sizes=sizes, timeout=900
            )["probe"]
    finally:
        for w in workers.values():
            w.close()
    v = result["variants"]
    ratios = {}
    for a, b in (
        ("kernel", "core"),
        ("kernel_nobudget", "core"),
        ("kernel", "kernel_nobudget"),
        ("kernel_nobudget", "llm_agent"),
        ("core", "llm_agent"),
    ):
        if a in v and b in v:
            ratios[f"{a}/{b}"] = {
                "sequential": v[a]["sequential"]["median_runs_per_s"]
                / v[b]["sequential"]["median_runs_per_s"],
                f"concurrent_{args.width}": v[a][f"concurrent_{args.width}"]["median_runs_per_s"]
                / v[b][f"concurrent_{args.width}"]["median_runs_per_s"],
            }
    result["ratios"] = ratios
    result["target"] = {"kernel_sequential_jobs_per_s": 1000, "best_peer_plain_runs_per_s": 145}
    result["seconds"] = round(time.perf_counter() - t_all, 1)
    common.emit(result, args.out)


if __name__ == "__main__":
    main()
