"""Persistence data models: JSON round trips, normalisation of user input, clear errors, branch views."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from agent_runtime_core.persistence import (
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
    Summary,
    Task,
    TaskList,
    TaskState,
    ToolCall,
    ToolResult,
    cosine_similarity,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _every_model() -> list[Any]:
    call = ToolCall(name="search", arguments={"q": "x"}, id="call_1", timestamp=T0)
    msg = ConversationMessage(
        role="assistant",
        content="hi",
        tool_calls=[call],
        tool_results=[ToolResult(tool_call_id="call_1", result={"n": 1}, duration_ms=3.5)],
        model="gpt-4o",
        usage={"total_tokens": 5},
        parent_message_id=uuid.uuid4(),
        branch_id=uuid.uuid4(),
    )
    task = Task(
        name="t",
        description="d",
        state=TaskState.IN_PROGRESS,
        conversation_id=uuid.uuid4(),
        dependencies=[uuid.uuid4()],
        priority=3,
        due_at=T0,
        checkpoint_data={"step": 1},
        checkpoint_at=T0,
        attempts=1,
        last_error="boom",
    )
    return [
        call,
        ToolResult(tool_call_id="call_1", error="failed"),
        msg,
        Conversation(
            title="c",
            messages=[msg],
            metadata={"k": [1, 2]},
            parent_conversation_id=uuid.uuid4(),
            active_branch_id=msg.branch_id,
        ),
        task,
        TaskList(name="plan", tasks=[task], conversation_id=uuid.uuid4()),
        Fact(key="k", value={"v": 1}, fact_type=FactType.USER, confidence=0.5, expires_at=T0),
        Summary(content="s", conversation_id=uuid.uuid4(), conversation_ids=[uuid.uuid4()], start_time=T0),
        Embedding(vector=[0.1, 0.2], content="text", source_id=uuid.uuid4(), model="e"),
        AuditEntry(event_type=AuditEventType.TOOL_CALL, action="a", details={"q": 1}, run_id="r"),
        ErrorRecord(
            message="m", severity=ErrorSeverity.CRITICAL, resolved=True, resolved_at=T0, resolution="x"
        ),
        PerformanceMetric(name="latency", value=12, unit="ms", tags={"model": "m"}),
    ]


@pytest.mark.parametrize("model", _every_model(), ids=lambda m: type(m).__name__)
def test_every_model_round_trips_through_json(model: Any) -> None:
    data = json.loads(json.dumps(model.to_dict()))
    back = type(model).from_dict(data)
    assert back == model
    assert back.to_dict() == data


def test_to_dict_uses_plain_json_values() -> None:
    task = Task(name="t", state=TaskState.COMPLETE, due_at=T0)
    data = task.to_dict()
    assert data["state"] == "complete"
    assert data["id"] == str(task.id)
    assert data["due_at"] == "2024-05-01T12:00:00+00:00"


def test_ids_default_to_fresh_uuid4() -> None:
    a, b = Conversation(), Conversation()
    assert isinstance(a.id, uuid.UUID) and a.id.version == 4 and a.id != b.id


def test_datetimes_are_normalised_to_aware_utc() -> None:
    naive = Task(name="t", due_at=datetime(2024, 12, 31))
    assert naive.due_at == datetime(2024, 12, 31, tzinfo=UTC)
    plus_two = timezone(timedelta(hours=2))
    shifted = Task(name="t", due_at=datetime(2024, 12, 31, 2, tzinfo=plus_two))
    assert shifted.due_at == datetime(2024, 12, 31, 0, tzinfo=UTC) and shifted.due_at.tzinfo is UTC
    assert Conversation().created_at.tzinfo is UTC


def test_string_ids_and_enum_values_are_accepted() -> None:
    tid = uuid.uuid4()
    task = Task(name="t", id=str(tid), state="complete")  # type: ignore[arg-type]
    assert task.id == tid and task.state is TaskState.COMPLETE


@pytest.mark.parametrize(
    ("build", "error", "fragment"),
    [
        (lambda: Task(name="t", state="done"), ValueError, "Task.state: 'done' is not a TaskState"),
        (lambda: Task(name=""), ValueError, "Task.name must not be empty"),
        (lambda: Task(name="t", priority="high"), TypeError, "Task.priority must be an int"),
        (lambda: Task(name="t", attempts=-1), ValueError, "attempts must be >= 0"),
        (lambda: Task(name="t", id="not-a-uuid"), ValueError, "Task.id: 'not-a-uuid' is not a UUID"),
        (lambda: Task(name="t", due_at=20241231), TypeError, "Task.due_at must be a datetime"),
        (lambda: Task(name="t", due_at="tomorrow"), ValueError, "not an ISO 8601 datetime"),
        (lambda: Task(name="t", checkpoint_data=[1]), TypeError, "checkpoint_data must be a dict"),
        (lambda: ConversationMessage(role=""), ValueError, "role must not be empty"),
        (lambda: Conversation(messages="hi"), TypeError, "messages must be a list"),
        (lambda: Fact(key="k", value=1, confidence=1.5), ValueError, "between 0 and 1"),
        (lambda: Fact(key="k", value=1, fact_type="opinion"), ValueError, "is not a FactType"),
        (lambda: Embedding(vector=[]), ValueError, "non-empty list"),
        (lambda: Embedding(vector=[1.0, float("nan")]), ValueError, "finite numbers"),
        (lambda: PerformanceMetric(name="x", value="fast"), ValueError, "finite number"),
        (lambda: AuditEntry(event_type="lunch"), ValueError, "is not a AuditEventType"),
        (lambda: ErrorRecord(message="m", resolved="yes"), TypeError, "resolved must be a bool"),
    ],
)
def test_bad_field_values_raise_typed_errors_naming_the_field(
    build: Any, error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        build()


def test_task_cannot_depend_on_itself() -> None:
    tid = uuid.uuid4()
    with pytest.raises(ValueError, match="cannot depend on itself"):
        Task(name="t", id=tid, dependencies=[tid])


def test_from_dict_reports_missing_fields_and_non_mappings() -> None:
    with pytest.raises(ValueError, match=r"Task.from_dict: missing required field\(s\) name"):
        Task.from_dict({"description": "x"})
    with pytest.raises(TypeError, match="expects a mapping, got list"):
        Task.from_dict([])  # type: ignore[arg-type]


def test_from_dict_ignores_unknown_keys_written_by_newer_versions() -> None:
    data = Task(name="t").to_dict() | {"added_in_v2": True}
    assert Task.from_dict(data).name == "t"


def test_error_record_from_exception_keeps_type_message_and_traceback() -> None:
    try:
        raise KeyError("missing")
    except KeyError as exc:
        record = ErrorRecord.from_exception(exc, severity=ErrorSeverity.WARNING, run_id="r1")
    assert record.error_type == "KeyError" and record.message == "'missing'"
    assert record.stack_trace is not None and "raise KeyError" in record.stack_trace
    assert record.severity is ErrorSeverity.WARNING and record.run_id == "r1"


def test_task_list_helpers() -> None:
    done, todo = Task(name="a", state=TaskState.COMPLETE), Task(name="b")
    tasks = TaskList(name="plan", tasks=[done, todo])
    assert tasks.get(todo.id) is todo and tasks.get(uuid.uuid4()) is None
    assert tasks.in_state(TaskState.COMPLETE) == [done]
    assert tasks.progress() == 0.5
    assert TaskList().progress() == 1.0


def test_cosine_similarity() -> None:
    assert cosine_similarity([1.0, 0.0], [2.0, 0.0]) == pytest.approx(1.0)
    assert cosine_similarity([1.0, 0.0], [0.0, 1.0]) == pytest.approx(0.0)
    assert cosine_similarity([1.0, 0.0], [-1.0, 0.0]) == pytest.approx(-1.0)
    assert cosine_similarity([0.0, 0.0], [1.0, 1.0]) == 0.0
    with pytest.raises(ValueError, match="different dimensions"):
        cosine_similarity([1.0], [1.0, 2.0])


# --- Branch views ------------------------------------------------------------------------------


def _msg(content: str, **kw: Any) -> ConversationMessage:
    return ConversationMessage(role="user", content=content, **kw)


def test_branch_view_replaces_the_edited_message_and_what_follows() -> None:
    q1, a1, q2, a2 = _msg("q1"), _msg("a1"), _msg("q2"), _msg("a2")
    b1 = uuid.uuid4()
    edit = _msg("q2-edited", parent_message_id=q2.id, branch_id=b1)
    answer = _msg("a2-new", branch_id=b1)
    conv = Conversation(messages=[q1, a1, q2, a2, edit, answer])

    assert [m.content for m in conv.messages_on_branch(None)] == ["q1", "a1", "q2", "a2"]
    assert [m.content for m in conv.messages_on_branch(b1)] == ["q1", "a1", "q2-edited", "a2-new"]
    assert conv.active_messages() == conv.messages_on_branch(None)
    conv.active_branch_id = b1
    assert [m.content for m in conv.active_messages()][-1] == "a2-new"
    assert conv.branch_ids() == [b1]


def test_branches_can_branch_off_branches() -> None:
    q1, a1 = _msg("q1"), _msg("a1")
    b1, b2 = uuid.uuid4(), uuid.uuid4()
    a1_regen = _msg("a1-v2", parent_message_id=a1.id, branch_id=b1)
    q2 = _msg("q2", branch_id=b1)
    q2_edit = _msg("q2-v2", parent_message_id=q2.id, branch_id=b2)
    conv = Conversation(messages=[q1, a1, a1_regen, q2, q2_edit])
    assert [m.content for m in conv.messages_on_branch(b2)] == ["q1", "a1-v2", "q2-v2"]


def test_branch_view_survives_cyclic_parent_links() -> None:
    b1, b2 = uuid.uuid4(), uuid.uuid4()
    x_id, y_id = uuid.uuid4(), uuid.uuid4()
    x = _msg("x", id=x_id, parent_message_id=y_id, branch_id=b1)
    y = _msg("y", id=y_id, parent_message_id=x_id, branch_id=b2)
    conv = Conversation(messages=[x, y])
    assert [m.content for m in conv.messages_on_branch(b1)] == ["x"]
