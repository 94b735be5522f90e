"""The README's persistence examples, as written, with the names it leaves to the reader stubbed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Optional
from uuid import UUID, uuid4

import pytest
from agent_runtime_core.persistence import (
    AuditEntry,
    AuditEventType,
    AuditStore,
    Conversation,
    ConversationMessage,
    ConversationStore,
    Embedding,
    Fact,
    FactType,
    FileConversationStore,
    FileTaskStore,
    KnowledgeStore,
    MemoryStore,
    PerformanceMetric,
    PersistenceConfig,
    PersistenceManager,
    Scope,
    Summary,
    Task,
    TaskState,
    reset_persistence,
)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The examples use Path.cwd() and the default ~/.agent_runtime: point both at tmp dirs."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    reset_persistence()
    yield
    reset_persistence()


async def test_file_based_storage_example(tmp_path: Path) -> None:
    config = PersistenceConfig(project_dir=Path.cwd())
    manager = PersistenceManager(config)

    await manager.memory.set("user_name", "Alice", scope=Scope.PROJECT)
    name = await manager.memory.get("user_name")

    from agent_runtime_core.persistence import Conversation, Message

    conv = Conversation(title="Chat 1")
    conv.messages.append(Message(role="user", content="Hello!"))
    await manager.conversations.save(conv)

    task = Task(name="Review code", conversation_id=conv.id)
    await manager.tasks.save(task)
    await manager.tasks.update(task.id, state=TaskState.COMPLETE)

    await manager.preferences.set("theme", "dark")

    assert name == "Alice"
    stored = await manager.conversations.get(conv.id)
    assert stored is not None and stored.title == "Chat 1"
    assert [(m.role, m.content) for m in stored.messages] == [("user", "Hello!")]
    done = await manager.tasks.get(task.id)
    assert done is not None and done.state is TaskState.COMPLETE and done.completed_at is not None
    assert await manager.preferences.get("theme") == "dark"
    # Where the README says things go: PROJECT under the project dir, preferences (GLOBAL) under ~.
    assert (tmp_path / ".agent_runtime" / "memory.json").exists()
    assert (tmp_path / ".agent_runtime" / "conversations.json").exists()
    prefs = json.loads((tmp_path / "home" / ".agent_runtime" / "preferences.json").read_text())
    assert prefs["collections"]["preferences"] == {"theme": "dark"}


def test_message_is_the_conversation_message_class() -> None:
    from agent_runtime_core.persistence import Message

    assert Message is ConversationMessage


# --- Custom backends ---------------------------------------------------------------------------


class MyDatabaseMemoryStore(MemoryStore):
    def __init__(self, user):
        self.user = user

    async def get(self, key: str, scope=None) -> Optional[Any]:  # noqa: UP045
        # Your database logic here
        pass

    async def set(self, key: str, value: Any, scope=None) -> None:
        # Your database logic here
        pass

    # ... implement other methods


class MyDatabaseConversationStore(ConversationStore):
    """Not defined by the README; the minimum a conversation backend needs."""

    def __init__(self, user: Any) -> None:
        self.user = user
        self.rows: dict[UUID, Conversation] = {}

    async def save(self, conversation: Conversation, scope: Scope = Scope.PROJECT) -> None:
        self.rows[conversation.id] = conversation

    async def get(self, conversation_id: UUID, scope: Scope = Scope.PROJECT) -> Conversation | None:
        return self.rows.get(conversation_id)

    async def delete(self, conversation_id: UUID, scope: Scope = Scope.PROJECT) -> bool:
        return self.rows.pop(conversation_id, None) is not None

    async def list_conversations(
        self, scope: Scope = Scope.PROJECT, limit: int | None = None, offset: int = 0
    ) -> list[Conversation]:
        return list(self.rows.values())


request = SimpleNamespace(user="alice")


def get_current_user() -> str:
    return "bob"


async def test_custom_backends_example_three_ways() -> None:
    # 1. Pre-instantiated stores (recommended for request-scoped)
    config = PersistenceConfig(
        memory_store=MyDatabaseMemoryStore(user=request.user),
        conversation_store=MyDatabaseConversationStore(user=request.user),
    )
    manager = PersistenceManager(config)
    assert isinstance(manager.memory, MyDatabaseMemoryStore) and manager.memory.user == "alice"
    assert isinstance(manager.conversations, MyDatabaseConversationStore)
    conv = Conversation(title="db")
    await manager.conversations.save(conv)
    await manager.conversations.add_message(conv.id, ConversationMessage(role="user", content="hi"))
    assert [m.content for m in await manager.conversations.get_messages(conv.id)] == ["hi"]

    # 2. Factory functions (for lazy instantiation)
    config = PersistenceConfig(
        memory_store_factory=lambda: MyDatabaseMemoryStore(user=get_current_user()),
    )
    manager = PersistenceManager(config)
    assert isinstance(manager.memory, MyDatabaseMemoryStore) and manager.memory.user == "bob"

    # 3. Classes with kwargs
    config = PersistenceConfig(
        memory_store_class=MyDatabaseMemoryStore,
        memory_store_kwargs={"user": request.user},
    )
    manager = PersistenceManager(config)
    assert isinstance(manager.memory, MyDatabaseMemoryStore) and manager.memory.user == "alice"
    assert await manager.memory.get("anything") is None
    # Other stores still fall back to the file defaults.
    assert isinstance(manager.conversations, FileConversationStore)


def test_data_models_import_block() -> None:
    from agent_runtime_core.persistence import (  # noqa: F401
        AuditEntry,
        AuditEventType,
        Conversation,
        ConversationMessage,
        Embedding,
        ErrorRecord,
        ErrorSeverity,
        Fact,
        FactType,
        PerformanceMetric,
        Scope,
        Summary,
        Task,
        TaskList,
        TaskState,
        ToolCall,
        ToolResult,
    )

    assert [s.name for s in TaskState] == ["NOT_STARTED", "IN_PROGRESS", "COMPLETE", "CANCELLED"]
    assert [s.name for s in FactType] == ["USER", "PROJECT", "PREFERENCE", "CONTEXT", "CUSTOM"]
    assert [s.name for s in ErrorSeverity] == ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
    assert [s.name for s in Scope] == ["GLOBAL", "PROJECT", "SESSION"]
    assert {"CONVERSATION_START", "TOOL_CALL", "AGENT_ERROR"} <= {e.name for e in AuditEventType}


async def test_conversation_branching_example(tmp_path: Path) -> None:
    original_msg = ConversationMessage(role="user", content="Original question")
    original_conv = Conversation(title="Original", messages=[original_msg])

    # Create a branched message (e.g., user edited their message)
    branch_id = uuid4()
    edited_msg = ConversationMessage(
        id=uuid4(),
        role="user",
        content="Updated question",
        parent_message_id=original_msg.id,  # Points to original
        branch_id=branch_id,
    )

    # Fork a conversation
    forked_conv = Conversation(
        id=uuid4(),
        title="Forked conversation",
        parent_conversation_id=original_conv.id,
        active_branch_id=branch_id,
    )

    original_conv.messages.append(edited_msg)
    original_conv.active_branch_id = branch_id
    assert [m.content for m in original_conv.active_messages()] == ["Updated question"]
    assert [m.content for m in original_conv.messages_on_branch(None)] == ["Original question"]

    store = FileConversationStore(project_dir=tmp_path, global_dir=tmp_path / "g")
    await store.save(original_conv)
    await store.save(forked_conv)
    loaded = await store.get(forked_conv.id)
    assert loaded == forked_conv
    assert loaded is not None and loaded.parent_conversation_id == original_conv.id
    assert loaded.active_branch_id == branch_id
    assert [m.content for m in await store.get_messages(original_conv.id)] == ["Updated question"]


async def test_enhanced_task_example(tmp_path: Path) -> None:
    task1, task2 = Task(name="Download"), Task(name="Validate")

    task = Task(
        id=uuid4(),
        name="Process large dataset",
        description="Multi-step data processing",
        state=TaskState.IN_PROGRESS,
        # Dependencies - this task depends on others
        dependencies=[task1.id, task2.id],
        # Scheduling
        priority=10,  # Higher = more important
        due_at=datetime(2024, 12, 31),
        # Checkpoint for resumable operations
        checkpoint_data={"step": 5, "processed": 1000},
        checkpoint_at=datetime.utcnow(),
        # Execution tracking
        attempts=2,
        last_error="Temporary network failure",
    )

    # Naive datetimes are read as UTC.
    assert task.due_at == datetime(2024, 12, 31, tzinfo=UTC)
    assert task.checkpoint_at is not None and task.checkpoint_at.tzinfo is UTC
    store = FileTaskStore(project_dir=tmp_path, global_dir=tmp_path / "g")
    for t in (task1, task2, task):
        await store.save(t)
    assert await store.get(task.id) == task
    assert [t.name for t in await store.get_dependencies(task.id)] == ["Download", "Validate"]
    assert await store.get_checkpoint(task.id) == {"step": 5, "processed": 1000}


async def test_knowledge_store_example() -> None:
    # Implement your own KnowledgeStore
    class MyKnowledgeStore(KnowledgeStore):
        async def save_fact(self, fact, scope=Scope.PROJECT):
            # Save to database
            ...

        async def get_fact(self, fact_id, scope=Scope.PROJECT): ...

        # ... implement other abstract methods

    # Configure with optional store
    config = PersistenceConfig(
        knowledge_store=MyKnowledgeStore(),
    )
    manager = PersistenceManager(config)

    # Check if available before using
    assert manager.has_knowledge()
    if manager.has_knowledge():
        await manager.knowledge.save_fact(
            Fact(
                id=uuid4(),
                key="user.preferred_language",
                value="Python",
                fact_type=FactType.PREFERENCE,
            )
        )
    assert isinstance(manager.knowledge, MyKnowledgeStore)
    assert not manager.has_audit()
    # The README's other model names construct as expected.
    assert Summary(content="s").content == "s" and Embedding(vector=[1.0]).dimensions == 1


async def test_audit_store_example() -> None:
    logged: list[Any] = []

    # Implement your own AuditStore
    class MyAuditStore(AuditStore):
        async def log_event(self, entry, scope=Scope.PROJECT):
            # Log to database/file
            logged.append(entry)

        async def log_error(self, error, scope=Scope.PROJECT): ...

        async def record_metric(self, metric, scope=Scope.PROJECT):
            logged.append(metric)

        # ... implement other abstract methods

    # Use in manager
    config = PersistenceConfig(
        audit_store=MyAuditStore(),
    )
    manager = PersistenceManager(config)

    if manager.has_audit():
        # Log an event
        await manager.audit.log_event(
            AuditEntry(
                id=uuid4(),
                event_type=AuditEventType.TOOL_CALL,
                action="Called search tool",
                details={"query": "python docs"},
            )
        )

        # Record performance metric
        await manager.audit.record_metric(
            PerformanceMetric(
                id=uuid4(),
                name="llm_latency",
                value=1250.5,
                unit="ms",
                tags={"model": "gpt-4"},
            )
        )

    assert [type(x).__name__ for x in logged] == ["AuditEntry", "PerformanceMetric"]
    assert logged[0].details == {"query": "python docs"} and logged[1].value == 1250.5


class MyMemoryStore(MemoryStore):
    """Not defined by the README: an in-process store, enough to see it wired in."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    async def get(self, key: str, scope: Scope | None = None) -> Any | None:
        return self.values.get(key)

    async def set(self, key: str, value: Any, scope: Scope | None = None) -> None:
        self.values[key] = value


async def test_persistence_functions_example(tmp_path: Path) -> None:
    from agent_runtime_core.persistence import (
        configure_persistence,
        get_persistence_manager,
    )

    # Configure global persistence
    configure_persistence(
        memory_store_class=MyMemoryStore,
        project_dir=Path.cwd(),
    )

    # Get the global manager
    manager = get_persistence_manager()

    assert isinstance(manager.memory, MyMemoryStore)
    assert get_persistence_manager() is manager
    conv = Conversation(title="global")
    await manager.conversations.save(conv)
    assert (tmp_path / ".agent_runtime" / "conversations.json").exists()
