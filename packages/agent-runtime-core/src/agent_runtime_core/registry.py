"""The process-wide agent registry: key -> agent, factory or class.

Workers and the Django app look agents up by key, so registration is the one place where a key is
bound to code. Factories and classes are instantiated on each lookup, for agents that must not be
shared between runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .interfaces import AgentRuntime

__all__ = [
    "UnknownRuntimeError",
    "register_runtime",
    "register_runtime_factory",
    "register_runtime_class",
    "get_runtime",
    "list_runtimes",
    "unregister_runtime",
    "clear_registry",
]


class UnknownRuntimeError(KeyError):
    """No agent is registered under a key. The message lists the keys that are."""

    def __init__(self, key: str, known: list[str]) -> None:
        self.key = key
        self.known = known
        listed = ", ".join(repr(k) for k in known) if known else "none are registered"
        super().__init__(f"no agent runtime registered with key {key!r}; known keys: {listed}")

    def __str__(self) -> str:
        return str(self.args[0])


_lock = threading.Lock()
_entries: dict[str, Callable[[], AgentRuntime]] = {}


def _register(key: str, make: Callable[[], AgentRuntime], replace: bool) -> None:
    if not isinstance(key, str) or not key:
        raise ValueError(f"agent key must be a non-empty string, got {key!r}")
    with _lock:
        if key in _entries and not replace:
            raise ValueError(f"an agent runtime is already registered with key {key!r}; pass replace=True")
        _entries[key] = make


def register_runtime(runtime: AgentRuntime, *, replace: bool = True) -> None:
    """Register an agent instance under its ``key`` (re-registering a key replaces it)."""
    if not isinstance(runtime, AgentRuntime):
        raise TypeError(f"register_runtime expects an AgentRuntime instance, got {type(runtime).__name__}")
    _register(runtime.key, lambda: runtime, replace)


def register_runtime_factory(key: str, factory: Callable[[], AgentRuntime], *, replace: bool = True) -> None:
    """Register a zero-argument factory; each ``get_runtime(key)`` calls it for a fresh agent."""

    def make() -> AgentRuntime:
        agent = factory()
        if not isinstance(agent, AgentRuntime):
            raise TypeError(f"factory for {key!r} returned {type(agent).__name__}, not an AgentRuntime")
        return agent

    _register(key, make, replace)


def register_runtime_class(
    cls: type[AgentRuntime], *args: Any, key: str | None = None, replace: bool = True, **kwargs: Any
) -> str:
    """Register a class, instantiated with ``args``/``kwargs`` on each lookup; returns the key."""
    if not (isinstance(cls, type) and issubclass(cls, AgentRuntime)):
        raise TypeError(f"register_runtime_class expects an AgentRuntime subclass, got {cls!r}")
    if key is None:
        key = cls(*args, **kwargs).key
    _register(key, lambda: cls(*args, **kwargs), replace)
    return key


def get_runtime(key: str) -> AgentRuntime:
    with _lock:
        make = _entries.get(key)
        known = sorted(_entries) if make is None else []
    if make is None:
        raise UnknownRuntimeError(key, known)
    return make()


def list_runtimes() -> list[str]:
    with _lock:
        return sorted(_entries)


def unregister_runtime(key: str) -> None:
    with _lock:
        if key not in _entries:
            raise UnknownRuntimeError(key, sorted(_entries))
        del _entries[key]


def clear_registry() -> None:
    with _lock:
        _entries.clear()
