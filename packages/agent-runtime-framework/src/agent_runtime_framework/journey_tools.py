"""BaseJourneyTools: the object whose methods a journey's tools call.

Tools are where the journey moves: a method updates ``state`` (``step`` included) and calls
``_notify_state_change()`` so the owner (the agent) can react at once, e.g. checkpoint a step change
before the next model call. The agent also compares the step after every tool batch, so a tool
that forgets to notify still moves the journey; notifying is what makes the save immediate.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

__all__ = ["BaseJourneyTools", "StateT", "StateChangeCallback"]

StateT = TypeVar("StateT")

#: Called with the state after a tool changed it; may be sync or async.
StateChangeCallback = Callable[[Any], Awaitable[None] | None]


class BaseJourneyTools(Generic[StateT]):
    """Holds the journey ``state``, an optional ``backend_client`` (your API, database, ...) and the
    ``on_state_change`` callback. Subclass and add one async method per tool."""

    def __init__(
        self,
        state: StateT,
        backend_client: Any = None,
        on_state_change: StateChangeCallback | None = None,
    ) -> None:
        self.state = state
        self.backend_client = backend_client
        self.on_state_change = on_state_change

    async def _notify_state_change(self) -> None:
        """Tell the owner the state changed (call it after modifying ``self.state``)."""
        callback = self.on_state_change
        if callback is None:
            return
        result = callback(self.state)
        if inspect.isawaitable(result):
            await result
