"""agent_runtime_framework: journey-based conversational agents on agent-runtime-core.

A journey is a sequence of steps; each step has its own system prompt and tools, and tools move
the journey by changing its state. Layer 2 of agent-runtime, beside the kernel: it needs core (and
through it llm-client) only.
"""

from __future__ import annotations

from .adapters import CoreRuntimeAdapter, DjangoRuntimeAdapter, RuntimeAdapter
from .agent import JourneyAgent, JourneyRuntime
from .context import CONVERSATION_ID_KEY, AgentContext
from .errors import (
    FrameworkError,
    MissingPromptVariableError,
    MissingToolExecutorError,
    PromptTemplateError,
    StateDataError,
    UnknownRouteError,
    UnknownStepPromptError,
)
from .executor import Executor, ExecutorConfig, NextSegment, Segment
from .hooks import ExecutorHooks, LoggingHooks
from .journey_tools import BaseJourneyTools
from .memory import (
    ConversationStore,
    CoreBackedStore,
    InMemoryStore,
    MemoryContext,
    MemoryManager,
    MemoryStore,
    StateStore,
)
from .prompts import PromptManager, PromptTemplate, StepPromptMapping
from .routing import IntentRouter, RouteDefinition, RouterAgent
from .schema import ToolSchema, ToolSchemaBuilder
from .state import BaseJourneyState
from .tool_executors import MethodToolExecutor, ToolExecutor

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "JourneyAgent",
    "JourneyRuntime",
    "BaseJourneyState",
    "BaseJourneyTools",
    "AgentContext",
    "CONVERSATION_ID_KEY",
    "ToolSchema",
    "ToolSchemaBuilder",
    "Executor",
    "ExecutorConfig",
    "Segment",
    "NextSegment",
    "ExecutorHooks",
    "LoggingHooks",
    "ToolExecutor",
    "MethodToolExecutor",
    "IntentRouter",
    "RouteDefinition",
    "RouterAgent",
    "MemoryStore",
    "InMemoryStore",
    "CoreBackedStore",
    "StateStore",
    "ConversationStore",
    "MemoryContext",
    "MemoryManager",
    "PromptTemplate",
    "StepPromptMapping",
    "PromptManager",
    "RuntimeAdapter",
    "CoreRuntimeAdapter",
    "DjangoRuntimeAdapter",
    "FrameworkError",
    "PromptTemplateError",
    "MissingPromptVariableError",
    "UnknownStepPromptError",
    "UnknownRouteError",
    "StateDataError",
    "MissingToolExecutorError",
]
