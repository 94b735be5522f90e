"""What every PostgreSQL adapter shares: the lazy asyncpg import and once-per-pool schema setup.

asyncpg is imported only by the kernel's Postgres adapter modules (an import-linter contract), and
only when a store is first used, so the kernel installs and imports without it.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["require_asyncpg", "ensure_schema", "check_identifier"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# id(pool) -> (pool, keys done). asyncpg pools cannot be weakly referenced; holding the pool keeps
# its id from being reused by another object while the entry exists.
_done: dict[int, tuple[Any, set[str]]] = {}


def require_asyncpg() -> Any:
    try:
        import asyncpg
    except ImportError as exc:
        raise ImportError(
            "asyncpg is not installed. Install it with: pip install 'agent-runtime[postgres]'"
        ) from exc
    return asyncpg


def check_identifier(name: str, what: str = "table_name") -> str:
    """Table names are interpolated into SQL, so only plain identifiers are accepted."""
    if not _IDENT.match(name):
        raise ValueError(f"{what} must be a plain SQL identifier (letters, digits, _), got {name!r}")
    return name


async def ensure_schema(pool: Any, key: str, ddl: str) -> None:
    """Run ``ddl`` (idempotent CREATE ... IF NOT EXISTS statements) once per pool and key."""
    entry = _done.get(id(pool))
    if entry is None or entry[0] is not pool:
        entry = _done[id(pool)] = (pool, set())
    seen = entry[1]
    if key in seen:
        return
    # Serialise concurrent first uses across processes: CREATE IF NOT EXISTS can still race.
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", key)
        await conn.execute(ddl)
    seen.add(key)
