from __future__ import annotations

from collections.abc import Iterator

import pytest
from agent_runtime_core import ConfigurationError, configure, get_config, reset_config


@pytest.fixture(autouse=True)
def clean_config(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "REDIS_URL", "AGENT_RUNTIME_MODEL_PROVIDER"):
        monkeypatch.delenv(var, raising=False)
    reset_config()
    yield
    reset_config()


def test_seed_basic_configuration() -> None:
    configure(
        model_provider="openai",
        openai_api_key="sk-...",  # Or use OPENAI_API_KEY env var
        default_model="gpt-4o",
    )
    config = get_config()
    assert config.model_provider == "openai"
    assert config.default_model == "gpt-4o"


def test_defaults_match_the_settings_table() -> None:
    c = get_config()
    assert (c.model_provider, c.default_model) == ("openai", "gpt-4o")
    assert (c.queue_backend, c.event_bus_backend, c.state_store_backend) == ("memory", "memory", "memory")
    assert c.redis_url is None and c.langfuse_enabled is False


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("AGENT_RUNTIME_MODEL_PROVIDER", "anthropic")
    reset_config()
    assert get_config().openai_api_key == "sk-env"
    assert get_config().model_provider == "anthropic"
    configure(model_provider="litellm")  # explicit beats environment
    assert get_config().model_provider == "litellm"


def test_configure_merges_over_earlier_calls() -> None:
    configure(default_model="gpt-4o-mini")
    configure(queue_backend="redis", redis_url="redis://127.0.0.1:6379/0")
    c = get_config()
    assert c.default_model == "gpt-4o-mini" and c.queue_backend == "redis"


def test_unknown_setting_is_named_with_a_suggestion() -> None:
    with pytest.raises(ConfigurationError, match=r"'queue_backed' \(did you mean 'queue_backend'\?\)"):
        configure(queue_backed="redis")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"model_provider": "gemini"}, "model_provider='gemini' is not one of"),
        ({"state_store_backend": "postgres"}, "state_store_backend"),
        ({"queue_backend": "redis"}, "needs redis_url"),
        ({"run_timeout_seconds": 0}, "run_timeout_seconds"),
    ],
)
def test_invalid_values_are_clear_errors(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        configure(**settings)
    assert get_config().queue_backend == "memory"  # a failed configure changes nothing


def test_secrets_are_redacted_in_to_dict() -> None:
    configure(openai_api_key="sk-secret")
    assert get_config().to_dict()["openai_api_key"] == "***"
