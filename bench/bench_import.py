"""Cold-process import time of llm-client and agent-runtime-core, side by side with the SDKs llm-client
wraps and the agent frameworks agent-runtime-core is compared with. Not a test module.

Same method as shared/peer-bench/bench_import.py: for each target one priming run (writes .pyc,
fills the page cache), then --reps fresh interpreters of each of
  python -X importtime -c "<stmt>"   -> sum of top-level cumulative times after `site`
  python -c "<stmt>"                 -> process wall time (also prints ru_maxrss, one getrusage call)
Reps are interleaved across targets (rep 1 of every target, then rep 2, ...), so a slow phase of a
noisy machine hits every target alike. Also checks which SDK modules each llm_client /
agent_runtime_core statement pulled in (it must be none). Every subprocess has a timeout.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402

LLM_CLIENT_TARGETS = [
    ("llm_client", "import llm_client", "llm-client", {}),
    (
        "llm_client Agent/ExecutionEngine/OpenAIProvider",
        "from llm_client import Agent, ExecutionEngine, OpenAIProvider",
        "llm-client",
        {},
    ),
    ("llm_client.providers.openai", "import llm_client.providers.openai", "llm-client", {}),
]
CORE_TARGETS = [
    ("agent_runtime_core", "import agent_runtime_core", "agent-runtime-core", {}),
    (
        "agent_runtime_core AgentRunner/ToolCallingAgent",
        "from agent_runtime_core import AgentRunner, ToolCallingAgent",
        "agent-runtime-core",
        {},
    ),
]
OURS = ("llm_client", "agent_runtime_core")  # statements checked for SDK modules
PEER_TARGETS = [
    ("bare python", "pass", None, {}),
    ("asyncio (stdlib reference)", "import asyncio", None, {}),
    ("openai", "import openai", "openai", {}),
    ("anthropic", "import anthropic", "anthropic", {}),
    (
        "litellm (LITELLM_LOCAL_MODEL_COST_MAP=True)",
        "import litellm",
        "litellm",
        {"LITELLM_LOCAL_MODEL_COST_MAP": "True"},
    ),
    # the agent frameworks agent-runtime-core is compared with (RESULTS.md section 1)
    ("pydantic-ai-slim", "import pydantic_ai", "pydantic-ai-slim", {}),
    ("openai-agents", "import agents", "openai-agents", {}),
    ("langgraph + prebuilt", "import langgraph.graph, langgraph.prebuilt", "langgraph", {}),
]
SDKS = ("openai", "anthropic", "litellm", "httpx", "httpx2", "aiohttp", "pydantic", "opentelemetry", "redis")


def env_for(extra: dict) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("LITELLM_LOCAL_MODEL_COST_MAP", "PYTHONPROFILEIMPORTTIME", "PYTHONDONTWRITEBYTECODE")
    }
    env.update(extra)
    return env


def importtime_us(py: str, stmt: str, env: dict, timeout: float) -> float:
    r = subprocess.run(
        [py, "-X", "importtime", "-c", stmt], capture_output=True, text=True, env=env, timeout=timeout
    )
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:])
    total, after_site = 0, False
    for line in r.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        parts = line.split("|")
        cum, raw_name = int(parts[1]), parts[2]
        depth0 = raw_name.startswith(" ") and not raw_name.startswith("  ")
        if depth0 and raw_name.strip() == "site":
            after_site = True
            continue
        if after_site and depth0:
            total += cum
    return float(total)


def wall_and_rss(py: str, stmt: str, env: dict, timeout: float) -> tuple[float, float]:
    code = stmt + "\nimport resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    t0 = time.perf_counter()
    r = subprocess.run([py, "-c", code], check=True, env=env, timeout=timeout, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    return dt, int(r.stdout.strip().splitlines()[-1]) / 1024.0


def sdk_modules(py: str, stmt: str, env: dict, timeout: float) -> list[str]:
    code = stmt + f"\nimport sys; print(','.join(m for m in {SDKS!r} if m in sys.modules))"
    r = subprocess.run([py, "-c", code], check=True, env=env, timeout=timeout, capture_output=True, text=True)
    line = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
    return [m for m in line.split(",") if m]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--out", default=None)
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 reps, ours + bare python + openai")
    ap.add_argument(
        "--no-peers", action="store_true", help="only llm_client, agent_runtime_core, bare python"
    )
    args = ap.parse_args()
    py = sys.executable
    targets = LLM_CLIENT_TARGETS + CORE_TARGETS + PEER_TARGETS

    def ours(stmt: str) -> bool:
        return any(m in stmt for m in OURS)

    if args.quick:
        args.reps = 2
        targets = [t for t in targets if t[0] in ("bare python", "openai") or ours(t[1])]
    elif args.no_peers:
        targets = [t for t in targets if t[0] == "bare python" or ours(t[1])]

    samples = {t[0]: {"it": [], "wall": [], "rss": []} for t in targets}
    for label, stmt, _, extra in targets:  # priming run (pyc + page cache)
        wall_and_rss(py, stmt, env_for(extra), args.timeout)
    for rep in range(args.reps):
        for label, stmt, _, extra in targets:
            env = env_for(extra)
            samples[label]["it"].append(importtime_us(py, stmt, env, args.timeout))
            w, rss = wall_and_rss(py, stmt, env, args.timeout)
            samples[label]["wall"].append(w)
            samples[label]["rss"].append(rss)
        print(f"rep {rep + 1}/{args.reps} done", file=sys.stderr, flush=True)

    bare = statistics.median(samples["bare python"]["wall"])
    rows = []
    for label, stmt, dist, extra in targets:
        s = samples[label]
        row = {
            "label": label,
            "stmt": stmt,
            "env": extra,
            "version": common.versions(dist)[dist] if dist else None,
            "importtime_ms_median": statistics.median(s["it"]) / 1e3,
            "importtime_ms_all": [round(x / 1e3, 1) for x in s["it"]],
            "wall_ms_median": statistics.median(s["wall"]) * 1e3,
            "wall_ms_min": min(s["wall"]) * 1e3,
            "wall_ms_max": max(s["wall"]) * 1e3,
            "wall_ms_minus_bare_python": (statistics.median(s["wall"]) - bare) * 1e3,
            "wall_ms_all": [round(x * 1e3, 1) for x in s["wall"]],
            "maxrss_mib_after_import": statistics.median(s["rss"]),
        }
        if ours(stmt):
            row["sdk_modules_loaded"] = sdk_modules(py, stmt, env_for(extra), args.timeout)
        rows.append(row)
        print(
            f"{label:50s} importtime {row['importtime_ms_median']:8.1f} ms   wall "
            f"{row['wall_ms_median']:8.1f} ms",
            file=sys.stderr,
            flush=True,
        )
    out = {
        "benchmark": "import",
        "machine": common.machine(),
        "bare_python_wall_ms": bare * 1e3,
        "reps": args.reps,
        "rows": rows,
        "target_ms": 50.0,
        "target_ms_agent_runtime_core": 80.0,
        "versions": common.versions(
            "llm-client",
            "agent-runtime-core",
            "openai",
            "anthropic",
            "litellm",
            "pydantic-ai-slim",
            "openai-agents",
            "langgraph",
        ),
        **common.info_header(),
    }
    common.emit(out, args.out or os.path.join(common.RESULTS_DIR, "import.json"))


if __name__ == "__main__":
    main()
