"""AnthropicProvider: the real anthropic SDK against the local wire stub."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from llm_client import (
    AuthenticationError,
    ContentFilterError,
    ContextLengthError,
    InvalidRequestError,
    MalformedResponseError,
    ProviderConnectionError,
    ProviderError,
    RateLimitError,
    ReasoningDelta,
    RequestSpec,
    RequestTimeoutError,
    StreamDone,
    StreamError,
    StreamEvent,
    StreamInterruptedError,
    TextDelta,
    ToolArgumentsError,
    ToolCall,
    ToolCallDelta,
    ToolCallReady,
    UsageUpdate,
)
from llm_client.providers.anthropic import AnthropicProvider
from wire_stub import (
    WireStub,
    anthropic_error,
    anthropic_events,
    anthropic_message,
    anthropic_sse,
    anthropic_text,
    anthropic_thinking,
    anthropic_tool_use,
    drop_reply,
    json_reply,
    sse_reply,
)

MODEL = "claude-sonnet-4-6"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture
async def provider(wire_stub: WireStub) -> AsyncIterator[AnthropicProvider]:
    p = AnthropicProvider(MODEL, api_key="sk-ant-test", base_url=wire_stub.url, timeout=5.0, max_tokens=1024)
    yield p
    await p.aclose()


async def collect(stream: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in stream]


def terminal(events: list[StreamEvent]) -> StreamEvent:
    ends = [e for e in events if isinstance(e, (StreamDone, StreamError))]
    assert len(ends) == 1 and events[-1] is ends[0], events
    return ends[0]


# --- completions ---------------------------------------------------------------------------------


async def test_text_completion(provider: AnthropicProvider, wire_stub: WireStub) -> None:
    wire_stub.add(json_reply(anthropic_message("Hello there", input_tokens=9, output_tokens=3)))
    spec = RequestSpec.build(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        temperature=0.3,
        stop=["END"],
    )
    result = await provider.complete(spec)

    assert (result.content, result.finish_reason, result.provider) == ("Hello there", "stop", "anthropic")
    assert result.model == MODEL
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.total_tokens) == (9, 3, 12)
    sent = wire_stub.last
    assert wire_stub.requests[-1].path == "/v1/messages"
    headers = wire_stub.requests[-1].headers
    assert "sk-ant-test" in (headers.get("x-api-key") or headers.get("Authorization") or "")
    assert sent["temperature"] == 0.3  # sent in the body: this SDK no longer names it
    assert sent["system"] == "Be brief."
    assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
    assert (sent["model"], sent["max_tokens"], sent["temperature"], sent["stop_sequences"]) == (
        MODEL,
        1024,
        0.3,
        ["END"],
    )


async def test_request_max_tokens_overrides_default(provider: AnthropicProvider, wire_stub: WireStub) -> None:
    wire_stub.add(json_reply(anthropic_message("ok", stop_reason="max_tokens")))
    result = await provider.complete(RequestSpec.build("Hi", max_tokens=20))
    assert wire_stub.last["max_tokens"] == 20
    assert result.finish_reason == "length"


async def test_parallel_tool_calls_round_trip(provider: AnthropicProvider, wire_stub: WireStub) -> None:
    blocks = [
        anthropic_text("Checking both."),
        anthropic_tool_use("toolu_a", "get_weather", {"city": "Paris"}),
        anthropic_tool_use("toolu_b", "get_weather", {"city": "Oslo"}),
    ]
    wire_stub.add(json_reply(anthropic_message(blocks)), json_reply(anthropic_message("Both mild.")))

    spec = RequestSpec.build("Weather?", tools=[WEATHER_TOOL], tool_choice="required")
    first = await provider.complete(spec)
    assert first.content == "Checking both." and first.finish_reason == "tool_calls"
    assert first.tool_calls == (
        ToolCall("toolu_a", "get_weather", '{"city": "Paris"}'),
        ToolCall("toolu_b", "get_weather", '{"city": "Oslo"}'),
    )
    sent = wire_stub.last
    assert sent["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather for a city.",
            "input_schema": WEATHER_TOOL["function"]["parameters"],  # type: ignore[index]
        }
    ]
    assert sent["tool_choice"] == {"type": "any"}

    history = [
        *spec.messages,
        first.message,
        {"role": "tool", "tool_call_id": "toolu_a", "content": "18C"},
        {"role": "tool", "tool_call_id": "toolu_b", "content": "9C"},
        {"role": "user", "content": "Summarise."},
    ]
    second = await provider.complete(spec.with_options(messages=history))
    assert second.content == "Both mild."
    assert wire_stub.last["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
        {"role": "assistant", "content": blocks},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_a", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "toolu_b", "content": "9C"},
                {"type": "text", "text": "Summarise."},
            ],
        },
    ]


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            None,
            {"type": "tool", "name": "get_weather"},
        ),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
    ],
)
async def test_tool_choice_mapping(
    provider: AnthropicProvider, wire_stub: WireStub, choice: object, parallel: bool | None, expected: object
) -> None:
    wire_stub.add(json_reply(anthropic_message("ok")))
    await provider.complete(
        RequestSpec.build("Hi", tools=[WEATHER_TOOL], tool_choice=choice, parallel_tool_calls=parallel)
    )
    assert wire_stub.last["tool_choice"] == expected


async def test_unknown_tool_choice_is_rejected(provider: AnthropicProvider) -> None:
    with pytest.raises(InvalidRequestError, match="tool_choice"):
        await provider.complete(RequestSpec.build("Hi", tools=[WEATHER_TOOL], tool_choice="sometimes"))


async def test_invalid_tool_arguments_in_history(provider: AnthropicProvider) -> None:
    history = [
        {"role": "user", "content": "Hi"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{oops"}}],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "x"},
    ]
    with pytest.raises(ToolArgumentsError, match="'f'"):
        await provider.complete(RequestSpec.build(history))


async def test_usage_with_prompt_cache(provider: AnthropicProvider, wire_stub: WireStub) -> None:
    body = anthropic_message("ok", input_tokens=50, output_tokens=20, cache_read=1000, cache_creation=200)
    wire_stub.add(json_reply(body))
    usage = (await provider.complete(RequestSpec.build("Hi"))).usage
    assert (usage.input_tokens, usage.cached_tokens, usage.cache_write_tokens) == (1250, 1000, 200)
    assert (usage.output_tokens, usage.total_tokens) == (20, 1270)


async def test_thinking_blocks_become_reasoning(provider: AnthropicProvider, wire_stub: WireStub) -> None:
    wire_stub.add(json_reply(anthropic_message([anthropic_thinking("6 times 7"), anthropic_text("42")])))
    result = await provider.complete(RequestSpec.build("6*7?", thinking_budget=2048))
    assert (result.content, result.reasoning) == ("42", "6 times 7")
    assert wire_stub.last["thinking"] == {"type": "enabled", "budget_tokens": 2048}


async def test_structured_output_uses_a_forced_tool(provider: AnthropicProvider, wire_stub: WireStub) -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    response_format = {"type": "json_schema", "json_schema": {"name": "city", "schema": schema}}
    wire_stub.add(json_reply(anthropic_message([anthropic_tool_use("toolu_1", "city", {"name": "Paris"})])))
    result = await provider.complete(RequestSpec.build("Capital of France?", response_format=response_format))

    assert result.parsed() == {"name": "Paris"}
    assert result.tool_calls == () and result.finish_reason == "stop"
    sent = wire_stub.last
    assert sent["tools"][-1]["name"] == "city" and sent["tools"][-1]["input_schema"] == schema
    assert sent["tool_choice"] == {"type": "tool", "name": "city"}


async def test_unsupported_response_format_is_rejected(provider: AnthropicProvider) -> None:
    with pytest.raises(InvalidRequestError, match="response_format"):
        await provider.complete(RequestSpec.build("Hi", response_format={"type": "yaml"}))


async def test_refusal_is_a_content_filter_error(provider: AnthropicProvider, wire_stub: WireStub) -> None:
    wire_stub.add(json_reply(anthropic_message([], stop_reason="refusal")))
    with pytest.raises(ContentFilterError):
        await provider.complete(RequestSpec.build("Hi"))


async def test_image_parts_are_translated(provider: AnthropicProvider, wire_stub: WireStub) -> None:
    wire_stub.add(json_reply(anthropic_message("a cat")))
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
    ]
    await provider.complete(RequestSpec.build([{"role": "user", "content": content}]))
    assert wire_stub.last["messages"][0]["content"][1:] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
    ]


def test_bad_construction_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="max_tokens"):
        AnthropicProvider(max_tokens=0)
    with pytest.raises(ValueError, match="timeout"):
        AnthropicProvider(timeout=-1)


# --- errors --------------------------------------------------------------------------------------


async def test_429_with_retry_after(provider: AnthropicProvider, wire_stub: WireStub) -> None:
    body = anthropic_error("rate_limit_error", "Number of request tokens has exceeded your rate limit")
    wire_stub.add(json_reply(body, status=429, headers={"retry-after": "12"}))
    with pytest.raises(RateLimitError) as info:
        await provider.complete(RequestSpec.build("Hi"))
    assert (info.value.retry_after, info.value.provider, info.value.retryable) == (12.0, "anthropic", True)
    assert type(info.value.original).__name__ == "RateLimitError"


@pytest.mark.parametrize("status", [500, 529])
async def test_server_errors_are_retryable(
    provider: AnthropicProvider, wire_stub: WireStub, status: int
) -> None:
    kind = "overloaded_error" if status == 529 else "api_error"
    wire_stub.add(json_reply(anthropic_error(kind, "Overloaded"), status=status))
    with pytest.raises(ProviderError) as info:
        await provider.complete(RequestSpec.build("Hi"))
    assert info.value.retryable and info.value.status_code == status


async def test_401_is_an_authentication_error(provider: AnthropicProvider, wire_stub: WireStub) -> None:
    wire_stub.add(json_reply(anthropic_error("authentication_error", "invalid x-api-key"), status=401))
    with pytest.raises(AuthenticationError, match="invalid x-api-key"):
        await provider.complete(RequestSpec.build("Hi"))


async def test_context_length_400(provider: AnthropicProvider, wire_stub: WireStub) -> None:
    body = anthropic_error("invalid_request_error", "prompt is too long: 208310 tokens > 200000 maximum")
    wire_stub.add(json_reply(body, status=400))
    with pytest.raises(ContextLengthError):
        await provider.complete(RequestSpec.build("Hi"))


async def test_other_400_is_invalid_request(provider: AnthropicProvider, wire_stub: WireStub) -> None:
    wire_stub.add(
        json_reply(anthropic_error("invalid_request_error", "messages: field required"), status=400)
    )
    with pytest.raises(InvalidRequestError):
        await provider.complete(RequestSpec.build("Hi"))


async def test_unparsable_body_is_malformed(provider: AnthropicProvider, wire_stub: WireStub) -> None:
    wire_stub.add(json_reply("{nope", status=200))
    with pytest.raises(MalformedResponseError):
        await provider.complete(RequestSpec.build("Hi"))


async def test_timeout(wire_stub: WireStub) -> None:
    release = asyncio.Event()
    wire_stub.add(json_reply(anthropic_message("too late"), wait=release))
    async with AnthropicProvider(MODEL, api_key="k", base_url=wire_stub.url, timeout=0.2) as provider:
        with pytest.raises(RequestTimeoutError):
            await provider.complete(RequestSpec.build("Hi"))
    release.set()


# --- streaming -----------------------------------------------------------------------------------


async def test_stream_text(provider: AnthropicProvider, wire_stub: WireStub) -> None:
    events_in = anthropic_events(["Hel", "lo", "!"], input_tokens=8, output_tokens=3, cache_read=4)
    wire_stub.add(sse_reply(anthropic_sse(events_in)))
    events = await collect(provider.stream(RequestSpec.build("Hi")))

    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hel", "lo", "!"]
    usage = [e.usage for e in events if isinstance(e, UsageUpdate)]
    assert len(usage) == 1
    assert (usage[0].input_tokens, usage[0].cached_tokens, usage[0].output_tokens) == (12, 4, 3)
    done = terminal(events)
    assert isinstance(done, StreamDone)
    assert (done.result.content, done.result.finish_reason, done.result.model) == ("Hello!", "stop", MODEL)
    assert done.result.usage.total_tokens == 15
    assert wire_stub.last["stream"] is True


async def test_stream_parallel_tool_calls(provider: AnthropicProvider, wire_stub: WireStub) -> None:
    tool_uses = [
        anthropic_tool_use("toolu_a", "get_weather", {"city": "Paris"}),
        anthropic_tool_use("toolu_b", "get_weather", {"city": "Oslo"}),
    ]
    wire_stub.add(sse_reply(anthropic_sse(anthropic_events(["Checking."], tool_uses=tool_uses))))
    events = await collect(provider.stream(RequestSpec.build("Weather?", tools=[WEATHER_TOOL])))

    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert [(d.index, d.id, d.name) for d in deltas if d.id] == [
        (0, "toolu_a", "get_weather"),
        (1, "toolu_b", "get_weather"),
    ]
    expected = (
        ToolCall("toolu_a", "get_weather", '{"city": "Paris"}'),
        ToolCall("toolu_b", "get_weather", '{"city": "Oslo"}'),
    )
    assert tuple(e.call for e in events if isinstance(e, ToolCallReady)) == expected
    done = terminal(events)
    assert isinstance(done, StreamDone)
    assert done.result.tool_calls == expected and done.result.finish_reason == "tool_calls"
    assert done.result.content == "Checking."


async def test_stream_result_equals_complete(provider: AnthropicProvider, wire_stub: WireStub) -> None:
    tool_use = anthropic_tool_use("toolu_a", "get_weather", {"city": "Paris"})
    wire_stub.add(
        json_reply(anthropic_message([anthropic_thinking("hmm"), anthropic_text("Looking."), tool_use])),
        sse_reply(anthropic_sse(anthropic_events(["Look", "ing."], tool_uses=[tool_use], thinking=["hmm"]))),
    )
    spec = RequestSpec.build("Weather?", tools=[WEATHER_TOOL])
    completed = await provider.complete(spec)
    done = terminal(await collect(provider.stream(spec)))
    assert isinstance(done, StreamDone) and done.result == completed


async def test_stream_thinking_deltas(provider: AnthropicProvider, wire_stub: WireStub) -> None:
    wire_stub.add(sse_reply(anthropic_sse(anthropic_events(["42"], thinking=["six ", "sevens"]))))
    events = await collect(provider.stream(RequestSpec.build("6*7?", thinking_budget=1024)))
    assert [e.text for e in events if isinstance(e, ReasoningDelta)] == ["six ", "sevens"]
    done = terminal(events)
    assert isinstance(done, StreamDone) and done.result.reasoning == "six sevens"


async def test_stream_structured_output(provider: AnthropicProvider, wire_stub: WireStub) -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}}}
    tool_use = anthropic_tool_use("toolu_1", "structured_output", {"name": "Paris"})
    wire_stub.add(sse_reply(anthropic_sse(anthropic_events(tool_uses=[tool_use]))))
    spec = RequestSpec.build(
        "Capital?", response_format={"type": "json_schema", "json_schema": {"schema": schema}}
    )
    events = await collect(provider.stream(spec))
    assert not [e for e in events if isinstance(e, (ToolCallDelta, ToolCallReady))]
    done = terminal(events)
    assert isinstance(done, StreamDone)
    assert json.loads(done.result.content or "") == {"name": "Paris"}
    assert done.result.finish_reason == "stop" and done.result.tool_calls == ()


async def test_stream_overloaded_error_event(provider: AnthropicProvider, wire_stub: WireStub) -> None:
    events_in = anthropic_events(["Hel", "lo"])
    error = ("error", anthropic_error("overloaded_error", "Overloaded"))
    wire_stub.add(
        sse_reply(anthropic_sse([events_in[0], error])),  # before any output
        sse_reply(anthropic_sse([*events_in[:5], error])),  # after "Hel", "lo"
    )
    end = terminal(await collect(provider.stream(RequestSpec.build("Hi"))))
    assert isinstance(end, StreamError) and type(end.error) is ProviderError
    assert end.error.retryable and end.error.status_code == 529

    end = terminal(await collect(provider.stream(RequestSpec.build("Hi"))))
    assert isinstance(end, StreamError) and isinstance(end.error, StreamInterruptedError)
    assert end.error.partial_text == "Hello"


async def test_stream_dropped_after_text_is_interrupted(
    provider: AnthropicProvider, wire_stub: WireStub
) -> None:
    frames = anthropic_sse(anthropic_events(["Hel", "lo", " world"]))
    wire_stub.add(sse_reply(frames, drop_after=5))  # start, ping, block start, "Hel", "lo"
    events = await collect(provider.stream(RequestSpec.build("Hi")))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hel", "lo"]
    end = terminal(events)
    assert isinstance(end, StreamError) and isinstance(end.error, StreamInterruptedError)
    assert end.error.partial_text == "Hello" and end.error.__cause__ is not None


async def test_stream_dropped_before_output_is_retryable(
    provider: AnthropicProvider, wire_stub: WireStub
) -> None:
    wire_stub.add(sse_reply(anthropic_sse(anthropic_events(["never"])), drop_after=1), drop_reply())
    for _ in range(2):
        events = await collect(provider.stream(RequestSpec.build("Hi")))
        end = terminal(events)
        assert isinstance(end, StreamError) and len(events) == 1
        assert isinstance(end.error, ProviderConnectionError) and end.error.retryable


async def test_stream_ending_without_message_stop(provider: AnthropicProvider, wire_stub: WireStub) -> None:
    wire_stub.add(sse_reply(anthropic_sse(anthropic_events(["Hel"])[:4])))  # cleanly closed, cut short
    end = terminal(await collect(provider.stream(RequestSpec.build("Hi"))))
    assert isinstance(end, StreamError) and isinstance(end.error, StreamInterruptedError)
    assert end.error.partial_text == "Hel"


async def test_stream_malformed_chunk(provider: AnthropicProvider, wire_stub: WireStub) -> None:
    events_in = anthropic_events(["ok"])
    wire_stub.add(sse_reply(anthropic_sse([events_in[0], ("content_block_start", "{broken")])))
    end = terminal(await collect(provider.stream(RequestSpec.build("Hi"))))
    assert isinstance(end, StreamError) and isinstance(end.error, MalformedResponseError)


async def test_stream_http_error_before_output(provider: AnthropicProvider, wire_stub: WireStub) -> None:
    body = anthropic_error("rate_limit_error", "slow down")
    wire_stub.add(json_reply(body, status=429, headers={"retry-after": "3"}))
    end = terminal(await collect(provider.stream(RequestSpec.build("Hi"))))
    assert isinstance(end, StreamError) and isinstance(end.error, RateLimitError)
    assert end.error.retry_after == 3.0


async def test_cancelling_a_consumer_closes_the_connection(
    provider: AnthropicProvider, wire_stub: WireStub
) -> None:
    wire_stub.add(sse_reply(anthropic_sse(anthropic_events(["first"])[:4]), keep_open=True))
    got_text = asyncio.Event()

    async def consume() -> None:
        async for event in provider.stream(RequestSpec.build("Hi")):
            if isinstance(event, TextDelta):
                got_text.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_text.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(wire_stub.disconnected.wait(), 5)
