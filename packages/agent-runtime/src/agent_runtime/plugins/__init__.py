"""Plugins: optional capabilities (tools first of all) with a lifecycle the registry drives."""

from __future__ import annotations

from .base import Plugin, PluginCapability, PluginManifest, PluginType
from .registry import DuplicatePluginError, PluginNotFoundError, PluginRegistry, PluginState

__all__ = [
    "Plugin",
    "PluginCapability",
    "PluginManifest",
    "PluginRegistry",
    "PluginType",
    "PluginState",
    "DuplicatePluginError",
    "PluginNotFoundError",
]
