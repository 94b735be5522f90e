"""Multi-step work with checkpoints, resume, retries, timeouts and progress.

``await StepExecutor(ctx).run([Step("a", fn_a), Step("b", fn_b)])`` runs the steps in order, each
as ``await fn(ctx, state)`` (a plain function works too), and returns ``{step name: result}``.
``state`` is one dict shared by all steps (seeded from ``initial_state``) for passing data along.

After each step with ``checkpoint=True`` the executor saves ``{"completed": [...], "results":
{...}, "state": {...}}`` under ``checkpoint_key`` in the run's checkpoint (other keys of the
checkpoint are kept), so results and state must be JSON-serialisable. A new executor on the same
run (a retried attempt, or a new process after a crash) restores them: completed steps are skipped
(``step.skipped``) and the state is the saved one; ``initial_state`` is used only on a fresh start.

A failing step is retried ``retries`` times, ``retry_delay`` seconds apart (``step.retrying``);
then ``step.failed`` is emitted and the step's own exception is re-raised (with a note naming the
step), so the runner still sees its ``retryable`` flag and can retry the whole run, which resumes
here. A step exceeding ``timeout`` raises :class:`StepTimeoutError`. Cancellation is checked
before each step (:class:`~agent_runtime_core.context.RunCancelledError`).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .context import RunCancelledError
from .interfaces import ErrorInfo, EventType, RunContext

__all__ = ["Step", "StepExecutor", "StepTimeoutError", "StepFn", "RunCancelledError"]

StepFn = Callable[[RunContext, dict[str, Any]], Awaitable[Any] | Any]


class StepTimeoutError(TimeoutError):
    """A step ran longer than its ``timeout``."""

    retryable = False


@dataclass(slots=True)
class Step:
    """One unit of work. ``retries`` counts retries after the first try."""

    name: str
    fn: StepFn
    retries: int = 0
    retry_delay: float = 1.0
    timeout: float | None = None
    description: str | None = None
    checkpoint: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"step name must be a non-empty string, got {self.name!r}")
        if not callable(self.fn):
            raise TypeError(f"step {self.name!r}: fn must be callable as fn(ctx, state), got {self.fn!r}")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ValueError(f"step {self.name!r}: retries must be an int >= 0, got {self.retries!r}")
        if not isinstance(self.retry_delay, int | float) or self.retry_delay < 0:
            raise ValueError(
                f"step {self.name!r}: retry_delay must be >= 0 seconds, got {self.retry_delay!r}"
            )
        if self.timeout is not None and (not isinstance(self.timeout, int | float) or self.timeout <= 0):
            raise ValueError(f"step {self.name!r}: timeout must be > 0 seconds or None, got {self.timeout!r}")


class StepExecutor:
    """Runs a list of :class:`Step` for one run; see the module docstring."""

    def __init__(self, ctx: RunContext, *, checkpoint_key: str = "__steps__") -> None:
        if not isinstance(checkpoint_key, str) or not checkpoint_key:
            raise ValueError(f"checkpoint_key must be a non-empty string, got {checkpoint_key!r}")
        self.ctx = ctx
        self.checkpoint_key = checkpoint_key
        #: The shared state after :meth:`run` (or as far as it got).
        self.state: dict[str, Any] = {}

    async def run(self, steps: Sequence[Step], initial_state: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run (or resume) ``steps`` in order; returns each step's result by name."""
        steps = list(steps)
        for i, step in enumerate(steps):
            if not isinstance(step, Step):
                raise TypeError(f"steps[{i}] must be a Step, got {type(step).__name__}")
        names = [s.name for s in steps]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"step names must be unique; duplicated: {', '.join(map(repr, duplicates))}")
        if initial_state is not None and not isinstance(initial_state, dict):
            raise TypeError(f"initial_state must be a dict or None, got {type(initial_state).__name__}")

        ctx = self.ctx
        completed, results, state = await self._restore()
        if state is None:
            state = dict(initial_state or {})
        self.state = state
        total = len(steps)
        for index, step in enumerate(steps):
            if ctx.is_cancelled():
                raise RunCancelledError(f"run cancelled before step {step.name!r}")
            if step.name in completed:
                await ctx.emit(
                    EventType.STEP_SKIPPED,
                    {"step": step.name, "index": index, "total": total, "reason": "already completed"},
                )
            else:
                results[step.name] = await self._run_step(step, index, total, state)
                completed.append(step.name)
                if step.checkpoint:
                    await self._save(completed, results, state, step.name)
                await ctx.emit(EventType.STEP_COMPLETED, {"step": step.name, "index": index, "total": total})
            done = index + 1
            await ctx.emit(
                EventType.PROGRESS_UPDATE,
                {
                    "step": step.name,
                    "completed": done,
                    "total": total,
                    "percentage": round(100.0 * done / total, 1),
                },
            )
        return {name: results[name] for name in names}

    async def _run_step(self, step: Step, index: int, total: int, state: dict[str, Any]) -> Any:
        ctx = self.ctx
        max_attempts = step.retries + 1
        await ctx.emit(
            EventType.STEP_STARTED,
            {"step": step.name, "index": index, "total": total, "description": step.description},
        )
        attempt = 1
        while True:
            started = time.perf_counter()
            try:
                return await self._call(step, state)
            except Exception as exc:
                if attempt < max_attempts and not ctx.is_cancelled():
                    await ctx.emit(
                        EventType.STEP_RETRYING,
                        {
                            "step": step.name,
                            "attempt": attempt,
                            "max_attempts": max_attempts,
                            "delay_seconds": step.retry_delay,
                            "error": {"type": type(exc).__name__, "message": str(exc)},
                        },
                    )
                    await asyncio.sleep(step.retry_delay)
                    attempt += 1
                    continue
                info = ErrorInfo.from_exception(exc)
                await ctx.emit(
                    EventType.STEP_FAILED,
                    {
                        "step": step.name,
                        "index": index,
                        "attempts": attempt,
                        "duration_ms": (time.perf_counter() - started) * 1000,
                        "error": info.to_dict(),
                    },
                )
                exc.add_note(f"in step {step.name!r} (attempt {attempt} of {max_attempts})")
                raise

    async def _call(self, step: Step, state: dict[str, Any]) -> Any:
        if step.timeout is None:
            result = step.fn(self.ctx, state)
            return await result if inspect.isawaitable(result) else result
        cm = asyncio.timeout(step.timeout)
        try:
            async with cm:
                result = step.fn(self.ctx, state)
                return await result if inspect.isawaitable(result) else result
        except TimeoutError as exc:
            if cm.expired():
                raise StepTimeoutError(f"step {step.name!r} timed out after {step.timeout} s") from exc
            raise

    async def _restore(self) -> tuple[list[str], dict[str, Any], dict[str, Any] | None]:
        checkpoint = await self.ctx.get_state()
        saved = (checkpoint or {}).get(self.checkpoint_key)
        if saved is None:
            return [], {}, None
        if (
            not isinstance(saved, dict)
            or not isinstance(saved.get("completed"), list)
            or not isinstance(saved.get("results"), dict)
            or not isinstance(saved.get("state"), dict)
        ):
            raise ValueError(
                f"checkpoint key {self.checkpoint_key!r} does not hold step progress "
                '({"completed": [...], "results": {...}, "state": {...}}); use another checkpoint_key'
            )
        return list(saved["completed"]), dict(saved["results"]), dict(saved["state"])

    async def _save(
        self, completed: list[str], results: dict[str, Any], state: dict[str, Any], name: str
    ) -> None:
        checkpoint = dict(await self.ctx.get_state() or {})
        checkpoint[self.checkpoint_key] = {"completed": completed, "results": results, "state": state}
        try:
            await self.ctx.checkpoint(checkpoint)
        except TypeError as exc:
            raise TypeError(
                f"step {name!r}: its result or the shared state cannot be checkpointed: {exc}; "
                "return JSON-serialisable values or use Step(..., checkpoint=False)"
            ) from exc
