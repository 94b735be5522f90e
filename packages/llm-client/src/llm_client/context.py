"""Who a call is for and what it may spend: RequestContext, its budget and its cancellation token.

The context travels with every call through the middleware chain. Upper layers (the kernel's
ExecutionContext) convert into it, so identity, budgets and cancellation reach the model call
without each layer inventing its own carrier.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from .errors import BudgetExceededError, RequestCancelledError
from .usage import Usage

__all__ = ["RequestContext", "RequestBudget", "CancellationToken", "new_request_id"]

# A random per-process prefix plus a counter: unique like a uuid4, without a syscall per call.
_ID_PREFIX = os.urandom(6).hex()
_ID_COUNTER = itertools.count(1)


def _new_id_prefix() -> None:
    """A forked child (a prefork worker) must not repeat its parent's ids: new prefix, new count."""
    global _ID_PREFIX, _ID_COUNTER
    _ID_PREFIX = os.urandom(6).hex()
    _ID_COUNTER = itertools.count(1)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_id_prefix)


def new_request_id() -> str:
    """A unique id (12 random hex digits per process, then a counter), e.g. for requests and events."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):010x}"


class CancellationToken:
    """Cooperative cancellation shared by everything working for one request or job.

    Cancelling is thread-safe and idempotent. Streams stop at the next event and end with a
    :class:`~llm_client.StreamError` carrying :class:`~llm_client.RequestCancelledError`; a call
    waiting on the provider is interrupted.
    """

    __slots__ = ("_callbacks", "_cancelled", "_lock", "_reason")

    def __init__(self) -> None:
        self._cancelled = False
        self._reason: str | None = None
        self._callbacks: list[Callable[[], Any]] = []
        self._lock = threading.Lock()

    @property
    def is_cancelled(self) -> bool:
        return self._cancelled

    @property
    def reason(self) -> str | None:
        return self._reason

    def cancel(self, reason: str | None = None) -> None:
        with self._lock:
            if self._cancelled:
                return
            self._cancelled = True
            self._reason = reason
            callbacks, self._callbacks = self._callbacks, []
        for cb in callbacks:
            cb()

    def add_callback(self, callback: Callable[[], Any]) -> Callable[[], None]:
        """Call ``callback`` on cancel (at once if already cancelled); returns a remover."""
        with self._lock:
            if not self._cancelled:
                self._callbacks.append(callback)

                def remove() -> None:
                    with self._lock:
                        if callback in self._callbacks:
                            self._callbacks.remove(callback)

                return remove
        callback()
        return lambda: None

    def raise_if_cancelled(self) -> None:
        if self._cancelled:
            raise RequestCancelledError(f"request cancelled: {self._reason or 'no reason given'}")

    async def wait(self) -> None:
        """Return once cancelled. Safe to call from any event loop."""
        if self._cancelled:
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def settle() -> None:
            if not fut.done():
                fut.set_result(None)

        def wake() -> None:
            loop.call_soon_threadsafe(settle)

        remove = self.add_callback(wake)
        try:
            await fut
        finally:
            remove()


class RequestBudget:
    """Token and cost limits shared by every call made under one context.

    Before a call, :meth:`reserve` refuses it when what is already spent plus the call's estimate
    would pass a limit, and holds the estimate so concurrent calls cannot all pass the same check;
    :meth:`settle` replaces the estimate with what the call really used.
    """

    __slots__ = ("_reserved_cost", "_reserved_tokens", "max_cost", "max_tokens", "spent_cost", "spent_tokens")

    def __init__(self, max_tokens: int | None = None, max_cost: Decimal | float | str | None = None) -> None:
        if max_tokens is not None and max_tokens < 0:
            raise ValueError("max_tokens must be >= 0")
        self.max_tokens = max_tokens
        self.max_cost = None if max_cost is None else Decimal(str(max_cost))
        if self.max_cost is not None and self.max_cost < 0:
            raise ValueError("max_cost must be >= 0")
        self.spent_tokens = 0
        self.spent_cost = Decimal(0)
        self._reserved_tokens = 0
        self._reserved_cost = Decimal(0)

    @property
    def remaining_tokens(self) -> int | None:
        if self.max_tokens is None:
            return None
        return self.max_tokens - self.spent_tokens - self._reserved_tokens

    @property
    def remaining_cost(self) -> Decimal | None:
        if self.max_cost is None:
            return None
        return self.max_cost - self.spent_cost - self._reserved_cost

    def reserve(self, tokens: int, cost: Decimal | None = None) -> tuple[int, Decimal]:
        rt, rc = self.remaining_tokens, self.remaining_cost
        if rt is not None and tokens > rt:
            raise BudgetExceededError(
                f"token budget exceeded: this call needs about {tokens} tokens but only {max(rt, 0)} "
                f"of {self.max_tokens} remain"
            )
        if rc is not None and (rc <= 0 or (cost is not None and cost > rc)):
            raise BudgetExceededError(
                f"cost budget exceeded: this call would cost about ${cost or 0} but only "
                f"${max(rc, Decimal(0))} of ${self.max_cost} remain"
            )
        reserved_cost = cost or Decimal(0)
        self._reserved_tokens += tokens
        self._reserved_cost += reserved_cost
        return tokens, reserved_cost

    def settle(self, reservation: tuple[int, Decimal], usage: Usage | None) -> None:
        tokens, cost = reservation
        self._reserved_tokens -= tokens
        self._reserved_cost -= cost
        if usage is not None:
            self.spent_tokens += usage.total_tokens
            if usage.cost is not None:
                self.spent_cost += usage.cost


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Identity, tracing, limits and cancellation for one logical request.

    ``max_tokens`` / ``max_cost`` create a shared :class:`RequestBudget` (``budget``) that the
    budget middleware enforces across every call made with this context or its children.
    ``timeout`` is seconds per model call.
    """

    request_id: str = field(default_factory=new_request_id)
    scope_id: str | None = None
    principal_id: str | None = None
    session_id: str | None = None
    run_id: str | None = None
    job_id: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    parent_span_id: str | None = None
    max_tokens: int | None = None
    max_cost: Decimal | float | None = None
    timeout: float | None = None
    budget: RequestBudget | None = None
    cancellation_token: CancellationToken | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {self.timeout}")
        if self.budget is None and (self.max_tokens is not None or self.max_cost is not None):
            object.__setattr__(self, "budget", RequestBudget(self.max_tokens, self.max_cost))

    def child(self, **changes: Any) -> RequestContext:
        """A context for a nested call: same identity, budget and token; a new request id."""
        changes.setdefault("request_id", new_request_id())
        changes.setdefault("parent_span_id", self.span_id)
        return replace(self, **changes)

    @property
    def is_cancelled(self) -> bool:
        return self.cancellation_token is not None and self.cancellation_token.is_cancelled

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "scope_id": self.scope_id,
            "principal_id": self.principal_id,
            "session_id": self.session_id,
            "run_id": self.run_id,
            "job_id": self.job_id,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_span_id": self.parent_span_id,
            "max_tokens": self.max_tokens,
            "max_cost": None if self.max_cost is None else str(self.max_cost),
            "timeout": self.timeout,
            "metadata": dict(self.metadata),
            "tags": dict(self.tags),
        }
