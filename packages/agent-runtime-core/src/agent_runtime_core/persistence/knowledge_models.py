"""Data models of the optional knowledge store: facts learned, conversation summaries, embeddings."""

from __future__ import annotations

import enum
import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ._model import Model, as_enum, as_optional_datetime, as_optional_uuid, as_utc, as_uuid, utc_now

__all__ = ["FactType", "Fact", "Summary", "Embedding"]


class FactType(enum.StrEnum):
    USER = "user"
    PROJECT = "project"
    PREFERENCE = "preference"
    CONTEXT = "context"
    CUSTOM = "custom"


@dataclass(slots=True)
class Fact(Model):
    """Something learned that should outlive the conversation it came from (``key`` is the lookup handle)."""

    key: str
    value: Any
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    fact_type: FactType = FactType.CUSTOM
    confidence: float = 1.0
    source: str | None = None
    expires_at: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=utc_now)
    updated_at: datetime = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        self._check_str("key", allow_empty=False)
        self._check_str("source", optional=True)
        self._check_mapping("metadata")
        self.id = as_uuid(self.id, self._where("id"))
        self.fact_type = as_enum(FactType, self.fact_type, self._where("fact_type"))
        if isinstance(self.confidence, bool) or not isinstance(self.confidence, int | float):
            raise TypeError(f"Fact.confidence must be a number, got {type(self.confidence).__name__}")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"Fact.confidence must be between 0 and 1, got {self.confidence}")
        self.expires_at = as_optional_datetime(self.expires_at, self._where("expires_at"))
        self.created_at = as_utc(self.created_at, self._where("created_at"))
        self.updated_at = as_utc(self.updated_at, self._where("updated_at"))


@dataclass(slots=True)
class Summary(Model):
    """A condensed account of one or more conversations, so later runs need not replay them."""

    content: str
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    conversation_id: uuid.UUID | None = None
    conversation_ids: list[uuid.UUID] = field(default_factory=list)
    start_time: datetime | None = None
    end_time: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        self._check_str("content")
        self._check_mapping("metadata")
        self.id = as_uuid(self.id, self._where("id"))
        self.conversation_id = as_optional_uuid(self.conversation_id, self._where("conversation_id"))
        self.conversation_ids = [as_uuid(c, self._where("conversation_ids")) for c in self.conversation_ids]
        self.start_time = as_optional_datetime(self.start_time, self._where("start_time"))
        self.end_time = as_optional_datetime(self.end_time, self._where("end_time"))
        self.created_at = as_utc(self.created_at, self._where("created_at"))

    def covers(self, conversation_id: uuid.UUID) -> bool:
        return conversation_id == self.conversation_id or conversation_id in self.conversation_ids


@dataclass(slots=True)
class Embedding(Model):
    """A vector for semantic search, with the text it was computed from and what that text belongs to."""

    vector: list[float]
    content: str = ""
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    content_type: str = "text"
    source_id: uuid.UUID | None = None
    model: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        self._check_str("content")
        self._check_str("content_type")
        self._check_str("model", optional=True)
        self._check_mapping("metadata")
        self.id = as_uuid(self.id, self._where("id"))
        self.source_id = as_optional_uuid(self.source_id, self._where("source_id"))
        self.vector = check_vector(self.vector, "Embedding.vector")
        self.created_at = as_utc(self.created_at, self._where("created_at"))

    @property
    def dimensions(self) -> int:
        return len(self.vector)


def check_vector(vector: object, where: str) -> list[float]:
    """Reject what would make similarity meaningless (empty, non-numeric, NaN) before it is stored."""
    if not isinstance(vector, list | tuple) or not vector:
        raise ValueError(f"{where} must be a non-empty list of numbers")
    out: list[float] = []
    for x in vector:
        if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
            raise ValueError(f"{where} must hold finite numbers, got {x!r}")
        out.append(float(x))
    return out


def cosine_similarity(a: list[float], b: list[float]) -> float:
    """Pure-Python cosine similarity; 0.0 when either vector is all zeros (no direction to compare)."""
    if len(a) != len(b):
        raise ValueError(f"vectors have different dimensions ({len(a)} and {len(b)})")
    dot = math.fsum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    return 0.0 if norm == 0.0 else dot / norm
