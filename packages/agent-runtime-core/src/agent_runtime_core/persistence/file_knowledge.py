"""File-based :class:`KnowledgeStore`: facts, summaries and embeddings in ``knowledge.json`` per scope."""

from __future__ import annotations

import uuid
from typing import Any

from ._files import FileStoreBase
from ._model import Model, as_enum, as_uuid, utc_now
from .base import KnowledgeStore
from .knowledge_models import Embedding, Fact, FactType, Summary
from .models import Scope

__all__ = ["FileKnowledgeStore"]


class FileKnowledgeStore(FileStoreBase, KnowledgeStore):
    """Optional, so never created by default: pass it as ``PersistenceConfig(knowledge_store=...)``."""

    filename = "knowledge.json"

    async def _put(self, collection: str, model: Model, record_id: uuid.UUID, scope: Scope) -> None:
        record = self._encode(model, f"{type(model).__name__} {record_id}")
        async with self._docs.editing(as_enum(Scope, scope, "scope")) as doc:
            doc.setdefault(collection, {})[str(record_id)] = record

    async def _records(self, collection: str, scope: Scope) -> list[Any]:
        return list((await self._docs.read(as_enum(Scope, scope, "scope"))).get(collection, {}).values())

    async def _remove(self, collection: str, record_id: uuid.UUID, scope: Scope) -> bool:
        key = str(as_uuid(record_id, "id"))
        async with self._docs.editing(as_enum(Scope, scope, "scope")) as doc:
            return doc.setdefault(collection, {}).pop(key, None) is not None

    async def _one(self, collection: str, record_id: uuid.UUID, scope: Scope) -> Any | None:
        return (
            (await self._docs.read(as_enum(Scope, scope, "scope")))
            .get(collection, {})
            .get(str(as_uuid(record_id, "id")))
        )

    async def save_fact(self, fact: Fact, scope: Scope = Scope.PROJECT) -> None:
        if not isinstance(fact, Fact):
            raise TypeError(f"expected a Fact, got {type(fact).__name__}")
        await self._put("facts", fact, fact.id, scope)

    async def get_fact(self, fact_id: uuid.UUID, scope: Scope = Scope.PROJECT) -> Fact | None:
        record = await self._one("facts", fact_id, scope)
        return None if record is None else self._decode(Fact, record, scope)

    async def get_fact_by_key(self, key: str, scope: Scope = Scope.PROJECT) -> Fact | None:
        """The most recently updated unexpired fact with ``key``."""
        matches = [f for f in await self.list_facts(scope) if f.key == key]
        return max(matches, key=lambda f: f.updated_at) if matches else None

    async def list_facts(self, scope: Scope = Scope.PROJECT, fact_type: FactType | None = None) -> list[Fact]:
        """Unexpired facts, oldest first: an expired fact is stale knowledge an agent should not act on."""
        wanted = None if fact_type is None else as_enum(FactType, fact_type, "fact_type")
        now = utc_now()
        facts = [self._decode(Fact, r, scope) for r in await self._records("facts", scope)]
        return sorted(
            (
                f
                for f in facts
                if (wanted is None or f.fact_type == wanted) and (f.expires_at is None or f.expires_at > now)
            ),
            key=lambda f: f.created_at,
        )

    async def delete_fact(self, fact_id: uuid.UUID, scope: Scope = Scope.PROJECT) -> bool:
        return await self._remove("facts", fact_id, scope)

    async def save_summary(self, summary: Summary, scope: Scope = Scope.PROJECT) -> None:
        if not isinstance(summary, Summary):
            raise TypeError(f"expected a Summary, got {type(summary).__name__}")
        await self._put("summaries", summary, summary.id, scope)

    async def get_summary(self, summary_id: uuid.UUID, scope: Scope = Scope.PROJECT) -> Summary | None:
        record = await self._one("summaries", summary_id, scope)
        return None if record is None else self._decode(Summary, record, scope)

    async def list_summaries(
        self, scope: Scope = Scope.PROJECT, conversation_id: uuid.UUID | None = None
    ) -> list[Summary]:
        summaries = [self._decode(Summary, r, scope) for r in await self._records("summaries", scope)]
        return sorted(
            (s for s in summaries if conversation_id is None or s.covers(conversation_id)),
            key=lambda s: s.created_at,
        )

    async def delete_summary(self, summary_id: uuid.UUID, scope: Scope = Scope.PROJECT) -> bool:
        return await self._remove("summaries", summary_id, scope)

    async def save_embedding(self, embedding: Embedding, scope: Scope = Scope.PROJECT) -> None:
        if not isinstance(embedding, Embedding):
            raise TypeError(f"expected an Embedding, got {type(embedding).__name__}")
        await self._put("embeddings", embedding, embedding.id, scope)

    async def list_embeddings(self, scope: Scope = Scope.PROJECT) -> list[Embedding]:
        return [self._decode(Embedding, r, scope) for r in await self._records("embeddings", scope)]

    async def delete_embedding(self, embedding_id: uuid.UUID, scope: Scope = Scope.PROJECT) -> bool:
        return await self._remove("embeddings", embedding_id, scope)
