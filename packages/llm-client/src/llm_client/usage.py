"""Token usage and its cost, summed across calls and turns.

Cost is a ``Decimal`` (money is never a float) or ``None`` when the model's price is not known:
an unknown price is reported as unknown, never as free.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

__all__ = ["Usage"]


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens used by one call (or a sum of calls).

    ``input_tokens`` counts every prompt token, cached ones included; ``cached_tokens`` is the part
    served from the provider's prompt cache and ``cache_write_tokens`` the part written to it.
    ``reasoning_tokens`` is the part of ``output_tokens`` spent on hidden reasoning.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost: Decimal | None = None
    requests: int = 1

    def __post_init__(self) -> None:
        if not self.total_tokens and (self.input_tokens or self.output_tokens):
            object.__setattr__(self, "total_tokens", self.input_tokens + self.output_tokens)

    # OpenAI's names, for code written against its SDK.
    @property
    def prompt_tokens(self) -> int:
        return self.input_tokens

    @property
    def completion_tokens(self) -> int:
        return self.output_tokens

    @property
    def total_cost(self) -> Decimal | None:
        return self.cost

    def with_cost(self, cost: Decimal | None) -> Usage:
        return replace(self, cost=cost)

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        cost = None if self.cost is None or other.cost is None else self.cost + other.cost
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            cost=cost,
            requests=self.requests + other.requests,
        )

    @classmethod
    def zero(cls) -> Usage:
        """The sum of no calls: costs nothing, for certain."""
        return cls(cost=Decimal(0), requests=0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "cached_tokens": self.cached_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "total_cost": None if self.cost is None else str(self.cost),
            "requests": self.requests,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Usage:
        cost = data.get("total_cost", data.get("cost"))
        return cls(
            input_tokens=int(data.get("input_tokens", data.get("prompt_tokens", 0)) or 0),
            output_tokens=int(data.get("output_tokens", data.get("completion_tokens", 0)) or 0),
            total_tokens=int(data.get("total_tokens", 0) or 0),
            cached_tokens=int(data.get("cached_tokens", 0) or 0),
            cache_write_tokens=int(data.get("cache_write_tokens", 0) or 0),
            reasoning_tokens=int(data.get("reasoning_tokens", 0) or 0),
            cost=None if cost is None else Decimal(str(cost)),
            requests=int(data.get("requests", 1)),
        )
