"""Plugins and the PluginRegistry."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from agent_runtime import (
    NotFoundError,
    Plugin,
    PluginCapability,
    PluginManifest,
    PluginRegistry,
    PluginType,
    ValidationError,
)
from agent_runtime.plugins import DuplicatePluginError, PluginNotFoundError, PluginState
from llm_client import Tool, tool


@tool
def search_tool(query: str) -> str:
    """Search the docs.

    Args:
        query: What to look for.
    """
    return f"results for {query}"


@tool
async def analyze_tool(text: str) -> str:
    """Analyze a text."""
    return text.upper()


class MyToolsPlugin(Plugin):
    def __init__(self) -> None:
        self.context: Any = None
        self.shut_down = False

    @property
    def manifest(self) -> PluginManifest:
        return PluginManifest(
            name="my-tools",
            version="1.0.0",
            plugin_type=PluginType.TOOLS,
            description="Custom tools for my application",
            capabilities=["search", "analyze"],
        )

    async def initialize(self, context: Any) -> None:
        self.context = context

    async def shutdown(self) -> None:
        self.shut_down = True

    def get_tools(self) -> list[Any]:
        return [search_tool, analyze_tool]


class Recorder(Plugin):
    """A configurable plugin that logs its lifecycle calls into a shared list."""

    def __init__(
        self,
        name: str,
        log: list[str],
        *,
        plugin_type: PluginType = PluginType.TOOLS,
        init_error: Exception | None = None,
        shutdown_error: Exception | None = None,
        tools: list[Any] | None = None,
    ) -> None:
        self._manifest = PluginManifest(name=name, version="0.1", plugin_type=plugin_type)
        self.log = log
        self.init_error = init_error
        self.shutdown_error = shutdown_error
        self.tools = tools or []

    @property
    def manifest(self) -> PluginManifest:
        return self._manifest

    async def initialize(self, context: Any) -> None:
        self.log.append(f"init {self._manifest.name}")
        if self.init_error is not None:
            raise self.init_error

    async def shutdown(self) -> None:
        self.log.append(f"shutdown {self._manifest.name}")
        if self.shutdown_error is not None:
            raise self.shutdown_error

    def get_tools(self) -> list[Any]:
        return list(self.tools)


async def test_seed_plugin_blocks() -> None:
    from agent_runtime.context import ExecutionContext

    ctx = ExecutionContext(scope_id="tenant-123", principal_id="user-456")
    registry = PluginRegistry()

    # Register plugin
    plugin = MyToolsPlugin()
    registry.register(plugin)

    # Get plugins by type
    tool_plugins = registry.get_by_type(PluginType.TOOLS)
    assert tool_plugins == [plugin]

    # Initialize all plugins
    assert await registry.initialize_all(ctx) == {}
    assert plugin.context is ctx

    # Get all tools from plugins
    all_tools = registry.get_all_tools()
    assert [t.name for t in all_tools] == ["search_tool", "analyze_tool"]
    assert all(isinstance(t, Tool) for t in all_tools)

    # Shutdown
    assert await registry.shutdown_all() == {}
    assert plugin.shut_down
    assert registry.state("my-tools") is PluginState.SHUT_DOWN
    assert registry.get_all_tools() == []


def test_manifest_normalises_capabilities_and_types() -> None:
    manifest = MyToolsPlugin().manifest
    assert manifest.capabilities == (PluginCapability("search"), PluginCapability("analyze"))
    assert manifest.capability_names == ("search", "analyze")
    assert manifest.has_capability("search") and not manifest.has_capability("deploy")
    described = PluginManifest(
        name="x", version="1", plugin_type="storage", capabilities=[PluginCapability("kv", "key-value store")]
    )
    assert described.plugin_type is PluginType.STORAGE
    assert described.capabilities[0].description == "key-value store"


def test_bad_manifests_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"unknown plugin_type 'gadgets'.*tools"):
        PluginManifest(name="x", version="1", plugin_type="gadgets")
    with pytest.raises(ValidationError, match="plugin name"):
        PluginManifest(name=" ", version="1", plugin_type=PluginType.TOOLS)
    with pytest.raises(ValidationError, match="version"):
        PluginManifest(name="x", version="", plugin_type=PluginType.TOOLS)
    with pytest.raises(ValidationError, match="listed twice"):
        PluginManifest(name="x", version="1", plugin_type=PluginType.TOOLS, capabilities=["a", "a"])
    with pytest.raises(ValidationError, match="capabilities must be strings"):
        PluginManifest(name="x", version="1", plugin_type=PluginType.TOOLS, capabilities=[1])  # type: ignore[list-item]


def test_registration_errors_are_clear() -> None:
    registry = PluginRegistry()
    registry.register(Recorder("a", []))
    with pytest.raises(DuplicatePluginError, match="'a' is already registered"):
        registry.register(Recorder("a", []))
    with pytest.raises(ValidationError, match="takes a Plugin"):
        registry.register(object())  # type: ignore[arg-type]
    with pytest.raises(PluginNotFoundError, match="no plugin named 'b'; registered plugins: 'a'") as info:
        registry.get("b")
    assert isinstance(info.value, NotFoundError) and isinstance(info.value, LookupError)


def test_get_unregister_and_lookups() -> None:
    log: list[str] = []
    tools_a = Recorder("tools-a", log)
    store = Recorder("store", log, plugin_type=PluginType.STORAGE)
    tools_b = Recorder("tools-b", log)
    registry = PluginRegistry([tools_a, store, tools_b])
    assert registry.get_by_type(PluginType.TOOLS) == [tools_a, tools_b]
    assert registry.get_by_type("storage") == [store]
    assert registry.get_by_type(PluginType.POLICY) == []
    with pytest.raises(ValidationError, match="unknown plugin_type"):
        registry.get_by_type("gizmo")
    assert registry.get("store") is store
    assert "store" in registry and len(registry) == 3
    assert registry.unregister("store") is store
    assert list(registry) == [tools_a, tools_b]
    with pytest.raises(PluginNotFoundError):
        registry.unregister("store")
    registry.register(store)  # the name is free again
    assert registry.get_by_capability("search") == []


async def test_a_failing_initialize_is_isolated_and_its_tools_are_not_offered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def tool_a() -> str:
        """A."""
        return "a"

    def tool_b() -> str:
        """B."""
        return "b"

    def tool_c() -> str:
        """C."""
        return "c"

    log: list[str] = []
    boom = RuntimeError("database unreachable")
    registry = PluginRegistry(
        [
            Recorder("a", log, tools=[tool_a]),
            Recorder("b", log, init_error=boom, tools=[tool_b]),
            Recorder("c", log, tools=[tool_c]),
        ]
    )
    with caplog.at_level(logging.ERROR, logger="agent_runtime.plugins"):
        failures = await registry.initialize_all(None)
    assert failures == {"b": boom}
    assert registry.failed == {"b": boom}
    assert registry.initialized == ["a", "c"]
    assert registry.state("b") is PluginState.FAILED
    assert log == ["init a", "init b", "init c"]
    assert "database unreachable" in caplog.text
    assert registry.get_all_tools() == [tool_a, tool_c]

    # A second call retries only the failed plugin.
    registry.get("b").init_error = None  # type: ignore[attr-defined]
    assert await registry.initialize_all(None) == {}
    assert log[3:] == ["init b"]
    assert registry.failed == {}
    assert registry.get_all_tools() == [tool_a, tool_c, tool_b]


async def test_shutdown_runs_in_reverse_order_and_collects_errors() -> None:
    log: list[str] = []
    bad = ValueError("leaked connection")
    registry = PluginRegistry(
        [Recorder("first", log), Recorder("second", log, shutdown_error=bad), Recorder("third", log)]
    )
    await registry.initialize_all(None)
    log.clear()
    errors = await registry.shutdown_all()
    assert log == ["shutdown third", "shutdown second", "shutdown first"]
    assert errors == {"second": bad}
    assert registry.initialized == []
    assert await registry.shutdown_all() == {}  # nothing left to shut down
    assert log == ["shutdown third", "shutdown second", "shutdown first"]


async def test_failed_plugins_are_not_shut_down() -> None:
    log: list[str] = []
    registry = PluginRegistry([Recorder("ok", log), Recorder("broken", log, init_error=OSError("x"))])
    await registry.initialize_all(None)
    log.clear()
    await registry.shutdown_all()
    assert log == ["shutdown ok"]


async def test_get_tools_problems_mark_the_plugin_failed_and_duplicates_are_errors() -> None:
    class BadTools(Recorder):
        def get_tools(self) -> list[Any]:
            raise RuntimeError("no tools today")

    def shared() -> str:
        """Shared."""
        return "x"

    log: list[str] = []
    registry = PluginRegistry(
        [BadTools("bad", log), Recorder("weird", log, tools=[42]), Recorder("good", log, tools=[shared])]
    )
    await registry.initialize_all(None)
    assert registry.get_all_tools() == [shared]
    assert set(registry.failed) == {"bad", "weird"}
    assert "expected an llm_client Tool or a function" in str(registry.failed["weird"])

    registry.register(Recorder("also-shared", log, tools=[shared]))
    await registry.initialize_all(None)
    with pytest.raises(
        ValidationError, match="'shared' is offered by both plugin 'good' and plugin 'also-shared'"
    ):
        registry.get_all_tools()


async def test_initialize_timeout_counts_as_failure() -> None:
    class Hangs(Recorder):
        async def initialize(self, context: Any) -> None:
            await asyncio.Event().wait()

    registry = PluginRegistry([Hangs("slow", []), Recorder("fast", [])])
    failures = await registry.initialize_all(None, timeout=0.01)
    assert isinstance(failures["slow"], TimeoutError)
    assert registry.initialized == ["fast"]
    with pytest.raises(ValidationError, match="timeout"):
        await registry.initialize_all(None, timeout=0)


async def test_cancelling_initialize_all_propagates() -> None:
    entered = asyncio.Event()

    class Blocks(Recorder):
        async def initialize(self, context: Any) -> None:
            entered.set()
            await asyncio.Event().wait()

    registry = PluginRegistry([Blocks("blocks", [])])
    task = asyncio.create_task(registry.initialize_all(None))
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert registry.state("blocks") is PluginState.REGISTERED
    assert registry.failed == {}


def test_plugin_hooks_default_to_nothing() -> None:
    class Minimal(Plugin):
        @property
        def manifest(self) -> PluginManifest:
            return PluginManifest(name="minimal", version="1", plugin_type=PluginType.CUSTOM)

    assert Minimal().get_tools() == []
    with pytest.raises(TypeError):
        Plugin()  # type: ignore[abstract]
