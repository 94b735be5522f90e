"""MockProvider: scripted and function modes, streaming contract, errors and recording."""

from __future__ import annotations

import json
from typing import Any

import pytest
from llm_client import (
    CompletionResult,
    MockExhaustedError,
    MockProvider,
    MockResponse,
    RateLimitError,
    ReasoningDelta,
    RequestSpec,
    StreamDone,
    StreamError,
    StreamEvent,
    StreamInterruptedError,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallReady,
    Usage,
    UsageUpdate,
)
from llm_client.streaming import StreamAccumulator


def spec(text: str = "hello there", **kw: Any) -> RequestSpec:
    return RequestSpec.build(text, **kw)


async def collect(provider: MockProvider, request: RequestSpec) -> list[StreamEvent]:
    return [event async for event in provider.stream(request)]


# --- construction -----------------------------------------------------------------------------------


def test_exactly_one_of_responses_or_handler() -> None:
    with pytest.raises(ValueError, match="exactly one of responses"):
        MockProvider()
    with pytest.raises(ValueError, match="exactly one of responses"):
        MockProvider(["x"], handler=lambda s: "y")


def test_rejects_unsupported_items_naming_the_position() -> None:
    with pytest.raises(TypeError, match=r"response 1: expected a MockResponse.*got int"):
        MockProvider(["ok", 42])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="must be a list"):
        MockProvider("hello")  # type: ignore[arg-type]


