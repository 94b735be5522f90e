"""OpenAIProvider: the real openai SDK against the local wire stub."""

from __future__ import annotations

import asyncio
import email.utils
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import pytest
from llm_client import (
    AuthenticationError,
    ContentFilterError,
    ContextLengthError,
    InvalidRequestError,
    MalformedResponseError,
    MissingDependencyError,
    PermissionDeniedError,
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
    ToolCall,
    ToolCallDelta,
    ToolCallReady,
    UsageUpdate,
)
from llm_client.providers._openai_wire import parse_retry_after
from llm_client.providers.base import require_sdk
from llm_client.providers.openai import OpenAIProvider
from wire_stub import (
    WireStub,
    drop_reply,
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
async def provider(wire_stub: WireStub) -> AsyncIterator[OpenAIProvider]:
    p = OpenAIProvider("gpt-4o-mini", api_key="sk-test", base_url=wire_stub.openai_base_url, timeout=5.0)
    yield p
    await p.aclose()


async def collect(stream: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in stream]


def terminal(events: list[StreamEvent]) -> StreamEvent:
    ends = [e for e in events if isinstance(e, (StreamDone, StreamError))]
    assert len(ends) == 1 and events[-1] is ends[0], events
    return ends[0]


# --- completions ---------------------------------------------------------------------------------


async def test_text_completion(provider: OpenAIProvider, wire_stub: WireStub) -> None:
    wire_stub.add(json_reply(openai_completion("Hello there", prompt_tokens=9, completion_tokens=3)))
    result = await provider.complete(RequestSpec.build("Hi", temperature=0.2, stop="END", max_tokens=50))

    assert result.content == "Hello there"
    assert result.tool_calls == ()
    assert result.finish_reason == "stop"
    assert result.provider == "openai"
    assert result.model == "gpt-4o-mini-2024-07-18"
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.total_tokens) == (9, 3, 12)
    assert result.usage.cost is None
    sent = wire_stub.last
    assert sent["model"] == "gpt-4o-mini"
    assert sent["messages"] == [{"role": "user", "content": "Hi"}]
    assert (sent["temperature"], sent["stop"], sent["max_tokens"]) == (0.2, ["END"], 50)
    assert "max_completion_tokens" not in sent
    assert wire_stub.requests[-1].headers["Authorization"] == "Bearer sk-test"


async def test_reasoning_models_get_max_completion_tokens(
    provider: OpenAIProvider, wire_stub: WireStub
) -> None:
    wire_stub.add(json_reply(openai_completion("ok")))
    await provider.complete(
        RequestSpec.build("Hi", model="gpt-5-nano", max_tokens=64, reasoning_effort="low")
    )
    sent = wire_stub.last
    assert sent["model"] == "gpt-5-nano"
    assert sent["max_completion_tokens"] == 64 and "max_tokens" not in sent
    assert sent["reasoning_effort"] == "low"


