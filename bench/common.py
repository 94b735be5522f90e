"""Shared timing helpers for agent-runtime's benchmarks (not a test module; never collected).

The first half is copied from shared/peer-bench/common.py (the peer frameworks' harness), so our
numbers are taken with the same method as RESULTS.md there; this repo must not import ../shared
at run time. The second half adds what our benchmarks need on top: the local stub process, the
machine line, and interleaved trials (every variant runs once per trial, in turn, so slow phases
of a noisy machine hit all variants alike).

Every loop here is bounded twice: by a run count and by a wall-clock budget.
Nothing in this module touches the network except the 127.0.0.1 stub it starts.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from importlib import metadata

RunOnce = Callable[[], Awaitable[object]]


def peak_rss_mib() -> float:
    # ru_maxrss is KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024.0 * 1024.0)


def versions(*dists: str) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for d in dists:
        try:
            out[d] = metadata.version(d)
        except metadata.PackageNotFoundError:
            out[d] = "not installed"
    return out


async def sequential(run_once: RunOnce, n: int, budget_s: float) -> dict:
    """Run `n` runs one after another; stop early if `budget_s` is exceeded."""
    done = 0
    c0 = time.process_time()
    t0 = time.perf_counter()
    deadline = t0 + budget_s
    for _ in range(n):
        await run_once()
        done += 1
        if time.perf_counter() > deadline:
            break
    dt = time.perf_counter() - t0
    cpu = time.process_time() - c0
    # cpu_per_wall ~1.0 means CPU-bound in this process (no hidden sleeps / waits)
    return {
        "runs": done,
        "seconds": dt,
        "runs_per_s": done / dt,
        "us_per_run": dt / done * 1e6,
        "cpu_per_wall": cpu / dt,
    }


async def concurrent(run_once: RunOnce, width: int, batches: int, budget_s: float) -> dict:
    """`batches` rounds of asyncio.gather over `width` runs each; bounded by `budget_s`."""
    done = 0
    t0 = time.perf_counter()
    deadline = t0 + budget_s
    for _ in range(batches):
        await asyncio.gather(*(run_once() for _ in range(width)))
        done += width
        if time.perf_counter() > deadline:
            break
    dt = time.perf_counter() - t0
    return {"runs": done, "seconds": dt, "runs_per_s": done / dt, "us_per_run": dt / done * 1e6}


async def timed_once(coro_factory: RunOnce) -> float:
    t0 = time.perf_counter()
    await coro_factory()
    return time.perf_counter() - t0


async def stream_cost(
    stream_run: Callable[[int], Awaitable[int]], tokens: int, reps: int, budget_s: float
) -> dict:
    """Per-token cost of streaming `tokens` tokens through a framework.

    `stream_run(k)` performs one full streamed run whose model emits `k` text tokens and
    returns how many text deltas the caller received.  The marginal per-token cost is
    (median t(tokens) - median t(1)) / (tokens - 1), which removes the fixed per-run cost.
    """
    t_big, t_one = [], []
    deadline = time.perf_counter() + budget_s
    got = None
    for _ in range(reps):
        t0 = time.perf_counter()
        got = await stream_run(tokens)
        t_big.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        await stream_run(1)
        t_one.append(time.perf_counter() - t0)
        if time.perf_counter() > deadline:
            break
    mb, mo = statistics.median(t_big), statistics.median(t_one)
    return {
        "tokens": tokens,
        "reps": len(t_big),
        "deltas_received": got,
        "run_ms_with_tokens": mb * 1e3,
        "run_ms_with_1_token": mo * 1e3,
        "us_per_token_total": mb / tokens * 1e6,
        "us_per_token_marginal": (mb - mo) / (tokens - 1) * 1e6,
    }


def summarize_trials(trials: list[dict]) -> dict:
    rps = [t["runs_per_s"] for t in trials]
    return {
        "trials": len(trials),
        "runs_per_trial": [t["runs"] for t in trials],
        "median_runs_per_s": statistics.median(rps),
        "min_runs_per_s": min(rps),
        "max_runs_per_s": max(rps),
        "median_us_per_run": 1e6 / statistics.median(rps),
        "median_cpu_per_wall": statistics.median(t.get("cpu_per_wall", float("nan")) for t in trials),
    }


async def full_suite(
    name: str,
    run_once: RunOnce,
    check: Callable[[], Awaitable[None]],
    stream_run: Callable[[int], Awaitable[int]] | None,
    *,
    n_seq: int,
    warmup: int,
    width: int,
    trials: int,
    stream_tokens: int,
    stream_reps: int,
    budget_s: float,
    extra: dict | None = None,
) -> dict:
    rss_before = current_rss_mib()
    await check()  # correctness: raises if the run did not call the tool and answer
    for _ in range(warmup):
        await run_once()
    gc.collect()
    seq = [await sequential(run_once, n_seq, budget_s) for _ in range(trials)]
    batches = max(1, n_seq // width)
    # warm up the concurrent path once (first gather allocates a lot)
    await concurrent(run_once, width, 1, budget_s)
    conc = [await concurrent(run_once, width, batches, budget_s) for _ in range(trials)]
    result = {
        "framework": name,
        "rss_mib_after_import": rss_before,
        "sequential": summarize_trials(seq),
        f"concurrent_{width}": summarize_trials(conc),
        "peak_rss_mib_after_runs": peak_rss_mib(),
    }
    if stream_run is not None:
        await stream_run(stream_tokens)  # warm-up
        result["stream"] = await stream_cost(stream_run, stream_tokens, stream_reps, budget_s)
    result["peak_rss_mib_end"] = peak_rss_mib()
    if extra:
        result.update(extra)
    return result


def emit(result: dict, out_path: str | None) -> None:
    text = json.dumps(result, indent=2, sort_keys=False)
    print(text)
    if out_path:
        os.makedirs(os.path.dirname(out_path) or ".", exist_ok=True)
        with open(out_path, "w") as f:
            f.write(text + "\n")


def base_argparser(desc: str):
    import argparse

    p = argparse.ArgumentParser(description=desc)
    p.add_argument("--n", type=int, default=2000, help="sequential runs per trial")
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--width", type=int, default=100, help="asyncio.gather width")
    p.add_argument("--trials", type=int, default=5)
    p.add_argument("--stream-tokens", type=int, default=1000)
    p.add_argument("--stream-reps", type=int, default=21)
    p.add_argument("--budget", type=float, default=120.0, help="max seconds per loop")
    p.add_argument("--out", default=None, help="write JSON result here")
    return p


def info_header() -> dict:
    return {"argv": sys.argv[1:], "python": platform.python_version(), "cpus": os.cpu_count()}


# --------------------------------------------------------------------------------------------
# Additions for agent-runtime's bench/ (not in peer-bench).

import subprocess  # noqa: E402
import urllib.request  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS_DIR = os.path.join(HERE, "results")


def start_stub(cpu: str | None = "1", max_seconds: float = 900) -> tuple[subprocess.Popen, int]:
    """Start bench/stub_server.py in its own process (pinned to `cpu` with taskset) on 127.0.0.1."""
    cmd = [sys.executable, os.path.join(HERE, "stub_server.py"), "--max-seconds", str(max_seconds)]
    if cpu:
        cmd = ["taskset", "-c", cpu] + cmd
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()  # type: ignore[union-attr]
    if not line.startswith("PORT "):
        proc.kill()
        raise RuntimeError(f"stub did not start: {line!r}")
    return proc, int(line.split()[1])


def stop_stub(proc: subprocess.Popen) -> None:
    proc.kill()  # by pid: the child we started
    proc.wait(timeout=10)


def stub_count(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5) as r:
        return json.loads(r.read())["requests"]


def pin_client(cpu: int | None = 0) -> None:
    """Pin this (client) process to `cpu`, the other core from the stub's."""
    if cpu is not None and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {cpu})


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "kernel": platform.release(),
    }


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def spread(xs: list[float]) -> dict:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "all": xs}


