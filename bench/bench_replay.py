"""Replay speed: events per second of ReplayPlayer in FAST and DETERMINISTIC modes, for a recording
of about 10,000 events. Numbers only: not a test module, never collected, no network.

The recording is made by running a real RuntimeKernel job against llm-client's MockProvider with
the recorder's middleware and wrapped tools: `--turns` turns, each streaming `--tokens` one-word
chunks and calling the `add` tool, then a final streamed answer. With the defaults that is
100 x (96 tokens + model.done + tool.start + tool.end) + 97 tokens + model.done + job.started +
final.result + job.completed = 10,001 events.

Measured, each in `--trials` interleaved trials (median, min, max reported):

  record         the live run being recorded (kernel + mock model + recorder), for scale
  fast           ReplayPlayer.replay(FAST) republishing every event to an InMemoryEventBus with one
                 subscriber (new event ids and a remapped job id per event)
  fast_preserve  the same with preserve_ids=True (events republished as recorded)
  deterministic  ReplayPlayer.replay(DETERMINISTIC): the job re-executed in a fresh kernel with the
                 recorded responses and tool results, recorded again, fingerprints compared
  save / load    Recording.save / Recording.load of the 10k-event recording (JSON file in a tmp dir)

Usage: .venv/bin/python bench/bench_replay.py [--quick] [--out bench/results/replay.json]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import tempfile
import time

from agent_runtime import (
    ExecutionRequest,
    InMemoryEventBus,
    Recording,
    ReplayMode,
    ReplayPlayer,
    ReplayRecorder,
    RunMetadata,
    RuntimeKernel,
)
from common import emit, machine, versions
from llm_client import Agent, ExecutionEngine, MockProvider, MockResponse


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def script(turns: int, tokens: int) -> list[MockResponse]:
    words = " ".join(f"w{i}" for i in range(tokens))
    out = [MockResponse.tool_call("add", {"a": t, "b": 1}, content=words) for t in range(turns)]
    out.append(MockResponse.text(words + " done"))
    return out


async def record(turns: int, tokens: int) -> tuple[Recording, Agent, float]:
    bus = InMemoryEventBus(queue_size=100_000)
    recorder = ReplayRecorder(bus, RunMetadata.create(model_version="gpt-4o-mini", tools=["add"]))
    engine = ExecutionEngine(
        MockProvider(script(turns, tokens), model="gpt-4o-mini"), middleware=[recorder.middleware()]
    )
    agent = Agent(engine=engine, tools=recorder.wrap_tools([add]), max_turns=turns + 1)
    kernel = RuntimeKernel(engine, agent, event_bus=bus)
    await recorder.start(initial_input={"prompt": "count"})
    t0 = time.perf_counter()
    handle = await kernel.execute(ExecutionRequest(prompt="count"))
    result = await handle.result()
    elapsed = time.perf_counter() - t0
    recording = await recorder.stop()
    await bus.close()
    assert result.succeeded, result
    assert recording.dropped_events == 0
    return recording, agent, elapsed


async def fast(recording: Recording, preserve_ids: bool) -> float:
    bus = InMemoryEventBus(queue_size=len(recording.events) + 10)
    seen = [0]

    def count(_event: object) -> None:
        seen[0] += 1

    await bus.subscribe(count)
    player = ReplayPlayer(recording, bus, preserve_ids=preserve_ids)
    t0 = time.perf_counter()
    result = await player.replay(ReplayMode.FAST)
    elapsed = time.perf_counter() - t0
    await bus.flush()
    await bus.close()
    assert seen[0] == result.events_replayed == len(recording.events)
    return elapsed


async def deterministic(recording: Recording, agent: Agent) -> float:
    bus = InMemoryEventBus(queue_size=100_000)
    player = ReplayPlayer(recording, bus, agent=agent)
    t0 = time.perf_counter()
    result = await player.replay(ReplayMode.DETERMINISTIC)
    elapsed = time.perf_counter() - t0
    await bus.close()
    assert result.success, result.divergence
    assert result.fingerprints_compared == len(recording.events)
    return elapsed


def save_load(recording: Recording) -> tuple[float, float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "run.replay.json")
        t0 = time.perf_counter()
        recording.save(path)
        t1 = time.perf_counter()
        loaded = Recording.load(path)
        t2 = time.perf_counter()
        size = os.path.getsize(path)
    assert len(loaded.events) == len(recording.events)
    return t1 - t0, t2 - t1, size


def stats(seconds: list[float], events: int) -> dict:
    rates = [events / s for s in seconds]
    return {
        "seconds_median": statistics.median(seconds),
        "events_per_second_median": round(statistics.median(rates)),
        "events_per_second_min": round(min(rates)),
        "events_per_second_max": round(max(rates)),
    }


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--turns", type=int, default=100)
    p.add_argument("--tokens", type=int, default=96)
    p.add_argument("--trials", type=int, default=7)
    p.add_argument("--quick", action="store_true", help="3 trials")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    trials = 3 if args.quick else args.trials
    started = time.perf_counter()

    recording, agent, _ = await record(args.turns, args.tokens)
    n = len(recording.events)
    # Warm-up: one of each.
    await fast(recording, False)
    await deterministic(recording, agent)

    times: dict[str, list[float]] = {"record": [], "fast": [], "fast_preserve": [], "deterministic": []}
    io: dict[str, list[float]] = {"save": [], "load": []}
    size = 0
    for _ in range(trials):
        gc.collect()
        times["record"].append((await record(args.turns, args.tokens))[2])
        gc.collect()
        times["fast"].append(await fast(recording, False))
        gc.collect()
        times["fast_preserve"].append(await fast(recording, True))
        gc.collect()
        times["deterministic"].append(await deterministic(recording, agent))
        save_s, load_s, size = save_load(recording)
        io["save"].append(save_s)
        io["load"].append(load_s)

    emit(
        {
            "benchmark": "replay",
            "machine": machine(),
            "versions": versions("agent-runtime", "llm-client"),
            "events": n,
            "trials": trials,
            "results": {name: stats(ts, n) for name, ts in times.items()},
            "file": {
                "bytes": size,
                "save_seconds_median": statistics.median(io["save"]),
                "load_seconds_median": statistics.median(io["load"]),
            },
            "seconds": time.perf_counter() - started,
        },
        args.out,
    )


if __name__ == "__main__":
    asyncio.run(main())