async def test_parallel_tool_calls_round_trip(provider: OpenAIProvider, wire_stub: WireStub) -> None:
    calls = [
        openai_tool_call("call_a", "get_weather", {"city": "Paris"}),
        openai_tool_call("call_b", "get_weather", {"city": "Oslo"}),
    ]
    wire_stub.add(
        json_reply(openai_completion(None, tool_calls=calls)), json_reply(openai_completion("Both mild."))
    )

    spec = RequestSpec.build("Weather?", tools=[WEATHER_TOOL], tool_choice="auto", parallel_tool_calls=True)
    first = await provider.complete(spec)
    assert first.finish_reason == "tool_calls"
    assert first.content is None
    assert first.tool_calls == (
        ToolCall("call_a", "get_weather", '{"city": "Paris"}'),
        ToolCall("call_b", "get_weather", '{"city": "Oslo"}'),
    )
    sent = wire_stub.last
    assert sent["tools"] == [WEATHER_TOOL]
    assert (sent["tool_choice"], sent["parallel_tool_calls"]) == ("auto", True)

    history = [
        *spec.messages,
        {**first.message, "reasoning": "private, never sent"},
        {"role": "tool", "tool_call_id": "call_a", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_b", "content": "9C"},
    ]
    second = await provider.complete(spec.with_options(messages=history))
    assert second.content == "Both mild."
    assert wire_stub.last["messages"][1:] == [
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "call_a", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_b", "content": "9C"},
    ]


async def test_usage_maps_cached_and_reasoning_tokens(provider: OpenAIProvider, wire_stub: WireStub) -> None:
    body = openai_completion(
        "ok", prompt_tokens=2000, completion_tokens=300, cached_tokens=1536, reasoning_tokens=256
    )
    wire_stub.add(json_reply(body))
    usage = (await provider.complete(RequestSpec.build("Hi"))).usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (2000, 300, 2300)
    assert (usage.cached_tokens, usage.reasoning_tokens, usage.cache_write_tokens) == (1536, 256, 0)


async def test_reasoning_content_is_returned(provider: OpenAIProvider, wire_stub: WireStub) -> None:
    wire_stub.add(json_reply(openai_completion("42", reasoning_content="6 times 7")))
    result = await provider.complete(RequestSpec.build("6*7?"))
    assert (result.content, result.reasoning) == ("42", "6 times 7")


async def test_structured_output_request_shape(provider: OpenAIProvider, wire_stub: WireStub) -> None:
    response_format = {
        "type": "json_schema",
        "json_schema": {
            "name": "city",
            "strict": True,
            "schema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
        },
    }
    wire_stub.add(json_reply(openai_completion('{"name": "Paris"}')))
    result = await provider.complete(
        RequestSpec.build("Capital of France?", response_format=response_format, extra={"seed": 7})
    )
    assert result.parsed() == {"name": "Paris"}
    assert wire_stub.last["response_format"] == response_format
    assert wire_stub.last["seed"] == 7


async def test_content_filter_without_content_is_an_error(
    provider: OpenAIProvider, wire_stub: WireStub
) -> None:
    wire_stub.add(json_reply(openai_completion(None, finish_reason="content_filter")))
    with pytest.raises(ContentFilterError):
        await provider.complete(RequestSpec.build("Hi"))


async def test_aiohttp_transport(wire_stub: WireStub) -> None:
    wire_stub.add(json_reply(openai_completion("via aiohttp")))
    async with OpenAIProvider(
        api_key="sk-test", base_url=wire_stub.openai_base_url, transport="aiohttp"
    ) as provider:
        result = await provider.complete(RequestSpec.build("Hi"))
        from openai._vendor.httpx_aiohttp import Httpx2AiohttpClient

        assert isinstance(provider.client._client, Httpx2AiohttpClient)
    assert result.content == "via aiohttp"


async def test_default_headers_reach_the_wire(wire_stub: WireStub) -> None:
    wire_stub.add(json_reply(openai_completion("ok")))
    async with OpenAIProvider(
        api_key="sk-test", base_url=wire_stub.openai_base_url, default_headers={"X-Team": "blue"}
    ) as provider:
        await provider.complete(RequestSpec.build("Hi"))
    assert wire_stub.requests[-1].headers["X-Team"] == "blue"


def test_bad_construction_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="transport"):
        OpenAIProvider(transport="curl")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        OpenAIProvider(timeout=0)


# --- errors --------------------------------------------------------------------------------------


async def test_429_with_retry_after_seconds(provider: OpenAIProvider, wire_stub: WireStub) -> None:
    body = openai_error("Rate limit reached", type="requests", code="rate_limit_exceeded")
    wire_stub.add(json_reply(body, status=429, headers={"Retry-After": "7"}))
    with pytest.raises(RateLimitError) as info:
        await provider.complete(RequestSpec.build("Hi"))
    err = info.value
    assert (err.retry_after, err.status_code, err.provider, err.retryable) == (7.0, 429, "openai", True)
    assert type(err.original).__name__ == "RateLimitError"
    assert err.__cause__ is err.original


async def test_429_retry_after_ms_wins(provider: OpenAIProvider, wire_stub: WireStub) -> None:
    headers = {"retry-after-ms": "1500", "retry-after": "9"}
    wire_stub.add(json_reply(openai_error("slow down"), status=429, headers=headers))
    with pytest.raises(RateLimitError) as info:
        await provider.complete(RequestSpec.build("Hi"))
    assert info.value.retry_after == 1.5


