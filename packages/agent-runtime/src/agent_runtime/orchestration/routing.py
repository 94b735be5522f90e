"""Routing: pick which operator should handle an input.

``DefaultRouter`` matches rule keywords against the input's text. Among matching rules the highest
``priority`` wins, then the rule matching more keywords, then the rule listed first, so the same
input always routes the same way. Rules naming an operator that is not available are skipped;
with no match the ``default_operator`` is used, and with no usable default RoutingError is raised.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError
from .base import Operator
from .errors import RoutingError

__all__ = ["Router", "RoutingRule", "RoutingDecision", "DefaultRouter", "AvailableOperators"]

AvailableOperators = Mapping[str, Operator] | Iterable[Operator | str]


@dataclass(frozen=True, slots=True)
class RoutingRule:
    """Send inputs mentioning any of ``keywords`` (whole words, any case) to ``operator_name``."""

    operator_name: str
    keywords: Sequence[str] = ()
    priority: int = 0
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.operator_name, str) or not self.operator_name:
            raise ValidationError(f"operator_name must be a non-empty string, got {self.operator_name!r}")
        if isinstance(self.keywords, str):
            raise ValidationError("keywords must be a list of strings, not one string")
        keywords = tuple(self.keywords)
        if not keywords or not all(isinstance(k, str) and k.strip() for k in keywords):
            raise ValidationError(f"rule for {self.operator_name!r} needs non-empty keyword strings")
        if isinstance(self.priority, bool) or not isinstance(self.priority, int):
            raise ValidationError(f"priority must be an int, got {self.priority!r}")
        object.__setattr__(self, "keywords", keywords)

    def matches(self, text: str) -> list[str]:
        """The keywords found in ``text``, in rule order."""
        return [k for k in self.keywords if _pattern(k).search(text)]


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _pattern(keyword: str) -> re.Pattern[str]:
    found = _PATTERNS.get(keyword)
    if found is None:
        words = r"\s+".join(re.escape(w) for w in keyword.split())
        found = _PATTERNS[keyword] = re.compile(rf"(?<!\w){words}(?!\w)", re.IGNORECASE)
    return found


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    """Which operator to run and why; ``operator`` is the instance when one was available by name."""

    operator_name: str
    reason: str
    confidence: float = 1.0
    matched_keywords: tuple[str, ...] = ()
    rule: RoutingRule | None = None
    is_default: bool = False
    operator: Operator | None = field(default=None, compare=False, repr=False)


class Router(ABC):
    @abstractmethod
    async def route(
        self, input_data: Mapping[str, Any], available_operators: AvailableOperators
    ) -> RoutingDecision:
        """Choose an operator for ``input_data`` among ``available_operators``."""


def _available(available: AvailableOperators) -> dict[str, Operator | None]:
    if isinstance(available, Mapping):
        return {str(k): v for k, v in available.items()}
    out: dict[str, Operator | None] = {}
    for item in available:
        if isinstance(item, str):
            out[item] = None
        elif isinstance(item, Operator):
            out[item.name] = item
        else:
            raise ValidationError(
                f"available operators must be Operators or names, got {type(item).__name__}"
            )
    return out


_TEXT_KEYS = ("prompt", "text", "task", "query", "input", "topic", "message")


def routing_text(input_data: Mapping[str, Any]) -> str:
    """The text rules are matched against: the usual prompt fields, else every string value."""
    parts = [v for k in _TEXT_KEYS if isinstance(v := input_data.get(k), str)]
    if not parts:
        parts = [v for v in input_data.values() if isinstance(v, str)]
    return "\n".join(parts)


class DefaultRouter(Router):
    def __init__(self, rules: Sequence[RoutingRule] = (), default_operator: str | None = None) -> None:
        rules = list(rules)
        for r in rules:
            if not isinstance(r, RoutingRule):
                raise ValidationError(f"rules must be RoutingRule objects, got {type(r).__name__}")
        self.rules = rules
        self.default_operator = default_operator

    async def route(
        self, input_data: Mapping[str, Any], available_operators: AvailableOperators
    ) -> RoutingDecision:
        return self.decide(input_data, available_operators)

    def decide(
        self, input_data: Mapping[str, Any], available_operators: AvailableOperators
    ) -> RoutingDecision:
        """``route`` without the await, for callers outside an event loop."""
        available = _available(available_operators)
        text = routing_text(input_data)
        best: tuple[int, int, int] | None = None
        chosen: tuple[RoutingRule, list[str]] | None = None
        for index, rule in enumerate(self.rules):
            if rule.operator_name not in available:
                continue
            matched = rule.matches(text)
            if not matched:
                continue
            key = (rule.priority, len(matched), -index)
            if best is None or key > best:
                best, chosen = key, (rule, matched)
        if chosen is not None:
            rule, matched = chosen
            return RoutingDecision(
                operator_name=rule.operator_name,
                reason=f"matched {', '.join(repr(k) for k in matched)} (priority {rule.priority})",
                confidence=len(matched) / len(rule.keywords),
                matched_keywords=tuple(matched),
                rule=rule,
                operator=available[rule.operator_name],
            )
        if self.default_operator is not None and self.default_operator in available:
            return RoutingDecision(
                operator_name=self.default_operator,
                reason="no rule matched; default operator",
                confidence=0.0,
                is_default=True,
                operator=available[self.default_operator],
            )
        names = ", ".join(sorted(available)) or "none"
        if self.default_operator is None:
            raise RoutingError(f"no routing rule matched and no default operator is set (available: {names})")
        raise RoutingError(
            f"no routing rule matched and default operator {self.default_operator!r} is not available "
            f"(available: {names})"
        )
