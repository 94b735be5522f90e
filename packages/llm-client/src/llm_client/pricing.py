"""Model prices and the cost of a call.

The table ships with the package (``pricing.json``) and is read on first use, not at import.
Lookups match the exact model name first, then the longest listed prefix, so dated snapshots
(``gpt-4o-2024-08-06``) and provider-qualified names (``openai/gpt-4o``) find their family's price.
A model that matches nothing has no known price: its cost is ``None``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from typing import Any

from .usage import Usage

__all__ = ["ModelPrice", "PricingTable", "default_pricing", "set_model_price", "cost_of"]

_MILLION = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per million tokens. Cached and cache-write rates default to the input rate."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None

    @classmethod
    def of(
        cls,
        input: str | int | Decimal,
        output: str | int | Decimal,
        cached_input: str | int | Decimal | None = None,
        cache_write: str | int | Decimal | None = None,
    ) -> ModelPrice:
        def dec(v: str | int | Decimal | None) -> Decimal | None:
            return None if v is None else Decimal(str(v))

        return cls(Decimal(str(input)), Decimal(str(output)), dec(cached_input), dec(cache_write))

    def cost(self, usage: Usage) -> Decimal:
        cached = min(usage.cached_tokens, usage.input_tokens)
        written = min(usage.cache_write_tokens, usage.input_tokens - cached)
        plain = usage.input_tokens - cached - written
        total = (
            plain * self.input
            + cached * (self.cached_input if self.cached_input is not None else self.input)
            + written * (self.cache_write if self.cache_write is not None else self.input)
            + usage.output_tokens * self.output
        )
        return total / _MILLION


class PricingTable:
    """A mutable price list. ``PricingTable()`` is empty; :func:`default_pricing` is the shipped one."""

    def __init__(self, prices: dict[str, ModelPrice] | None = None) -> None:
        self._prices: dict[str, ModelPrice] = dict(prices or {})
        self._cache: dict[str, ModelPrice | None] = {}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PricingTable:
        return cls({name: ModelPrice.of(**spec) for name, spec in data["models"].items()})

    def set(self, model: str, price: ModelPrice) -> None:
        self._prices[model] = price
        self._cache.clear()

    def remove(self, model: str) -> None:
        self._prices.pop(model, None)
        self._cache.clear()

    def models(self) -> list[str]:
        return sorted(self._prices)

    def get(self, model: str | None) -> ModelPrice | None:
        if not model:
            return None
        try:
            return self._cache[model]
        except KeyError:
            pass
        found = self._lookup(model)
        self._cache[model] = found
        return found

    def _lookup(self, model: str) -> ModelPrice | None:
        candidates = [model]
        if "/" in model:
            candidates.append(model.rsplit("/", 1)[1])
        for name in candidates:
            if name in self._prices:
                return self._prices[name]
        for name in candidates:
            best = max(
                (
                    p
                    for p in self._prices
                    if name.startswith(p) and name[len(p) : len(p) + 1] in ("-", "@", ":")
                ),
                key=len,
                default=None,
            )
            if best is not None:
                return self._prices[best]
        return None

    def cost(self, model: str | None, usage: Usage) -> Decimal | None:
        price = self.get(model)
        return None if price is None else price.cost(usage)


_default: PricingTable | None = None


def default_pricing() -> PricingTable:
    """The process-wide table, loaded from the shipped ``pricing.json`` on first use."""
    global _default
    if _default is None:
        text = resources.files(__package__).joinpath("pricing.json").read_text(encoding="utf-8")
        _default = PricingTable.from_json(json.loads(text))
    return _default


def set_model_price(model: str, price: ModelPrice) -> None:
    """Add or override one model's price in the process-wide table."""
    default_pricing().set(model, price)


def cost_of(model: str | None, usage: Usage, pricing: PricingTable | None = None) -> Decimal | None:
    return (pricing or default_pricing()).cost(model, usage)
