"""OperatorContext: where a parent's limits, budget, jobs and cancellation reach its children.

``run_child`` is the one path by which an operator runs another, and so the one place the
OrchestrationConfig is enforced: refused children (depth, count, budget) never start; each child
that starts is a job whose ``parent_job_id`` is the parent's job, driven through the JobManager's
own transitions; the child runs in its own task, linked to the parent's cancellation token, so
cancelling the parent cancels every running descendant; and its model usage is charged to the
ledger under the child's job, against the budgets of the parent's scope.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from llm_client import BudgetExceededError as LLMBudgetExceededError
from llm_client import CancellationToken, Usage

from ..context import BudgetSpec, ExecutionContext
from ..errors import InvalidTransitionError, ValidationError
from ..jobs import JobManager, JobSpec
from ..ledger import BudgetDecision, Ledger
from ..ledger.budget import Reservation
from .base import Operator, OperatorLike, OperatorResult, OrchestrationConfig, as_operator, usage_minus
from .errors import (
    ChildBudgetExceededError,
    ChildTimeoutError,
    MaxChildJobsError,
    MaxDepthError,
    OperatorCancelledError,
    OrchestrationLimitError,
)

if TYPE_CHECKING:
    from ..kernel import RuntimeKernel

__all__ = ["OperatorContext", "gather_children", "first_error"]

T = TypeVar("T")


class OperatorContext:
    """The execution context of one operator invocation plus the orchestration machinery around it.

    Create one per top-level call (``OperatorContext(ExecutionContext(...), jobs=..., ledger=...)``
    or ``OperatorContext.from_kernel(kernel)``); ``run_child`` derives the children's contexts.
    ``jobs`` and ``ledger`` are optional: without them nothing is recorded, but limits, timeouts
    and cancellation still apply.
    """

    def __init__(
        self,
        execution: ExecutionContext | None = None,
        *,
        config: OrchestrationConfig | None = None,
        jobs: JobManager | None = None,
        ledger: Ledger | None = None,
        depth: int = 0,
        parent: OperatorContext | None = None,
        operator_name: str | None = None,
    ) -> None:
        if execution is not None and not isinstance(execution, ExecutionContext):
            raise ValidationError(f"execution must be an ExecutionContext, got {type(execution).__name__}")
        if config is not None and not isinstance(config, OrchestrationConfig):
            raise ValidationError(f"config must be an OrchestrationConfig, got {type(config).__name__}")
        if jobs is not None and not isinstance(jobs, JobManager):
            raise ValidationError(f"jobs must be a JobManager, got {type(jobs).__name__}")
        if ledger is not None and not isinstance(ledger, Ledger):
            raise ValidationError(f"ledger must be a Ledger, got {type(ledger).__name__}")
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
            raise ValidationError(f"depth must be an int >= 0, got {depth!r}")
        self.execution = execution if execution is not None else ExecutionContext()
        self.config = config if config is not None else OrchestrationConfig()
        self.jobs = jobs
        self.ledger = ledger
        self.depth = depth
        self.parent = parent
        self.operator_name = operator_name
        self._children = 0
        self._slots: asyncio.Semaphore | None = None
        # What this context's children reported using: subtracted from this operator's own
        # reported usage so the ledger is charged once per model call, at the level that made it.
        self._children_usage: Usage | None = None

    @classmethod
    def from_kernel(
        cls,
        kernel: RuntimeKernel,
        execution: ExecutionContext | None = None,
        *,
        config: OrchestrationConfig | None = None,
    ) -> OperatorContext:
        """Children recorded in the kernel's JobManager and charged to the kernel's Ledger."""
        return cls(execution, config=config, jobs=kernel.jobs, ledger=kernel.ledger)

    # -- views ---------------------------------------------------------------------------------

    @property
    def cancellation_token(self) -> CancellationToken:
        return self.execution.cancellation_token

    @property
    def is_cancelled(self) -> bool:
        return self.execution.cancellation_token.is_cancelled

    @property
    def job_id(self) -> str | None:
        return self.execution.job_id

    @property
    def children_started(self) -> int:
        return self._children

    @property
    def remaining_child_slots(self) -> int | None:
        limit = self.config.max_child_jobs
        return None if limit is None else max(limit - self._children, 0)

    @property
    def parallel(self) -> bool:
        return self.config.parallel_execution

    def cancel(self, reason: str | None = None) -> None:
        """Cancel this context's token: its running children (and theirs) are cancelled too."""
        self.execution.cancellation_token.cancel(reason)

    def raise_if_cancelled(self) -> None:
        if self.is_cancelled:
            raise OperatorCancelledError(self._label, self.cancellation_token.reason)

    def require_child_slots(self, wanted: int) -> None:
        """Refuse up front a fan-out that cannot fit, rather than failing it halfway through."""
        remaining = self.remaining_child_slots
        if remaining is not None and wanted > remaining:
            assert self.config.max_child_jobs is not None
            raise MaxChildJobsError(self._label, self.config.max_child_jobs, wanted + self._children)

    @property
    def _label(self) -> str:
        if self.operator_name:
            return f"operator {self.operator_name!r}"
        return "the top-level context"

    # -- running children ----------------------------------------------------------------------

    async def run_child(
        self, operator: OperatorLike, input_data: Mapping[str, Any], *, name: str | None = None
    ) -> OperatorResult:
        """Run ``operator`` as a child of this context and return its result.

        A child that fails, raises, times out or is refused comes back as a failed result (its
        error typed in ``result.exception``). Cancellation is the exception: if this context is
        cancelled while the child runs, the child is cancelled and OperatorCancelledError raised.
        """
        op = as_operator(operator, name=name)
        label = name or op.name
        data = dict(input_data)
        cfg = self.config
        depth = self.depth + 1
        self.raise_if_cancelled()
        if depth > cfg.max_depth:
            return _refused(op, label, MaxDepthError(label, depth, cfg.max_depth))
        if cfg.max_child_jobs is not None and self._children >= cfg.max_child_jobs:
            return _refused(op, label, MaxChildJobsError(self._label, cfg.max_child_jobs, 1))
        self._children += 1
        if self._slots is None:
            self._slots = asyncio.Semaphore(cfg.max_parallel)
        async with self._slots:
            self.raise_if_cancelled()
            return await self._run_admitted(op, label, data, depth)

    async def _run_admitted(
        self, op: Operator, label: str, data: dict[str, Any], depth: int
    ) -> OperatorResult:
        cfg = self.config
        parent_ctx = self.execution
        token = CancellationToken()
        unlink = (
            parent_ctx.cancellation_token.add_callback(
                lambda: token.cancel(parent_ctx.cancellation_token.reason)
            )
            if cfg.propagate_cancellation
            else None
        )
        reservation: Reservation | None = None
        job_id: str | None = None
        started = time.perf_counter()
        try:
            try:
                reservation = await self._reserve(op, label, data)
            except ChildBudgetExceededError as exc:
                return _refused(op, label, exc)
            if cfg.inherit_budgets:
                child_exec = parent_ctx.child(cancellation_token=token)
            else:
                child_exec = parent_ctx.child(
                    cancellation_token=token, budgets=BudgetSpec(), request_budget=None
                )
            if self.jobs is not None:
                job = await self.jobs.create(
                    JobSpec(
                        scope_id=child_exec.scope_id,
                        principal_id=child_exec.principal_id,
                        session_id=child_exec.session_id,
                        run_id=child_exec.run_id,
                        parent_job_id=parent_ctx.job_id,
                        budgets=child_exec.budgets,
                        policy_ref=child_exec.policy_ref,
                        timeout_seconds=cfg.timeout_seconds,
                        metadata={"operator": label, "role": op.role.value, "depth": depth},
                        tags={"operator": label},
                    )
                )
                job_id = job.job_id
                child_exec = child_exec.with_job(job_id)
                await self.jobs.start(job_id)
            child = OperatorContext(
                child_exec,
                config=cfg,
                jobs=self.jobs,
                ledger=self.ledger,
                depth=depth,
                parent=self,
                operator_name=label,
            )
            result = await self._drive(op, label, data, child, token, job_id)
            result.duration_ms = (time.perf_counter() - started) * 1000
            subtree = result.usage if result.usage is not None else child._children_usage
            own = usage_minus(subtree, child._children_usage)
            if subtree is not None:
                self._children_usage = (
                    subtree if self._children_usage is None else self._children_usage + subtree
                )
            if self.ledger is not None and own is not None and (own.total_tokens or own.cost or own.requests):
                await self.ledger.record_model_usage(
                    child_exec, own, reservation=reservation, metadata={"operator": label}
                )
                reservation = None
            return result
        finally:
            if unlink is not None:
                unlink()
            if reservation is not None and self.ledger is not None:
                await self.ledger.release(reservation)

    async def _reserve(self, op: Operator, label: str, data: Mapping[str, Any]) -> Reservation | None:
        """Refuse a child the parent's budget cannot cover; hold its estimate in the ledger meanwhile.

        The live RequestBudget of the run (``ExecutionContext.budgets``) is only checked, not charged:
        llm-client's budget middleware charges it per model call, and charging it here too would
        count every call twice.
        """
        if not self.config.inherit_budgets:
            return None
        estimate = op.estimate_tokens(data)
        live = self.execution.request_budget
        if live is not None:
            left_tokens, left_cost = live.remaining_tokens, live.remaining_cost
            if left_tokens is not None and (left_tokens <= 0 or estimate > left_tokens):
                raise ChildBudgetExceededError(
                    label,
                    f"it needs about {estimate} tokens but only {max(left_tokens, 0)} of the run's "
                    f"{live.max_tokens} remain",
                )
            if left_cost is not None and left_cost <= 0:
                raise ChildBudgetExceededError(label, f"the run's cost budget of ${live.max_cost} is used up")
        if self.ledger is None:
            return None
        check = await self.ledger.reserve(
            self.execution, pending_tokens=estimate, pending_requests=1 if estimate else 0
        )
        if check.decision is BudgetDecision.DENY:
            raise ChildBudgetExceededError(label, check.reason, check.exceeded)
        return check.reservation

    async def _drive(
        self,
        op: Operator,
        label: str,
        data: dict[str, Any],
        child: OperatorContext,
        token: CancellationToken,
        job_id: str | None,
    ) -> OperatorResult:
        """Run the child in its own task, so a cancelled token can stop it wherever it is waiting."""
        task = asyncio.create_task(_invoke(op, label, data, child, self.config.timeout_seconds))
        loop = asyncio.get_running_loop()

        def stop() -> None:
            loop.call_soon_threadsafe(task.cancel)

        remove = token.add_callback(stop)
        try:
            outcome: object = await task
        except asyncio.CancelledError:
            await self._finish_job(job_id, "cancelled", token.reason or "cancelled")
            me = asyncio.current_task()
            if token.is_cancelled and (me is None or me.cancelling() == 0):
                raise OperatorCancelledError(label, token.reason) from None
            raise
        except OperatorCancelledError:
            await self._finish_job(job_id, "cancelled", token.reason or "cancelled")
            raise
        except ChildTimeoutError as exc:
            await self._finish_job(job_id, "timeout", str(exc))
            return _failed(op, label, exc, job_id)
        except (LLMBudgetExceededError, OrchestrationLimitError) as exc:
            await self._finish_job(job_id, "failed", str(exc), type(exc).__name__)
            return _failed(op, label, exc, job_id)
        except Exception as exc:
            await self._finish_job(job_id, "failed", f"{type(exc).__name__}: {exc}", type(exc).__name__)
            return _failed(op, label, exc, job_id)
        finally:
            remove()
        if not isinstance(outcome, OperatorResult):
            error = ValidationError(
                f"operator {label!r} returned {type(outcome).__name__}, not an OperatorResult"
            )
            await self._finish_job(job_id, "failed", str(error), type(error).__name__)
            return _failed(op, label, error, job_id)
        result = outcome
        if not result.operator_name or result.operator_name == op.name:
            result.operator_name = label  # the name the parent gave the child wins
        if result.role is None:
            result.role = op.role
        result.job_id = job_id
        if result.success:
            await self._finish_job(job_id, "succeeded", None)
        else:
            code = type(result.exception).__name__ if result.exception is not None else "operator_failed"
            await self._finish_job(job_id, "failed", result.error or "operator reported failure", code)
        return result

    async def _finish_job(
        self, job_id: str | None, outcome: str, message: str | None, code: str | None = None
    ) -> None:
        if self.jobs is None or job_id is None:
            return
        try:
            await self._transition(job_id, outcome, message, code)
        except InvalidTransitionError:
            pass  # someone finished it first (e.g. JobManager.expire_overdue): their outcome stands

    async def _transition(self, job_id: str, outcome: str, message: str | None, code: str | None) -> None:
        assert self.jobs is not None
        if outcome == "succeeded":
            await self.jobs.complete(job_id)
        elif outcome == "cancelled":
            await self.jobs.cancel(job_id, reason=message)
        elif outcome == "timeout":
            await self.jobs.timeout(job_id, message)
        else:
            await self.jobs.fail(job_id, message or "failed", error_code=code)


