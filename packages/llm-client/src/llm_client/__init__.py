"""llm-client: the layer that talks to models.

Names are imported on first access (PEP 562), so ``import llm_client`` stays cheap and imports no
SDK and not even asyncio; ``from llm_client import Agent`` loads only what Agent needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # errors
    "LLMClientError": "errors",
    "ProviderError": "errors",
    "AuthenticationError": "errors",
    "PermissionDeniedError": "errors",
    "RateLimitError": "errors",
    "ContextLengthError": "errors",
    "ContentFilterError": "errors",
    "RequestTimeoutError": "errors",
    "ProviderConnectionError": "errors",
    "InvalidRequestError": "errors",
    "MalformedResponseError": "errors",
    "StreamInterruptedError": "errors",
    "RequestCancelledError": "errors",
    "InvalidMessageError": "errors",
    "ToolSchemaError": "errors",
    "ToolArgumentsError": "errors",
    "ToolNotFoundError": "errors",
    "ToolExecutionError": "errors",
    "IdempotencyConflictError": "errors",
    "BudgetExceededError": "errors",
    "MockExhaustedError": "errors",
    "MaxTurnsExceededError": "errors",
    "MissingDependencyError": "errors",
    "ToolInterrupt": "errors",
    "AgentInterrupted": "errors",
    # messages, usage, pricing
    "Message": "messages",
    "ToolCall": "messages",
    "normalize_messages": "messages",
    "Usage": "usage",
    "ModelPrice": "pricing",
    "PricingTable": "pricing",
    "default_pricing": "pricing",
    "set_model_price": "pricing",
    "cost_of": "pricing",
    # requests and results
    "RequestSpec": "spec",
    "CompletionResult": "spec",
    "RequestContext": "context",
    "RequestBudget": "context",
    "CancellationToken": "context",
    # streaming
    "TextDelta": "streaming",
    "ReasoningDelta": "streaming",
    "ToolCallDelta": "streaming",
    "ToolCallReady": "streaming",
    "UsageUpdate": "streaming",
    "StreamDone": "streaming",
    "StreamError": "streaming",
    "StreamEvent": "streaming",
    "StreamAccumulator": "streaming",
    "aclose_stream": "streaming",
    # tools
    "Tool": "tools",
    "ToolRegistry": "tools",
    "tool": "tools",
    "function_schema": "schema",
    # providers
    "Provider": "providers.base",
    "MockProvider": "providers.mock",
    "MockResponse": "providers.mock",
    "OpenAIProvider": "providers.openai",
    "AnthropicProvider": "providers.anthropic",
    "LiteLLMProvider": "providers.litellm",
    # execution
    "RetryPolicy": "retry",
    "IdempotencyTracker": "idempotency",
    "Middleware": "middleware",
    "LoggingMiddleware": "middleware",
    "TimeoutMiddleware": "middleware",
    "RetryMiddleware": "middleware",
    "BudgetMiddleware": "middleware",
    "TelemetryMiddleware": "telemetry",
    "default_middleware": "middleware",
    "ExecutionEngine": "engine",
    "Agent": "agent",
    "AgentResult": "agent",
    "ToolStart": "agent",
    "ToolEnd": "agent",
    "TurnComplete": "agent",
    "AgentDone": "agent",
}

__all__ = [
    "__version__",
    "LLMClientError",
    "ProviderError",
    "AuthenticationError",
    "PermissionDeniedError",
    "RateLimitError",
    "ContextLengthError",
    "ContentFilterError",
    "RequestTimeoutError",
    "ProviderConnectionError",
    "InvalidRequestError",
    "MalformedResponseError",
    "StreamInterruptedError",
    "RequestCancelledError",
    "InvalidMessageError",
    "ToolSchemaError",
    "ToolArgumentsError",
    "ToolNotFoundError",
    "ToolExecutionError",
    "IdempotencyConflictError",
    "BudgetExceededError",
    "MockExhaustedError",
    "MaxTurnsExceededError",
    "MissingDependencyError",
    "ToolInterrupt",
    "AgentInterrupted",
    "Message",
    "ToolCall",
    "normalize_messages",
    "Usage",
    "ModelPrice",
    "PricingTable",
    "default_pricing",
    "set_model_price",
    "cost_of",
    "RequestSpec",
    "CompletionResult",
    "RequestContext",
    "RequestBudget",
    "CancellationToken",
    "TextDelta",
    "ReasoningDelta",
    "ToolCallDelta",
    "ToolCallReady",
    "UsageUpdate",
    "StreamDone",
    "StreamError",
    "StreamEvent",
    "StreamAccumulator",
    "aclose_stream",
    "Tool",
    "ToolRegistry",
    "tool",
    "function_schema",
    "Provider",
    "MockProvider",
    "MockResponse",
    "OpenAIProvider",
    "AnthropicProvider",
    "LiteLLMProvider",
    "RetryPolicy",
    "IdempotencyTracker",
    "Middleware",
    "LoggingMiddleware",
    "TimeoutMiddleware",
    "RetryMiddleware",
    "BudgetMiddleware",
    "TelemetryMiddleware",
    "default_middleware",
    "ExecutionEngine",
    "Agent",
    "AgentResult",
    "ToolStart",
    "ToolEnd",
    "TurnComplete",
    "AgentDone",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:  # pragma: no cover - static re-exports for type checkers and IDEs
    from .agent import Agent, AgentDone, AgentResult, ToolEnd, ToolStart, TurnComplete
    from .context import CancellationToken, RequestBudget, RequestContext
    from .engine import ExecutionEngine
    from .errors import (
        AgentInterrupted,
        AuthenticationError,
        BudgetExceededError,
        ContentFilterError,
        ContextLengthError,
        IdempotencyConflictError,
        InvalidMessageError,
        InvalidRequestError,
        LLMClientError,
        MalformedResponseError,
        MaxTurnsExceededError,
        MissingDependencyError,
        MockExhaustedError,
        PermissionDeniedError,
        ProviderConnectionError,
        ProviderError,
        RateLimitError,
        RequestCancelledError,
        RequestTimeoutError,
        StreamInterruptedError,
        ToolArgumentsError,
        ToolExecutionError,
        ToolInterrupt,
        ToolNotFoundError,
        ToolSchemaError,
    )
    from .idempotency import IdempotencyTracker
    from .messages import Message, ToolCall, normalize_messages
    from .middleware import (
        BudgetMiddleware,
        LoggingMiddleware,
        Middleware,
        RetryMiddleware,
        TimeoutMiddleware,
        default_middleware,
    )
    from .pricing import ModelPrice, PricingTable, cost_of, default_pricing, set_model_price
    from .providers.anthropic import AnthropicProvider
    from .providers.base import Provider
    from .providers.litellm import LiteLLMProvider
    from .providers.mock import MockProvider, MockResponse
    from .providers.openai import OpenAIProvider
    from .retry import RetryPolicy
    from .schema import function_schema
    from .spec import CompletionResult, RequestSpec
    from .streaming import (
        ReasoningDelta,
        StreamAccumulator,
        StreamDone,
        StreamError,
        StreamEvent,
        TextDelta,
        ToolCallDelta,
        ToolCallReady,
        UsageUpdate,
        aclose_stream,
    )
    from .telemetry import TelemetryMiddleware
    from .tools import Tool, ToolRegistry, tool
    from .usage import Usage
