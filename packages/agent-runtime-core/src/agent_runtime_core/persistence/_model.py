"""The shared machinery of the persistence data models: coercion and JSON round trips.

Every model normalises its fields in ``__post_init__`` (ids to ``UUID``, datetimes to aware UTC,
enum values to members), so ``from_dict`` is just the constructor fed with JSON values, and a value
typed by a user (a naive ``datetime.utcnow()``, an id as a string) ends up in the same shape as one
read back from a file. Bad values fail at construction with an error naming the model and field,
instead of surfacing later as a confusing comparison or serialisation error.
"""

from __future__ import annotations

import dataclasses
import enum
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Self, TypeVar

__all__ = ["Model", "utc_now", "as_utc", "as_uuid", "as_optional_uuid", "as_enum", "as_optional_datetime"]

E = TypeVar("E", bound=enum.Enum)


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: object, where: str) -> datetime:
    """Naive datetimes are taken to be UTC: ``datetime.utcnow()`` is common and means exactly that."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"{where}: {value!r} is not an ISO 8601 datetime") from exc
    if not isinstance(value, datetime):
        raise TypeError(f"{where} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def as_optional_datetime(value: object, where: str) -> datetime | None:
    return None if value is None else as_utc(value, where)


def as_uuid(value: object, where: str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError as exc:
            raise ValueError(f"{where}: {value!r} is not a UUID") from exc
    raise TypeError(f"{where} must be a UUID, got {type(value).__name__}")


def as_optional_uuid(value: object, where: str) -> uuid.UUID | None:
    return None if value is None else as_uuid(value, where)


def as_enum(kind: type[E], value: object, where: str) -> E:
    if isinstance(value, kind):
        return value
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(repr(m.value) for m in kind)
        raise ValueError(f"{where}: {value!r} is not a {kind.__name__} (one of {choices})") from None


def _encode(value: Any) -> Any:
    if isinstance(value, Model):
        return value.to_dict()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


class Model:
    """Mixin for the dataclass models: ``to_dict`` gives plain JSON values, ``from_dict`` reverses it."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _encode(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Unknown keys are ignored so files written by a newer version still load."""
        if not isinstance(data, Mapping):
            raise TypeError(f"{cls.__name__}.from_dict expects a mapping, got {type(data).__name__}")
        fields = dataclasses.fields(cls)
        missing = [
            f.name
            for f in fields
            if f.name not in data
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise ValueError(f"{cls.__name__}.from_dict: missing required field(s) {', '.join(missing)}")
        return cls(**{f.name: data[f.name] for f in fields if f.name in data})

    def _check_str(self, name: str, *, optional: bool = False, allow_empty: bool = True) -> None:
        value = getattr(self, name)
        if value is None and optional:
            return
        if not isinstance(value, str):
            raise TypeError(f"{type(self).__name__}.{name} must be a str, got {type(value).__name__}")
        if not allow_empty and not value:
            raise ValueError(f"{type(self).__name__}.{name} must not be empty")

    def _check_mapping(self, name: str) -> None:
        value = getattr(self, name)
        if not isinstance(value, dict):
            raise TypeError(f"{type(self).__name__}.{name} must be a dict, got {type(value).__name__}")

    def _where(self, name: str) -> str:
        return f"{type(self).__name__}.{name}"