def test_retry_after_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    seconds = parse_retry_after({"retry-after": when})
    assert seconds is not None and 25 <= seconds <= 30
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


async def test_500_is_a_retryable_provider_error(provider: OpenAIProvider, wire_stub: WireStub) -> None:
    wire_stub.add(json_reply(openai_error("The server had an error", type="server_error"), status=500))
    with pytest.raises(ProviderError) as info:
        await provider.complete(RequestSpec.build("Hi"))
    assert info.value.retryable and info.value.status_code == 500


async def test_401_is_an_authentication_error(provider: OpenAIProvider, wire_stub: WireStub) -> None:
    body = openai_error("Incorrect API key provided", code="invalid_api_key")
    wire_stub.add(json_reply(body, status=401))
    with pytest.raises(AuthenticationError) as info:
        await provider.complete(RequestSpec.build("Hi"))
    assert not info.value.retryable and "Incorrect API key" in str(info.value)


async def test_403_is_permission_denied(provider: OpenAIProvider, wire_stub: WireStub) -> None:
    wire_stub.add(json_reply(openai_error("no access to model"), status=403))
    with pytest.raises(PermissionDeniedError):
        await provider.complete(RequestSpec.build("Hi"))


async def test_context_length_400(provider: OpenAIProvider, wire_stub: WireStub) -> None:
    body = openai_error(
        "This model's maximum context length is 128000 tokens. "
        "However, your messages resulted in 130412 tokens.",
        code="context_length_exceeded",
        param="messages",
    )
    wire_stub.add(json_reply(body, status=400))
    with pytest.raises(ContextLengthError) as info:
        await provider.complete(RequestSpec.build("Hi"))
    assert info.value.status_code == 400 and not info.value.retryable


async def test_other_400_is_invalid_request(provider: OpenAIProvider, wire_stub: WireStub) -> None:
    wire_stub.add(json_reply(openai_error("Unrecognized request argument supplied: foo"), status=400))
    with pytest.raises(InvalidRequestError):
        await provider.complete(RequestSpec.build("Hi"))


async def test_content_filter_400(provider: OpenAIProvider, wire_stub: WireStub) -> None:
    wire_stub.add(json_reply(openai_error("blocked", code="content_filter"), status=400))
    with pytest.raises(ContentFilterError):
        await provider.complete(RequestSpec.build("Hi"))


async def test_unparsable_body_is_malformed(provider: OpenAIProvider, wire_stub: WireStub) -> None:
    wire_stub.add(json_reply("{this is not json", status=200))
    with pytest.raises(MalformedResponseError):
        await provider.complete(RequestSpec.build("Hi"))


async def test_connection_refused_is_a_connection_error(wire_stub: WireStub) -> None:
    port = wire_stub.port
    await wire_stub.close()
    async with OpenAIProvider(api_key="sk-test", base_url=f"http://127.0.0.1:{port}/v1") as provider:
        with pytest.raises(ProviderConnectionError) as info:
            await provider.complete(RequestSpec.build("Hi"))
    assert info.value.retryable


async def test_timeout(wire_stub: WireStub) -> None:
    release = asyncio.Event()
    wire_stub.add(json_reply(openai_completion("too late"), wait=release))
    async with OpenAIProvider(api_key="sk-test", base_url=wire_stub.openai_base_url, timeout=0.2) as provider:
        with pytest.raises(RequestTimeoutError) as info:
            await provider.complete(RequestSpec.build("Hi"))
    release.set()
    assert info.value.retryable


# --- streaming -----------------------------------------------------------------------------------


async def test_stream_text(provider: OpenAIProvider, wire_stub: WireStub) -> None:
    wire_stub.add(sse_reply(openai_sse(openai_chunks(["Hel", "lo", "!"], usage=(8, 3)))))
    events = await collect(provider.stream(RequestSpec.build("Hi")))

    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hel", "lo", "!"]
    usage = [e.usage for e in events if isinstance(e, UsageUpdate)]
    assert len(usage) == 1 and (usage[0].input_tokens, usage[0].output_tokens) == (8, 3)
    done = terminal(events)
    assert isinstance(done, StreamDone)
    assert done.result.content == "Hello!"
    assert done.result.finish_reason == "stop"
    assert done.result.usage.total_tokens == 11
    sent = wire_stub.last
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


