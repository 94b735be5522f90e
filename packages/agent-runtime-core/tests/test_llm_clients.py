"""LLM clients: thin adapters over llm-client providers, get_llm_client selection and overrides.

The OpenAI and Anthropic clients are exercised through their real SDKs against llm-client's
loopback wire stub (127.0.0.1 only).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from agent_runtime_core.config import ConfigurationError, configure, reset_config
from agent_runtime_core.llm import (
    AnthropicClient,
    LiteLLMClient,
    LLMClient,
    LLMResponse,
    OpenAIClient,
    get_llm_client,
    reset_llm_clients,
    set_llm_client,
    use_llm_client,
)
from agent_runtime_core.testing import MockLLMClient
from agent_runtime_core.tools import ToolCallData, ToolRegistry
from llm_client import (
    AnthropicProvider,
    AuthenticationError,
    ExecutionEngine,
    LiteLLMProvider,
    MockProvider,
    MockResponse,
    OpenAIProvider,
    RetryMiddleware,
    StreamDone,
    TextDelta,
    TimeoutMiddleware,
)

_LLM_CLIENT_TESTS = str(Path(__file__).resolve().parents[2] / "llm-client" / "tests")
if _LLM_CLIENT_TESTS not in sys.path:
    sys.path.insert(0, _LLM_CLIENT_TESTS)

from wire_stub import (  # noqa: E402
    WireStub,
    anthropic_message,
    json_reply,
    openai_chunks,
    openai_completion,
    openai_error,
    openai_sse,
    openai_tool_call,
    sse_reply,
)

_KEY_VARS = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_BASE_URL",
    "LITELLM_API_BASE",
)


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in (*_KEY_VARS, "AGENT_RUNTIME_MODEL_PROVIDER", "AGENT_RUNTIME_DEFAULT_MODEL"):
        monkeypatch.delenv(var, raising=False)
    reset_llm_clients()
    reset_config()
    yield
    reset_llm_clients()
    reset_config()


@pytest.fixture
async def stub() -> AsyncIterator[WireStub]:
    server = await WireStub().start()
    try:
        yield server
    finally:
        await server.close()
    assert not server.errors, server.errors
    assert server.pending == 0, f"{server.pending} scripted repl(ies) never requested"


def _middleware_types(client: LLMClient) -> list[str]:
    return [type(m).__name__ for m in client.engine.middleware]


_PRODUCTION_CHAIN = [
    "TelemetryMiddleware",
    "LoggingMiddleware",
    "BudgetMiddleware",
    "RetryMiddleware",
    "TimeoutMiddleware",
]


# --- the seed's "LLM Clients" blocks ------------------------------------------------------------------


async def test_seed_openai_block_through_the_real_sdk(stub: WireStub) -> None:
    configure(openai_base_url=stub.openai_base_url)  # where "api.openai.com" is, for this test
    stub.add(json_reply(openai_completion("Hello! How can I help?", model="gpt-4o-2024-08-06")))

    from agent_runtime_core.llm import OpenAIClient

    client = OpenAIClient(
        api_key="sk-...",  # Or use OPENAI_API_KEY env var
        default_model="gpt-4o",
    )

    response = await client.generate([{"role": "user", "content": "Hello!"}])

    assert isinstance(response, LLMResponse)
    assert response.message == {"role": "assistant", "content": "Hello! How can I help?"}
    assert response.content == "Hello! How can I help?"
    assert response.model == "gpt-4o-2024-08-06"
    assert response.finish_reason == "stop"
    assert response.usage.input_tokens == 12 and response.usage.output_tokens == 5
    assert response.usage.cost is not None  # priced by llm-client's engine
    request = stub.requests[0]
    assert request.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == "Bearer sk-..."
    assert request.json["model"] == "gpt-4o"
    assert request.json["messages"] == [{"role": "user", "content": "Hello!"}]
    await client.aclose()


def test_seed_anthropic_and_litellm_constructors() -> None:
    from agent_runtime_core.llm import AnthropicClient

    client = AnthropicClient(
        api_key="sk-ant-...",  # Or use ANTHROPIC_API_KEY env var
        default_model="claude-3-5-sonnet-20241022",
    )
    assert isinstance(client.provider, AnthropicProvider)
    assert client.provider.model == client.default_model == "claude-3-5-sonnet-20241022"
    assert client.provider.api_key == "sk-ant-..."
    assert _middleware_types(client) == _PRODUCTION_CHAIN

    from agent_runtime_core.llm import LiteLLMClient

    # Use any LiteLLM-supported model
    client2 = LiteLLMClient(default_model="gpt-4o")
    client2 = LiteLLMClient(default_model="claude-3-5-sonnet-20241022")
    client2 = LiteLLMClient(default_model="ollama/llama2")
    assert isinstance(client2.provider, LiteLLMProvider)
    assert client2.provider.model == client2.default_model == "ollama/llama2"
    assert _middleware_types(client2) == _PRODUCTION_CHAIN


def test_defaults_match_the_seed() -> None:
    assert OpenAIClient().default_model == "gpt-4o"
    assert AnthropicClient().default_model == "claude-3-5-sonnet-20241022"
    assert LiteLLMClient().default_model == "gpt-4o"


async def test_anthropic_client_through_the_real_sdk(stub: WireStub) -> None:
    stub.add(json_reply(anthropic_message("Bonjour", model="claude-3-5-sonnet-20241022")))
    client = AnthropicClient(api_key="sk-ant-test", base_url=stub.url, max_tokens=321)
    response = await client.generate(
        [{"role": "system", "content": "Be French."}, {"role": "user", "content": "Hello"}]
    )
    assert response.content == "Bonjour"
    body = stub.last
    assert body["model"] == "claude-3-5-sonnet-20241022"
    assert body["system"] == "Be French."
    assert body["max_tokens"] == 321
    headers = stub.requests[0].headers
    assert "sk-ant-test" in (headers.get("x-api-key") or headers.get("Authorization") or "")


# --- OpenAIClient through the SDK: tools, streaming, errors -------------------------------------------


async def test_openai_tool_calls_come_back_as_tool_call_data(stub: WireStub) -> None:
    def get_weather(location: str) -> str:
        """Get the weather."""
        return location

    tools = ToolRegistry([get_weather])
    call = openai_tool_call("call_abc", "get_weather", {"location": "Paris"})
    stub.add(json_reply(openai_completion(None, tool_calls=[call])))
    client = OpenAIClient(api_key="sk-test", base_url=stub.openai_base_url)
    response = await client.generate("Weather in Paris?", tools=tools.to_openai_format(), temperature=0.1)
    assert stub.last["tools"] == tools.to_openai_format()
    assert stub.last["temperature"] == 0.1
    assert response.content is None
    (tool_call,) = response.tool_calls
    assert isinstance(tool_call, ToolCallData)
    assert tool_call.id == tool_call["id"] == "call_abc"
    assert tool_call["function"]["name"] == tool_call.name == "get_weather"
    assert tool_call.arguments == '{"location": "Paris"}'
    assert response.message["tool_calls"] == [call]
    assert response.finish_reason == "tool_calls"


async def test_openai_stream_through_the_sdk(stub: WireStub) -> None:
    stub.add(sse_reply(openai_sse(openai_chunks(["Hel", "lo", "!"]))))
    client = OpenAIClient(api_key="sk-test", base_url=stub.openai_base_url, default_model="gpt-4o-mini")
    deltas: list[str] = []
    done = None
    async for event in client.stream([{"role": "user", "content": "Hi"}], max_tokens=20):
        if isinstance(event, TextDelta):
            deltas.append(event.text)
        elif isinstance(event, StreamDone):
            done = event
    assert deltas == ["Hel", "lo", "!"]
    assert done is not None and done.result.content == "Hello!"
    assert stub.last["stream"] is True
    assert stub.last["model"] == "gpt-4o-mini"


async def test_openai_rejected_key_is_authentication_error_and_not_retried(stub: WireStub) -> None:
    stub.add(json_reply(openai_error("Incorrect API key provided", code="invalid_api_key"), status=401))
    client = OpenAIClient(api_key="sk-bad", base_url=stub.openai_base_url)
    with pytest.raises(AuthenticationError) as info:
        await client.generate("Hello")
    assert info.value.status_code == 401
    assert len(stub.requests) == 1


async def test_missing_api_key_fails_on_first_call_not_at_construction() -> None:
    client = OpenAIClient()  # no key anywhere: fine until used
    with pytest.raises(AuthenticationError, match="OPENAI_API_KEY"):
        await client.generate("Hello")


def test_keys_and_urls_fall_back_to_config_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9/anthropic")
    reset_config()
    openai = OpenAIClient()
    assert isinstance(openai.provider, OpenAIProvider)
    assert openai.provider.api_key == "sk-from-env"
    assert AnthropicClient().provider.base_url == "http://127.0.0.1:9/anthropic"  # type: ignore[attr-defined]
    configure(
        openai_api_key="sk-configured", openai_base_url="http://127.0.0.1:9/v1", litellm_api_base="http://b"
    )
    openai = OpenAIClient()
    assert openai.provider.api_key == "sk-configured"  # type: ignore[attr-defined]
    assert openai.provider.base_url == "http://127.0.0.1:9/v1"  # type: ignore[attr-defined]
    assert OpenAIClient(api_key="sk-arg").provider.api_key == "sk-arg"  # type: ignore[attr-defined]
    assert LiteLLMClient().provider.api_base == "http://b"  # type: ignore[attr-defined]


def test_request_timeout_comes_from_config() -> None:
    configure(request_timeout_seconds=7.5)
    client = OpenAIClient(api_key="sk-test")
    assert client.provider.timeout == 7.5  # type: ignore[attr-defined]
    (timeout,) = [m for m in client.engine.middleware if isinstance(m, TimeoutMiddleware)]
    assert timeout.timeout == 7.5
    assert any(isinstance(m, RetryMiddleware) for m in client.engine.middleware)
    assert OpenAIClient(api_key="k", timeout=2.0).provider.timeout == 2.0  # type: ignore[attr-defined]
    assert OpenAIClient(api_key="k", middleware=()).engine.middleware == ()


def test_importing_and_building_clients_imports_no_sdk() -> None:
    code = textwrap.dedent(
        """
        import sys
        from agent_runtime_core.llm import OpenAIClient, AnthropicClient, LiteLLMClient, get_llm_client
        OpenAIClient(api_key="k"); AnthropicClient(api_key="k"); LiteLLMClient()
        get_llm_client()
        loaded = [m for m in ("openai", "anthropic", "litellm") if m in sys.modules]
        assert not loaded, loaded
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


