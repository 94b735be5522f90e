"""Shared fixtures for llm-client's tests."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

# Tests import helper modules (wire_stub) by name; pytest runs with --import-mode=importlib,
# which does not put the test directory on sys.path.
_TESTS_DIR = str(Path(__file__).parent)
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

from wire_stub import WireStub  # noqa: E402

# --- wire stub (OpenAI / Anthropic wire formats on 127.0.0.1) ---------------------------------------


@pytest.fixture
async def wire_stub() -> AsyncIterator[WireStub]:
    """A started WireStub; fails the test if a request went beyond the script or a reply went unused."""
    stub = await WireStub().start()
    try:
        yield stub
    finally:
        await stub.close()
    assert not stub.errors, f"wire stub: {stub.errors}"
    assert stub.pending == 0, f"wire stub: {stub.pending} scripted repl(ies) never requested"
