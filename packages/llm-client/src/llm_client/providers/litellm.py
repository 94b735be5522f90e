"""Any of litellm's hundred-odd backends, addressed as ``"<provider>/<model>"``.

litellm answers in OpenAI's shape, so requests and responses go through the same SDK-free wire
helpers as :class:`~llm_client.providers.openai.OpenAIProvider`. litellm is imported on the first
call (it is slow to import), with its remote cost-map fetch switched off beforehand: cost is priced
by the engine from our own table, and a model call should never wait on a download.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

from llm_client.errors import (
    AuthenticationError,
    ContentFilterError,
    ContextLengthError,
    LLMClientError,
    MalformedResponseError,
    MissingDependencyError,
    ProviderConnectionError,
    ProviderError,
    RequestTimeoutError,
)
from llm_client.spec import CompletionResult, RequestSpec
from llm_client.streaming import StreamEvent

from ._openai_wire import ChunkParser, chat_request, error_from_status, parse_completion
from .base import Provider, require_sdk

__all__ = ["LiteLLMProvider"]


def _import_litellm() -> ModuleType:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        import litellm  # the only module that imports litellm, on first use
    except ImportError as exc:
        raise MissingDependencyError("litellm", "litellm") from exc
    settings: Any = litellm
    # Older releases phone home unless told not to; newer ones ignore the flag.
    settings.telemetry = False
    return litellm


class LiteLLMProvider(Provider):
    """A model reached through ``litellm.acompletion``.

    Extra keyword arguments (``custom_llm_provider``, ``extra_headers``, ...) are passed to every
    call. ``thinking_budget`` is sent as litellm's ``thinking`` parameter.
    """

    name: str = "litellm"

    def __init__(
        self,
        model: str,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        **litellm_kwargs: Any,
    ) -> None:
        if not model:
            raise ValueError("model is required, as '<provider>/<model>', e.g. 'openai/gpt-4o-mini'")
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        require_sdk("litellm", "litellm")
        self.model = model
        self.api_base = api_base
        self.api_key = api_key
        self.timeout = timeout
        self.litellm_kwargs = litellm_kwargs
        self._sdk_module: ModuleType | None = None

    @property
    def _sdk(self) -> ModuleType:
        if self._sdk_module is None:
            self._sdk_module = _import_litellm()
        return self._sdk_module

    def _request(self, spec: RequestSpec) -> dict[str, Any]:
        kwargs = chat_request(spec, spec.model or self.model)
        kwargs.setdefault("timeout", self.timeout)
        if spec.thinking_budget:
            kwargs.setdefault("thinking", {"type": "enabled", "budget_tokens": spec.thinking_budget})
        if self.api_base is not None:
            kwargs["api_base"] = self.api_base
        if self.api_key is not None:
            kwargs["api_key"] = self.api_key
        kwargs["num_retries"] = 0  # retries are the engine's
        kwargs["max_retries"] = 0
        return {**self.litellm_kwargs, **kwargs}

    def _map_error(self, exc: BaseException) -> LLMClientError:
        if isinstance(exc, LLMClientError):
            return exc
        ex = self._sdk.exceptions
        status = getattr(exc, "status_code", None)
        status = status if isinstance(status, int) else None
        message = str(getattr(exc, "message", None) or exc)
        kw: dict[str, Any] = {"provider": self.name, "status_code": status, "original": exc}
        # Subclasses first: ContextWindowExceededError and ContentPolicyViolationError are BadRequestErrors.
        if isinstance(exc, ex.ContextWindowExceededError):
            return ContextLengthError(message, **kw)
        if isinstance(exc, ex.ContentPolicyViolationError):
            return ContentFilterError(message, **kw)
        if isinstance(exc, ex.AuthenticationError):
            return AuthenticationError(message, **kw)
        if isinstance(exc, ex.Timeout):
            return RequestTimeoutError(message, **kw)
        if isinstance(exc, ex.APIConnectionError):
            return ProviderConnectionError(message, **kw)
        if isinstance(exc, (ex.ServiceUnavailableError, ex.InternalServerError)):
            return ProviderError(message, **kw)
        if status is not None:  # RateLimitError, BadRequestError, NotFoundError, APIError, ...
            response = getattr(exc, "response", None)
            headers = getattr(response, "headers", None)
            return error_from_status(status, message, provider=self.name, headers=headers, original=exc)
        if isinstance(exc, ValueError):
            return MalformedResponseError(f"unparsable response: {exc}", provider=self.name, original=exc)
        return ProviderError(f"unexpected failure: {exc!r}", provider=self.name, original=exc)

    async def complete(self, spec: RequestSpec) -> CompletionResult:
        kwargs = self._request(spec)
        try:
            response = await self._sdk.acompletion(**kwargs)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise self._map_error(exc) from exc
        result = parse_completion(response, provider=self.name, default_model=kwargs["model"])
        return result

    async def stream(self, spec: RequestSpec) -> AsyncIterator[StreamEvent]:
        kwargs = self._request(spec)
        kwargs.setdefault("stream_options", {"include_usage": True})
        parser = ChunkParser(provider=self.name, model=kwargs["model"])
        sdk_stream: Any = None
        try:
            try:
                sdk_stream = await self._sdk.acompletion(**kwargs, stream=True)
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
            close = getattr(sdk_stream, "aclose", None)
            if close is not None:
                await close()
