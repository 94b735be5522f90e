"""The one small interface every provider implements: ``complete`` and ``stream``."""

from __future__ import annotations

import importlib
import importlib.util
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from types import ModuleType

from ..errors import MissingDependencyError
from ..spec import CompletionResult, RequestSpec
from ..streaming import StreamEvent

__all__ = ["Provider", "require_sdk", "import_sdk"]


class Provider(ABC):
    """A model behind one API.

    ``complete`` returns a :class:`CompletionResult`; ``stream`` yields stream events and always
    ends with exactly one terminal event (StreamDone or StreamError). Providers translate their
    SDK's errors into llm-client's typed errors and never retry: retries belong to the engine's
    retry middleware, so there is one retry loop in the stack, not two.
    """

    name: str = "provider"
    model: str

    @abstractmethod
    async def complete(self, spec: RequestSpec) -> CompletionResult: ...

    @abstractmethod
    def stream(self, spec: RequestSpec) -> AsyncIterator[StreamEvent]: ...

    async def aclose(self) -> None:
        """Release connections. Safe to call more than once."""
        return

    async def __aenter__(self) -> Provider:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r})"


def require_sdk(module: str, extra: str) -> None:
    """Fail early, without importing it, when an optional SDK is missing."""
    if importlib.util.find_spec(module) is None:
        raise MissingDependencyError(module, extra)


def import_sdk(module: str, extra: str) -> ModuleType:
    """Import an optional SDK on first use; a missing one names the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name is not None and exc.name.split(".")[0] == module.split(".")[0]:
            raise MissingDependencyError(module.split(".")[0], extra) from exc
        raise
