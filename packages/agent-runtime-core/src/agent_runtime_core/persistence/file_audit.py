"""File-based :class:`AuditStore`: events, errors and metrics in ``audit.json`` per scope.

Each write rewrites the file (that is what makes it atomic), so this suits development and modest
volumes; a production deployment with heavy traffic plugs in a database-backed store.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from typing import Any

from ._files import FileStoreBase
from ._model import Model, as_enum, as_utc, as_uuid, utc_now
from .audit_models import AuditEntry, AuditEventType, ErrorRecord, ErrorSeverity, PerformanceMetric
from .base import AuditStore
from .errors import RecordNotFoundError
from .models import Scope

__all__ = ["FileAuditStore"]


def _tail(items: list[Any], limit: int | None) -> list[Any]:
    if limit is None:
        return items
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    return items[len(items) - limit :] if limit else []


class FileAuditStore(FileStoreBase, AuditStore):
    """Optional, so never created by default: pass it as ``PersistenceConfig(audit_store=...)``."""

    filename = "audit.json"

    async def _append(self, collection: str, model: Model, record_id: uuid.UUID, scope: Scope) -> None:
        record = self._encode(model, f"{type(model).__name__} {record_id}")
        async with self._docs.editing(as_enum(Scope, scope, "scope")) as doc:
            doc.setdefault(collection, {})[str(record_id)] = record

    async def _records(self, collection: str, scope: Scope) -> list[Any]:
        return list((await self._docs.read(as_enum(Scope, scope, "scope"))).get(collection, {}).values())

    async def log_event(self, entry: AuditEntry, scope: Scope = Scope.PROJECT) -> None:
        if not isinstance(entry, AuditEntry):
            raise TypeError(f"expected an AuditEntry, got {type(entry).__name__}")
        await self._append("events", entry, entry.id, scope)

    async def log_error(self, error: ErrorRecord, scope: Scope = Scope.PROJECT) -> None:
        if not isinstance(error, ErrorRecord):
            raise TypeError(f"expected an ErrorRecord, got {type(error).__name__}")
        await self._append("errors", error, error.id, scope)

    async def record_metric(self, metric: PerformanceMetric, scope: Scope = Scope.PROJECT) -> None:
        if not isinstance(metric, PerformanceMetric):
            raise TypeError(f"expected a PerformanceMetric, got {type(metric).__name__}")
        await self._append("metrics", metric, metric.id, scope)

    async def get_events(
        self,
        scope: Scope = Scope.PROJECT,
        *,
        conversation_id: uuid.UUID | None = None,
        event_type: AuditEventType | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[AuditEntry]:
        kind = None if event_type is None else as_enum(AuditEventType, event_type, "event_type")
        after = None if since is None else as_utc(since, "since")
        events = [self._decode(AuditEntry, r, scope) for r in await self._records("events", scope)]
        selected = [
            e
            for e in events
            if (conversation_id is None or e.conversation_id == conversation_id)
            and (kind is None or e.event_type == kind)
            and (after is None or e.timestamp >= after)
        ]
        return _tail(sorted(selected, key=lambda e: e.timestamp), limit)

    async def get_errors(
        self,
        scope: Scope = Scope.PROJECT,
        *,
        severity: ErrorSeverity | None = None,
        resolved: bool | None = None,
        conversation_id: uuid.UUID | None = None,
        limit: int | None = None,
    ) -> list[ErrorRecord]:
        level = None if severity is None else as_enum(ErrorSeverity, severity, "severity")
        errors = [self._decode(ErrorRecord, r, scope) for r in await self._records("errors", scope)]
        selected = [
            e
            for e in errors
            if (level is None or e.severity == level)
            and (resolved is None or e.resolved == resolved)
            and (conversation_id is None or e.conversation_id == conversation_id)
        ]
        return _tail(sorted(selected, key=lambda e: e.timestamp), limit)

    async def resolve_error(
        self, error_id: uuid.UUID, resolution: str, scope: Scope = Scope.PROJECT
    ) -> ErrorRecord:
        scope = as_enum(Scope, scope, "scope")
        key = str(as_uuid(error_id, "error_id"))
        async with self._docs.editing(scope) as doc:
            records = doc.setdefault("errors", {})
            if key not in records:
                raise RecordNotFoundError(f"no error record {error_id} in scope {scope.value}")
            resolved = dataclasses.replace(
                self._decode(ErrorRecord, records[key], scope),
                resolved=True,
                resolution=resolution,
                resolved_at=utc_now(),
            )
            records[key] = self._encode(resolved, f"error record {error_id}")
        return resolved

    async def get_metrics(
        self,
        scope: Scope = Scope.PROJECT,
        *,
        name: str | None = None,
        since: datetime | None = None,
        tags: dict[str, str] | None = None,
    ) -> list[PerformanceMetric]:
        """Metrics matching ``name`` and carrying every tag in ``tags``, oldest first."""
        after = None if since is None else as_utc(since, "since")
        metrics = [self._decode(PerformanceMetric, r, scope) for r in await self._records("metrics", scope)]
        selected = [
            m
            for m in metrics
            if (name is None or m.name == name)
            and (after is None or m.timestamp >= after)
            and (tags is None or all(m.tags.get(k) == v for k, v in tags.items()))
        ]
        return sorted(selected, key=lambda m: m.timestamp)
