"""Run every benchmark (llm-client's, then agent-runtime-core's), each in its own process, and print
the markdown tables.

Not a test module. Usage (from the repo root):

    .venv/bin/python bench/run_all.py            # full run, about 13-16 minutes on 2 cores
    .venv/bin/python bench/run_all.py --quick    # smoke run, about a minute or two
    .venv/bin/python bench/run_all.py --only core,redis   # agent-runtime-core's two, ~5 minutes
    .venv/bin/python bench/run_all.py --report   # only print the tables from bench/results/

Each benchmark is started through shared/peer-bench/netns.sh (a loopback-only network namespace)
when that script exists and works here; otherwise the benchmarks run directly (they only ever talk
to 127.0.0.1) and the JSON says so. The exception is `redis`: a fresh namespace cannot reach the
host's Redis on 127.0.0.1:6379, so it always runs directly (it asserts a local host and talks to
nothing else); so do kernel_postgres (PostgreSQL on 127.0.0.1:5432), kafka (the Tansu broker of
`make services` on 127.0.0.1:9092) and kernel_redis. Results go to bench/results/<name>.json (gitignored).
Every child has a timeout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
NETNS = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "peer-bench", "netns.sh"))

BENCHES = [  # (name, script, timeout seconds, run inside netns.sh)
    ("import", "bench_import.py", 600, True),
    ("engine", "bench_engine.py", 300, True),
    ("stream", "bench_stream.py", 300, True),
    ("wire", "bench_wire.py", 500, True),
    ("core", "bench_core.py", 600, True),
    ("redis", "bench_redis.py", 300, False),  # the host's Redis is not in a fresh namespace
    ("framework", "bench_framework.py", 300, True),
    # agent-runtime (the kernel)
    ("kernel", "bench_kernel.py", 900, True),
    ("orchestration", "bench_orchestration.py", 600, True),
    ("replay", "bench_replay.py", 600, True),
    ("kernel_postgres", "bench_kernel_postgres.py", 600, False),  # the host's PostgreSQL (127.0.0.1:5432)
    ("kafka", "bench_kafka.py", 600, False),  # the host's Kafka broker (Tansu on 127.0.0.1:9092)
    ("kernel_redis", "bench_kernel_redis.py", 600, False),  # the host's Redis
]


def netns_prefix() -> list[str]:
    if not os.path.exists(NETNS):
        return []
    try:
        r = subprocess.run([NETNS, "true"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [NETNS] if r.returncode == 0 else []


def run(names: list[str], quick: bool) -> dict:
    os.makedirs(RESULTS, exist_ok=True)
    prefix = netns_prefix()
    meta = {"netns": bool(prefix), "quick": quick, "seconds": {}, "benches": names}
    old = os.path.join(RESULTS, "run_all.json")
    if os.path.exists(old):  # keep the timings of benchmarks not rerun this time
        with open(old) as f:
            prev = json.load(f)
        meta["seconds"] = {
            k: v for k, v in prev.get("seconds", {}).items() if k not in names and k != "total"
        }
    if not prefix:
        print("note: netns.sh unavailable here; running without the loopback-only namespace", file=sys.stderr)
    t_all = time.perf_counter()
    for name, script, timeout, in_netns in BENCHES:
        if name not in names:
            continue
        cmd = (prefix if in_netns else []) + [
            sys.executable,
            os.path.join(HERE, script),
            "--out",
            os.path.join(RESULTS, f"{name}.json"),
        ]
        if quick:
            cmd.append("--quick")
        print(f"== {name}: {' '.join(cmd)}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, timeout=timeout, stdout=subprocess.DEVNULL)
        meta["seconds"][name] = round(time.perf_counter() - t0, 1)
        print(f"== {name}: {meta['seconds'][name]} s", file=sys.stderr, flush=True)
    meta["seconds"]["total"] = round(time.perf_counter() - t_all, 1)
    with open(os.path.join(RESULTS, "run_all.json"), "w") as f:
        json.dump(meta, f, indent=2)
    return meta


# --- report ------------------------------------------------------------------------------------


def load(name: str) -> dict | None:
    path = os.path.join(RESULTS, f"{name}.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def f0(x: float) -> str:
    return f"{x:,.0f}"


def f1(x: float) -> str:
    return f"{x:,.1f}"


def report() -> str:
    out: list[str] = []
    any_r = next((r for r in (load(n) for n, *_ in BENCHES) if r and "machine" in r), None)
    if any_r:
        m = any_r["machine"]
        out.append(
            f"Machine: {m['cpu']}, {m['cores']} cores, {m['implementation']} {m['python']}, "
            f"Linux {m['kernel']}\n"
        )

    r = load("import")
    if r:
        out.append(
            f"### Import time (median of {r['reps']} fresh interpreters; "
            f"bare python {r['bare_python_wall_ms']:.1f} ms)\n"
        )
        out.append(
            "| statement | version | -X importtime ms | wall ms [min-max] | wall - bare ms "
            "| max RSS MiB | SDK modules loaded |"
        )
        out.append("| --- | --- | ---: | ---: | ---: | ---: | --- |")
        for row in r["rows"]:
            sdks = row.get("sdk_modules_loaded")
            out.append(
                f"| `{row['stmt']}`{' (' + ', '.join(f'{k}={v}' for k, v in row['env'].items()) + ')' if row['env'] else ''}"
                f" | {row['version'] or ''} | {f1(row['importtime_ms_median'])} | "
                f"{f1(row['wall_ms_median'])} [{f1(row['wall_ms_min'])}-{f1(row['wall_ms_max'])}] | "
                f"{f1(row['wall_ms_minus_bare_python'])} | {f1(row['maxrss_mib_after_import'])} | "
                f"{'none' if sdks == [] else (', '.join(sdks) if sdks else '')} |"
            )
        out.append("")

    r = load("wire")
    if r:
        a = r["args"]
        w = a["width"]
        out.append(
            f"### Wire calls/s on the local stub ({a['trials']} interleaved trials x {a['n']} "
            f"sequential calls, and x {max(1, -(-a['n'] // w))} gathers of {w}; "
            f"stub saw {r['stub_requests_seen']} of {r['stub_requests_sent']} requests sent)\n"
        )
        out.append("| variant | seq calls/s [min-max] | us/call | gather-100 calls/s [min-max] |")
        out.append("| --- | ---: | ---: | ---: |")
        for name, v in r["variants"].items():
            s, c = v["sequential"], v[f"concurrent_{w}"]
            out.append(
                f"| {name} | {f0(s['median_runs_per_s'])} [{f0(s['min_runs_per_s'])}-"
                f"{f0(s['max_runs_per_s'])}] | {f0(s['median_us_per_run'])} | "
                f"{f0(c['median_runs_per_s'])} [{f0(c['min_runs_per_s'])}-{f0(c['max_runs_per_s'])}] |"
            )
        out.append("")
        out.append("| ratio (of medians) | sequential | gather-100 |")
        out.append("| --- | ---: | ---: |")
        seqr, conr = r["ratios"]["sequential"], r["ratios"][f"concurrent_{w}"]
        for k in seqr:
            if seqr[k] is not None:
                out.append(f"| {k} | {seqr[k]:.2f}x | {conr[k]:.2f}x |")
        out.append("")

    r = load("stream")
    if r:
        for part, title, net in (
            ("wire", "Streaming over the stub (SSE, one-char chunks)", "net_us_per_token_over_raw_sdk"),
            ("mock", "Streaming with MockProvider (no wire)", "net_us_per_token_over_mock_floor"),
        ):
            if part not in r:
                continue
            any_v = next(iter(r[part].values()))
            out.append(f"### {title}: {any_v['tokens']} tokens, {any_v['reps']} interleaved reps\n")
            label = "net over raw SDK us/token" if part == "wire" else "net over mock floor us/token"
            out.append(
                f"| variant | marginal us/token [per-rep min-max] | total us/token | {label} "
                "| 1-token run ms |"
            )
            out.append("| --- | ---: | ---: | ---: | ---: |")
            for name, v in r[part].items():
                out.append(
                    f"| {name} | {f1(v['us_per_token_marginal'])} [{f1(v['marginal_per_rep_min'])}-"
                    f"{f1(v['marginal_per_rep_max'])}] | {f1(v['us_per_token_total'])} | "
                    f"{v[net]:+.1f} | {v['run_ms_with_1_token']:.2f} |"
                )
            out.append("")

    r = load("engine")
    if r:
        eo = r["engine_overhead"]
        out.append(
            f"### Engine overhead per call, MockProvider (handler returns a prebuilt result; "
            f"{r['args']['trials']} interleaved trials x {eo['direct']['calls_per_trial']} calls)\n"
        )
        out.append("| path | us/call [min-max] | overhead over provider.complete us [min-max] |")
        out.append("| --- | ---: | ---: |")
        for name, v in eo.items():
            u = v["us_per_call"]
            ov = v.get("overhead_us")
            ovs = f"{ov['median']:.1f} [{ov['min']:.1f}-{ov['max']:.1f}]" if ov else "-"
            out.append(f"| {name} | {u['median']:.1f} [{u['min']:.1f}-{u['max']:.1f}] | {ovs} |")
        out.append("")
        a = r["args"]
        out.append(
            f'### Agent run (tool call add(1,2) then "3"), MockProvider: {a["trials"]} x {a["n"]} '
            f"sequential runs, {a['trials']} x {max(1, a['n'] // a['width'])} gathers of {a['width']}\n"
        )
        out.append(
            "| agent | seq runs/s [min-max] | us/run | gather-100 runs/s [min-max] | RSS after import MiB "
            "| peak RSS MiB |"
        )
        out.append("| --- | ---: | ---: | ---: | ---: | ---: |")
        for name, v in r["agent_run"].items():
            s, c = v["sequential"], v[f"concurrent_{a['width']}"]
            out.append(
                f"| {name} | {f0(s['median_runs_per_s'])} [{f0(s['min_runs_per_s'])}-"
                f"{f0(s['max_runs_per_s'])}] | {f0(s['median_us_per_run'])} | "
                f"{f0(c['median_runs_per_s'])} [{f0(c['min_runs_per_s'])}-{f0(c['max_runs_per_s'])}] | "
                f"{f1(r['rss_mib_after_import'])} | {f1(v['peak_rss_mib_end'])} |"
            )
        g = r.get("mock_calls_growth")
        if g:
            out.append(
                f"\nMockProvider.calls after {g['runs']} runs without clearing: "
                f"{g['recorded_specs']} RequestSpecs, RSS +{g['rss_growth_mib']:.1f} MiB."
            )
        out.append("")
    out.extend(report_core())
    out.extend(report_kernel())
    meta = os.path.join(RESULTS, "run_all.json")
    if os.path.exists(meta):
        with open(meta) as f:
            mt = json.load(f)
        out.append(f"run_all: {mt['seconds']} seconds; netns={mt['netns']}; quick={mt['quick']}")
    return "\n".join(out)


def report_core() -> list[str]:
    """Tables of bench_core.py and bench_redis.py (agent-runtime-core)."""
    out: list[str] = []
    r = load("core")
    if r:
        a, fw = r["args"], r["frameworks"]
        w = a["width"]
        rpt = r["runs_per_trial"]
        out.append(
            f"### Agent run side by side, one process per framework ({a['trials']} interleaved trials; "
            f"runs per trial: ours {rpt.get('core', a['n'])}, peers {a['peer_n']}, plain {a['plain_n']}; "
            f"gather-{w}: runs/{w} gathers of {w})\n"
        )
        out.append(
            f"| framework | seq runs/s [min-max] | us/run | gather-{w} runs/s [min-max] | x best peer seq "
            f"| x best peer gather | RSS after import MiB | peak RSS MiB after warm-up (runs) "
            f"| peak RSS MiB after 1st trial (runs) | peak RSS MiB after all runs (runs) |"
        )
        out.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for n, v in fw.items():
            s_, c_ = v["sequential"], v[f"concurrent_{w}"]
            ratio = v.get("ratio_to_best_peer", {})
            aw, a1, ar = v["after_warmup"], v["after_first_seq_trial"], v["after_runs"]
            out.append(
                f"| {r['labels'][n]} | {f0(s_['median_runs_per_s'])} [{f0(s_['min_runs_per_s'])}-"
                f"{f0(s_['max_runs_per_s'])}] | {f0(s_['median_us_per_run'])} | {f0(c_['median_runs_per_s'])} "
                f"[{f0(c_['min_runs_per_s'])}-{f0(c_['max_runs_per_s'])}] | "
                f"{ratio.get('sequential', 0):.1f}x | {ratio.get(f'concurrent_{w}', 0):.1f}x | "
                f"{f1(v['ready']['rss_mib_after_import'])} | {f1(aw['peak_rss_mib'])} ({aw['runs_done']:,}) | "
                f"{f1(a1['peak_rss_mib'])} ({a1['runs_done']:,}) | {f1(ar['peak_rss_mib'])} ({ar['runs_done']:,}) |"
            )
        bp = r.get("best_peer", {})
        if bp:
            out.append(
                "\nBest peer in this run: "
                + "; ".join(f"{k}: {v['framework']} {f0(v['runs_per_s'])} runs/s" for k, v in bp.items())
            )
        core = fw.get("core")
        if core and core.get("end", {}).get("event_bus_events_retained") is not None:
            e = core["end"]
            out.append(
                f"\nagent-runtime-core's in-memory event bus held {e['event_bus_events_retained']:,} events of "
                f"{e['event_bus_runs_retained']:,} runs at the end (it keeps every run's history); RSS after "
                f"each sequential trial: {core['sequential']['rss_mib_after_each_trial']} MiB."
            )
        out.append("")
        any_s = next((v["stream"] for v in fw.values() if v.get("stream")), None)
        if any_s:
            t = next(iter(any_s.values()))
            out.append(
                f"### Streaming {t['tokens']} one-char tokens after the tool call, {t['reps']} interleaved reps "
                "(marginal = (median t(N) - median t(1)) / (N - 1))\n"
            )
            out.append(
                "| framework | variant | marginal us/token [per-rep min-max] | net over own fake-model floor "
                "| added over llm-client engine.stream | 1-token run ms |"
            )
            out.append("| --- | --- | ---: | ---: | ---: | ---: |")
            for n, v in fw.items():
                for sname, x in v.get("stream", {}).items():
                    added = x.get(
                        "added_us_per_token_over_engine", x.get("added_us_per_token_over_engine_yield")
                    )
                    out.append(
                        f"| {r['labels'][n]} | {sname} | {f1(x['us_per_token_marginal'])} "
                        f"[{f1(x['marginal_per_rep_min'])}-{f1(x['marginal_per_rep_max'])}] | "
                        f"{x.get('net_us_per_token_over_floor', 0):+.1f} | "
                        f"{'' if added is None else f'{added:+.1f}'} | {x['run_ms_with_1_token']:.2f} |"
                    )
            out.append("")
        for n, v in fw.items():
            d = v.get("decomposition_us_per_run")
            if not d:
                continue
            out.append(
                f"### Where a run's time goes: {r['labels'][n]} ({a['trials']} interleaved trials x "
                f"{v['decomposition_runs_per_trial']} sequential runs, same provider, in-process)\n"
            )
            out.append("| what | us/run [min-max] |")
            out.append("| --- | ---: |")
            for k, x in d.items():
                out.append(f"| {k} | {f1(x['median'])} [{f1(x['min'])}-{f1(x['max'])}] |")
            out.append("")
        out.append(f"bench_core: {r['seconds']:.0f} s")
        out.append("")

    r = load("redis")
    if r and "skipped" in r:
        out.append(f"### Redis: skipped ({r['skipped']})\n")
    elif r:
        a = r["args"]
        c = a["clients"]
        out.append(
            f"### Redis throughput, 127.0.0.1:6379 (Redis {r['redis_server']['redis_version']}; "
            f"{a['trials']} interleaved trials x {a['n']} operations; concurrent = {c} clients; "
            f"payload {r['payload_bytes']} B)\n"
        )
        out.append(
            f"| operation | seq ops/s [min-max] | us/op | {c} clients ops/s [min-max] | ratio to redis-benchmark "
            "(same -c) |"
        )
        out.append("| --- | ---: | ---: | ---: | --- |")
        for n, v in r["ours"].items():
            s_, c_ = v["sequential"], v[f"concurrent_{c}"]
            rat = "; ".join(f"{k}: {x:.3f}" for k, x in r["ratios"].get(n, {}).items())
            out.append(
                f"| {n} | {f0(s_['median_ops_per_s'])} [{f0(s_['min_ops_per_s'])}-{f0(s_['max_ops_per_s'])}] | "
                f"{f0(s_['median_us_per_op'])} | {f0(c_['median_ops_per_s'])} [{f0(c_['min_ops_per_s'])}-"
                f"{f0(c_['max_ops_per_s'])}] | {rat} |"
            )
        out.append("")
        out.append(f"| redis-benchmark ({a['rb_n']} requests, same trials) | ops/s [min-max] |")
        out.append("| --- | ---: |")
        for k, v in r["redis_benchmark"].items():
            out.append(
                f"| {k} | {f0(v['median_ops_per_s'])} [{f0(v['min_ops_per_s'])}-{f0(v['max_ops_per_s'])}] |"
            )
        out.append(
            f"\nKeys under `{r['prefix']}:*` deleted at the end: {r['keys_deleted_at_cleanup']}; "
            f"left: {r['keys_left']}. bench_redis: {r['seconds']:.0f} s"
        )
        out.append("")
    return out


def report_kernel() -> list[str]:
    """agent-runtime (the kernel): bench_kernel, bench_kernel_postgres, orchestration, replay,
    kafka and kernel_redis."""
    out: list[str] = []
    r = load("kernel")
    if r:
        a = r["args"]
        w = a["width"]
        out.append(
            f"### RuntimeKernel.execute vs AgentRunner ({a['trials']} interleaved trials x up to {a['n']} "
            f"sequential jobs, {a['budget']:.0f} s cap per loop; gather-{w}: {max(1, a['n'] // w)} gathers)\n"
        )
        out.append(
            f"| variant | seq jobs/s [min-max] | seq p50 / p99 ms | gather-{w} jobs/s [min-max] "
            f"| gather p50 / p99 ms | peak RSS MiB |"
        )
        out.append("| --- | ---: | ---: | ---: | ---: | ---: |")
        for name, v in r["variants"].items():
            s_, c_ = v["sequential"], v[f"concurrent_{w}"]
            out.append(
                f"| {v['label']} | {f1(s_['median_runs_per_s'])} [{f1(s_['min_runs_per_s'])}-"
                f"{f1(s_['max_runs_per_s'])}] | {s_['p50_ms']:.2f} / {s_['p99_ms']:.2f} | "
                f"{f1(c_['median_runs_per_s'])} [{f1(c_['min_runs_per_s'])}-{f1(c_['max_runs_per_s'])}] | "
                f"{c_['p50_ms']:.1f} / {c_['p99_ms']:.1f} | {f1(v['peak_rss_mib'])} |"
            )
        out.append("")
        for k, v in r["ratios"].items():
            out.append(f"- {k}: sequential {v['sequential']:.3f}x, gather-{w} {v[f'concurrent_{w}']:.3f}x")
        probe = r.get("budget_scaling_probe")
        if probe:
            out.append("\n| in-memory ledger events of the scope before | kernel jobs/s | ms/job |")
            out.append("| ---: | ---: | ---: |")
            for p in probe:
                out.append(
                    f"| {f0(p['ledger_events_before'])} | {f1(p['jobs_per_s'])} | {p['ms_per_job']:.1f} |"
                )
        out.append(f"\nbench_kernel: {r['seconds']:.0f} s\n")
    r = load("kernel_postgres")
    if r:
        a = r["args"]
        out.append(
            f"### PostgreSQL stores, {a['clients']} clients vs pgbench -N -c {a['clients']} "
            f"({a['trials']} interleaved trials; {r['server'].split(' on ')[0]})\n"
        )
        out.append("| variant | per s, median [min-max] | by trial | ratio to pgbench tps |")
        out.append("| --- | ---: | --- | ---: |")
        pg = r["results"]["pgbench"]["median_per_s"]
        for n, v in r["results"].items():
            out.append(
                f"| {n} | {f0(v['median_per_s'])} [{f0(v['min_per_s'])}-{f0(v['max_per_s'])}] | "
                f"{', '.join(f0(t['per_s']) for t in v['by_trial'])} | {v['median_per_s'] / pg:.3f} |"
            )
        probe = r.get("budget_ledger_size_probe") or []
        if probe:
            out.append("\n| ledger events of the scope before | budget reservations/s |")
            out.append("| ---: | ---: |")
            for p in probe:
                out.append(f"| {f0(p['ledger_rows_before'])} | {f0(p['per_s'])} |")
        out.append(f"\nbench_kernel_postgres: {r['seconds']:.0f} s\n")
    r = load("orchestration")
    if r:
        out.append(f"### Orchestration, {r['dag']['nodes']}-node DAG ({r['trials']} interleaved trials)\n")
        out.append("| variant | us/node [min-max of run ms] | nodes/s |")
        out.append("| --- | ---: | ---: |")
        for n, v in r["results"].items():
            out.append(
                f"| {n} | {f1(v['median_us_per_node'])} [{f1(v['min_ms'])}-{f1(v['max_ms'])} ms] | "
                f"{f0(v['median_nodes_per_s'])} |"
            )
        out.append("")
    r = load("replay")
    if r:
        out.append(f"### Replay of a {r['events']}-event recording ({r['trials']} interleaved trials)\n")
        out.append("| mode | events/s median [min-max] | s |")
        out.append("| --- | ---: | ---: |")
        for n, v in r["results"].items():
            out.append(
                f"| {n} | {f0(v['events_per_second_median'])} [{f0(v['events_per_second_min'])}-"
                f"{f0(v['events_per_second_max'])}] | {v['seconds_median']:.3f} |"
            )
        out.append("")
    r = load("kafka")
    if r:
        out.append(f"### Kafka ({r['bootstrap']}, {r['n']} events x {r['trials']} trials)\n")
        out.append("| variant | events/s median [min-max] | ratio to raw aiokafka |")
        out.append("| --- | ---: | ---: |")
        for n, v in r["events_per_s"].items():
            out.append(
                f"| {n} | {f0(v['median'])} [{f0(v['min'])}-{f0(v['max'])}] | {r['ratio_vs_raw'][n]:.2f} |"
            )
        out.append("")
    r = load("kernel_redis")
    if r:
        out.append(f"### Redis Streams adapter vs redis-benchmark XADD ({r['args']['trials']} trials)\n")
        out.append("| variant | events/s median [min-max] | ratio to redis-benchmark (same -c) |")
        out.append("| --- | ---: | ---: |")
        for n, v in r["events_per_s"].items():
            out.append(
                f"| {n} | {f0(v['median'])} [{f0(v['min'])}-{f0(v['max'])}] | "
                f"{r['ratio_to_redis_benchmark'].get(n, float('nan')):.3f} |"
            )
        for n, v in r["redis_benchmark_ops_per_s"].items():
            out.append(f"| redis-benchmark {n} | {f0(v['median'])} [{f0(v['min'])}-{f0(v['max'])}] | 1 |")
        out.append("")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run of every benchmark")
    ap.add_argument("--only", default=",".join(n for n, *_ in BENCHES), help="comma-separated names")
    ap.add_argument("--report", action="store_true", help="only print tables from bench/results/")
    args = ap.parse_args()
    if not args.report:
        run(args.only.split(","), args.quick)
    print(report())


if __name__ == "__main__":
    main()