async def interleaved(variants: dict[str, RunOnce], trials: int, measure) -> dict[str, list[dict]]:
    """Run `measure(fn)` once per variant per trial, variants in turn (rotated each trial)."""
    names = list(variants)
    out: dict[str, list[dict]] = {n: [] for n in names}
    for t in range(trials):
        order = names[t % len(names) :] + names[: t % len(names)]
        for n in order:
            out[n].append(await measure(variants[n]))
    return out


def quick_or(args, quick, full):
    return quick if getattr(args, "quick", False) else full


# --------------------------------------------------------------------------------------------
# Worker processes: one framework per process, driven trial by trial from one parent, so every
# framework's RSS is its own and trials still interleave across frameworks (bench_core.py).
# Protocol: one JSON object per line. The worker writes "READY <json>" once, then answers each
# command line with one JSON line ({"error": ...} on failure). Its real stdout is kept for the
# protocol; fd 1 is pointed at stderr so a framework that prints cannot corrupt it.

import select  # noqa: E402


class WorkerProc:
    """Parent side: a child process answering JSON commands; every read has a timeout."""

    def __init__(self, name: str, cmd: list[str], *, timeout: float = 300.0, env: dict | None = None):
        self.name = name
        self.timeout = timeout
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1, env=env
        )
        self.info: dict = {}

    def _readline(self, timeout: float) -> str:
        out = self.proc.stdout
        assert out is not None
        r, _, _ = select.select([out], [], [], timeout)
        if not r:
            raise TimeoutError(f"worker {self.name}: no answer within {timeout:.0f} s")
        line = out.readline()
        if not line:
            raise RuntimeError(f"worker {self.name} exited (rc={self.proc.poll()})")
        return line

    def wait_ready(self, timeout: float | None = None) -> dict:
        line = self._readline(timeout or self.timeout)
        if not line.startswith("READY "):
            raise RuntimeError(f"worker {self.name}: expected READY, got {line[:200]!r}")
        self.info = json.loads(line[6:])
        return self.info

    def call(self, cmd: str, timeout: float | None = None, **kw) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, **kw}) + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self._readline(timeout or self.timeout))
        if "error" in reply:
            raise RuntimeError(f"worker {self.name} failed on {cmd}: {reply['error']}")
        return reply

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=20)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                self.proc.kill()  # by pid: the child we started
                self.proc.wait(timeout=10)


