"""Process-wide settings: ``configure(...)`` once at start-up, ``get_config()`` anywhere.

Values come from, in order of precedence: ``configure()`` arguments, environment variables, the
defaults below. An unknown setting is an error that names it, because a typo silently ignored
(``queue_backed="redis"``) is a production incident later.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import threading
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["RuntimeConfig", "configure", "get_config", "reset_config", "ConfigurationError"]


class ConfigurationError(ValueError):
    """A setting is unknown or has an invalid value."""


_PROVIDERS = ("openai", "anthropic", "litellm", "mock")
_QUEUES = ("memory", "redis")
_BUSES = ("memory", "redis")
_STATES = ("memory", "redis", "sqlite")


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    """Every setting, with its default. Environment variables are named in ``ENV``."""

    model_provider: str = "openai"
    default_model: str = "gpt-4o"
    openai_api_key: str | None = None
    anthropic_api_key: str | None = None
    openai_base_url: str | None = None
    anthropic_base_url: str | None = None
    litellm_api_base: str | None = None
    queue_backend: str = "memory"
    event_bus_backend: str = "memory"
    state_store_backend: str = "memory"
    redis_url: str | None = None
    sqlite_path: str = "agent_state.db"
    langfuse_enabled: bool = False
    langfuse_public_key: str | None = None
    langfuse_secret_key: str | None = None
    langfuse_host: str | None = None
    run_timeout_seconds: float = 300.0
    max_retries: int = 3
    retry_backoff_seconds: float = 1.0
    heartbeat_interval_seconds: float = 30.0
    request_timeout_seconds: float = 60.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_choice("model_provider", self.model_provider, _PROVIDERS)
        _check_choice("queue_backend", self.queue_backend, _QUEUES)
        _check_choice("event_bus_backend", self.event_bus_backend, _BUSES)
        _check_choice("state_store_backend", self.state_store_backend, _STATES)
        if self.run_timeout_seconds <= 0:
            raise ConfigurationError("run_timeout_seconds must be > 0")
        if self.max_retries < 0:
            raise ConfigurationError("max_retries must be >= 0")
        for name in ("queue_backend", "event_bus_backend", "state_store_backend"):
            if getattr(self, name) == "redis" and not self.redis_url:
                raise ConfigurationError(
                    f"{name}='redis' needs redis_url (or the REDIS_URL environment variable)"
                )

    def to_dict(self, *, redact: bool = True) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if redact:
            for key in ("openai_api_key", "anthropic_api_key", "langfuse_secret_key"):
                if out.get(key):
                    out[key] = "***"
        return out


ENV: dict[str, str] = {
    "model_provider": "AGENT_RUNTIME_MODEL_PROVIDER",
    "default_model": "AGENT_RUNTIME_DEFAULT_MODEL",
    "openai_api_key": "OPENAI_API_KEY",
    "anthropic_api_key": "ANTHROPIC_API_KEY",
    "openai_base_url": "OPENAI_BASE_URL",
    "anthropic_base_url": "ANTHROPIC_BASE_URL",
    "litellm_api_base": "LITELLM_API_BASE",
    "queue_backend": "AGENT_RUNTIME_QUEUE_BACKEND",
    "event_bus_backend": "AGENT_RUNTIME_EVENT_BUS_BACKEND",
    "state_store_backend": "AGENT_RUNTIME_STATE_STORE_BACKEND",
    "redis_url": "REDIS_URL",
    "sqlite_path": "AGENT_RUNTIME_SQLITE_PATH",
    "langfuse_enabled": "LANGFUSE_ENABLED",
    "langfuse_public_key": "LANGFUSE_PUBLIC_KEY",
    "langfuse_secret_key": "LANGFUSE_SECRET_KEY",
    "langfuse_host": "LANGFUSE_HOST",
    "run_timeout_seconds": "AGENT_RUNTIME_RUN_TIMEOUT_SECONDS",
    "max_retries": "AGENT_RUNTIME_MAX_RETRIES",
}

_NAMES = tuple(f.name for f in fields(RuntimeConfig))
_lock = threading.Lock()
_overrides: dict[str, Any] = {}
_current: RuntimeConfig | None = None


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigurationError(f"{name}={value!r} is not one of {', '.join(choices)}")


def _coerce(name: str, raw: str) -> Any:
    kind = RuntimeConfig.__dataclass_fields__[name].type
    if kind == "bool":
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if kind == "int":
        return int(raw)
    if kind == "float":
        return float(raw)
    return raw


def _from_env() -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, var in ENV.items():
        raw = os.environ.get(var)
        if raw:
            try:
                values[name] = _coerce(name, raw)
            except ValueError as exc:
                raise ConfigurationError(f"environment variable {var}={raw!r} is invalid for {name}") from exc
    return values


def _unknown(names: list[str]) -> ConfigurationError:
    hints = []
    for n in names:
        close = difflib.get_close_matches(n, _NAMES, n=1)
        hints.append(f"{n!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return ConfigurationError(f"unknown setting {', '.join(hints)}; known settings: {', '.join(_NAMES)}")


def configure(**settings: Any) -> RuntimeConfig:
    """Set settings for this process (merged over earlier calls) and return the new config."""
    global _current
    unknown = [k for k in settings if k not in _NAMES]
    if unknown:
        raise _unknown(unknown)
    with _lock:
        merged = {**_overrides, **settings}
        config = RuntimeConfig(**{**_from_env(), **merged})
        _overrides.clear()
        _overrides.update(merged)
        _current = config
    return config


def get_config() -> RuntimeConfig:
    """The current config (built from the environment on first use)."""
    global _current
    config = _current
    if config is None:
        with _lock:
            if _current is None:
                _current = RuntimeConfig(**{**_from_env(), **_overrides})
            config = _current
    return config


def reset_config() -> None:
    """Forget ``configure()`` calls (tests use this)."""
    global _current
    with _lock:
        _overrides.clear()
        _current = None
