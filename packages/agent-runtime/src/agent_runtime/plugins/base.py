"""What a plugin is: a manifest that describes it and a lifecycle the registry drives."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import ValidationError

__all__ = ["Plugin", "PluginCapability", "PluginManifest", "PluginType"]


class PluginType(enum.StrEnum):
    """What a plugin contributes, so the kernel can ask for "all tool plugins" and the like."""

    TOOLS = "tools"
    MIDDLEWARE = "middleware"
    POLICY = "policy"
    STORAGE = "storage"
    EVENTS = "events"
    OBSERVABILITY = "observability"
    CUSTOM = "custom"


@dataclass(frozen=True, slots=True)
class PluginCapability:
    """A named thing a plugin can do; the description is for catalogues and admin UIs.

    Manifests accept plain strings (``capabilities=["search"]``) and turn them into these.
    """

    name: str
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValidationError(f"capability name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.description, str):
            raise ValidationError("capability description must be a string")

    def __str__(self) -> str:
        return self.name


def _coerce_capabilities(values: Any) -> tuple[PluginCapability, ...]:
    if isinstance(values, (str, PluginCapability)):
        values = [values]
    try:
        items = list(values)
    except TypeError:
        raise ValidationError(
            f"capabilities must be a list of strings or PluginCapability, got {type(values).__name__}"
        ) from None
    result: list[PluginCapability] = []
    seen: set[str] = set()
    for item in items:
        if isinstance(item, str):
            item = PluginCapability(item)
        elif not isinstance(item, PluginCapability):
            raise ValidationError(
                f"capabilities must be strings or PluginCapability, got {type(item).__name__}"
            )
        if item.name in seen:
            raise ValidationError(f"capability {item.name!r} is listed twice")
        seen.add(item.name)
        result.append(item)
    return tuple(result)


@dataclass(frozen=True, slots=True, init=False)
class PluginManifest:
    """A plugin's identity. ``name`` is unique within a registry.

    ``plugin_type`` may be given as its string value and ``capabilities`` as plain strings; both
    are normalised (to :class:`PluginType` and a tuple of :class:`PluginCapability`).
    """

    name: str
    version: str
    plugin_type: PluginType
    description: str
    capabilities: tuple[PluginCapability, ...]

    def __init__(
        self,
        name: str,
        version: str,
        plugin_type: PluginType | str,
        description: str = "",
        capabilities: Iterable[str | PluginCapability] = (),
    ) -> None:
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise ValidationError(
                f"plugin name must be a non-empty string without surrounding spaces, got {name!r}"
            )
        if not isinstance(version, str) or not version.strip():
            raise ValidationError(f"plugin {name!r}: version must be a non-empty string")
        try:
            kind = PluginType(plugin_type)
        except ValueError:
            known = ", ".join(t.value for t in PluginType)
            raise ValidationError(
                f"plugin {name!r}: unknown plugin_type {plugin_type!r}; expected one of: {known}"
            ) from None
        if not isinstance(description, str):
            raise ValidationError(f"plugin {name!r}: description must be a string")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "version", version)
        object.__setattr__(self, "plugin_type", kind)
        object.__setattr__(self, "description", description)
        object.__setattr__(self, "capabilities", _coerce_capabilities(capabilities))

    @property
    def capability_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.capabilities)

    def has_capability(self, name: str) -> bool:
        return name in self.capability_names


class Plugin(ABC):
    """A unit of optional functionality with a lifecycle.

    Only :attr:`manifest` is required. ``initialize`` acquires resources (connections, clients)
    and ``shutdown`` releases them; :meth:`get_tools` is only asked once ``initialize`` succeeded,
    so tools may rely on those resources.
    """

    @property
    @abstractmethod
    def manifest(self) -> PluginManifest:
        """Who this plugin is; read once, when it is registered."""

    async def initialize(self, context: Any) -> None:
        """Set up resources. ``context`` is the ExecutionContext given to ``initialize_all``."""

    async def shutdown(self) -> None:
        """Release what ``initialize`` acquired."""

    def get_tools(self) -> list[Any]:
        """llm-client ``Tool`` objects or plain functions (made into Tools by the Agent)."""
        return []
