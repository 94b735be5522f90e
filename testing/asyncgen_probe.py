"""Which async generators did the event loop have to finalise? (a test helper)

An async generator abandoned while suspended is finalised by the loop's asyncgen hook, which
schedules its ``aclose()`` through ``call_soon_threadsafe``; until the loop turns, its ``finally``
blocks (budget settlement, span end, timers) have not run. Code that closes what it iterates
leaves nothing for that hook.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def abandoned_generators() -> Iterator[list[str]]:
    """Names of the async generators the loop had to finalise inside the block (after a GC).

    Entered inside the test: the running loop installs its own hooks when it starts.
    """
    firstiter, finalizer = sys.get_asyncgen_hooks()
    seen: list[str] = []

    def record(agen: Any) -> None:
        seen.append(agen.__qualname__)
        if finalizer is not None:
            finalizer(agen)

    sys.set_asyncgen_hooks(firstiter, record)
    try:
        yield seen
        gc.collect()
    finally:
        sys.set_asyncgen_hooks(firstiter, finalizer)