# --- LLMClient over any engine ------------------------------------------------------------------------


async def test_llm_client_wraps_any_engine_and_passes_options() -> None:
    provider = MockProvider(["one", MockResponse.text("two")], model="scripted")
    client = LLMClient(engine=ExecutionEngine(provider))
    assert client.default_model == "scripted"
    assert client.engine.middleware == ()
    response = await client.generate(
        [{"role": "user", "content": "hi"}], temperature=0.3, max_tokens=9, tool_choice="none"
    )
    assert response.content == "one"
    spec = provider.calls[0]
    assert (spec.model, spec.temperature, spec.max_tokens, spec.tool_choice) == ("scripted", 0.3, 9, "none")
    await client.generate("hi", model="other-model")
    assert provider.calls[1].model == "other-model"
    assert response.raw is not None and response.raw.content == "one"


def test_llm_client_over_a_provider_gets_the_production_chain() -> None:
    client = LLMClient(provider=MockProvider(["x"]), default_model="m")
    assert _middleware_types(client) == _PRODUCTION_CHAIN
    assert client.default_model == "m"
    bare = LLMClient(provider=MockProvider(["x"]), middleware=())
    assert bare.engine.middleware == ()
    with pytest.raises(TypeError, match="needs an engine"):
        LLMClient()
    with pytest.raises(TypeError, match="not both"):
        LLMClient(engine=ExecutionEngine(MockProvider(["x"])), provider=MockProvider(["y"]))


