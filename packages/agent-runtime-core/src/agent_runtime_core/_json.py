"""JSON checks shared by every backend: refuse what cannot be stored, before storing anything."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["dumps", "ensure_jsonable"]


def dumps(value: Any, *, what: str) -> str:
    """``json.dumps`` that names what failed, e.g. "checkpoint of run 'r1'"."""
    try:
        return json.dumps(value, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} is not JSON-serialisable: {exc}") from exc


_SCALARS = (str, int, float, bool, type(None))


def ensure_jsonable(value: Any, *, what: str) -> Any:
    """Check and return a deep copy made through JSON, so later mutation by the caller is harmless.

    A flat dict of scalars (``{"delta": "tok"}``, most events) is checked by type and shallow-copied:
    the JSON round trip costs more than the rest of an event's path, once per streamed token.
    """
    if type(value) is dict and all(type(k) is str and type(v) in _SCALARS for k, v in value.items()):
        return dict(value)
    return json.loads(dumps(value, what=what))
