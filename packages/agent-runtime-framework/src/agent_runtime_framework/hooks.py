"""Executor hooks: observe the loop (model answers, tool calls, the outcome) without changing it.

Hooks are for logging, metrics and tests; events for users go through the run's context
(``RunContext.emit``), which the journey agent does itself. Every hook is async and a no-op by
default, so a subclass overrides only what it needs.
"""

from __future__ import annotations

import logging
from typing import Any

from llm_client import CompletionResult
from llm_client.agent import AgentResult

__all__ = ["ExecutorHooks", "LoggingHooks"]


class ExecutorHooks:
    """Override any of these. ``arguments`` is the model's arguments parsed from JSON ({} when they
    are not a JSON object; the tool then fails validation and ``on_tool_error`` follows)."""

    async def on_llm_response(self, response: CompletionResult) -> None:
        """One model call finished (it may ask for tools)."""

    async def on_tool_start(self, name: str, arguments: dict[str, Any]) -> None:
        """A tool call is about to run."""

    async def on_tool_end(self, name: str, result: str) -> None:
        """A tool call succeeded; ``result`` is the text the model sees."""

    async def on_tool_error(self, name: str, error: str) -> None:
        """A tool call failed (unknown or off-step tool, bad arguments, the tool raised); the model
        sees ``error`` and the loop goes on."""

    async def on_complete(self, result: AgentResult) -> None:
        """The loop ended with a final answer."""

    async def on_error(self, error: BaseException) -> None:
        """The loop ended with an error (a provider error after retries, max iterations, ...)."""


class LoggingHooks(ExecutorHooks):
    """Logs each step of the loop to ``logger`` (default ``agent_runtime_framework.executor``)."""

    def __init__(self, logger: logging.Logger | None = None, level: int = logging.INFO) -> None:
        self.logger = logger or logging.getLogger("agent_runtime_framework.executor")
        self.level = level

    async def on_llm_response(self, response: CompletionResult) -> None:
        calls = [c.name for c in response.tool_calls]
        self.logger.log(
            self.level, "model answered: %d chars, tool calls %s", len(response.content or ""), calls
        )

    async def on_tool_start(self, name: str, arguments: dict[str, Any]) -> None:
        self.logger.log(self.level, "tool %s started with %s", name, sorted(arguments))

    async def on_tool_end(self, name: str, result: str) -> None:
        self.logger.log(self.level, "tool %s returned %d chars", name, len(result))

    async def on_tool_error(self, name: str, error: str) -> None:
        self.logger.warning("tool %s failed: %s", name, error)

    async def on_complete(self, result: AgentResult) -> None:
        self.logger.log(
            self.level, "done after %d model calls, %d tool calls", result.turns, len(result.tool_calls)
        )

    async def on_error(self, error: BaseException) -> None:
        self.logger.error("loop failed: %s: %s", type(error).__name__, error)
