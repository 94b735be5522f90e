"""agent-runtime-core: the framework-agnostic agent contract, runner and backends.

Names load on first access (PEP 562), so ``import agent_runtime_core`` stays cheap and imports no
SDK; backends that need Redis import it only when built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llm_client._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "configure": "config",
    "get_config": "config",
    "reset_config": "config",
    "RuntimeConfig": "config",
    "ConfigurationError": "config",
    "AgentRuntime": "interfaces",
    "RunContext": "interfaces",
    "RunResult": "interfaces",
    "ErrorInfo": "interfaces",
    "EventType": "interfaces",
    "EVENT_VISIBILITY": "interfaces",
    "register_runtime": "registry",
    "register_runtime_factory": "registry",
    "register_runtime_class": "registry",
    "get_runtime": "registry",
    "list_runtimes": "registry",
    "unregister_runtime": "registry",
    "clear_registry": "registry",
    "UnknownRuntimeError": "registry",
    "Tool": "tools",
    "ToolRegistry": "tools",
    "ToolCallData": "tools",
    "tool": "tools",
    "ToolCallingAgent": "tool_calling",
    "AgentRunner": "runner",
    "RunnerConfig": "runner",
    "DefaultRunContext": "context",
    "TraceSink": "tracing",
    "NoopTraceSink": "tracing",
    "LangfuseTraceSink": "tracing",
    "get_trace_sink": "tracing",
    "StepExecutor": "steps",
    "Step": "steps",
    "Event": "events",
    "EventBus": "events",
    "InMemoryEventBus": "events",
    "RedisEventBus": "events",
    "get_event_bus": "events",
    "Queue": "queue",
    "QueueMessage": "queue",
    "InMemoryQueue": "queue",
    "RedisQueue": "queue",
    "get_queue": "queue",
    "StateStore": "state",
    "InMemoryStateStore": "state",
    "RedisStateStore": "state",
    "SQLiteStateStore": "state",
    "get_state_store": "state",
    "get_llm_client": "llm",
    "LLMClient": "llm",
    "LLMResponse": "llm",
    "OpenAIClient": "llm",
    "AnthropicClient": "llm",
    "LiteLLMClient": "llm",
}

__all__ = [
    "__version__",
    "configure",
    "get_config",
    "reset_config",
    "RuntimeConfig",
    "ConfigurationError",
    "AgentRuntime",
    "RunContext",
    "RunResult",
    "ErrorInfo",
    "EventType",
    "EVENT_VISIBILITY",
    "register_runtime",
    "register_runtime_factory",
    "register_runtime_class",
    "get_runtime",
    "list_runtimes",
    "unregister_runtime",
    "clear_registry",
    "UnknownRuntimeError",
    "Tool",
    "ToolRegistry",
    "ToolCallData",
    "tool",
    "ToolCallingAgent",
    "AgentRunner",
    "RunnerConfig",
    "DefaultRunContext",
    "TraceSink",
    "NoopTraceSink",
    "LangfuseTraceSink",
    "get_trace_sink",
    "StepExecutor",
    "Step",
    "Event",
    "EventBus",
    "InMemoryEventBus",
    "RedisEventBus",
    "get_event_bus",
    "Queue",
    "QueueMessage",
    "InMemoryQueue",
    "RedisQueue",
    "get_queue",
    "StateStore",
    "InMemoryStateStore",
    "RedisStateStore",
    "SQLiteStateStore",
    "get_state_store",
    "get_llm_client",
    "LLMClient",
    "LLMResponse",
    "OpenAIClient",
    "AnthropicClient",
    "LiteLLMClient",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:  # pragma: no cover - static re-exports for type checkers and IDEs
    from .config import ConfigurationError, RuntimeConfig, configure, get_config, reset_config
    from .context import DefaultRunContext
    from .events import Event, EventBus, InMemoryEventBus, RedisEventBus, get_event_bus
    from .interfaces import EVENT_VISIBILITY, AgentRuntime, ErrorInfo, EventType, RunContext, RunResult
    from .llm import AnthropicClient, LiteLLMClient, LLMClient, LLMResponse, OpenAIClient, get_llm_client
    from .queue import InMemoryQueue, Queue, QueueMessage, RedisQueue, get_queue
    from .registry import (
        UnknownRuntimeError,
        clear_registry,
        get_runtime,
        list_runtimes,
        register_runtime,
        register_runtime_class,
        register_runtime_factory,
        unregister_runtime,
    )
    from .runner import AgentRunner, RunnerConfig
    from .state import InMemoryStateStore, RedisStateStore, SQLiteStateStore, StateStore, get_state_store
    from .steps import Step, StepExecutor
    from .tool_calling import ToolCallingAgent
    from .tools import Tool, ToolCallData, ToolRegistry, tool
    from .tracing import LangfuseTraceSink, NoopTraceSink, TraceSink, get_trace_sink
