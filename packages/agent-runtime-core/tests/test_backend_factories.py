"""get_event_bus / get_queue / get_state_store follow configure(...), and Redis stays optional."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_runtime_core import ConfigurationError, configure, reset_config
from agent_runtime_core.events import InMemoryEventBus, RedisEventBus, get_event_bus
from agent_runtime_core.events import reset_backends as reset_events
from agent_runtime_core.queue import InMemoryQueue, RedisQueue, get_queue
from agent_runtime_core.queue import reset_backends as reset_queue
from agent_runtime_core.state import (
    InMemoryStateStore,
    RedisStateStore,
    SQLiteStateStore,
    get_state_store,
)
from agent_runtime_core.state import reset_backends as reset_state

_ENV = (
    "REDIS_URL",
    "AGENT_RUNTIME_QUEUE_BACKEND",
    "AGENT_RUNTIME_EVENT_BUS_BACKEND",
    "AGENT_RUNTIME_STATE_STORE_BACKEND",
    "AGENT_RUNTIME_SQLITE_PATH",
)


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in _ENV:
        monkeypatch.delenv(var, raising=False)
    reset_config()
    yield
    reset_config()
    reset_events()
    reset_queue()
    reset_state()


def test_defaults_are_in_memory_and_cached() -> None:
    bus, queue, store = get_event_bus(), get_queue(), get_state_store()
    assert isinstance(bus, InMemoryEventBus)
    assert isinstance(queue, InMemoryQueue)
    assert isinstance(store, InMemoryStateStore)
    assert get_event_bus() is bus and get_queue() is queue and get_state_store() is store
    reset_events()
    reset_queue()
    reset_state()
    assert get_event_bus() is not bus and get_queue() is not queue and get_state_store() is not store


def test_redis_backends_from_configure() -> None:
    url = "redis://127.0.0.1:6379/0"  # building a backend does not connect
    configure(queue_backend="redis", event_bus_backend="redis", state_store_backend="redis", redis_url=url)
    assert isinstance(get_event_bus(), RedisEventBus)
    assert isinstance(get_queue(), RedisQueue)
    assert isinstance(get_state_store(), RedisStateStore)
    assert get_queue() is get_queue()


def test_sqlite_backend_uses_sqlite_path(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    configure(state_store_backend="sqlite", sqlite_path=path)
    store = get_state_store()
    assert isinstance(store, SQLiteStateStore) and store.db_path == path
    configure(state_store_backend="memory")
    assert isinstance(get_state_store(), InMemoryStateStore)  # a new config picks a new backend


def test_backend_selected_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_RUNTIME_QUEUE_BACKEND", "redis")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    assert isinstance(get_queue(), RedisQueue)


@pytest.mark.parametrize("setting", ["queue_backend", "event_bus_backend", "state_store_backend"])
def test_redis_without_url_is_a_configuration_error(setting: str) -> None:
    with pytest.raises(ConfigurationError, match="redis_url"):
        configure(**{setting: "redis"})


def test_redis_backend_without_the_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    for cls in (RedisQueue, RedisEventBus, RedisStateStore):
        with pytest.raises(ImportError, match=r"agent-runtime-core\[redis\]"):
            cls(redis_url="redis://127.0.0.1:6379/0")


def test_importing_backends_does_not_import_redis() -> None:
    code = (
        "import sys\n"
        "import agent_runtime_core.state\n"
        "assert 'sqlite3' not in sys.modules, 'sqlite3 imported'\n"
        "from agent_runtime_core.events import RedisEventBus, get_event_bus\n"
        "from agent_runtime_core.queue import RedisQueue, get_queue\n"
        "from agent_runtime_core.state import RedisStateStore, SQLiteStateStore, get_state_store\n"
        "get_event_bus(); get_queue(); get_state_store()\n"
        "assert 'redis' not in sys.modules, 'redis imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
