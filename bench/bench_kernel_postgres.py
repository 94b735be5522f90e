"""The kernel's PostgreSQL stores under 50 concurrent clients, next to pgbench on the same server.

Not a test module, never collected. Talks only to the PostgreSQL at 127.0.0.1:5432 (trust auth, user
postgres, database `test`), so run_all.py runs it OUTSIDE the loopback-only network namespace. Every
table it creates has a unique name (bench_kpg_<pid>_<hex>_*) and is dropped at the end, also on
failure; pgbench runs on a scratch database (bench_kpg_<pid>_<hex>) created and dropped here.

Variants, each with --clients concurrent asyncio tasks sharing ONE asyncpg pool of --clients
connections (a fresh pool per measurement, closed after it, so pgbench's clients fit under
max_connections), in --trials interleaved trials (order rotated each trial):

  jobs     JobManager(PostgresJobStore(pool, table)): create(JobSpec(scope_id=...)) -> start ->
           complete, per job. Unit: jobs created and completed per second.
  budget   Ledger(PostgresLedgerWriter(pool, table)) with ONE Budget for the scope (daily tokens,
           monthly cost): check_budget(ctx, pending_tokens=100) + record_model_usage(ctx, Usage(60,
           40)) per operation, every client on that one budget (the contended case: the writer
           serialises a budget's reservations with an advisory lock). Unit: reservations settled/s.
  pgbench  `pgbench -N -c <clients> -j 2 -T <seconds>` (simple-update, TPC-B-like without the
           branch/teller updates: 3 UPDATE/SELECT/INSERT per transaction) on a scratch database
           initialised with `pgbench -i -s 1`. Unit: tps (excluding connection time).

Each budget trial records the ledger's row count before it. After the trials, a probe runs the budget
variant once more on fresh ledger tables pre-filled with --probe-rows events of the scope (one
INSERT ... SELECT generate_series, all in today's window): a budget check reads running totals, so
its rate should not depend on how many events the table holds.
procrastinate's figures (shared/peer-bench/RESULTS.md section 5, a different cluster and method,
not this run) are copied into the JSON as a labelled reference.

Usage: .venv/bin/python bench/bench_kernel_postgres.py [--quick] [--out bench/results/kernel_postgres.json]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402

PROCRASTINATE_REFERENCE = {
    "source": "shared/peer-bench/RESULTS.md section 5 (NOT this run: throwaway cluster, Unix socket, "
    "procrastinate 3.10.0 / psycopg 3.3.9 / PostgreSQL 15.18)",
    "enqueue_defer_async_one_at_a_time_jobs_per_s": 444,
    "enqueue_batch_defer_async_5000_jobs_per_s": 6867,
    "one_worker_concurrency_1_jobs_per_s": 166,
    "synchronous_commit_off": {"enqueue_one_at_a_time": 673, "one_worker": 152},
}
SCOPE = "tenant-bench"


def dsn(args, db: str | None = None) -> str:
    return f"postgresql://{args.user}@{args.host}:{args.port}/{db or args.db}"


async def make_pool(args):
    import asyncpg

    return await asyncpg.create_pool(dsn(args), min_size=args.clients, max_size=args.clients)


async def fan_out(clients: int, total: int, op) -> tuple[int, float, float]:
    """`clients` tasks, each running op(client, i) total/clients times; returns (ops, seconds, this
    process's CPU seconds)."""
    per = max(1, total // clients)

    async def client(c: int) -> None:
        for i in range(per):
            await op(c, i)

    c0 = time.process_time()
    t0 = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    return per * clients, time.perf_counter() - t0, time.process_time() - c0


async def measure_jobs(args, table: str) -> dict:
    from agent_runtime import JobManager, JobSpec
    from agent_runtime.storage.postgres import PostgresJobStore

    pool = await make_pool(args)
    try:
        jobs = JobManager(PostgresJobStore(pool, table_name=table))
        warm = await jobs.create(JobSpec(scope_id=SCOPE))  # schema check, pool warm
        await jobs.start(warm.job_id)
        await jobs.complete(warm.job_id)

        async def op(c: int, i: int) -> None:
            job = await jobs.create(JobSpec(scope_id=SCOPE, principal_id=f"client-{c}"))
            await jobs.start(job.job_id)
            done = await jobs.complete(job.job_id)
            if done.status.value != "succeeded":
                raise AssertionError(done)

        n, dt, cpu = await fan_out(args.clients, args.n_jobs, op)
        async with pool.acquire() as conn:
            rows = await conn.fetchval(f"SELECT count(*) FROM {table} WHERE status = 'succeeded'")
        return {
            "ops": n,
            "seconds": dt,
            "per_s": n / dt,
            "python_cpu_ms_per_op": cpu / n * 1e3,
            "table_rows_after": rows,
        }
    finally:
        await pool.close()


async def prefill_ledger(args, table: str, rows: int) -> None:
    """``rows`` MODEL_USAGE events of the bench's scope, written now, in one statement."""
    from agent_runtime.storage.postgres import PostgresLedgerWriter

    pool = await make_pool(args)
    try:
        await PostgresLedgerWriter(pool, table_name=table)._ready()
        async with pool.acquire() as conn:
            await conn.execute(
                f"""INSERT INTO {table} (event_id, event_type, occurred_at, scope_id, principal_id,
                    input_tokens, output_tokens, total_tokens, cost, requests)
                SELECT 'pre-' || i, 'model_usage', now(), $1, 'client-' || (i % 50), 60, 40, 100, 0.001, 1
                FROM generate_series(1, $2) AS i""",
                SCOPE,
                rows,
            )
    finally:
        await pool.close()


async def measure_budget(args, table: str) -> dict:
    from agent_runtime import Budget, BudgetDecision, ExecutionContext, Ledger
    from agent_runtime.storage.postgres import PostgresLedgerWriter
    from llm_client import Usage

    pool = await make_pool(args)
    try:
        ledger = Ledger(PostgresLedgerWriter(pool, table_name=table))
        ledger.set_budget(Budget(scope_id=SCOPE, max_tokens_daily=10**12, max_cost_monthly="1000000"))
        ctxs = [
            ExecutionContext(scope_id=SCOPE, principal_id=f"client-{c}", job_id=f"job-{c}")
            for c in range(args.clients)
        ]
        usage = Usage(input_tokens=60, output_tokens=40)
        _decision, _ = await ledger.check_budget(ctxs[0], pending_tokens=100)  # schema, warm
        await ledger.record_model_usage(ctxs[0], usage, provider="mock", model="gpt-5-nano")
        async with pool.acquire() as conn:
            before = await conn.fetchval(f"SELECT count(*) FROM {table}")

        async def op(c: int, i: int) -> None:
            decision, reason = await ledger.check_budget(ctxs[c], pending_tokens=100)
            if decision is not BudgetDecision.ALLOW:
                raise AssertionError((decision, reason))
            await ledger.record_model_usage(ctxs[c], usage, provider="mock", model="gpt-5-nano")

        n, dt, cpu = await fan_out(args.clients, args.n_budget, op)
        async with pool.acquire() as conn:
            after = await conn.fetchval(f"SELECT count(*) FROM {table}")
            held = await conn.fetchval(f"SELECT count(*) FROM {table}_reservations")
        assert after - before == n, (before, after, n)
        return {
            "ops": n,
            "seconds": dt,
            "per_s": n / dt,
            "python_cpu_ms_per_op": cpu / n * 1e3,
            "ledger_rows_before": before,
            "ledger_rows_after": after,
            "reservations_left": held,
        }
    finally:
        await pool.close()


def pg_env() -> dict:
    env = dict(os.environ)
    env.pop("PGPASSWORD", None)
    return env


def pgbench(args, db: str, seconds: int) -> dict:
    cmd = [
        "pgbench",
        "-h",
        args.host,
        "-p",
        str(args.port),
        "-U",
        args.user,
        "-N",
        "-c",
        str(args.clients),
        "-j",
        "2",
        "-T",
        str(seconds),
        db,
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120, env=pg_env())
    if r.returncode != 0:
        raise RuntimeError(f"pgbench failed: {r.stderr[-2000:]}")
    m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", r.stdout)
    if not m:
        raise RuntimeError(f"no tps in pgbench output: {r.stdout[-2000:]}")
    tx = re.search(r"number of transactions actually processed: (\d+)", r.stdout)
    lat = re.search(r"latency average = ([0-9.]+) ms", r.stdout)
    return {
        "per_s": float(m.group(1)),
        "transactions": int(tx.group(1)) if tx else None,
        "latency_avg_ms": float(lat.group(1)) if lat else None,
        "cmd": " ".join(cmd),
    }


def psql(args, sql: str, db: str | None = None) -> str:
    r = subprocess.run(
        [
            "psql",
            "-h",
            args.host,
            "-p",
            str(args.port),
            "-U",
            args.user,
            "-d",
            db or args.db,
            "-v",
            "ON_ERROR_STOP=1",
            "-Atc",
            sql,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=pg_env(),
    )
    if r.returncode != 0:
        raise RuntimeError(f"psql failed on {sql!r}: {r.stderr}")
    return r.stdout.strip()


async def amain(args) -> dict:
    assert args.host in ("127.0.0.1", "localhost", "::1"), "local PostgreSQL only"
    tag = f"bench_kpg_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    jobs_table, ledger_table, scratch = f"{tag}_jobs", f"{tag}_ledger", tag
    server = psql(args, "SELECT version()")
    settings = {
        k: psql(args, f"SHOW {k}")
        for k in ("max_connections", "synchronous_commit", "shared_buffers", "fsync")
    }
    results: dict[str, list[dict]] = {"jobs": [], "budget": [], "pgbench": []}
    probe_rows = [int(x) for x in args.probe_rows.split(",") if x]
    probe: list[dict] = []
    probe_tables: list[str] = []
    t_all = time.perf_counter()
    psql(args, f"CREATE DATABASE {scratch}")
    try:
        t = time.perf_counter()
        r = subprocess.run(
            [
                "pgbench",
                "-h",
                args.host,
                "-p",
                str(args.port),
                "-U",
                args.user,
                "-i",
                "-s",
                str(args.scale),
                "-q",
                scratch,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env=pg_env(),
        )
        if r.returncode != 0:
            raise RuntimeError(f"pgbench -i failed: {r.stderr[-2000:]}")
        init_s = time.perf_counter() - t
        variants = {
            "jobs": lambda: measure_jobs(args, jobs_table),
            "budget": lambda: measure_budget(args, ledger_table),
            "pgbench": lambda: asyncio.to_thread(pgbench, args, scratch, args.pgbench_seconds),
        }
        names = list(variants)
        for t_i in range(args.trials):
            order = names[t_i % len(names) :] + names[: t_i % len(names)]
            for n in order:
                results[n].append(await variants[n]())
            print(
                f"trial {t_i + 1}/{args.trials} at {time.perf_counter() - t_all:.1f} s: "
                + ", ".join(f"{n}={results[n][-1]['per_s']:.0f}/s" for n in names),
                file=sys.stderr,
            )
        for rows in probe_rows:
            table = f"{tag}_probe{rows}"
            probe_tables.append(table)
            await prefill_ledger(args, table, rows)
            probe.append({"ledger_rows_before": rows, **await measure_budget(args, table)})
            print(f"probe with {rows} ledger rows: budget={probe[-1]['per_s']:.0f}/s", file=sys.stderr)
    finally:
        for sql in (
            f"DROP TABLE IF EXISTS {jobs_table}",
            *(
                f"DROP TABLE IF EXISTS {t}, {t}_reservations, {t}_totals"
                for t in (ledger_table, *probe_tables)
            ),
        ):
            try:
                psql(args, sql)
            except RuntimeError as exc:
                print(f"cleanup: {exc}", file=sys.stderr)
        try:
            psql(args, f"DROP DATABASE IF EXISTS {scratch}")
        except RuntimeError as exc:
            print(f"cleanup: {exc}", file=sys.stderr)
    left = psql(args, f"SELECT count(*) FROM pg_tables WHERE tablename LIKE '{tag}%'")

    def summary(xs: list[dict]) -> dict:
        rates = [x["per_s"] for x in xs]
        return {
            "median_per_s": statistics.median(rates),
            "min_per_s": min(rates),
            "max_per_s": max(rates),
            "by_trial": xs,
        }

    out = {n: summary(v) for n, v in results.items()}
    pg = out["pgbench"]["median_per_s"]
    return {
        "machine": common.machine(),
        "server": server,
        "settings": settings,
        "args": vars(args),
        "versions": common.versions("agent-runtime", "asyncpg"),
        "pgbench_init_s": init_s,
        "results": out,
        "ratios_to_pgbench_tps": {
            "jobs_per_s / pgbench_tps": out["jobs"]["median_per_s"] / pg,
            "budget_reservations_per_s / pgbench_tps": out["budget"]["median_per_s"] / pg,
        },
        "budget_ledger_size_probe": probe,
        "procrastinate_reference": PROCRASTINATE_REFERENCE,
        "tables_left_after_cleanup": int(left),
        "seconds": round(time.perf_counter() - t_all, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5432)
    ap.add_argument("--user", default="postgres")
    ap.add_argument("--db", default="test")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--n-jobs", type=int, default=3000, help="jobs per trial (create+start+complete)")
    ap.add_argument("--n-budget", type=int, default=2000, help="check_budget+record per trial")
    ap.add_argument("--pgbench-seconds", type=int, default=10)
    ap.add_argument("--scale", type=int, default=1, help="pgbench -i -s")
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--probe-rows", default="0,100000,1000000", help="ledger sizes for the budget probe")
    ap.add_argument("--quick", action="store_true", help="--n-jobs 500 --n-budget 500 --pgbench-seconds 3")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.quick:
        args.n_jobs, args.n_budget, args.pgbench_seconds, args.trials = 500, 500, 3, 2
        args.probe_rows = "0,10000"
    common.emit(asyncio.run(amain(args)), args.out)


if __name__ == "__main__":
    main()
