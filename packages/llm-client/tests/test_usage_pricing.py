from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

import pytest
from llm_client import ModelPrice, PricingTable, Usage, default_pricing, set_model_price
from llm_client.pricing import cost_of


def test_usage_sums_and_unknown_cost_stays_unknown() -> None:
    a = Usage(input_tokens=10, output_tokens=5, cost=Decimal("0.01"))
    b = Usage(input_tokens=1, output_tokens=1, cached_tokens=1, reasoning_tokens=1, cost=Decimal("0.02"))
    total = a + b
    assert (total.input_tokens, total.output_tokens, total.total_tokens) == (11, 6, 17)
    assert total.cost == Decimal("0.03") and total.requests == 2
    assert (a + Usage(input_tokens=1)).cost is None
    assert Usage.zero().cost == Decimal(0)


def test_usage_round_trips_through_dict() -> None:
    u = Usage(input_tokens=3, output_tokens=4, cached_tokens=1, cost=Decimal("0.5"))
    assert Usage.from_dict(u.to_dict()) == u
    assert u.to_dict()["total_cost"] == "0.5"
    assert u.prompt_tokens == 3 and u.completion_tokens == 4


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("gpt-4o", "gpt-4o"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("openai/gpt-4o-mini", "gpt-4o-mini"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
    ],
)
def test_price_lookup_matches_family(model: str, family: str) -> None:
    table = default_pricing()
    assert table.get(model) == table.get(family) is not None


def test_unknown_model_has_no_price() -> None:
    assert cost_of("totally-new-model", Usage(input_tokens=10)) is None
    assert cost_of(None, Usage(input_tokens=10)) is None
    assert cost_of("gpt-4o-turbo-ultra", Usage(input_tokens=10)) == cost_of("gpt-4o", Usage(input_tokens=10))


def test_cached_and_cache_write_tokens_are_priced_at_their_rates() -> None:
    price = ModelPrice.of(input="3", output="15", cached_input="0.3", cache_write="3.75")
    u = Usage(input_tokens=1_000_000, cached_tokens=500_000, cache_write_tokens=250_000, output_tokens=0)
    # 250k plain * 3 + 500k cached * 0.3 + 250k written * 3.75, per million
    assert price.cost(u) == Decimal("0.75") + Decimal("0.15") + Decimal("0.9375")


def test_user_override_of_the_process_table() -> None:
    set_model_price("my-finetune", ModelPrice.of(input="10", output="20"))
    try:
        assert cost_of("my-finetune", Usage(input_tokens=100_000, output_tokens=100_000)) == Decimal("3")
    finally:
        default_pricing().remove("my-finetune")


def test_pricing_table_is_independent() -> None:
    table = PricingTable()
    assert table.cost("gpt-4o", Usage(input_tokens=1)) is None
    table.set("gpt-4o", ModelPrice.of(input="1", output="1"))
    assert table.models() == ["gpt-4o"]


def test_import_llm_client_imports_no_sdk_and_no_asyncio() -> None:
    code = (
        "import sys, llm_client;"
        "heavy = [m for m in ('openai', 'anthropic', 'litellm', 'httpx', 'httpx2', 'pydantic', 'asyncio', "
        "'opentelemetry', 'aiohttp') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


@pytest.mark.parametrize(
    "module",
    [
        "llm_client.providers.openai",
        "llm_client.providers.anthropic",
        "llm_client.providers.litellm",
        "llm_client.agent",
        "llm_client.engine",
    ],
)
def test_importing_a_module_does_not_import_an_sdk(module: str) -> None:
    code = (
        f"import sys, {module};"
        "print(','.join(m for m in ('openai', 'anthropic', 'litellm') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
