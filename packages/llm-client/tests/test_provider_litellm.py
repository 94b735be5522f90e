"""LiteLLMProvider: the real litellm (routing to its OpenAI backend) against the local wire stub."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from llm_client import (
    AuthenticationError,
    ContextLengthError,
    ProviderError,
    RateLimitError,
    RequestSpec,
    StreamDone,
    StreamError,
    StreamEvent,
    StreamInterruptedError,
    TextDelta,
    ToolCall,
    ToolCallReady,
    UsageUpdate,
)
from llm_client.providers.litellm import LiteLLMProvider
from wire_stub import (
    WireStub,
    json_reply,
    openai_chunks,
    openai_completion,
    openai_error,
    openai_sse,
    openai_tool_call,
    sse_reply,
)

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture
def provider(wire_stub: WireStub) -> LiteLLMProvider:
    return LiteLLMProvider(
        "openai/gpt-4o-mini", api_base=wire_stub.openai_base_url, api_key="sk-test", timeout=5.0
    )


async def collect(stream: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in stream]


def terminal(events: list[StreamEvent]) -> StreamEvent:
    ends = [e for e in events if isinstance(e, (StreamDone, StreamError))]
    assert len(ends) == 1 and events[-1] is ends[0], events
    return ends[0]


async def test_text_completion(provider: LiteLLMProvider, wire_stub: WireStub) -> None:
    body = openai_completion("Hello there", prompt_tokens=9, completion_tokens=3, cached_tokens=4)
    wire_stub.add(json_reply(body))
    result = await provider.complete(RequestSpec.build("Hi", temperature=0.1))

    assert (result.content, result.finish_reason, result.provider) == ("Hello there", "stop", "litellm")
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.cached_tokens) == (9, 3, 4)
    assert result.usage.cost is None
    sent = wire_stub.last
    assert sent["model"] == "gpt-4o-mini"
    assert sent["messages"] == [{"role": "user", "content": "Hi"}]
    assert sent["temperature"] == 0.1
    assert os.environ["LITELLM_LOCAL_MODEL_COST_MAP"].lower() == "true"


async def test_tool_calls_round_trip(provider: LiteLLMProvider, wire_stub: WireStub) -> None:
    calls = [
        openai_tool_call("call_a", "get_weather", {"city": "Paris"}),
        openai_tool_call("call_b", "get_weather", {"city": "Oslo"}),
    ]
    wire_stub.add(
        json_reply(openai_completion(None, tool_calls=calls)), json_reply(openai_completion("Mild."))
    )
    spec = RequestSpec.build("Weather?", tools=[WEATHER_TOOL])
    first = await provider.complete(spec)
    assert first.tool_calls == (
        ToolCall("call_a", "get_weather", '{"city": "Paris"}'),
        ToolCall("call_b", "get_weather", '{"city": "Oslo"}'),
    )
    assert first.finish_reason == "tool_calls"
    assert wire_stub.last["tools"] == [WEATHER_TOOL]

    history = [
        *spec.messages,
        first.message,
        {"role": "tool", "tool_call_id": "call_a", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_b", "content": "9C"},
    ]
    assert (await provider.complete(spec.with_options(messages=history))).content == "Mild."
    sent = wire_stub.last["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "tool"]
    assert [tc["id"] for tc in sent[1]["tool_calls"]] == ["call_a", "call_b"]
    assert [(m["tool_call_id"], m["content"]) for m in sent[2:]] == [("call_a", "18C"), ("call_b", "9C")]


async def test_stream_text(provider: LiteLLMProvider, wire_stub: WireStub) -> None:
    wire_stub.add(sse_reply(openai_sse(openai_chunks(["Hel", "lo", "!"], usage=(8, 3)))))
    events = await collect(provider.stream(RequestSpec.build("Hi")))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello!"
    assert any(isinstance(e, UsageUpdate) and e.usage.total_tokens == 11 for e in events)
    done = terminal(events)
    assert isinstance(done, StreamDone)
    assert (done.result.content, done.result.finish_reason) == ("Hello!", "stop")
    assert wire_stub.last["stream"] is True


async def test_stream_tool_calls(provider: LiteLLMProvider, wire_stub: WireStub) -> None:
    calls = [openai_tool_call("call_a", "get_weather", {"city": "Paris"})]
    wire_stub.add(sse_reply(openai_sse(openai_chunks(tool_calls=calls))))
    events = await collect(provider.stream(RequestSpec.build("Weather?", tools=[WEATHER_TOOL])))
    expected = ToolCall("call_a", "get_weather", '{"city": "Paris"}')
    assert [e.call for e in events if isinstance(e, ToolCallReady)] == [expected]
    done = terminal(events)
    assert isinstance(done, StreamDone) and done.result.tool_calls == (expected,)


async def test_stream_dropped_after_text(provider: LiteLLMProvider, wire_stub: WireStub) -> None:
    wire_stub.add(sse_reply(openai_sse(openai_chunks(["Hel", "lo", " world"])), drop_after=3))
    end = terminal(await collect(provider.stream(RequestSpec.build("Hi"))))
    assert isinstance(end, StreamError) and isinstance(end.error, StreamInterruptedError)
    assert end.error.partial_text == "Hello"


async def test_429_with_retry_after(provider: LiteLLMProvider, wire_stub: WireStub) -> None:
    body = openai_error("Rate limit reached", type="requests", code="rate_limit_exceeded")
    wire_stub.add(json_reply(body, status=429, headers={"retry-after": "4"}))
    with pytest.raises(RateLimitError) as info:
        await provider.complete(RequestSpec.build("Hi"))
    assert info.value.retryable and info.value.provider == "litellm"
    assert info.value.retry_after == 4.0
    assert len(wire_stub.requests) == 1  # litellm did not retry on its own


async def test_500_is_a_provider_error(provider: LiteLLMProvider, wire_stub: WireStub) -> None:
    wire_stub.add(json_reply(openai_error("boom", type="server_error"), status=500))
    with pytest.raises(ProviderError) as info:
        await provider.complete(RequestSpec.build("Hi"))
    assert info.value.retryable
    assert len(wire_stub.requests) == 1


async def test_401_is_an_authentication_error(provider: LiteLLMProvider, wire_stub: WireStub) -> None:
    wire_stub.add(json_reply(openai_error("Incorrect API key provided", code="invalid_api_key"), status=401))
    with pytest.raises(AuthenticationError):
        await provider.complete(RequestSpec.build("Hi"))


async def test_context_length_400(provider: LiteLLMProvider, wire_stub: WireStub) -> None:
    body = openai_error(
        "This model's maximum context length is 128000 tokens.",
        code="context_length_exceeded",
        param="messages",
    )
    wire_stub.add(json_reply(body, status=400))
    with pytest.raises(ContextLengthError):
        await provider.complete(RequestSpec.build("Hi"))


def test_model_is_required() -> None:
    with pytest.raises(ValueError, match="provider"):
        LiteLLMProvider("")
