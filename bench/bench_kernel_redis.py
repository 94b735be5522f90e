"""Events per second through the kernel's RedisStreamsAdapter vs redis-benchmark XADD, same server.

Not a test module. Talks only to the Redis at 127.0.0.1:6379 (--port); like bench_redis.py it must
run outside the loopback-only network namespace. Every key it writes is under one unique prefix
(bench-kredis-<pid>-<hex>), redis-benchmark's included (a custom XADD naming our stream: Redis 7.0's
redis-benchmark has no built-in ``-t xadd``, and the built-in tests write fixed key names into the
shared db 0); all are deleted at the end (SCAN of the prefix), also on failure.

Variants, each over --n events, in --trials interleaved trials (order rotated each trial):

  adapter_publish      RedisStreamsAdapter.publish(event), default config: topic stream + the "all"
                       stream in one MULTI/EXEC (2 XADDs, 1 round trip), MAXLEN ~ 100000
  adapter_publish_1    the same with default_stream=None: one XADD per event
  bus_to_streams       InMemoryEventBus.publish(event) x n, then adapter.stop() (which flushes): the
                       whole path a kernel event takes (bus, subscription task, XADD+XADD)
  *_c<clients>         adapter_publish / adapter_publish_1 from --clients concurrent tasks
  redis_py_xadd        redis.asyncio XADD of the same fields (the Python client's floor)

and redis-benchmark (C client, no pipelining) ``XADD <stream> MAXLEN ~ 100000 * event <same JSON>``
with -c 1 and -c --clients. Ratios: sequential variants / redis-benchmark -c 1, concurrent ones /
-c --clients.

Usage: .venv/bin/python bench/bench_kernel_redis.py [--quick] [--out bench/results/kernel_redis.json]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402


def redis_benchmark(host: str, port: int, n: int, clients: int, args: list[str]) -> float:
    cmd = ["redis-benchmark", "-h", host, "-p", str(port), "-n", str(n), "-c", str(clients), "--csv"]
    r = subprocess.run(cmd + args, capture_output=True, text=True, timeout=300, check=True)
    lines = [ln for ln in r.stdout.strip().splitlines() if ln and not ln.startswith('"test"')]
    fields = [f.strip('"') for f in lines[-1].rsplit(",", 7)]
    return float(fields[1])


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=6379)
    ap.add_argument("--n", type=int, default=5000, help="events per variant per trial")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--rb-n", type=int, default=50000, help="redis-benchmark requests per run")
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny counts")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.quick:
        args.n, args.trials, args.rb_n = 300, 2, 3000
    assert args.host in ("127.0.0.1", "localhost", "::1"), "local Redis only"
    t_start = time.perf_counter()

    import redis.asyncio as aioredis
    from agent_runtime import InMemoryEventBus, RedisStreamsAdapter, RedisStreamsConfig, RuntimeEvent

    url = f"redis://{args.host}:{args.port}/0"
    client = aioredis.from_url(url)
    out = args.out or os.path.join(common.RESULTS_DIR, "kernel_redis.json")
    try:
        await asyncio.wait_for(client.ping(), 5)
    except Exception as exc:
        await client.aclose()
        common.emit({"benchmark": "kernel_redis", "skipped": f"no Redis at {url}: {exc}"}, out)
        return
    info = await client.info("server")
    prefix = f"bench-kredis-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    event = RuntimeEvent(
        type="progress", job_id="job-bench", data={"progress": 0.5, "message": "step 3 of 6"}
    )
    fields = {"event": event.to_json(), "type": event.type.value, "job_id": event.job_id or ""}
    two = RedisStreamsAdapter(client, None, RedisStreamsConfig(stream_prefix=f"{prefix}:two"))
    one = RedisStreamsAdapter(
        client, None, RedisStreamsConfig(stream_prefix=f"{prefix}:one", default_stream=None)
    )
    raw_stream = f"{prefix}:raw"

    async def cleanup() -> int:
        removed = 0
        async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            removed += await client.delete(key)
        return removed

    def publisher(adapter: RedisStreamsAdapter):
        async def run(n: int) -> int:
            for _ in range(n):
                await adapter.publish(event)
            return n

        return run

    async def raw_xadd(n: int) -> int:
        for _ in range(n):
            await client.xadd(raw_stream, fields, maxlen=100_000, approximate=True)
        return n

    async def bus_to_streams(n: int) -> int:
        bus = InMemoryEventBus(queue_size=n + 1)
        adapter = RedisStreamsAdapter(client, bus, RedisStreamsConfig(stream_prefix=f"{prefix}:bus"))
        await adapter.start()
        for _ in range(n):
            await bus.publish(event)
        await adapter.stop()
        await bus.close()
        assert adapter.published == n and adapter.failed == 0, (adapter.published, adapter.failed)
        return n

    def concurrent(fn):
        async def run(n: int) -> int:
            k = args.clients
            share = [n // k + (1 if i < n % k else 0) for i in range(k)]
            return sum(await asyncio.gather(*(fn(s) for s in share)))

        return run

    variants = {
        "adapter_publish": publisher(two),
        "adapter_publish_1": publisher(one),
        "bus_to_streams": bus_to_streams,
        "redis_py_xadd": raw_xadd,
        f"adapter_publish_c{args.clients}": concurrent(publisher(two)),
        f"adapter_publish_1_c{args.clients}": concurrent(publisher(one)),
        f"redis_py_xadd_c{args.clients}": concurrent(raw_xadd),
    }
    rb_args = ["XADD", f"{prefix}:rb", "MAXLEN", "~", "100000", "*", "event", fields["event"]]
    result: dict = {
        "benchmark": "kernel_redis",
        "machine": common.machine(),
        "args": vars(args),
        "redis_server": {k: info.get(k) for k in ("redis_version", "io_threads_active")},
        "prefix": prefix,
        "event_json_bytes": len(fields["event"]),
    }
    try:
        # correctness first: what is written reads back as the same event
        await two.publish(event)
        assert await two.read_range(f"{prefix}:two:progress") == [event] == await two.read_range()
        for fn in variants.values():  # warm-up (connections, pool)
            await fn(50)
        measured: dict[str, list[float]] = {}
        rb: dict[str, list[float]] = {}
        names = list(variants)
        for t in range(args.trials):
            order = names[t % len(names) :] + names[: t % len(names)]
            for name in order:
                t0 = time.perf_counter()
                done = await variants[name](args.n)
                measured.setdefault(name, []).append(done / (time.perf_counter() - t0))
            for c in (1, args.clients):
                ops = await asyncio.to_thread(redis_benchmark, args.host, args.port, args.rb_n, c, rb_args)
                rb.setdefault(f"XADD -c {c}", []).append(ops)
            print(f"trial {t + 1}/{args.trials} at {time.perf_counter() - t_start:.1f} s", file=sys.stderr)

        def summary(xs: list[float]) -> dict:
            return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}

        result["events_per_s"] = {k: summary(v) for k, v in measured.items()}
        result["redis_benchmark_ops_per_s"] = {k: summary(v) for k, v in rb.items()}
        seq_rb = statistics.median(rb["XADD -c 1"])
        con_rb = statistics.median(rb[f"XADD -c {args.clients}"])
        result["ratio_to_redis_benchmark"] = {
            k: statistics.median(v) / (con_rb if k.endswith(f"_c{args.clients}") else seq_rb)
            for k, v in measured.items()
        }
    finally:
        result["keys_deleted"] = await cleanup()
        result["keys_left"] = len([k async for k in client.scan_iter(match=f"{prefix}:*")])
        await client.aclose()
    result["seconds"] = time.perf_counter() - t_start
    common.emit(result, out)


if __name__ == "__main__":
    asyncio.run(main())