def test_mock_response_validation() -> None:
    with pytest.raises(TypeError, match="must be ToolCall objects"):
        MockResponse(tool_calls=[("add", {})])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="must be an LLMClientError"):
        MockResponse(error=RuntimeError("x"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stream_error_after must be >= 0"):
        MockResponse(content="x", stream_error_after=-1)


def test_identity_attributes() -> None:
    provider = MockProvider([])
    assert provider.name == "mock" and provider.model == "mock-model"
    named = MockProvider([], model="gpt-x", name="openai")
    assert named.name == "openai" and named.model == "gpt-x"
    assert MockProvider.name == "mock"


# --- scripted complete ---------------------------------------------------------------------------------


async def test_scripted_text_and_tool_calls_in_order() -> None:
    provider = MockProvider(
        [
            "first",
            ToolCall(id="t1", name="add", arguments='{"a": 1}'),
            [ToolCall(id="t2", name="a"), ToolCall(id="t3", name="b")],
            MockResponse.text("fourth", reasoning="thought"),
        ]
    )
    r1 = await provider.complete(spec())
    assert (r1.content, r1.tool_calls, r1.finish_reason) == ("first", (), "stop")
    assert r1.provider == "mock" and r1.model == "mock-model"
    r2 = await provider.complete(spec())
    assert r2.content is None
    assert r2.tool_calls == (ToolCall("t1", "add", '{"a": 1}'),)
    assert r2.finish_reason == "tool_calls"
    r3 = await provider.complete(spec())
    assert [c.id for c in r3.tool_calls] == ["t2", "t3"]
    r4 = await provider.complete(spec())
    assert (r4.content, r4.reasoning) == ("fourth", "thought")
    assert provider.remaining == 0


async def test_builders_and_deterministic_tool_call_ids() -> None:
    provider = MockProvider(
        [
            MockResponse.tool_call("add", {"a": 1, "b": 2}),
            MockResponse.tool_calls([("x", {}), ("y", '{"k": "v"}', "given")]),
        ]
    )
    r1 = await provider.complete(spec())
    assert r1.tool_calls == (ToolCall("call_1", "add", '{"a": 1, "b": 2}'),)
    assert r1.tool_calls[0].parse_arguments() == {"a": 1, "b": 2}
    r2 = await provider.complete(spec())
    assert r2.tool_calls == (ToolCall("call_2", "x", "{}"), ToolCall("given", "y", '{"k": "v"}'))
    provider.reset()
    assert (await provider.complete(spec())).tool_calls[0].id == "call_1"


async def test_default_usage_is_deterministic_and_unpriced() -> None:
    provider = MockProvider(["abcdefgh", MockResponse.tool_call("f", {"q": "x"})])
    request = spec("x" * 10)
    r1 = await provider.complete(request)
    assert r1.usage == Usage(input_tokens=10 // 4 + 1, output_tokens=8 // 4 + 1)
    assert r1.usage.total_tokens == 6 and r1.usage.cost is None
    r2 = await provider.complete(request)
    assert r2.usage.output_tokens == len('{"q": "x"}') // 4 + 1


async def test_input_tokens_count_every_message_including_content_parts() -> None:
    provider = MockProvider(["ok"])
    request = RequestSpec.build(
        [
            {"role": "system", "content": "s" * 8},
            {"role": "user", "content": [{"type": "text", "text": "t" * 8}, {"type": "image_url"}]},
        ]
    )
    assert (await provider.complete(request)).usage.input_tokens == 16 // 4 + 1


async def test_explicit_usage_model_and_finish_reason_are_used() -> None:
    usage = Usage(input_tokens=100, output_tokens=7)
    provider = MockProvider([MockResponse.text("x", usage=usage, model="m-2", finish_reason="length")])
    result = await provider.complete(spec())
    assert (result.usage, result.model, result.finish_reason) == (usage, "m-2", "length")


async def test_request_model_is_echoed() -> None:
    provider = MockProvider(["x"])
    assert (await provider.complete(spec(model="other"))).model == "other"


async def test_completion_result_items_are_returned_as_is() -> None:
    scripted = CompletionResult(content="verbatim", model="m")
    provider = MockProvider([scripted])
    assert await provider.complete(spec()) is scripted


async def test_error_items_are_raised() -> None:
    error = RateLimitError("slow down", retry_after=1.0)
    provider = MockProvider([error, MockResponse.raise_(error), "after"])
    with pytest.raises(RateLimitError) as info:
        await provider.complete(spec())
    assert info.value is error
    with pytest.raises(RateLimitError):
        await provider.complete(spec())
    assert (await provider.complete(spec())).content == "after"
    assert provider.call_count == 3


async def test_exhaustion_says_how_many_were_scripted_and_shows_the_last_message() -> None:
    provider = MockProvider(["only"])
    await provider.complete(spec())
    with pytest.raises(MockExhaustedError) as info:
        await provider.complete(spec("what now?"))
    message = str(info.value)
    assert "had 1 scripted response and all were used" in message
    assert "call 2" in message
    assert "'content': 'what now?'" in message
    assert isinstance(info.value, AssertionError)  # fails tests like an assert would


async def test_records_calls_and_add_appends() -> None:
    provider = MockProvider([])
    assert provider.remaining == 0
    assert provider.add("a", "b") is provider
    assert provider.remaining == 2
    first, second = spec("one"), spec("two")
    await provider.complete(first)
    await provider.complete(second)
    assert provider.calls == [first, second]
    assert provider.call_count == 2
    assert provider.last_call is second
    assert provider.remaining == 0
    provider.reset()
    assert provider.calls == [] and provider.remaining == 2 and provider.last_call is None


# --- function mode ----------------------------------------------------------------------------------------


async def test_function_mode_sync_and_async_handlers() -> None:
    def answer(request: RequestSpec) -> Any:
        last = request.messages[-1]["content"]
        if last == "call":
            return MockResponse.tool_call("t", {"x": 1})
        return f"echo: {last}"

    provider = MockProvider(handler=answer)
    assert (await provider.complete(spec("hi"))).content == "echo: hi"
    assert (await provider.complete(spec("call"))).tool_calls[0].name == "t"
    assert provider.remaining is None
    assert provider.call_count == 2

    async def async_answer(request: RequestSpec) -> Any:
        return [ToolCall("i", "n")]

    provider = MockProvider(handler=async_answer)
    assert (await provider.complete(spec())).tool_calls == (ToolCall("i", "n"),)


async def test_function_mode_errors() -> None:
    provider = MockProvider(handler=lambda request: RateLimitError("returned, then raised"))
    with pytest.raises(RateLimitError, match="returned, then raised"):
        await provider.complete(spec())

    def raising(request: RequestSpec) -> Any:
        raise KeyError("bug in the test")

    with pytest.raises(KeyError):
        await MockProvider(handler=raising).complete(spec())

    with pytest.raises(TypeError, match=r"handler returned an unsupported value.*got int"):
        await MockProvider(handler=lambda request: 5).complete(spec())

    with pytest.raises(ValueError, match="add\\(\\) is for scripted"):
        MockProvider(handler=lambda request: "x").add("y")


# --- streaming ----------------------------------------------------------------------------------------------


def test_word_chunks_keep_the_spaces() -> None:
    from llm_client.providers.mock import _word_chunks

    assert _word_chunks("Hello big  world") == ("Hello ", "big  ", "world")
    assert _word_chunks("  lead\nline ") == ("  lead\n", "line ")
    assert "".join(_word_chunks(" a b\tc\n")) == " a b\tc\n"


async def test_stream_text_event_order_and_done_equals_complete() -> None:
    response = MockResponse.text("Hello big world", reasoning="hmm")
    events = await collect(MockProvider([response]), spec())
    assert events[0] == ReasoningDelta("hmm")
    assert events[1:4] == [TextDelta("Hello "), TextDelta("big "), TextDelta("world")]
    assert isinstance(events[4], UsageUpdate)
    assert isinstance(events[5], StreamDone)
    assert len(events) == 6
    expected = await MockProvider([response]).complete(spec())
    assert events[5].result == expected
    assert events[4].usage == expected.usage


async def test_stream_custom_chunks() -> None:
    events = await collect(MockProvider([MockResponse.text("abcdef", chunks=["ab", "cdef"])]), spec())
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["ab", "cdef"]


async def test_stream_tool_calls() -> None:
    response = MockResponse.tool_calls([("add", {"a": 1}), ("sub", {"b": 2})], content="Let me add.")
    events = await collect(MockProvider([response]), spec())
    kinds = [type(e).__name__ for e in events]
    assert kinds == [
        "TextDelta",
        "TextDelta",
        "TextDelta",
        "ToolCallDelta",
        "ToolCallDelta",
        "ToolCallReady",
        "ToolCallDelta",
        "ToolCallDelta",
        "ToolCallReady",
        "UsageUpdate",
        "StreamDone",
    ]
    assert events[3] == ToolCallDelta(index=0, id="call_1", name="add")
    assert events[4] == ToolCallDelta(index=0, arguments=json.dumps({"a": 1}))
    assert events[5] == ToolCallReady(ToolCall("call_1", "add", '{"a": 1}'))
    assert events[6] == ToolCallDelta(index=1, id="call_2", name="sub")
    done = events[-1]
    assert isinstance(done, StreamDone)
    assert [c.id for c in done.result.tool_calls] == ["call_1", "call_2"]

    # The events alone rebuild the same result, as a consumer's accumulator would.
    acc = StreamAccumulator(model=done.result.model, provider="mock")
    for event in events[:-1]:
        acc.add(event)
    rebuilt = acc.result()
    assert (rebuilt.content, rebuilt.tool_calls, rebuilt.usage) == (
        done.result.content,
        done.result.tool_calls,
        done.result.usage,
    )


async def test_stream_and_complete_consume_the_same_script() -> None:
    provider = MockProvider(["one", "two"])
    events = await collect(provider, spec())
    assert isinstance(events[-1], StreamDone) and events[-1].result.content == "one"
    assert (await provider.complete(spec())).content == "two"
    assert provider.call_count == 2


async def test_stream_error_item_is_the_only_event() -> None:
    error = RateLimitError("busy")
    events = await collect(MockProvider([error]), spec())
    assert len(events) == 1
    assert isinstance(events[0], StreamError)
    assert events[0].error is error
    assert events[0].partial.content is None


async def test_stream_error_after_n_chunks() -> None:
    provider = MockProvider([MockResponse.text("one two three", stream_error_after=2)])
    events = await collect(provider, spec())
    assert events[:2] == [TextDelta("one "), TextDelta("two ")]
    assert len(events) == 3
    terminal = events[2]
    assert isinstance(terminal, StreamError)
    assert isinstance(terminal.error, StreamInterruptedError)
    assert terminal.error.partial_text == "one two "
    assert terminal.partial.content == "one two "


async def test_stream_error_after_zero_fails_before_output() -> None:
    events = await collect(MockProvider([MockResponse.text("a b", stream_error_after=0)]), spec())
    assert len(events) == 1 and isinstance(events[0], StreamError)
    assert events[0].error.partial_text == ""  # type: ignore[attr-defined]


async def test_stream_exhaustion_is_a_terminal_stream_error() -> None:
    provider = MockProvider([])
    events = await collect(provider, spec())
    assert len(events) == 1
    assert isinstance(events[0], StreamError)
    assert isinstance(events[0].error, MockExhaustedError)


async def test_stream_completion_result_item() -> None:
    scripted = CompletionResult(content="a b", model="m", usage=Usage(input_tokens=1, output_tokens=2))
    events = await collect(MockProvider([scripted]), spec())
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["a ", "b"]
    assert isinstance(events[-1], StreamDone) and events[-1].result is scripted


@pytest.mark.parametrize(
    "item",
    ["text", MockResponse.tool_call("f"), MockResponse.text("x", stream_error_after=0), RateLimitError("r")],
)
async def test_every_stream_ends_with_exactly_one_terminal_event(item: Any) -> None:
    events = await collect(MockProvider([item]), spec())
    terminal = [e for e in events if isinstance(e, (StreamDone, StreamError))]
    assert len(terminal) == 1
    assert events[-1] is terminal[0]


async def test_function_mode_stream() -> None:
    provider = MockProvider(handler=lambda request: "streamed answer")
    events = await collect(provider, spec())
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["streamed ", "answer"]

    def raising(request: RequestSpec) -> Any:
        raise RateLimitError("from handler")

    events = await collect(MockProvider(handler=raising), spec())
    assert len(events) == 1 and isinstance(events[0], StreamError)