async def _invoke(
    op: Operator, label: str, data: dict[str, Any], child: OperatorContext, timeout: float | None
) -> OperatorResult:
    if timeout is None:
        return await op.execute(data, child)
    scope = asyncio.timeout(timeout)
    try:
        async with scope:
            return await op.execute(data, child)
    except TimeoutError:
        if scope.expired():
            raise ChildTimeoutError(label, timeout) from None
        raise


def _refused(op: Operator, label: str, error: BaseException) -> OperatorResult:
    return OperatorResult.failure(label, error, role=op.role, metadata={"refused": True})


def _failed(op: Operator, label: str, error: BaseException, job_id: str | None) -> OperatorResult:
    return OperatorResult.failure(label, error, role=op.role, job_id=job_id)


async def gather_children(coros: Iterable[Coroutine[Any, Any, T]], *, parallel: bool = True) -> list[T]:
    """Await ``coros`` (all at once, or one by one), results in order.

    A TaskGroup rather than ``asyncio.gather``: if one child raises (cancellation), the others are
    cancelled and waited for, so every child job reaches its final status before this returns.
    The first OperatorCancelledError is raised as itself, not inside an ExceptionGroup.
    """
    pending = list(coros)
    if not parallel:
        out: list[T] = []
        remaining = iter(pending)
        try:
            for c in remaining:
                out.append(await c)
        finally:
            for c in remaining:
                c.close()  # never started: closing avoids "coroutine was never awaited"
        return out
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(c) for c in pending]
    except BaseExceptionGroup as eg:
        raise first_error(eg) from None
    return [t.result() for t in tasks]


def first_error(eg: BaseExceptionGroup[BaseException]) -> BaseException:
    errors = list(_leaves(eg))
    for e in errors:
        if isinstance(e, OperatorCancelledError):
            return e
    return errors[0]


def _leaves(eg: BaseExceptionGroup[BaseException]) -> Iterable[BaseException]:
    for e in eg.exceptions:
        if isinstance(e, BaseExceptionGroup):
            yield from _leaves(e)
        else:
            yield e
