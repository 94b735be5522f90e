"""PostgreSQL adapters (``pip install 'agent-runtime[postgres]'``); asyncpg is imported on first use."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "PostgresJobStore": "jobs",
    "PostgresActionStore": "actions",
    "PostgresLedgerWriter": "ledger",
}

__all__ = ["PostgresJobStore", "PostgresActionStore", "PostgresLedgerWriter"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:  # pragma: no cover
    from .actions import PostgresActionStore
    from .jobs import PostgresJobStore
    from .ledger import PostgresLedgerWriter
