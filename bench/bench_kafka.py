"""KafkaEventAdapter throughput against the raw aiokafka producer, on the same broker, in one run.

Not a test module. Talks only to the Kafka-protocol broker at --bootstrap (default 127.0.0.1:9092,
e.g. the Tansu broker of `make services`). Every trial writes to fresh topics under a unique prefix
(bench-kafka-<pid>-<hex>); nothing is deleted (Tansu's memory storage forgets them on restart).

Variants, each sending --n events (the same RuntimeEvent JSON payloads, same producer settings:
the KafkaConfig defaults, acks=all, gzip, linger_ms=10, batch 16 KiB), timed from the first send to
the last acknowledgement, in --trials interleaved trials (order rotated each trial):

  raw_aiokafka     producer.send(topic, value, key=job_id) for every event, then flush()
  adapter_publish  KafkaEventAdapter.publish(event) for every event, then adapter.flush()
  adapter_bus      InMemoryEventBus.publish(event) with the adapter subscribed, then adapter.flush()

The ratio adapter/raw is the adapter's cost: routing, keys, headers, JSON encoding, in-order
acknowledgement tracking and (for adapter_bus) the bus hop. Encoding is done inside the timed loop
for raw_aiokafka too (event.to_json()), so the payload work is the same.

Usage: .venv/bin/python bench/bench_kafka.py [--quick] [--n 20000] [--trials 3] [--out bench/results/kafka.json]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402
from agent_runtime import InMemoryEventBus, KafkaConfig, KafkaEventAdapter, RuntimeEvent, RuntimeEventType  # noqa: E402
from aiokafka import AIOKafkaProducer  # noqa: E402

JOBS = 8


def make_events(n: int) -> list[RuntimeEvent]:
    types = [RuntimeEventType.MODEL_TOKEN, RuntimeEventType.PROGRESS, RuntimeEventType.TOOL_START]
    return [
        RuntimeEvent(type=types[i % 3], job_id=f"job-{i % JOBS}", data={"token": "hello ", "seq": i})
        for i in range(n)
    ]


def config(bootstrap: str) -> KafkaConfig:
    return KafkaConfig(
        bootstrap_servers=bootstrap, topic_prefix=f"bench-kafka-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    )


async def raw_aiokafka(bootstrap: str, events: list[RuntimeEvent]) -> float:
    cfg = config(bootstrap)
    producer = AIOKafkaProducer(**cfg.producer_kwargs())
    await producer.start()
    try:
        for t in {cfg.topic_for(e.type) for e in events}:  # metadata warm-up, outside the timing
            await producer.send_and_wait(t, b"warmup")
        started = time.perf_counter()
        for event in events:
            await producer.send(
                cfg.topic_for(event.type), event.to_json().encode(), key=event.job_id.encode()
            )
        await producer.flush()
        return time.perf_counter() - started
    finally:
        await producer.stop()


async def adapter_variant(bootstrap: str, events: list[RuntimeEvent], via_bus: bool) -> float:
    bus = InMemoryEventBus(queue_size=len(events) + 10)
    cfg = config(bootstrap)
    adapter = KafkaEventAdapter(bus, KafkaConfig(**{**_fields(cfg), "queue_size": len(events) + 10}))
    await adapter.start()
    try:
        for e in events[:3]:  # metadata warm-up, outside the timing
            await adapter.publish(e)
        await adapter.flush()
        base = adapter.published
        started = time.perf_counter()
        if via_bus:
            for event in events:
                await bus.publish(event)
        else:
            for event in events:
                await adapter.publish(event)
        await adapter.flush()
        elapsed = time.perf_counter() - started
        assert adapter.published - base == len(events), (adapter.published, adapter.failures)
        assert adapter.failures == 0
        return elapsed
    finally:
        await adapter.stop()
        await bus.close()


def _fields(cfg: KafkaConfig) -> dict:
    return {name: getattr(cfg, name) for name in cfg.__dataclass_fields__}


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bootstrap", default=os.environ.get("TEST_KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--trials", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="--n 3000 --trials 2")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    if args.quick:
        args.n, args.trials = 3000, 2
    events = make_events(args.n)
    variants = {
        "raw_aiokafka": lambda: raw_aiokafka(args.bootstrap, events),
        "adapter_publish": lambda: adapter_variant(args.bootstrap, events, via_bus=False),
        "adapter_bus": lambda: adapter_variant(args.bootstrap, events, via_bus=True),
    }
    names = list(variants)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for trial in range(args.trials):
        order = names[trial % len(names) :] + names[: trial % len(names)]
        for name in order:
            rates[name].append(args.n / await variants[name]())
    med = {name: statistics.median(r) for name, r in rates.items()}
    result = {
        **common.info_header(),
        "bootstrap": args.bootstrap,
        "n": args.n,
        "trials": args.trials,
        "events_per_s": {name: common.spread(r) for name, r in rates.items()},
        "ratio_vs_raw": {name: med[name] / med["raw_aiokafka"] for name in names},
    }
    common.emit(result, args.out)


if __name__ == "__main__":
    asyncio.run(main())
