"""How a declared tool is executed: the ``ToolExecutor`` protocol and ``MethodToolExecutor``.

Arguments reach an executor already validated against the tool's schema (llm-client's ``Tool``
does that before any handler runs), so executors only dispatch.
"""

from __future__ import annotations

import inspect
from typing import Any, Protocol, runtime_checkable

from llm_client import ToolNotFoundError

__all__ = ["ToolExecutor", "MethodToolExecutor"]


@runtime_checkable
class ToolExecutor(Protocol):
    async def execute(self, name: str, arguments: dict[str, Any]) -> Any:
        """Run tool ``name`` with validated ``arguments``; the result becomes the tool message."""
        ...


class MethodToolExecutor:
    """Runs tool ``name`` as the method ``name`` of ``tools`` (sync or async).

    Private names (leading underscore) are never tools, so a schema cannot expose
    ``_notify_state_change`` or other internals by accident.
    """

    def __init__(self, tools: object) -> None:
        self.tools = tools

    async def execute(self, name: str, arguments: dict[str, Any]) -> Any:
        method = None if name.startswith("_") else getattr(self.tools, name, None)
        if not callable(method):
            raise ToolNotFoundError(f"{type(self.tools).__name__} has no tool method {name!r}")
        result = method(**arguments)
        if inspect.isawaitable(result):
            result = await result
        return result
