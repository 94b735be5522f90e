"""PostgreSQL adapters (``pip install 'agent-runtime[postgres]'``); asyncpg is imported on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llm_client._lazy import lazy_exports

_EXPORTS = {
    "PostgresJobStore": "jobs",
    "PostgresActionStore": "actions",
    "PostgresLedgerWriter": "ledger",
}

__all__ = ["PostgresJobStore", "PostgresActionStore", "PostgresLedgerWriter"]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:  # pragma: no cover
    from .actions import PostgresActionStore
    from .jobs import PostgresJobStore
    from .ledger import PostgresLedgerWriter
