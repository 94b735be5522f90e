"""Fixtures: the seed's onboarding journey module, and a clean model-client registry per test."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from agent_runtime_core.config import reset_config
from agent_runtime_core.llm import reset_llm_clients

HERE = Path(__file__).resolve().parent


def load_module(name: str) -> ModuleType:
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses resolve their module through sys.modules
        spec.loader.exec_module(module)
    return module


@pytest.fixture
def seed() -> ModuleType:
    return load_module("seed_onboarding")


@pytest.fixture(autouse=True)
def _clean_clients() -> Iterator[None]:
    reset_llm_clients()
    reset_config()
    yield
    reset_llm_clients()
    reset_config()
