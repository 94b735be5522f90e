"""Policy engine: tool, model and constraint rules combined so that the most severe answer wins."""

from __future__ import annotations

from .engine import PolicyEngine
from .rules import ConstraintPolicy, ModelPolicy, PolicyRule, ToolPolicy
from .types import PolicyContext, PolicyDecision, PolicyDenied, PolicyResult

__all__ = [
    "PolicyEngine",
    "PolicyDecision",
    "PolicyDenied",
    "PolicyRule",
    "ToolPolicy",
    "ModelPolicy",
    "ConstraintPolicy",
    "PolicyContext",
    "PolicyResult",
]