async def test_stream_result_equals_complete(provider: OpenAIProvider, wire_stub: WireStub) -> None:
    calls = [openai_tool_call("call_a", "get_weather", {"city": "Paris"})]
    wire_stub.add(
        json_reply(openai_completion("Let me look.", tool_calls=calls)),
        sse_reply(openai_sse(openai_chunks(["Let me ", "look."], tool_calls=calls))),
    )
    spec = RequestSpec.build("Weather?", tools=[WEATHER_TOOL])
    completed = await provider.complete(spec)
    done = terminal(await collect(provider.stream(spec)))
    assert isinstance(done, StreamDone)
    assert done.result == completed


async def test_stream_parallel_tool_calls_from_deltas(provider: OpenAIProvider, wire_stub: WireStub) -> None:
    calls = [
        openai_tool_call("call_a", "get_weather", {"city": "Paris"}),
        openai_tool_call("call_b", "get_weather", {"city": "Oslo"}),
    ]
    wire_stub.add(sse_reply(openai_sse(openai_chunks(tool_calls=calls))))
    events = await collect(provider.stream(RequestSpec.build("Weather?", tools=[WEATHER_TOOL])))

    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert {d.index for d in deltas} == {0, 1} and len(deltas) == 6
    ready = [e.call for e in events if isinstance(e, ToolCallReady)]
    expected = (
        ToolCall("call_a", "get_weather", '{"city": "Paris"}'),
        ToolCall("call_b", "get_weather", '{"city": "Oslo"}'),
    )
    assert tuple(ready) == expected
    done = terminal(events)
    assert isinstance(done, StreamDone)
    assert done.result.tool_calls == expected and done.result.finish_reason == "tool_calls"
    assert done.result.content is None


async def test_stream_reasoning_content(provider: OpenAIProvider, wire_stub: WireStub) -> None:
    wire_stub.add(sse_reply(openai_sse(openai_chunks(["42"], reasoning=["six ", "sevens"]))))
    events = await collect(provider.stream(RequestSpec.build("6*7?")))
    assert [e.text for e in events if isinstance(e, ReasoningDelta)] == ["six ", "sevens"]
    done = terminal(events)
    assert isinstance(done, StreamDone) and done.result.reasoning == "six sevens"


async def test_stream_dropped_after_text_is_interrupted(
    provider: OpenAIProvider, wire_stub: WireStub
) -> None:
    frames = openai_sse(openai_chunks(["Hel", "lo", " world"]))
    wire_stub.add(sse_reply(frames, drop_after=3))  # role chunk + "Hel" + "lo"
    events = await collect(provider.stream(RequestSpec.build("Hi")))

    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hel", "lo"]
    end = terminal(events)
    assert isinstance(end, StreamError)
    assert isinstance(end.error, StreamInterruptedError)
    assert end.error.partial_text == "Hello" and not end.error.retryable
    assert end.error.__cause__ is not None
    assert end.partial.content == "Hello"


async def test_stream_dropped_before_output_is_retryable(
    provider: OpenAIProvider, wire_stub: WireStub
) -> None:
    wire_stub.add(
        sse_reply(openai_sse(openai_chunks(["never"])), drop_after=1),  # only the empty role chunk
        drop_reply(),
    )
    for _ in range(2):
        events = await collect(provider.stream(RequestSpec.build("Hi")))
        end = terminal(events)
        assert isinstance(end, StreamError) and len(events) == 1
        assert isinstance(end.error, ProviderConnectionError) and end.error.retryable


async def test_stream_http_error_before_output_keeps_its_type(
    provider: OpenAIProvider, wire_stub: WireStub
) -> None:
    wire_stub.add(json_reply(openai_error("slow down"), status=429, headers={"retry-after": "2"}))
    events = await collect(provider.stream(RequestSpec.build("Hi")))
    end = terminal(events)
    assert isinstance(end, StreamError) and isinstance(end.error, RateLimitError)
    assert end.error.retry_after == 2.0


