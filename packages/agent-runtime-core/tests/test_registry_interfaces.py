from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from agent_runtime_core import (
    EVENT_VISIBILITY,
    AgentRuntime,
    ErrorInfo,
    EventType,
    RunContext,
    RunResult,
    UnknownRuntimeError,
    clear_registry,
    get_runtime,
    list_runtimes,
    register_runtime,
    register_runtime_class,
    register_runtime_factory,
    unregister_runtime,
)


class EchoAgent(AgentRuntime):
    def __init__(self, key: str = "echo") -> None:
        self._key = key

    @property
    def key(self) -> str:
        return self._key

    async def run(self, ctx: RunContext) -> RunResult:
        return RunResult(final_output={"echo": ctx.input_messages[-1]["content"]})


@pytest.fixture(autouse=True)
def empty_registry() -> Iterator[None]:
    clear_registry()
    yield
    clear_registry()


def test_register_get_list_unregister_clear() -> None:
    agent = EchoAgent()
    register_runtime(agent)
    register_runtime(EchoAgent("other"))
    assert get_runtime("echo") is agent
    assert list_runtimes() == ["echo", "other"]
    unregister_runtime("other")
    assert list_runtimes() == ["echo"]
    clear_registry()
    assert list_runtimes() == []


def test_unknown_key_lists_known_keys() -> None:
    register_runtime(EchoAgent("alpha"))
    register_runtime(EchoAgent("beta"))
    with pytest.raises(UnknownRuntimeError, match=r"'gamma'.*'alpha', 'beta'"):
        get_runtime("gamma")
    with pytest.raises(KeyError):
        unregister_runtime("gamma")


def test_factory_gives_a_fresh_agent_per_lookup() -> None:
    register_runtime_factory("fresh", lambda: EchoAgent("fresh"))
    a, b = get_runtime("fresh"), get_runtime("fresh")
    assert a is not b and a.key == "fresh"


def test_factory_returning_something_else_is_a_type_error() -> None:
    register_runtime_factory("bad", lambda: object())  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="not an AgentRuntime"):
        get_runtime("bad")


def test_class_registration_uses_the_instance_key() -> None:
    key = register_runtime_class(EchoAgent, "from-class")
    assert key == "from-class"
    assert isinstance(get_runtime("from-class"), EchoAgent)
    assert get_runtime("from-class") is not get_runtime("from-class")


def test_register_rejects_non_agents_and_duplicates_when_asked() -> None:
    with pytest.raises(TypeError):
        register_runtime(object())  # type: ignore[arg-type]
    register_runtime(EchoAgent())
    with pytest.raises(ValueError, match="already registered"):
        register_runtime(EchoAgent(), replace=False)


def test_event_types_have_wire_names_and_visibility() -> None:
    assert EventType.RUN_STARTED == "run.started"
    assert EventType.TOOL_CALL.value == "tool.call"
    assert EventType.ASSISTANT_DELTA == "assistant.delta"
    assert EventType.CHECKPOINT == "state.checkpoint"
    assert json.dumps({"t": EventType.RUN_TIMED_OUT}) == '{"t": "run.timed_out"}'
    assert set(EVENT_VISIBILITY) == set(EventType)
    assert EVENT_VISIBILITY[EventType.RUN_HEARTBEAT] == "internal"


def test_error_info_from_exception_round_trips() -> None:
    try:
        raise ValueError("bad thing")
    except ValueError as exc:
        info = ErrorInfo.from_exception(exc)
    assert info.type == "ValueError" and info.message == "bad thing" and not info.retryable
    assert info.stack is not None and "bad thing" in info.stack
    assert ErrorInfo.from_dict(info.to_dict()) == info
    result = RunResult(error=info)
    assert not result.succeeded and result.to_dict()["error"]["type"] == "ValueError"
