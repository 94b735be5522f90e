"""The plugin registry: one place that owns every plugin's lifecycle.

A broken plugin must not take the runtime down: ``initialize_all`` records a plugin that raises as
failed (with its error) and goes on with the others, and failed plugins offer no tools.
``shutdown_all`` runs in reverse initialization order, like an ``AsyncExitStack``, so a plugin
set up on top of another is torn down first; it collects errors instead of stopping half-way.
Cancellation is never swallowed.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from llm_client.tools import Tool

from ..errors import NotFoundError, ValidationError
from .base import Plugin, PluginManifest, PluginType

__all__ = ["DuplicatePluginError", "PluginNotFoundError", "PluginRegistry", "PluginState"]

logger = logging.getLogger("agent_runtime.plugins")


class PluginState(enum.StrEnum):
    REGISTERED = "registered"
    INITIALIZED = "initialized"
    FAILED = "failed"
    SHUT_DOWN = "shut_down"


class PluginNotFoundError(NotFoundError):
    def __init__(self, name: str, known: Iterable[str]) -> None:
        names = ", ".join(repr(n) for n in known) or "none registered"
        super().__init__(f"no plugin named {name!r}; registered plugins: {names}")
        self.name = name


class DuplicatePluginError(ValidationError):
    """A second plugin with a name already registered: silently replacing one hides a bug."""

    def __init__(self, name: str) -> None:
        super().__init__(f"a plugin named {name!r} is already registered (unregister it first)")
        self.name = name


@dataclass(slots=True)
class _Entry:
    plugin: Plugin
    manifest: PluginManifest
    state: PluginState = PluginState.REGISTERED
    error: Exception | None = None


def _tool_name(tool: Any) -> str:
    if isinstance(tool, Tool):
        return tool.name
    return str(getattr(tool, "__name__", repr(tool)))


class PluginRegistry:
    """Plugins by name, in registration order."""

    def __init__(self, plugins: Iterable[Plugin] = ()) -> None:
        self._entries: dict[str, _Entry] = {}
        self._init_order: list[str] = []
        for plugin in plugins:
            self.register(plugin)

    # --- registration -----------------------------------------------------------------------------

    def register(self, plugin: Plugin) -> Plugin:
        """Add a plugin (not yet initialized); returns it. A taken name raises DuplicatePluginError."""
        if not isinstance(plugin, Plugin):
            raise ValidationError(f"register() takes a Plugin, got {type(plugin).__name__}")
        try:
            manifest = plugin.manifest
        except Exception as exc:
            raise ValidationError(f"{type(plugin).__name__}.manifest raised: {exc!r}") from exc
        if not isinstance(manifest, PluginManifest):
            raise ValidationError(
                f"{type(plugin).__name__}.manifest must be a PluginManifest, got {type(manifest).__name__}"
            )
        if manifest.name in self._entries:
            raise DuplicatePluginError(manifest.name)
        self._entries[manifest.name] = _Entry(plugin, manifest)
        return plugin

    def unregister(self, name: str) -> Plugin:
        """Remove a plugin and return it. It is not shut down here: call its ``shutdown()`` if needed."""
        entry = self._entry(name)
        del self._entries[name]
        if name in self._init_order:
            self._init_order.remove(name)
        return entry.plugin

    # --- lookup -----------------------------------------------------------------------------------

    def _entry(self, name: str) -> _Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise PluginNotFoundError(name, self._entries) from None

    def get(self, name: str) -> Plugin:
        """The plugin called ``name``; PluginNotFoundError (a LookupError) when there is none."""
        return self._entry(name).plugin

    def get_by_type(self, plugin_type: PluginType | str) -> list[Plugin]:
        try:
            wanted = PluginType(plugin_type)
        except ValueError:
            known = ", ".join(t.value for t in PluginType)
            raise ValidationError(f"unknown plugin_type {plugin_type!r}; expected one of: {known}") from None
        return [e.plugin for e in self._entries.values() if e.manifest.plugin_type is wanted]

    def get_by_capability(self, capability: str) -> list[Plugin]:
        return [e.plugin for e in self._entries.values() if e.manifest.has_capability(capability)]

    def manifest(self, name: str) -> PluginManifest:
        return self._entry(name).manifest

    def state(self, name: str) -> PluginState:
        return self._entry(name).state

    @property
    def initialized(self) -> list[str]:
        """Names of the plugins initialized and not shut down, in initialization order."""
        return [n for n in self._init_order if self._entries[n].state is PluginState.INITIALIZED]

    @property
    def failed(self) -> dict[str, Exception]:
        """Plugins whose ``initialize`` (or ``get_tools``) raised, with the error."""
        return {
            n: e.error
            for n, e in self._entries.items()
            if e.state is PluginState.FAILED and e.error is not None
        }

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Plugin]:
        return iter([e.plugin for e in self._entries.values()])

    def __repr__(self) -> str:
        states = ", ".join(f"{n}={e.state.value}" for n, e in self._entries.items())
        return f"PluginRegistry({states})"

    # --- lifecycle --------------------------------------------------------------------------------

    async def initialize_all(
        self, context: Any = None, *, timeout: float | None = None
    ) -> dict[str, Exception]:
        """Initialize, in registration order, every plugin not already initialized.

        Returns the failures of this call (empty when all succeeded); they also show in
        :attr:`failed`. A plugin that failed before is tried again. ``timeout`` bounds each
        plugin's ``initialize``; running over counts as a failure (TimeoutError).
        """
        if timeout is not None and (isinstance(timeout, bool) or timeout <= 0):
            raise ValidationError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
        failures: dict[str, Exception] = {}
        for name, entry in list(self._entries.items()):
            if entry.state is PluginState.INITIALIZED:
                continue
            try:
                async with asyncio.timeout(timeout):
                    await entry.plugin.initialize(context)
            except Exception as exc:
                entry.state, entry.error = PluginState.FAILED, exc
                failures[name] = exc
                logger.error("plugin %r failed to initialize: %r", name, exc, exc_info=exc)
                continue
            if name not in self._entries:  # unregistered while it was initializing
                continue
            entry.state, entry.error = PluginState.INITIALIZED, None
            if name in self._init_order:
                self._init_order.remove(name)
            self._init_order.append(name)
        return failures

    def get_all_tools(self) -> list[Any]:
        """Tools of the initialized plugins, in initialization order.

        A plugin whose ``get_tools`` raises or returns something that is not a Tool or function is
        marked failed and skipped. Two plugins offering the same tool name is a configuration
        error (the model could call the wrong one) and raises ValidationError.
        """
        tools: list[Any] = []
        owners: dict[str, str] = {}
        for name in self.initialized:
            entry = self._entries[name]
            try:
                offered = list(entry.plugin.get_tools())
                for tool in offered:
                    if not isinstance(tool, Tool) and not callable(tool):
                        raise ValidationError(
                            f"plugin {name!r} offered a {type(tool).__name__} as a tool; "
                            "expected an llm_client Tool or a function"
                        )
            except Exception as exc:
                entry.state, entry.error = PluginState.FAILED, exc
                logger.error("plugin %r failed to list its tools: %r", name, exc, exc_info=exc)
                continue
            for tool in offered:
                tool_name = _tool_name(tool)
                if tool_name in owners:
                    raise ValidationError(
                        f"tool {tool_name!r} is offered by both plugin {owners[tool_name]!r} "
                        f"and plugin {name!r}"
                    )
                owners[tool_name] = name
            tools.extend(offered)
        return tools

    async def shutdown_all(self, *, timeout: float | None = None) -> dict[str, Exception]:
        """Shut down initialized plugins in reverse initialization order; returns the errors.

        Every plugin is tried even if an earlier one raised. Plugins that never initialized (or
        failed to) are not shut down, as with an exit stack. ``timeout`` bounds each ``shutdown``.
        """
        if timeout is not None and (isinstance(timeout, bool) or timeout <= 0):
            raise ValidationError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
        errors: dict[str, Exception] = {}
        for name in reversed(self.initialized):
            entry = self._entries[name]
            try:
                async with asyncio.timeout(timeout):
                    await entry.plugin.shutdown()
            except Exception as exc:
                errors[name] = exc
                logger.error("plugin %r failed to shut down: %r", name, exc, exc_info=exc)
            finally:
                entry.state = PluginState.SHUT_DOWN
            self._init_order.remove(name)
        return errors