async def test_stream_malformed_chunk(provider: OpenAIProvider, wire_stub: WireStub) -> None:
    chunks = openai_chunks(["ok"])
    wire_stub.add(
        sse_reply(openai_sse([chunks[0], "{not json"])),
        sse_reply(openai_sse([chunks[0], chunks[1], "{not json"])),
    )
    end = terminal(await collect(provider.stream(RequestSpec.build("Hi"))))
    assert isinstance(end, StreamError) and isinstance(end.error, MalformedResponseError)

    end = terminal(await collect(provider.stream(RequestSpec.build("Hi"))))
    assert isinstance(end, StreamError) and isinstance(end.error, StreamInterruptedError)
    assert end.error.partial_text == "ok"
    assert isinstance(end.error.original, ValueError)


async def test_stream_error_object_mid_stream(provider: OpenAIProvider, wire_stub: WireStub) -> None:
    chunks = openai_chunks(["par"])
    wire_stub.add(
        sse_reply(openai_sse([chunks[0], chunks[1], openai_error("overloaded", type="server_error")]))
    )
    end = terminal(await collect(provider.stream(RequestSpec.build("Hi"))))
    assert isinstance(end, StreamError) and isinstance(end.error, StreamInterruptedError)
    assert end.error.partial_text == "par"


async def test_stream_content_filter(provider: OpenAIProvider, wire_stub: WireStub) -> None:
    wire_stub.add(sse_reply(openai_sse(openai_chunks(finish_reason="content_filter"))))
    end = terminal(await collect(provider.stream(RequestSpec.build("Hi"))))
    assert isinstance(end, StreamError) and isinstance(end.error, ContentFilterError)


async def test_cancelling_a_consumer_closes_the_connection(
    provider: OpenAIProvider, wire_stub: WireStub
) -> None:
    wire_stub.add(sse_reply(openai_sse(openai_chunks(["first"]), done=False)[:2], keep_open=True))
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


async def test_breaking_out_early_closes_the_connection(
    provider: OpenAIProvider, wire_stub: WireStub
) -> None:
    wire_stub.add(sse_reply(openai_sse(openai_chunks(["first"]), done=False)[:2], keep_open=True))
    stream = provider.stream(RequestSpec.build("Hi"))
    async for event in stream:
        if isinstance(event, TextDelta):
            break
    await stream.aclose()  # type: ignore[attr-defined]
    await asyncio.wait_for(wire_stub.disconnected.wait(), 5)


async def test_stream_timeout_before_output(wire_stub: WireStub) -> None:
    release = asyncio.Event()
    wire_stub.add(sse_reply(openai_sse(openai_chunks(["late"])), wait=release))
    async with OpenAIProvider(api_key="sk-test", base_url=wire_stub.openai_base_url, timeout=0.2) as provider:
        end = terminal(await collect(provider.stream(RequestSpec.build("Hi"))))
    release.set()
    assert isinstance(end, StreamError) and isinstance(end.error, RequestTimeoutError)


# --- optional dependency -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "module",
    [
        "llm_client.providers.openai",
        "llm_client.providers.anthropic",
        "llm_client.providers.litellm",
        "llm_client.providers._openai_wire",
    ],
)
def test_provider_module_imports_no_sdk(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "loaded = sorted(m for m in ('openai', 'anthropic', 'litellm', 'httpx2') if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_missing_sdk_names_the_extra() -> None:
    with pytest.raises(MissingDependencyError) as info:
        require_sdk("definitely_not_installed_pkg", "x")
    assert info.value.extra == "x" and info.value.package == "definitely_not_installed_pkg"
    assert "llm-client[x]" in str(info.value)
    assert isinstance(info.value, ImportError)


async def test_missing_api_key_is_an_authentication_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    provider = OpenAIProvider(base_url="http://127.0.0.1:9/v1")
    with pytest.raises(AuthenticationError, match="OPENAI_API_KEY"):
        await provider.complete(RequestSpec.build("Hi"))
