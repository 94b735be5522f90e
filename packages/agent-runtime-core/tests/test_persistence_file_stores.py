"""The file-based default stores: scopes, conversations with branches and forks, tasks, knowledge,
audit, and concurrent writers in one process."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from agent_runtime_core.persistence import (
    AuditEntry,
    AuditEventType,
    Conversation,
    ConversationMessage,
    DependencyCycleError,
    Embedding,
    ErrorRecord,
    ErrorSeverity,
    Fact,
    FactType,
    FileAuditStore,
    FileConversationStore,
    FileKnowledgeStore,
    FileMemoryStore,
    FilePreferencesStore,
    FileTaskStore,
    PerformanceMetric,
    RecordNotFoundError,
    Scope,
    Summary,
    Task,
    TaskState,
)
from agent_runtime_core.persistence._model import utc_now


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    return {"project_dir": tmp_path / "project", "global_dir": tmp_path / "global"}


# --- Memory and scopes ---------------------------------------------------------------------------


async def test_scopes_are_isolated_and_stored_where_documented(dirs: dict[str, Path]) -> None:
    memory = FileMemoryStore(**dirs)
    await memory.set("k", "global", scope=Scope.GLOBAL)
    await memory.set("k", "project", scope=Scope.PROJECT)
    await memory.set("k", "session", scope=Scope.SESSION)

    assert await memory.get("k", scope=Scope.GLOBAL) == "global"
    assert await memory.get("k", scope=Scope.PROJECT) == "project"
    assert await memory.get("k", scope=Scope.SESSION) == "session"
    assert memory.path(Scope.PROJECT) == dirs["project_dir"] / ".agent_runtime" / "memory.json"
    assert memory.path(Scope.GLOBAL) == dirs["global_dir"] / "memory.json"
    assert memory.path(Scope.SESSION) is None
    # SESSION never reaches the disk, and a new store (a new process) does not see it.
    fresh = FileMemoryStore(**dirs)
    assert await fresh.get("k", scope=Scope.SESSION) is None
    assert await fresh.get("k", scope=Scope.PROJECT) == "project"


async def test_unscoped_get_prefers_the_most_specific_scope(dirs: dict[str, Path]) -> None:
    memory = FileMemoryStore(**dirs)
    await memory.set("k", "global", scope=Scope.GLOBAL)
    assert await memory.get("k") == "global"
    await memory.set("k", "project")  # unscoped writes go to PROJECT
    assert await memory.get("k") == "project"
    await memory.set("k", "session", scope=Scope.SESSION)
    assert await memory.get("k") == "session"
    assert await memory.get("absent") is None


async def test_memory_delete_list_and_clear(dirs: dict[str, Path]) -> None:
    memory = FileMemoryStore(**dirs)
    for key in ("user.name", "user.lang", "repo"):
        await memory.set(key, 1)
    await memory.set("other", 1, scope=Scope.GLOBAL)
    assert await memory.list_keys(Scope.PROJECT) == ["repo", "user.lang", "user.name"]
    assert await memory.list_keys(prefix="user.") == ["user.lang", "user.name"]
    assert await memory.list_keys() == ["other", "repo", "user.lang", "user.name"]
    assert await memory.delete("repo") is True
    assert await memory.delete("repo") is False
    await memory.clear()
    assert await memory.list_keys() == ["other"]


async def test_stored_values_are_copies(dirs: dict[str, Path]) -> None:
    memory = FileMemoryStore(**dirs)
    value = {"items": [1]}
    await memory.set("v", value, scope=Scope.SESSION)
    value["items"].append(2)
    got = await memory.get("v", scope=Scope.SESSION)
    assert got == {"items": [1]}
    got["items"].append(3)
    assert await memory.get("v", scope=Scope.SESSION) == {"items": [1]}


async def test_memory_rejects_bad_keys_values_and_scopes(dirs: dict[str, Path]) -> None:
    memory = FileMemoryStore(**dirs)
    with pytest.raises(TypeError, match="memory value for key 'k' is not JSON-serialisable"):
        await memory.set("k", object())
    with pytest.raises(ValueError, match="key must not be empty"):
        await memory.set("", 1)
    with pytest.raises(TypeError, match="key must be a str"):
        await memory.get(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scope: 'team' is not a Scope"):
        await memory.set("k", 1, scope="team")  # type: ignore[arg-type]
    assert not (dirs["project_dir"] / ".agent_runtime" / "memory.json").exists()


async def test_preferences_default_to_global(dirs: dict[str, Path]) -> None:
    prefs = FilePreferencesStore(**dirs)
    await prefs.set("theme", "dark")
    await prefs.set("theme", "light", scope=Scope.PROJECT)
    assert await prefs.get("theme") == "dark"
    assert await prefs.all() == {"theme": "dark"}
    assert await prefs.all(Scope.PROJECT) == {"theme": "light"}
    assert (dirs["global_dir"] / "preferences.json").exists()
    assert await prefs.delete("theme") is True
    assert await prefs.get("theme") is None


async def test_concurrent_writers_do_not_lose_updates(dirs: dict[str, Path]) -> None:
    memory = FileMemoryStore(**dirs)
    await asyncio.gather(*(memory.set(f"k{i}", i) for i in range(40)))
    assert await memory.list_keys(Scope.PROJECT) == sorted(f"k{i}" for i in range(40))

    conversations = FileConversationStore(**dirs)
    conv = Conversation()
    await conversations.save(conv)
    messages = [ConversationMessage(role="user", content=str(i)) for i in range(25)]
    await asyncio.gather(*(conversations.add_message(conv.id, m) for m in messages))
    stored = await conversations.get_messages(conv.id)
    assert sorted(int(m.content) for m in stored) == list(range(25))


async def test_stores_work_across_event_loops(dirs: dict[str, Path]) -> None:
    """A process-wide manager outlives any one asyncio.run; its locks must not be tied to one loop."""
    memory = FileMemoryStore(**dirs)
    await memory.set("a", 1)

    def in_another_loop() -> None:
        async def write_many() -> None:
            await asyncio.gather(*(memory.set(f"b{i}", i) for i in range(5)))

        asyncio.run(write_many())

    await asyncio.to_thread(in_another_loop)
    await asyncio.gather(memory.set("c", 1), memory.set("d", 1))
    assert len(await memory.list_keys(Scope.PROJECT)) == 8


# --- Conversations ---------------------------------------------------------------------------------


async def test_conversation_crud_and_listing_order(dirs: dict[str, Path]) -> None:
    store = FileConversationStore(**dirs)
    old = Conversation(title="old", updated_at=utc_now() - timedelta(hours=1))
    new = Conversation(title="new")
    await store.save(old)
    await store.save(new)
    await store.save(Conversation(title="elsewhere"), scope=Scope.GLOBAL)

    assert await store.get(old.id) == old
    assert [c.title for c in await store.list_conversations()] == ["new", "old"]
    assert [c.title for c in await store.list_conversations(limit=1, offset=1)] == ["old"]
    assert [c.title for c in await store.list_conversations(Scope.GLOBAL)] == ["elsewhere"]
    assert await store.delete(old.id) is True
    assert await store.get(old.id) is None
    assert await store.delete(old.id) is False
    with pytest.raises(TypeError, match="expected a Conversation"):
        await store.save({"title": "x"})  # type: ignore[arg-type]


async def test_add_message_and_get_messages(dirs: dict[str, Path]) -> None:
    store = FileConversationStore(**dirs)
    conv = Conversation()
    await store.save(conv)
    first = ConversationMessage(role="user", content="hi")
    await store.add_message(conv.id, first)
    await store.add_message(conv.id, ConversationMessage(role="assistant", content="hello"))
    assert [m.content for m in await store.get_messages(conv.id)] == ["hi", "hello"]
    assert [m.content for m in await store.get_messages(conv.id, limit=1)] == ["hello"]
    stored = await store.get(conv.id)
    assert stored is not None and stored.updated_at > conv.updated_at
    with pytest.raises(ValueError, match="already has a message"):
        await store.add_message(conv.id, first)
    with pytest.raises(RecordNotFoundError, match="no conversation"):
        await store.add_message(uuid.uuid4(), ConversationMessage(role="user"))
    with pytest.raises(RecordNotFoundError):
        await store.get_messages(uuid.uuid4())


async def test_edit_branch_switch_and_fork_round_trip(dirs: dict[str, Path]) -> None:
    store = FileConversationStore(**dirs)
    q = ConversationMessage(role="user", content="What is 2+2?")
    a = ConversationMessage(role="assistant", content="5")
    conv = Conversation(title="math", messages=[q, a])
    await store.save(conv)

    regen = await store.create_branch(conv.id, a.id, ConversationMessage(role="assistant", content="4"))
    assert regen.parent_message_id == a.id and regen.branch_id is not None
    assert [m.content for m in await store.get_messages(conv.id)] == ["What is 2+2?", "4"]
    assert len(await store.get_messages(conv.id, all_branches=True)) == 3

    await store.switch_branch(conv.id, None)
    assert [m.content for m in await store.get_messages(conv.id)] == ["What is 2+2?", "5"]
    await store.switch_branch(conv.id, regen.branch_id)
    with pytest.raises(RecordNotFoundError, match="has no branch"):
        await store.switch_branch(conv.id, uuid.uuid4())
    with pytest.raises(RecordNotFoundError, match="no message"):
        await store.create_branch(conv.id, uuid.uuid4(), ConversationMessage(role="user"))

    forked = await store.fork(conv.id, title="fork")
    assert forked.parent_conversation_id == conv.id and forked.title == "fork"
    reloaded = await store.get(forked.id)
    assert reloaded == forked
    assert [m.content for m in reloaded.messages] == ["What is 2+2?", "4"]
    assert all(m.branch_id is None and m.id not in (q.id, regen.id) for m in reloaded.messages)

    partial = await store.fork(conv.id, up_to_message_id=q.id)
    assert [m.content for m in partial.messages] == ["What is 2+2?"] and partial.title == "math"
    with pytest.raises(RecordNotFoundError, match="not on the active history"):
        await store.fork(conv.id, up_to_message_id=a.id)


# --- Tasks -----------------------------------------------------------------------------------------


async def test_task_update_validates_and_tracks_completion(dirs: dict[str, Path]) -> None:
    store = FileTaskStore(**dirs)
    task = Task(name="Review code")
    await store.save(task)

    updated = await store.update(task.id, state=TaskState.IN_PROGRESS, attempts=1)
    assert updated.state is TaskState.IN_PROGRESS and updated.completed_at is None
    assert updated.updated_at > task.updated_at
    done = await store.update(task.id, state="complete")
    assert done.state is TaskState.COMPLETE and done.completed_at is not None
    assert await store.get(task.id) == done

    with pytest.raises(TypeError, match=r"Task has no updatable field.*colour"):
        await store.update(task.id, colour="red")
    with pytest.raises(TypeError, match=r"no updatable field\(s\) id;"):
        await store.update(task.id, id=uuid.uuid4())
    with pytest.raises(ValueError, match="is not a TaskState"):
        await store.update(task.id, state="finished")
    assert await store.get(task.id) == done  # failed updates wrote nothing
    with pytest.raises(RecordNotFoundError, match="no task"):
        await store.update(uuid.uuid4(), state=TaskState.COMPLETE)


async def test_task_listing_filters_and_order(dirs: dict[str, Path]) -> None:
    store = FileTaskStore(**dirs)
    conv_id = uuid.uuid4()
    low = Task(name="low", priority=1, conversation_id=conv_id)
    high = Task(name="high", priority=9)
    done = Task(name="done", state=TaskState.COMPLETE, conversation_id=conv_id)
    for t in (low, high, done):
        await store.save(t)
    assert [t.name for t in await store.list_tasks()] == ["high", "low", "done"]
    assert [t.name for t in await store.list_tasks(conversation_id=conv_id)] == ["low", "done"]
    assert [t.name for t in await store.list_tasks(state=TaskState.COMPLETE)] == ["done"]
    assert await store.delete(done.id) is True and await store.get(done.id) is None


async def test_dependencies_readiness_and_cycles(dirs: dict[str, Path]) -> None:
    store = FileTaskStore(**dirs)
    fetch, parse, report = Task(name="fetch"), Task(name="parse"), Task(name="report", priority=5)
    for t in (fetch, parse, report):
        await store.save(t)
    await store.add_dependency(parse.id, fetch.id)
    await store.add_dependency(report.id, parse.id)
    assert [t.name for t in await store.get_dependencies(report.id)] == ["parse"]
    assert [t.name for t in await store.get_ready_tasks()] == ["fetch"]

    with pytest.raises(DependencyCycleError, match="cycle"):
        await store.add_dependency(fetch.id, report.id)
    with pytest.raises(DependencyCycleError):
        await store.add_dependency(fetch.id, fetch.id)
    with pytest.raises(RecordNotFoundError):
        await store.add_dependency(fetch.id, uuid.uuid4())

    await store.update(fetch.id, state=TaskState.COMPLETE)
    assert [t.name for t in await store.get_ready_tasks()] == ["parse"]
    await store.update(parse.id, state=TaskState.COMPLETE)
    assert [t.name for t in await store.get_ready_tasks()] == ["report"]
    await store.remove_dependency(report.id, parse.id)
    stored = await store.get(report.id)
    assert stored is not None and stored.dependencies == []


async def test_missing_dependency_blocks_its_dependant(dirs: dict[str, Path]) -> None:
    store = FileTaskStore(**dirs)
    task = Task(name="orphan", dependencies=[uuid.uuid4()])
    await store.save(task)
    assert await store.get_ready_tasks() == []


async def test_checkpoints(dirs: dict[str, Path]) -> None:
    store = FileTaskStore(**dirs)
    task = Task(name="long")
    await store.save(task)
    assert await store.get_checkpoint(task.id) is None
    saved = await store.save_checkpoint(task.id, {"step": 5})
    assert saved.checkpoint_at is not None
    assert await store.get_checkpoint(task.id) == {"step": 5}
    cleared = await store.clear_checkpoint(task.id)
    assert cleared.checkpoint_data is None and cleared.checkpoint_at is None
    with pytest.raises(TypeError, match="checkpoint data must be a dict"):
        await store.save_checkpoint(task.id, [5])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="is not JSON-serialisable"):
        await store.save_checkpoint(task.id, {"f": object()})
    assert await store.get_checkpoint(task.id) is None


# --- Knowledge -------------------------------------------------------------------------------------


async def test_facts(dirs: dict[str, Path]) -> None:
    store = FileKnowledgeStore(**dirs)
    lang = Fact(key="user.lang", value="Python", fact_type=FactType.PREFERENCE)
    name = Fact(key="user.name", value="Ada", fact_type=FactType.USER)
    stale = Fact(key="ctx", value=1, expires_at=utc_now() - timedelta(seconds=1))
    for f in (lang, name, stale):
        await store.save_fact(f)
    assert await store.get_fact(lang.id) == lang
    assert [f.key for f in await store.list_facts()] == ["user.lang", "user.name"]
    assert [f.key for f in await store.list_facts(fact_type=FactType.USER)] == ["user.name"]
    newer = Fact(key="user.lang", value="Rust", fact_type=FactType.PREFERENCE)
    await store.save_fact(newer)
    found = await store.get_fact_by_key("user.lang")
    assert found is not None and found.value == "Rust"
    assert await store.delete_fact(lang.id) is True and await store.get_fact(lang.id) is None
    assert await store.list_facts(Scope.GLOBAL) == []


async def test_summaries(dirs: dict[str, Path]) -> None:
    store = FileKnowledgeStore(**dirs)
    conv_a, conv_b = uuid.uuid4(), uuid.uuid4()
    one = Summary(content="about a", conversation_id=conv_a)
    both = Summary(content="a and b", conversation_ids=[conv_a, conv_b])
    await store.save_summary(one)
    await store.save_summary(both)
    assert await store.get_summary(one.id) == one
    assert [s.content for s in await store.list_summaries(conversation_id=conv_b)] == ["a and b"]
    assert len(await store.list_summaries(conversation_id=conv_a)) == 2
    assert await store.delete_summary(one.id) is True


async def test_embedding_search_orders_by_cosine_similarity(dirs: dict[str, Path]) -> None:
    store = FileKnowledgeStore(**dirs)
    close = Embedding(vector=[0.9, 0.1, 0.0], content="close")
    exact = Embedding(vector=[2.0, 0.0, 0.0], content="exact")
    orthogonal = Embedding(vector=[0.0, 1.0, 0.0], content="orthogonal")
    opposite = Embedding(vector=[-1.0, 0.0, 0.0], content="opposite")
    for e in (orthogonal, opposite, close, exact):
        await store.save_embedding(e)

    results = await store.search_similar([1.0, 0.0, 0.0], limit=3)
    assert [e.content for e, _ in results] == ["exact", "close", "orthogonal"]
    assert results[0][1] == pytest.approx(1.0) and results[2][1] == pytest.approx(0.0)
    above = await store.search_similar([1.0, 0.0, 0.0], min_score=0.5)
    assert [e.content for e, _ in above] == ["exact", "close"]
    with pytest.raises(ValueError, match="2 dimensions but embedding"):
        await store.search_similar([1.0, 0.0])
    with pytest.raises(ValueError, match="query_vector must be a non-empty list"):
        await store.search_similar([])
    assert await store.delete_embedding(opposite.id) is True
    assert len(await store.list_embeddings()) == 3


# --- Audit -----------------------------------------------------------------------------------------


async def test_audit_events_errors_and_metrics(dirs: dict[str, Path]) -> None:
    store = FileAuditStore(**dirs)
    conv_id = uuid.uuid4()
    start = AuditEntry(event_type=AuditEventType.CONVERSATION_START, conversation_id=conv_id)
    call = AuditEntry(event_type=AuditEventType.TOOL_CALL, action="search", conversation_id=conv_id)
    other = AuditEntry(event_type=AuditEventType.TOOL_CALL)
    for e in (start, call, other):
        await store.log_event(e)
    assert await store.get_events(conversation_id=conv_id) == [start, call]
    assert await store.get_events(event_type=AuditEventType.TOOL_CALL) == [call, other]
    assert await store.get_events(limit=1) == [other]
    assert await store.get_events(since=utc_now() + timedelta(minutes=1)) == []

    warning = ErrorRecord(message="slow", severity=ErrorSeverity.WARNING)
    crash = ErrorRecord(message="crash", severity=ErrorSeverity.CRITICAL)
    await store.log_error(warning)
    await store.log_error(crash)
    resolved = await store.resolve_error(crash.id, "restarted worker")
    assert resolved.resolved and resolved.resolution == "restarted worker" and resolved.resolved_at
    assert [e.message for e in await store.get_errors(resolved=False)] == ["slow"]
    assert [e.message for e in await store.get_errors(severity=ErrorSeverity.CRITICAL)] == ["crash"]
    with pytest.raises(RecordNotFoundError, match="no error record"):
        await store.resolve_error(uuid.uuid4(), "x")

    for value, model in ((100.0, "a"), (300.0, "a"), (50.0, "b")):
        await store.record_metric(
            PerformanceMetric(name="latency", value=value, unit="ms", tags={"model": model})
        )
    await store.record_metric(PerformanceMetric(name="tokens", value=7))
    assert [m.value for m in await store.get_metrics(name="latency", tags={"model": "a"})] == [100.0, 300.0]
    summary = await store.metric_summary("latency")
    assert summary == {"count": 3.0, "min": 50.0, "max": 300.0, "mean": 150.0, "total": 450.0}
    assert await store.metric_summary("nothing") == {}
