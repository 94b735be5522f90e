"""PersistenceConfig's three ways to plug stores, its conflict errors, the manager's lazy stores and
optional stores, and the process-wide manager."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agent_runtime_core.persistence import (
    AuditStore,
    FileAuditStore,
    FileConversationStore,
    FileKnowledgeStore,
    FileMemoryStore,
    FilePreferencesStore,
    FileTaskStore,
    MemoryStore,
    PersistenceConfig,
    PersistenceConfigError,
    PersistenceManager,
    Scope,
    StoreNotConfiguredError,
    UnsupportedOperationError,
    configure_persistence,
    get_persistence_manager,
    reset_persistence,
)


class DictMemory(MemoryStore):
    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.values: dict[str, Any] = {}
        self.closed = False

    async def get(self, key: str, scope: Scope | None = None) -> Any | None:
        return self.values.get(self.prefix + key)

    async def set(self, key: str, value: Any, scope: Scope | None = None) -> None:
        self.values[self.prefix + key] = value

    async def close(self) -> None:
        self.closed = True


@pytest.fixture(autouse=True)
def _fresh_global_manager() -> Iterator[None]:
    reset_persistence()
    yield
    reset_persistence()


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    return {"project_dir": tmp_path / "project", "global_dir": tmp_path / "global"}


async def test_defaults_are_file_stores_in_the_configured_directories(dirs: dict[str, Path]) -> None:
    manager = PersistenceManager(PersistenceConfig(**dirs))
    assert isinstance(manager.memory, FileMemoryStore)
    assert isinstance(manager.conversations, FileConversationStore)
    assert isinstance(manager.tasks, FileTaskStore)
    assert isinstance(manager.preferences, FilePreferencesStore)
    assert manager.memory is manager.memory  # built once
    assert manager.tasks.path(Scope.PROJECT) == dirs["project_dir"] / ".agent_runtime" / "tasks.json"  # type: ignore[attr-defined]
    assert manager.preferences.path(Scope.GLOBAL) == dirs["global_dir"] / "preferences.json"  # type: ignore[attr-defined]


def test_project_and_global_dirs_accept_strings(tmp_path: Path) -> None:
    config = PersistenceConfig(project_dir=str(tmp_path), global_dir=str(tmp_path / "g"))
    assert config.project_dir == tmp_path and config.global_dir == tmp_path / "g"
    with pytest.raises(TypeError, match="project_dir must be a path"):
        PersistenceConfig(project_dir=3)  # type: ignore[arg-type]


async def test_instance_factory_and_class_ways() -> None:
    instance = DictMemory()
    assert PersistenceManager(PersistenceConfig(memory_store=instance)).memory is instance

    calls: list[int] = []

    def factory() -> DictMemory:
        calls.append(1)
        return DictMemory("f:")

    manager = PersistenceManager(PersistenceConfig(memory_store_factory=factory))
    assert calls == []  # lazy: nothing built until used
    store = manager.memory
    assert manager.memory is store and calls == [1]
    await store.set("a", 1)
    assert isinstance(store, DictMemory) and store.values == {"f:a": 1}

    by_class = PersistenceManager(
        PersistenceConfig(memory_store_class=DictMemory, memory_store_kwargs={"prefix": "c:"})
    ).memory
    assert isinstance(by_class, DictMemory) and by_class.prefix == "c:"


@pytest.mark.parametrize(
    "given",
    [
        {"memory_store": DictMemory(), "memory_store_factory": DictMemory},
        {"memory_store": DictMemory(), "memory_store_class": DictMemory},
        {"memory_store_factory": DictMemory, "memory_store_class": DictMemory},
    ],
)
def test_two_ways_for_one_store_is_an_error(given: dict[str, Any]) -> None:
    with pytest.raises(PersistenceConfigError, match="the memory store is configured 2 ways"):
        PersistenceConfig(**given)


@pytest.mark.parametrize(
    ("given", "error", "fragment"),
    [
        (
            {"memory_store_kwargs": {"prefix": "x"}},
            PersistenceConfigError,
            "memory_store_kwargs is only used with",
        ),
        ({"memory_store": object()}, TypeError, "memory_store must be a MemoryStore instance"),
        ({"task_store_class": DictMemory}, TypeError, "task_store_class must be a subclass of TaskStore"),
        ({"audit_store_factory": "not callable"}, TypeError, "audit_store_factory must be callable"),
        (
            {"memory_store_class": DictMemory, "memory_store_kwargs": [1]},
            TypeError,
            "memory_store_kwargs must be a dict",
        ),
    ],
)
def test_unusable_config_values_are_rejected_up_front(
    given: dict[str, Any], error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error, match=fragment):
        PersistenceConfig(**given)


def test_errors_when_building_a_store() -> None:
    wrong = PersistenceManager(PersistenceConfig(memory_store_factory=lambda: "nope"))  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="memory_store_factory returned str, not a MemoryStore"):
        _ = wrong.memory
    bad_kwargs = PersistenceManager(
        PersistenceConfig(memory_store_class=DictMemory, memory_store_kwargs={"colour": "red"})
    )
    with pytest.raises(PersistenceConfigError, match=r"could not build memory store DictMemory"):
        _ = bad_kwargs.memory


def test_optional_stores_are_absent_unless_configured(dirs: dict[str, Path]) -> None:
    manager = PersistenceManager(PersistenceConfig(**dirs))
    assert not manager.has_knowledge() and not manager.has_audit()
    with pytest.raises(StoreNotConfiguredError, match=r"no knowledge store is configured.*has_knowledge"):
        _ = manager.knowledge
    with pytest.raises(StoreNotConfiguredError, match="FileAuditStore"):
        _ = manager.audit


async def test_file_store_classes_land_in_the_configured_directories(dirs: dict[str, Path]) -> None:
    manager = PersistenceManager(
        PersistenceConfig(
            knowledge_store_class=FileKnowledgeStore,
            audit_store_factory=lambda: FileAuditStore(**dirs),
            **dirs,
        )
    )
    assert manager.has_knowledge() and manager.has_audit()
    assert isinstance(manager.knowledge, FileKnowledgeStore)
    assert manager.knowledge.path(Scope.PROJECT) == dirs["project_dir"] / ".agent_runtime" / "knowledge.json"
    assert isinstance(manager.audit, AuditStore)


async def test_optional_methods_of_minimal_backends_raise_unsupported() -> None:
    store = DictMemory()
    with pytest.raises(UnsupportedOperationError, match="DictMemory does not implement list_keys"):
        await store.list_keys()
    assert isinstance(UnsupportedOperationError("x"), NotImplementedError)


async def test_close_closes_built_stores() -> None:
    store = DictMemory()
    manager = PersistenceManager(PersistenceConfig(memory_store=store))
    _ = manager.memory
    await manager.close()
    assert store.closed


async def test_configure_and_get_the_process_wide_manager(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    default = get_persistence_manager()
    assert get_persistence_manager() is default
    assert default.memory.path(Scope.PROJECT) == tmp_path / ".agent_runtime" / "memory.json"  # type: ignore[attr-defined]
    assert default.memory.path(Scope.GLOBAL) == tmp_path / "home" / ".agent_runtime" / "memory.json"  # type: ignore[attr-defined]

    configured = configure_persistence(memory_store_class=DictMemory, project_dir=tmp_path / "p")
    assert get_persistence_manager() is configured is not default
    assert isinstance(configured.memory, DictMemory)

    with pytest.raises(PersistenceConfigError, match="'memory_stor' \\(did you mean 'memory_store'\\?\\)"):
        configure_persistence(memory_stor=DictMemory())
    assert get_persistence_manager() is configured  # a failed configure changes nothing
    with pytest.raises(PersistenceConfigError, match="configured 2 ways"):
        configure_persistence(memory_store=DictMemory(), memory_store_class=DictMemory)
    assert get_persistence_manager() is configured


def test_manager_rejects_something_that_is_not_a_config() -> None:
    with pytest.raises(TypeError, match="expected a PersistenceConfig, got dict"):
        PersistenceManager({"project_dir": "."})  # type: ignore[arg-type]
