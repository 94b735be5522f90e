"""RedisQueue and RedisEventBus throughput against redis-benchmark's figures for the same server.

Not a test module. Talks only to the Redis server at 127.0.0.1:6379 (--port), so run_all.py runs it
OUTSIDE the loopback-only network namespace (a fresh namespace cannot reach the host's Redis).

Every key this benchmark writes is under one unique prefix (bench-redis-<pid>-<hex>), including
redis-benchmark's (custom commands naming our keys instead of `-t set,lpush,rpop`, whose fixed key
names "key:__rand_int__"/"mylist" would land in the shared db 0); all of them are deleted at the end
(SCAN of the prefix), also on failure.

Variants, each measured sequentially (--n operations) and with --clients concurrent clients
(asyncio tasks sharing one redis.asyncio client, i.e. up to --clients pooled connections, each
doing n/clients operations), in --trials interleaved trials (group order rotated each trial):

  enqueue          RedisQueue.enqueue(payload)                  one EVAL of the enqueue Lua script
  dequeue_ack      RedisQueue.dequeue() + ack(message)          two EVALs (claim, ack) per message
  publish          RedisEventBus.publish(run, "assistant.delta", {"delta": "x"})   one EVAL
  redis_py_lpush   redis.asyncio LPUSH (the Python client's floor for one round trip)
  redis_py_rpop    redis.asyncio RPOP
  redis_py_evalsha the enqueue script via EVALSHA (what caching the script would save)

and, in the same trials, redis-benchmark (C client, no pipelining) with -n --rb-n requests, -c 1 and
-c --clients: LPUSH, RPOP, SET, and EVAL of our exact enqueue and publish scripts (unique ids via
-r / __rand_int__), so the Lua scripts' server-side cost is separated from the Python side.

Usage: .venv/bin/python bench/bench_redis.py [--quick] [--out bench/results/redis.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402

PAYLOAD = {
    "run_id": "00000000-0000-0000-0000-000000000000",
    "agent_key": "add-agent",
    "input": {"messages": [{"role": "user", "content": "what is 1+2?"}]},
}


def redis_benchmark(host: str, port: int, n: int, clients: int, args: list[str], rand: bool) -> dict:
    cmd = ["redis-benchmark", "-h", host, "-p", str(port), "-n", str(n), "-c", str(clients), "--csv"]
    if rand:
        cmd += ["-r", "100000000"]
    r = subprocess.run(cmd + args, capture_output=True, text=True, timeout=120, check=True)
    lines = [ln for ln in r.stdout.strip().splitlines() if ln and not ln.startswith('"test"')]
    # the test name echoes the command (quotes and commas included): take the 7 numbers from the right
    fields = [f.strip('"') for f in lines[-1].rsplit(",", 7)]
    return {
        "ops_per_s": float(fields[1]),
        "avg_latency_ms": float(fields[2]),
        "p50_latency_ms": float(fields[4]),
    }


async def timed(fn, n: int) -> dict:
    t0 = time.perf_counter()
    done = await fn(n)
    dt = time.perf_counter() - t0
    return {"ops": done, "seconds": dt, "ops_per_s": done / dt, "us_per_op": dt / done * 1e6}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=6379)
    ap.add_argument("--n", type=int, default=2000, help="operations per variant per trial")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--rb-n", type=int, default=20000, help="redis-benchmark requests per command")
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny counts")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.quick:
        args.n, args.trials, args.rb_n = 200, 2, 2000
    assert args.host in ("127.0.0.1", "localhost", "::1"), "local Redis only"
    t_start = time.perf_counter()

    import redis.asyncio as aioredis
    from agent_runtime_core.events.redis import _PUBLISH, RedisEventBus
    from agent_runtime_core.queue.redis import _ENQUEUE, RedisQueue

    url = f"redis://{args.host}:{args.port}/0"
    client = aioredis.from_url(url)
    try:
        await asyncio.wait_for(client.ping(), 5)
    except Exception as exc:
        await client.aclose()
        common.emit(
            {"benchmark": "redis", "skipped": f"no Redis at {url}: {type(exc).__name__}: {exc}"},
            args.out or os.path.join(common.RESULTS_DIR, "redis.json"),
        )
        return
    info = await client.info("server")
    prefix = f"bench-redis-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    queue = RedisQueue(client=client, prefix=prefix, name="q")
    queue_sha = RedisQueue(client=client, prefix=prefix, name="qsha")
    bus = RedisEventBus(client=client, prefix=prefix)
    raw_list = f"{prefix}:raw:list"
    sha = await client.script_load(_ENQUEUE)
    qsha_keys = queue_sha.keys
    qsha_keys = [qsha_keys[0], qsha_keys[1], qsha_keys[2], qsha_keys[3], qsha_keys[5]]
    body = json.dumps({"payload": PAYLOAD, "enqueued_at": 0.0}, separators=(",", ":"))
    ids = iter(range(10**12))
    result: dict = {
        "benchmark": "redis",
        "machine": common.machine(),
        "args": vars(args),
        "redis_server": {k: info.get(k) for k in ("redis_version", "io_threads_active", "multiplexing_api")},
        "prefix": prefix,
        "payload_bytes": len(body),
    }

    async def cleanup() -> int:
        n = 0
        async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            n += await client.delete(key)
        return n

    try:
        # --- correctness first ----------------------------------------------------------------
        mid = await queue.enqueue(PAYLOAD)
        msg = await queue.dequeue()
        assert msg is not None and msg.id == mid and msg.payload == PAYLOAD and msg.attempts == 1, msg
        assert await queue.size() == 1
        await queue.ack(msg)
        assert await queue.size() == 0 and await queue.dequeue() is None
        e1 = await bus.publish("check", "assistant.delta", {"delta": "x"})
        e2 = await bus.publish("check", "assistant.delta", {"delta": "y"})
        got = await bus.get_events("check")
        assert (e1.seq, e2.seq) == (1, 2) and [e.payload["delta"] for e in got] == ["x", "y"], got
        await bus.delete_run("check")

        # --- the operations -------------------------------------------------------------------
        async def enqueue(n):
            for _ in range(n):
                await queue.enqueue(PAYLOAD)
            return n

        async def dequeue_ack(n):
            done = 0
            while done < n:
                m = await queue.dequeue()
                if m is None:
                    break
                await queue.ack(m)
                done += 1
            return done

        async def publish_to(run, n):
            for _ in range(n):
                await bus.publish(run, "assistant.delta", {"delta": "x"})
            return n

        async def lpush(n):
            for _ in range(n):
                await client.lpush(raw_list, body)
            return n

        async def rpop(n):
            done = 0
            for _ in range(n):
                if await client.rpop(raw_list) is None:
                    break
                done += 1
            return done

        async def evalsha(n):
            for _ in range(n):
                await client.evalsha(sha, 5, *qsha_keys, f"m{next(ids)}", body, 0)
            return n

        def conc(fn, per_client_arg=None):
            async def run(n):
                k = args.clients
                share = [n // k + (1 if i < n % k else 0) for i in range(k)]
                if per_client_arg is None:
                    outs = await asyncio.gather(*(fn(s) for s in share))
                else:
                    outs = await asyncio.gather(*(fn(per_client_arg(i), s) for i, s in enumerate(share)))
                return sum(outs)

            return run

        async def seq_publish(n):
            return await publish_to(f"seq-{next(ids)}", n)

        async def reset_side_queues():
            await client.delete(*queue_sha.keys)
            for run in [k async for k in client.scan_iter(match=f"{prefix}:events:*", count=1000)]:
                await client.delete(run)

        groups = {
            "queue": [("enqueue", enqueue, None), ("dequeue_ack", dequeue_ack, None)],
            "bus": [("publish", seq_publish, None)],
            "redis_py_list": [("redis_py_lpush", lpush, None), ("redis_py_rpop", rpop, None)],
            "redis_py_evalsha": [("redis_py_evalsha", evalsha, None)],
        }
        conc_fns = {
            "enqueue": conc(enqueue),
            "dequeue_ack": conc(dequeue_ack),
            "publish": conc(publish_to, lambda i: f"conc-{i}-{next(ids)}"),
            "redis_py_lpush": conc(lpush),
            "redis_py_rpop": conc(rpop),
            "redis_py_evalsha": conc(evalsha),
        }
        ev_body = '"run_id":"r","event_type":"assistant.delta","payload":{"delta":"x"},"timestamp":1.0}'
        qk = queue.keys
        rb_cmds = {
            "LPUSH": (["LPUSH", f"{prefix}:rb:list", body], False),
            "RPOP": (["RPOP", f"{prefix}:rb:list"], False),
            "SET": (["SET", f"{prefix}:rb:key", body], False),
            "EVAL enqueue script": (
                [
                    "EVAL",
                    _ENQUEUE,
                    "5",
                    f"{prefix}:rbq:messages",
                    f"{prefix}:rbq:pending",
                    f"{prefix}:rbq:inflight",
                    f"{prefix}:rbq:attempts",
                    f"{prefix}:rbq:signal",
                    "m__rand_int__",
                    body,
                    "0",
                ],
                True,
            ),
            "EVAL publish script": (
                [
                    "EVAL",
                    _PUBLISH,
                    "2",
                    f"{prefix}:rbe:seq",
                    f"{prefix}:rbe:history",
                    f"{prefix}:rbe:live",
                    ev_body,
                    "0",
                ],
                False,
            ),
        }
        assert qk  # the queue's own keys are cleaned by the SCAN too

        # warm-up: a few of each (connections, script cache)
        for name, fn, _ in [v for g in groups.values() for v in g]:
            await fn(20)
        await reset_side_queues()

        seq: dict[str, list[dict]] = {}
        con: dict[str, list[dict]] = {}
        rb: dict[str, list[float]] = {}
        names = list(groups)
        for t in range(args.trials):
            order = names[t % len(names) :] + names[: t % len(names)]
            for g in order:
                for name, fn, _ in groups[g]:
                    seq.setdefault(name, []).append(await timed(fn, args.n))
                for name, _, _ in groups[g]:
                    con.setdefault(name, []).append(await timed(conc_fns[name], args.n))
            await reset_side_queues()
            for cname, (cargs, rand) in rb_cmds.items():
                for c in (1, args.clients):
                    r = await asyncio.to_thread(
                        redis_benchmark, args.host, args.port, args.rb_n, c, cargs, rand
                    )
                    rb.setdefault(f"{cname} -c {c}", []).append(r["ops_per_s"])
            await client.delete(
                *[f"{prefix}:rbq:{s}" for s in ("messages", "pending", "inflight", "attempts", "signal")]
            )
            await client.delete(f"{prefix}:rbe:seq", f"{prefix}:rbe:history", f"{prefix}:rb:list")
            print(
                f"trial {t + 1}/{args.trials} done at {time.perf_counter() - t_start:.1f} s",
                file=sys.stderr,
                flush=True,
            )

        # the queue must be empty again: every enqueued message was dequeued and acked
        assert await queue.size() == 0, await queue.size()
        for name in seq:
            assert all(x["ops"] == args.n for x in seq[name]), (name, [x["ops"] for x in seq[name]])
            assert all(x["ops"] == args.n for x in con[name]), (name, [x["ops"] for x in con[name]])

        def summ(xs: list[dict]) -> dict:
            v = [x["ops_per_s"] for x in xs]
            return {
                "median_ops_per_s": statistics.median(v),
                "min_ops_per_s": min(v),
                "max_ops_per_s": max(v),
                "median_us_per_op": 1e6 / statistics.median(v),
            }

        result["ours"] = {
            n: {"sequential": summ(seq[n]), f"concurrent_{args.clients}": summ(con[n])} for n in seq
        }
        result["redis_benchmark"] = {
            k: {"median_ops_per_s": statistics.median(v), "min_ops_per_s": min(v), "max_ops_per_s": max(v)}
            for k, v in rb.items()
        }
        # ratios of medians: ours / redis-benchmark's closest operation, same concurrency
        closest = {
            "enqueue": ["LPUSH", "EVAL enqueue script"],
            "dequeue_ack": ["RPOP"],
            "publish": ["LPUSH", "EVAL publish script"],
            "redis_py_lpush": ["LPUSH"],
            "redis_py_rpop": ["RPOP"],
            "redis_py_evalsha": ["EVAL enqueue script"],
        }
        ratios = {}
        for n, refs in closest.items():
            for mode, c in (("sequential", 1), (f"concurrent_{args.clients}", args.clients)):
                ours = result["ours"][n][mode]["median_ops_per_s"]
                for ref in refs:
                    ratios.setdefault(n, {})[f"{mode} vs {ref} -c {c}"] = (
                        ours / result["redis_benchmark"][f"{ref} -c {c}"]["median_ops_per_s"]
                    )
        result["ratios"] = ratios
    finally:
        result["keys_deleted_at_cleanup"] = await cleanup()
        left = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
        result["keys_left"] = len(left)
        await client.aclose()

    result["peak_rss_mib"] = common.peak_rss_mib()
    result["versions"] = common.versions("agent-runtime-core", "redis")
    result["seconds"] = time.perf_counter() - t_start
    result.update(common.info_header())
    common.emit(result, args.out or os.path.join(common.RESULTS_DIR, "redis.json"))
    print(f"bench_redis took {result['seconds']:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
