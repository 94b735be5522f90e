"""Observability: OpenTelemetry spans for jobs, turns, tools and actions, built from runtime events.

Names load on first access (PEP 562): importing this package does not import opentelemetry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llm_client._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "OpenTelemetryAdapter": "otel",
    "OTelConfig": "otel",
}

__all__ = [
    "OpenTelemetryAdapter",
    "OTelConfig",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:  # pragma: no cover - static re-exports for type checkers
    from .otel import OpenTelemetryAdapter, OTelConfig
