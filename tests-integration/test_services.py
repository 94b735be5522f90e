"""The local services are really there and usable (skipped without them unless REQUIRE_SERVICES=1)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

pytestmark = pytest.mark.services


async def test_postgres_select_one(postgres_dsn: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(postgres_dsn, timeout=10)
    try:
        assert await conn.fetchval("select 1") == 1
    finally:
        await conn.close()


async def test_redis_ping_set_get(redis_url: str) -> None:
    import redis.asyncio as redis

    client = redis.from_url(redis_url)
    key = f"agent-runtime-test:{uuid.uuid4().hex}"
    try:
        assert await client.ping() is True
        assert await client.set(key, b"value", ex=60) is True
        assert await client.get(key) == b"value"
    finally:
        await client.delete(key)
        await client.aclose()


async def test_kafka_round_trip_in_order(kafka_bootstrap: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic = f"agent-runtime-test-{uuid.uuid4().hex}"
    sent = [f"message-{i}".encode() for i in range(3)]

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for value in sent:
            await producer.send_and_wait(topic, value, key=b"run-1")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    received: list[bytes] = []
    try:
        async with asyncio.timeout(30):
            while len(received) < len(sent):
                batches = await consumer.getmany(timeout_ms=500)
                for messages in batches.values():
                    received.extend(m.value for m in messages if m.value is not None)
    finally:
        await consumer.stop()

    assert received == sent
