"""Typed errors of the persistence layer.

Callers catch :class:`PersistenceError` to handle every storage failure in one place; the
subclasses also derive from the builtin they refine (``LookupError``, ``ValueError``,
``NotImplementedError``) so code written against the builtins keeps working.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "PersistenceError",
    "PersistenceConfigError",
    "StoreNotConfiguredError",
    "CorruptStoreError",
    "RecordNotFoundError",
    "DependencyCycleError",
    "UnsupportedOperationError",
]


class PersistenceError(Exception):
    """Base class of every error raised by ``agent_runtime_core.persistence``."""


class PersistenceConfigError(PersistenceError, ValueError):
    """A :class:`PersistenceConfig` is contradictory or names something unusable."""


class StoreNotConfiguredError(PersistenceError, LookupError):
    """An optional store (knowledge, audit) was used without being configured."""


class CorruptStoreError(PersistenceError):
    """A store file exists but cannot be read back; the message names the file so it can be inspected."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"corrupt persistence file {str(path)!r}: {reason}")


class RecordNotFoundError(PersistenceError, LookupError):
    """An operation that modifies a record (update, add message, ...) named one that does not exist."""


class DependencyCycleError(PersistenceError, ValueError):
    """A task dependency would make a task wait, directly or indirectly, on itself."""


class UnsupportedOperationError(PersistenceError, NotImplementedError):
    """A custom backend left an optional store method unimplemented."""
