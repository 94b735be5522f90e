"""Journey state: where the user is in the journey (``step``) and what has been collected so far.

State crosses process boundaries between turns (core checkpoints, SQLite, Redis), so it must turn
into a JSON dict and back. Subclasses may write ``to_dict``/``from_dict`` by hand (as the seed
does); a dataclass subclass that does not gets working defaults:

* ``to_dict`` writes every dataclass field, Enum members as their values.
* ``from_dict`` is **tolerant of older data**: a field missing from the dict takes its dataclass
  default (so adding a field with a default never breaks stored conversations), keys it does not
  know are ignored (data written by a newer version), Enum fields (the step above all) are turned
  back into members. A missing field without a default, a value that is no member of its Enum, or
  data that is not a dict raise :class:`~agent_runtime_framework.errors.StateDataError` naming the
  field, instead of resuming a conversation at a made-up step.
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from .errors import StateDataError

__all__ = ["BaseJourneyState", "StepT"]

StepT = TypeVar("StepT")
_S = TypeVar("_S", bound="BaseJourneyState[Any]")

# Per state class: (field name, Enum type or None, has a default) for the init fields.
_FIELD_CACHE: dict[type, tuple[tuple[str, type[enum.Enum] | None, bool], ...]] = {}


class BaseJourneyState(ABC, Generic[StepT]):
    """Base of a journey's state. Declare ``step`` as a (dataclass) field and implement ``is_complete``."""

    step: StepT

    @abstractmethod
    def is_complete(self) -> bool:
        """True once the journey reached its end (what ``JourneyAgent.is_terminal_state`` reports)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (default: every dataclass field, Enums as values)."""
        if not _is_dataclass_type(type(self)):
            raise NotImplementedError(f"{type(self).__name__} is not a dataclass: implement to_dict()")
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls: type[_S], data: Mapping[str, Any]) -> _S:
        """The state stored by :meth:`to_dict`; missing fields take their defaults (module docstring)."""
        if not _is_dataclass_type(cls):
            raise NotImplementedError(f"{cls.__name__} is not a dataclass: implement from_dict()")
        if not isinstance(data, Mapping):
            raise StateDataError(f"{cls.__name__}.from_dict expects a dict, got {type(data).__name__}")
        kwargs: dict[str, Any] = {}
        for name, enum_type, has_default in _fields(cls):
            if name not in data:
                if not has_default:
                    raise StateDataError(
                        f"{cls.__name__}: stored state has no {name!r} and it has no default"
                    )
                continue
            value = data[name]
            if enum_type is not None and not isinstance(value, enum_type):
                try:
                    value = enum_type(value)
                except ValueError:
                    known = ", ".join(repr(m.value) for m in enum_type)
                    raise StateDataError(
                        f"{cls.__name__}.{name}: {value!r} is not a {enum_type.__name__} (known: {known})"
                    ) from None
            kwargs[name] = value
        return cls(**kwargs)


def _is_dataclass_type(cls: type) -> bool:
    return "__dataclass_fields__" in cls.__dict__ or hasattr(cls, "__dataclass_fields__")


def _fields(cls: type) -> tuple[tuple[str, type[enum.Enum] | None, bool], ...]:
    cached = _FIELD_CACHE.get(cls)
    if cached is not None:
        return cached
    try:
        hints: dict[str, Any] = typing.get_type_hints(cls)
    except Exception:  # a class defined in a function: fall back to the defaults' types
        hints = {}
    out: list[tuple[str, type[enum.Enum] | None, bool]] = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        hint = hints.get(f.name)
        enum_type: type[enum.Enum] | None = None
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            enum_type = hint
        elif isinstance(f.default, enum.Enum):
            enum_type = type(f.default)
        out.append((f.name, enum_type, has_default))
    result = _FIELD_CACHE[cls] = tuple(out)
    return result


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value