# --- get_llm_client ---------------------------------------------------------------------------------


def test_get_llm_client_follows_model_provider_and_caches() -> None:
    client = get_llm_client()  # default config: openai, gpt-4o
    assert isinstance(client, OpenAIClient)
    assert client.default_model == "gpt-4o"
    assert get_llm_client() is client
    configure(model_provider="anthropic")
    anthropic = get_llm_client()
    assert isinstance(anthropic, AnthropicClient)
    assert anthropic.default_model == "claude-3-5-sonnet-20241022"
    configure(model_provider="litellm", default_model="ollama/llama2")
    litellm = get_llm_client()
    assert isinstance(litellm, LiteLLMClient)
    assert litellm.default_model == "ollama/llama2"
    assert isinstance(get_llm_client(provider="openai"), OpenAIClient)
    assert get_llm_client(provider="openai", model="gpt-4o-mini").default_model == "gpt-4o-mini"
    assert get_llm_client(provider="anthropic", model="claude-x").default_model == "claude-x"


def test_configure_rebuilds_the_default_client() -> None:
    configure(openai_api_key="sk-one")
    first = get_llm_client()
    configure(openai_api_key="sk-two")
    second = get_llm_client()
    assert second is not first
    assert second.provider.api_key == "sk-two"  # type: ignore[attr-defined]


def test_unknown_provider_is_a_clear_error() -> None:
    with pytest.raises(
        ConfigurationError, match=r"unknown LLM provider 'cohere'.*openai, anthropic, litellm, mock"
    ):
        get_llm_client(provider="cohere")


def test_set_llm_client_overrides_the_default_until_removed() -> None:
    mock = MockLLMClient(responses=["x"])
    set_llm_client(mock)
    assert get_llm_client() is mock
    assert isinstance(get_llm_client(provider="openai"), OpenAIClient)  # naming a provider skips it
    set_llm_client(None)
    assert isinstance(get_llm_client(), OpenAIClient)
    with pytest.raises(TypeError, match="LLMClient"):
        set_llm_client("openai")  # type: ignore[arg-type]


async def test_use_llm_client_is_per_task() -> None:
    a = MockLLMClient(responses=["from a"])
    b = MockLLMClient(responses=["from b"])
    a_inside = asyncio.Event()
    b_checked = asyncio.Event()
    seen: dict[str, LLMClient] = {}

    async def task_a() -> None:
        with use_llm_client(a):
            a_inside.set()
            await b_checked.wait()  # b runs its check while a's override is active
            seen["a"] = get_llm_client()

    async def task_b() -> None:
        await a_inside.wait()
        with use_llm_client(b):
            seen["b"] = get_llm_client()
        b_checked.set()

    await asyncio.gather(task_a(), task_b())
    assert seen == {"a": a, "b": b}
    set_llm_client(a)
    with use_llm_client(b):
        assert get_llm_client() is b  # the scoped override beats the process-wide one
    assert get_llm_client() is a
