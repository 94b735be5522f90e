"""Executor: llm-client's loop in segments, hooks, tool executors, usage and typed errors."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest
from agent_runtime_core.testing import MockLLMClient
from agent_runtime_framework import (
    Executor,
    ExecutorConfig,
    ExecutorHooks,
    LoggingHooks,
    MethodToolExecutor,
    MissingToolExecutorError,
    Segment,
    ToolSchema,
    ToolSchemaBuilder,
)
from llm_client import MockResponse, ToolSchemaError, Usage

ADD = (
    ToolSchemaBuilder("add").param("a", "integer", required=True).param("b", "integer", required=True).build()
)
UPPER = ToolSchemaBuilder("upper").param("text", "string", required=True).build()


class Calc:
    def add(self, a: int, b: int) -> int:
        return a + b

    async def upper(self, text: str) -> str:
        return text.upper()

    def _secret(self) -> str:
        return "leak"


class Recorder(ExecutorHooks):
    def __init__(self) -> None:
        self.log: list[str] = []

    async def on_llm_response(self, response: Any) -> None:
        self.log.append(f"llm {[c.name for c in response.tool_calls]}")

    async def on_tool_start(self, name: str, arguments: dict[str, Any]) -> None:
        self.log.append(f"start {name} {arguments}")

    async def on_tool_end(self, name: str, result: str) -> None:
        self.log.append(f"end {name} {result}")

    async def on_tool_error(self, name: str, error: str) -> None:
        self.log.append(f"error {name}")

    async def on_complete(self, result: Any) -> None:
        self.log.append(f"done {result.content}")

    async def on_error(self, error: BaseException) -> None:
        self.log.append(f"failed {type(error).__name__}")


async def test_segments_switch_prompt_and_tools_before_the_next_call() -> None:
    llm = MockLLMClient(
        responses=[
            MockResponse.tool_call("add", {"a": 1, "b": 2}),
            MockResponse.tool_call("upper", {"text": "x"}),
            "ok",
        ]
    )
    asked: list[int] = []

    async def next_segment() -> Segment | None:
        asked.append(len(asked))
        return Segment("second", [UPPER]) if len(asked) == 1 else None

    hooks = Recorder()
    executor = Executor(llm, MethodToolExecutor(Calc()), hooks=hooks)
    result = await executor.run(
        [{"role": "user", "content": "go"}], [ADD], "first", next_segment=next_segment
    )
    assert [(c.messages[0]["content"], [t["function"]["name"] for t in c.tools]) for c in llm.calls] == [
        ("first", ["add"]),
        ("second", ["upper"]),
        ("second", ["upper"]),
    ]
    assert result.turns == 3 and [o.content for o in result.tool_calls] == ["3", "X"]
    assert result.usage.requests == 3
    assert result.messages[0] == {"role": "system", "content": "second"}
    assert hooks.log == [
        "llm ['add']",
        "start add {'a': 1, 'b': 2}",
        "end add 3",
        "llm ['upper']",
        "start upper {'text': 'x'}",
        "end upper X",
        "llm []",
        "done ok",
    ]


async def test_usage_and_cost_are_summed_across_segments() -> None:
    llm = MockLLMClient(
        responses=[MockResponse.tool_call("add", {"a": 1, "b": 2}), "3"], default_model="gpt-4o-mini"
    )
    segments = iter([Segment("other", [ADD])])
    per_call: list[Usage] = []

    class Usages(ExecutorHooks):
        async def on_llm_response(self, response: Any) -> None:
            per_call.append(response.usage)

    async def next_segment() -> Segment | None:
        return next(segments, None)

    result = await Executor(llm, MethodToolExecutor(Calc()), hooks=Usages()).run(
        [{"role": "user", "content": "1+2"}], [ADD], "s", next_segment=next_segment
    )
    assert len(per_call) == 2 and result.usage == per_call[0] + per_call[1] + Usage.zero()
    assert result.usage.requests == 2 and result.usage.input_tokens > 0
    assert isinstance(result.usage.cost, Decimal) and result.usage.cost > 0


async def test_private_and_missing_methods_are_not_tools() -> None:
    executor = MethodToolExecutor(Calc())
    assert await executor.execute("add", {"a": 2, "b": 3}) == 5
    for name in ("_secret", "missing"):
        with pytest.raises(LookupError, match=f"no tool method '{name}'"):
            await executor.execute(name, {})


async def test_declared_tools_need_a_tool_executor() -> None:
    with pytest.raises(MissingToolExecutorError, match="tool 'add' is declared without a handler"):
        await Executor(MockLLMClient(responses=["x"])).run([{"role": "user", "content": "hi"}], [ADD])


async def test_openai_format_dicts_and_handler_tools_work() -> None:
    llm = MockLLMClient(responses=[MockResponse.tool_call("add", {"a": 4, "b": 5}), "9"])
    result = await Executor(llm, MethodToolExecutor(Calc())).run(
        [{"role": "system", "content": "old"}, {"role": "user", "content": "4+5"}],
        [ADD.to_openai_format()],
        "new",
    )
    assert result.tool_calls[0].content == "9"
    assert llm.calls[0].messages[0]["content"] == "new" and len(llm.calls[0].messages) == 2

    def shout(text: str) -> str:
        """Shout."""
        return text.upper() + "!"

    llm2 = MockLLMClient(responses=[MockResponse.tool_call("shout", {"text": "hi"}), "done"])
    result2 = await Executor(llm2).run([{"role": "user", "content": "x"}], [ToolSchema.from_function(shout)])
    assert result2.tool_calls[0].content == "HI!"
    with pytest.raises(TypeError, match="llm_client Tools"):
        await Executor(llm2).run([{"role": "user", "content": "x"}], [object()])  # type: ignore[list-item]
    with pytest.raises(ToolSchemaError):
        await Executor(llm2).run([{"role": "user", "content": "x"}], [{"function": {"name": "bad name"}}])


async def test_max_iterations_error_carries_the_run_and_fires_on_error() -> None:
    from llm_client import MaxTurnsExceededError

    llm = MockLLMClient(responses=[MockResponse.tool_call("add", {"a": 1, "b": 1})] * 3)
    hooks = Recorder()
    executor = Executor(llm, MethodToolExecutor(Calc()), ExecutorConfig(max_iterations=3), hooks)
    with pytest.raises(MaxTurnsExceededError) as info:
        await executor.run([{"role": "user", "content": "loop"}], [ADD])
    assert llm.call_count == 3 and hooks.log[-1] == "failed MaxTurnsExceededError"
    assert info.value.result.turns == 3  # type: ignore[attr-defined]


def test_config_rejects_bad_limits() -> None:
    with pytest.raises(ValueError, match=">= 1"):
        ExecutorConfig(max_iterations=0)
    with pytest.raises(TypeError):
        ExecutorConfig(max_iterations=True)
    assert ExecutorConfig(
        temperature=0.2, max_tokens=5, request_options={"tool_choice": "auto"}
    ).options() == {
        "tool_choice": "auto",
        "temperature": 0.2,
        "max_tokens": 5,
    }


async def test_logging_hooks_log(caplog: pytest.LogCaptureFixture) -> None:
    llm = MockLLMClient(responses=[MockResponse.tool_call("add", {"a": 1, "b": "x"}), "sorry"])
    with caplog.at_level(logging.INFO, logger="agent_runtime_framework.executor"):
        await Executor(llm, MethodToolExecutor(Calc()), hooks=LoggingHooks()).run(
            [{"role": "user", "content": "1+x"}], [ADD]
        )
    text = caplog.text
    assert "tool add failed: Error: invalid arguments for tool 'add'" in text
    assert "done after 2 model calls, 1 tool calls" in text
