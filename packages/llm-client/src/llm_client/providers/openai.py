"""OpenAI's chat-completions API (and every server that speaks it) through the official SDK.

The SDK is imported on the first call, never at import time, and its client is built with
``max_retries=0``: retrying is the engine's job, and two retry loops stacked multiply the wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any, Literal

from llm_client.errors import (
    AuthenticationError,
    LLMClientError,
    MalformedResponseError,
    MissingDependencyError,
    ProviderConnectionError,
    ProviderError,
    RequestTimeoutError,
)
from llm_client.spec import CompletionResult, RequestSpec
from llm_client.streaming import StreamEvent

from ._openai_wire import (
    ChunkParser,
    chat_request,
    error_from_status,
    parse_completion,
    uses_max_completion_tokens,
)
from .base import Provider, require_sdk

__all__ = ["OpenAIProvider"]


class OpenAIProvider(Provider):
    """A model behind OpenAI's chat-completions API.

    ``base_url`` points it at any compatible server (vLLM, Ollama, OpenRouter, a gateway);
    ``transport="aiohttp"`` swaps the SDK's httpx transport for aiohttp (the ``aiohttp`` extra).
    Pass ``client`` to reuse an ``openai.AsyncOpenAI`` you built yourself; it is then yours to close.
    """

    name: str = "openai"

    def __init__(
        self,
        model: str = "gpt-4o-mini",
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        organization: str | None = None,
        timeout: float = 60.0,
        transport: Literal["httpx", "aiohttp"] = "httpx",
        client: Any | None = None,
        default_headers: dict[str, str] | None = None,
    ) -> None:
        if transport not in ("httpx", "aiohttp"):
            raise ValueError(f"transport must be 'httpx' or 'aiohttp', got {transport!r}")
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        if client is None:
            require_sdk("openai", "openai")
            if transport == "aiohttp":
                require_sdk("aiohttp", "aiohttp")
        self.model = model
        self.api_key = api_key
        self.base_url = base_url
        self.organization = organization
        self.timeout = timeout
        self.transport = transport
        self.default_headers = dict(default_headers) if default_headers else None
        self._client: Any | None = client
        self._owns_client = client is None
        self._sdk_module: ModuleType | None = None

    # --- SDK plumbing ----------------------------------------------------------------------------

    @property
    def _sdk(self) -> ModuleType:
        if self._sdk_module is None:
            try:
                import openai  # the only module that imports the openai SDK, on first use
            except ImportError as exc:
                raise MissingDependencyError("openai", "openai") from exc
            self._sdk_module = openai
        return self._sdk_module

    @property
    def client(self) -> Any:
        """The ``openai.AsyncOpenAI`` client, built on first use."""
        if self._client is None:
            sdk = self._sdk
            kwargs: dict[str, Any] = {
                "api_key": self.api_key,
                "base_url": self.base_url,
                "organization": self.organization,
                "timeout": self.timeout,
                "max_retries": 0,
                "default_headers": self.default_headers,
            }
            if self.transport == "aiohttp":
                try:
                    kwargs["http_client"] = sdk.DefaultAioHttpClient(timeout=self.timeout)
                except RuntimeError as exc:  # the SDK's stand-in when aiohttp is missing
                    raise MissingDependencyError("aiohttp", "aiohttp") from exc
            try:
                self._client = sdk.AsyncOpenAI(**kwargs)
            except sdk.OpenAIError as exc:  # no api_key and no OPENAI_API_KEY
                raise AuthenticationError(
                    "no OpenAI API key: pass api_key=... or set OPENAI_API_KEY",
                    provider=self.name,
                    original=exc,
                ) from exc
        return self._client

    def _request(self, spec: RequestSpec) -> dict[str, Any]:
        model = spec.model or self.model
        param = "max_completion_tokens" if uses_max_completion_tokens(model) else "max_tokens"
        return chat_request(spec, model, max_tokens_param=param)

    def _map_error(self, exc: BaseException) -> LLMClientError:
        if isinstance(exc, LLMClientError):
            return exc
        sdk = self._sdk
        if isinstance(exc, sdk.APITimeoutError):
            return RequestTimeoutError(
                f"the request timed out (timeout {self.timeout}s)", provider=self.name, original=exc
            )
        if isinstance(exc, sdk.APIConnectionError):
            return ProviderConnectionError(f"connection failed: {exc}", provider=self.name, original=exc)
        if isinstance(exc, sdk.APIStatusError):
            return error_from_status(
                exc.status_code,
                exc.message,
                provider=self.name,
                code=exc.code,
                headers=exc.response.headers,
                original=exc,
            )
        if isinstance(exc, sdk.APIResponseValidationError):
            return MalformedResponseError(f"unexpected response: {exc}", provider=self.name, original=exc)
        if isinstance(exc, sdk.APIError):  # an error object sent inside a stream
            return error_from_status(None, exc.message, provider=self.name, code=exc.code, original=exc)
        if isinstance(exc, ValueError):  # bad JSON in a body or an SSE data line
            return MalformedResponseError(f"unparsable response: {exc}", provider=self.name, original=exc)
        return ProviderError(f"unexpected failure: {exc!r}", provider=self.name, original=exc)

    # --- the Provider interface ------------------------------------------------------------------

    async def complete(self, spec: RequestSpec) -> CompletionResult:
        kwargs = self._request(spec)
        try:
            response = await self.client.chat.completions.create(**kwargs)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise self._map_error(exc) from exc
        return parse_completion(response, provider=self.name, default_model=kwargs["model"])

    async def stream(self, spec: RequestSpec) -> AsyncIterator[StreamEvent]:
        kwargs = self._request(spec)
        kwargs.setdefault("stream_options", {"include_usage": True})
        parser = ChunkParser(provider=self.name, model=kwargs["model"])
        sdk_stream: Any = None
        try:
            try:
                sdk_stream = await self.client.chat.completions.create(**kwargs, stream=True)
                async for chunk in sdk_stream:
                    for event in parser.feed(chunk):
                        yield event
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                yield parser.error(self._map_error(exc))
                return
            for event in parser.finish():
                yield event
        finally:
            if sdk_stream is not None:
                await sdk_stream.close()

    async def aclose(self) -> None:
        if self._owns_client and self._client is not None:
            client, self._client = self._client, None
            await client.close()