async def serve_worker(handlers: dict[str, Callable[..., Awaitable[dict]]], ready: dict) -> None:
    """Child side: answer JSON command lines from stdin with `handlers[cmd](**args)` until "quit".

    Reading stdin blocks the event loop on purpose: the worker does nothing between commands (it
    lets the loop turn a few times after each one).
    """
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything the framework prints goes to stderr
    sys.stdout = sys.stderr
    proto.write("READY " + json.dumps(ready) + "\n")
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        msg = json.loads(line)
        cmd = msg.pop("cmd")
        if cmd == "quit":
            return
        try:
            reply = await handlers[cmd](**msg)
        except Exception as exc:  # report, keep serving: the parent decides
            import traceback

            reply = {"error": f"{type(exc).__name__}: {exc}\n{traceback.format_exc()[-3000:]}"}
        proto.write(json.dumps(reply) + "\n")
        # Let the loop turn between commands, as a serving process's loop does: a sequential trial
        # of runs that never suspend leaves work for the loop (async-generator finalizers, cancelled
        # timers) that would otherwise pile up across trials and inflate the next trial's RSS.
        for _ in range(3):
            await asyncio.sleep(0)


def marginal_us(t_big: list[float], t_one: list[float], tokens: int) -> dict:
    """peer-bench's streaming method over paired reps: (median t(N) - median t(1)) / (N - 1)."""
    mb, mo = statistics.median(t_big), statistics.median(t_one)
    per_rep = sorted((b - o) / (tokens - 1) * 1e6 for b, o in zip(t_big, t_one))
    return {
        "tokens": tokens,
        "reps": len(t_big),
        "run_ms_with_tokens": mb * 1e3,
        "run_ms_with_1_token": mo * 1e3,
        "us_per_token_total": mb / tokens * 1e6,
        "us_per_token_marginal": (mb - mo) / (tokens - 1) * 1e6,
        "marginal_per_rep_min": per_rep[0],
        "marginal_per_rep_max": per_rep[-1],
    }
