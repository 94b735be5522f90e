"""The built-in patterns: chain, parallel fan-out, map-reduce, planner/executor and debate.

Each is an Operator whose children run through ``context.run_child``; none of them retries,
sleeps or keeps its own job state: retries belong to llm-client, job states to the JobManager.
Fan-outs are grouped under one intermediate "stage" child (``<name>.map``, ``<name>.subtasks``,
``<name>.round<N>``) so the job tree reads like the pattern and ``max_child_jobs`` bounds the width
of one fan-out rather than the number of model calls in the whole pattern.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ValidationError
from .base import (
    AgentOperator,
    AgentRole,
    Operator,
    OperatorLike,
    OperatorResult,
    as_operator,
    default_prompt,
    operators_of,
    positive_int,
    sum_usage,
)
from .context import OperatorContext, gather_children
from .errors import OperatorFailedError, OrchestrationLimitError, PlanParseError

__all__ = [
    "ChainOperator",
    "ParallelOperator",
    "MapReduceOperator",
    "PlannerExecutorOperator",
    "DebateOperator",
    "Subtask",
    "parse_plan",
]

Aggregator = Callable[[list[OperatorResult]], Any]


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise ValidationError(f"name must be a non-empty string, got {name!r}")
    return name


def _failures_text(results: Sequence[OperatorResult]) -> str:
    return "; ".join(f"{r.operator_name}: {r.error}" for r in results if not r.success)


def _first_exception(results: Sequence[OperatorResult]) -> BaseException | None:
    return next((r.exception for r in results if not r.success and r.exception is not None), None)


class _Stage(Operator):
    """One fan-out: run each (operator, input, name) as a child, bounded by ``max_parallel``.

    Succeeds when every child did, or (``require_all=False``) when at least one did. When
    sequential, ``chain_inputs`` may add earlier results to each next input.
    """

    def __init__(
        self,
        name: str,
        jobs: Sequence[tuple[Operator, dict[str, Any], str]],
        *,
        parallel: bool,
        max_parallel: int | None = None,
        require_all: bool = True,
        chain_inputs: Callable[[dict[str, Any], list[OperatorResult]], dict[str, Any]] | None = None,
    ) -> None:
        self._name = name
        self._jobs = list(jobs)
        self._parallel = parallel
        self._max_parallel = max_parallel
        self._require_all = require_all
        self._chain_inputs = chain_inputs

    @property
    def name(self) -> str:
        return self._name

    @property
    def role(self) -> AgentRole:
        return AgentRole.COORDINATOR

    async def execute(self, input_data: dict[str, Any], context: OperatorContext) -> OperatorResult:
        context.require_child_slots(len(self._jobs))
        parallel = self._parallel and context.parallel
        if parallel:
            bound = asyncio.Semaphore(self._max_parallel) if self._max_parallel else None

            async def one(op: Operator, data: dict[str, Any], name: str) -> OperatorResult:
                if bound is None:
                    return await context.run_child(op, data, name=name)
                async with bound:
                    return await context.run_child(op, data, name=name)

            results = await gather_children(one(op, data, name) for op, data, name in self._jobs)
        else:
            results = []
            for op, data, name in self._jobs:
                if self._chain_inputs is not None:
                    data = self._chain_inputs(data, results)
                results.append(await context.run_child(op, data, name=name))
        ok = [r for r in results if r.success]
        success = len(ok) == len(results) or (not self._require_all and bool(ok))
        return OperatorResult(
            content=[r.content for r in results],
            success=success,
            operator_name=self.name,
            role=self.role,
            error=None if success else _failures_text(results),
            usage=sum_usage(results),
            children=results,
            exception=None if success else _first_exception(results),
        )


def _stage_children(stage: OperatorResult) -> list[OperatorResult]:
    """The stage's per-item results; a refused stage has none, so its refusal stands in for them."""
    return stage.children if stage.children else [stage]


class ChainOperator(Operator):
    """Operators one after another, each fed the input updated with the previous step's output.

    By default step ``n+1`` gets the previous input with ``input_key`` (``"text"``) replaced by
    step ``n``'s content; ``transform(previous_input, result)`` replaces that rule. The chain stops
    at the first failed step and says which step failed.
    """

    def __init__(
        self,
        operators: Sequence[OperatorLike],
        *,
        name: str = "chain",
        input_key: str = "text",
        transform: Callable[[dict[str, Any], OperatorResult], Mapping[str, Any]] | None = None,
    ) -> None:
        self.operators = operators_of(operators, "operators", prefix="step", role=AgentRole.SPECIALIST)
        self._name = _check_name(name)
        self.input_key = input_key
        self.transform = transform

    @property
    def name(self) -> str:
        return self._name

    @property
    def role(self) -> AgentRole:
        return AgentRole.COORDINATOR

    @property
    def description(self) -> str:
        return "Runs " + " -> ".join(op.name for op in self.operators)

    async def execute(self, input_data: dict[str, Any], context: OperatorContext) -> OperatorResult:
        current = dict(input_data)
        results: list[OperatorResult] = []
        for step, op in enumerate(self.operators, 1):
            result = await context.run_child(op, current)
            results.append(result)
            if not result.success:
                return OperatorResult.failure(
                    self.name,
                    f"step {step} ({result.operator_name}) failed: {result.error}",
                    role=self.role,
                    exception=result.exception,
                    children=results,
                    usage=sum_usage(results),
                    metadata={"failed_step": step},
                )
            if self.transform is not None:
                current = dict(self.transform(current, result))
            else:
                current = {**current, self.input_key: result.content}
        return OperatorResult(
            content=results[-1].content,
            operator_name=self.name,
            role=self.role,
            usage=sum_usage(results),
            children=results,
            metadata={"steps": len(results)},
        )


class ParallelOperator(Operator):
    """The same input to several operators at once; an aggregator combines what they return.

    The aggregator gets the successful results in operator order (sync or async; by default the
    list of their contents). With ``require_all_success`` one failure fails the whole; without it,
    failures are listed in ``metadata["failed"]`` and only an all-failed run fails.
    """

    def __init__(
        self,
        operators: Sequence[OperatorLike],
        aggregator: Aggregator | None = None,
        require_all_success: bool = True,
        *,
        name: str = "parallel",
    ) -> None:
        self.operators = operators_of(operators, "operators", prefix="branch", role=AgentRole.SPECIALIST)
        if aggregator is not None and not callable(aggregator):
            raise ValidationError(f"aggregator must be callable, got {type(aggregator).__name__}")
        self.aggregator = aggregator
        self.require_all_success = require_all_success
        self._name = _check_name(name)

    @property
    def name(self) -> str:
        return self._name

    @property
    def role(self) -> AgentRole:
        return AgentRole.COORDINATOR

    async def execute(self, input_data: dict[str, Any], context: OperatorContext) -> OperatorResult:
        try:
            context.require_child_slots(len(self.operators))
        except OrchestrationLimitError as exc:
            return OperatorResult.failure(self.name, exc, role=self.role)
        results = await gather_children(
            (context.run_child(op, input_data) for op in self.operators), parallel=context.parallel
        )
        failed = [r for r in results if not r.success]
        ok = [r for r in results if r.success]
        common: dict[str, Any] = {
            "role": self.role,
            "usage": sum_usage(results),
            "children": results,
        }
        meta = {"failed": {r.operator_name: r.error for r in failed}, "succeeded": len(ok)}
        if failed and (self.require_all_success or not ok):
            what = "all" if not ok else f"{len(failed)} of {len(results)}"
            return OperatorResult.failure(
                self.name,
                f"{what} operators failed: {_failures_text(results)}",
                exception=_first_exception(results),
                metadata=meta,
                **common,
            )
        try:
            content = await _aggregate(self.aggregator, ok)
        except Exception as exc:
            return OperatorResult.failure(
                self.name, f"aggregator failed: {type(exc).__name__}: {exc}", exception=exc, **common
            )
        return OperatorResult(content=content, operator_name=self.name, metadata=meta, **common)


async def _aggregate(aggregator: Aggregator | None, results: list[OperatorResult]) -> Any:
    if aggregator is None:
        return [r.content for r in results]
    value = aggregator(results)
    if inspect.isawaitable(value):
        value = await value
    return value


class MapReduceOperator(Operator):
    """``map_operator`` over every item of ``input_data[input_key]``, then ``reduce_operator`` once.

    At most ``max_parallel`` map children run at once (and never more than the config's
    ``max_parallel``). Each map child gets the input without the item list, plus ``item_key``
    (``"text"``) set to the item and ``index``; a mapping item is merged in instead. The reducer
    gets ``results`` (map contents in item order) and ``item_key`` set to them joined as text.
    Any failed item fails the whole unless ``allow_partial``; then the reducer sees the successes.
    """

    def __init__(
        self,
        map_operator: OperatorLike,
        reduce_operator: OperatorLike | None = None,
        input_key: str = "items",
        max_parallel: int = 5,
        *,
        item_key: str = "text",
        allow_partial: bool = False,
        name: str = "map_reduce",
    ) -> None:
        self.map_operator = as_operator(map_operator, name="map")
        self.reduce_operator = (
            None if reduce_operator is None else as_operator(reduce_operator, name="reduce")
        )
        self.input_key = input_key
        self.item_key = item_key
        self.max_parallel = positive_int("max_parallel", max_parallel)
        self.allow_partial = allow_partial
        self._name = _check_name(name)

    @property
    def name(self) -> str:
        return self._name

    @property
    def role(self) -> AgentRole:
        return AgentRole.COORDINATOR

    async def execute(self, input_data: dict[str, Any], context: OperatorContext) -> OperatorResult:
        items = input_data.get(self.input_key)
        if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Sequence):
            error = ValidationError(
                f"input {self.input_key!r} must be a list of items to map, got {type(items).__name__}"
            )
            return OperatorResult.failure(self.name, error, role=self.role)
        base = {k: v for k, v in input_data.items() if k != self.input_key}
        jobs = []
        for i, item in enumerate(items):
            data = {**base, **item} if isinstance(item, Mapping) else {**base, self.item_key: item}
            data["index"] = i
            jobs.append((self.map_operator, data, f"{self.map_operator.name}[{i}]"))
        stage = _Stage(
            f"{self.name}.map",
            jobs,
            parallel=True,
            max_parallel=self.max_parallel,
            require_all=not self.allow_partial,
        )
        mapped = await context.run_child(stage, base)
        children = [mapped]
        if not mapped.success:
            return OperatorResult.failure(
                self.name,
                f"map failed: {mapped.error}",
                role=self.role,
                exception=mapped.exception,
                usage=mapped.usage,
                children=children,
            )
        ok = [r for r in _stage_children(mapped) if r.success]
        contents = [r.content for r in ok]
        meta = {"mapped": len(items), "failed": len(items) - len(ok)}
        if self.reduce_operator is None:
            return OperatorResult(
                content=contents,
                operator_name=self.name,
                role=self.role,
                usage=mapped.usage,
                children=children,
                metadata=meta,
            )
        reduce_input = {
            **base,
            "results": contents,
            self.item_key: "\n\n".join(str(c) for c in contents),
        }
        reduced = await context.run_child(self.reduce_operator, reduce_input)
        children.append(reduced)
        if not reduced.success:
            return OperatorResult.failure(
                self.name,
                f"reduce failed: {reduced.error}",
                role=self.role,
                exception=reduced.exception,
                usage=sum_usage(children),
                children=children,
                metadata=meta,
            )
        return OperatorResult(
            content=reduced.content,
            operator_name=self.name,
            role=self.role,
            usage=sum_usage(children),
            children=children,
            metadata=meta,
        )


# -- planner / executor ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subtask:
    id: str
    description: str

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "description": self.description}


_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_LIST_ITEM = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+(.+?)\s*$")


def _json_in(text: str) -> Any:
    """The first JSON object or array in ``text`` (models wrap JSON in prose and code fences)."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    for candidate in candidates:
        for i, ch in enumerate(candidate):
            if ch in "{[":
                try:
                    value, _ = decoder.raw_decode(candidate, i)
                except json.JSONDecodeError:
                    continue
                return value
    raise ValueError("no JSON object or array found")


_DESCRIPTION_KEYS = ("description", "task", "subtask", "title", "text")


def parse_plan(output: Any) -> list[Subtask]:
    """Subtasks from a planner's answer: JSON (``{"subtasks": [...]}`` or a list; items strings or
    objects with a ``description``), else a numbered or bulleted list. Raises PlanParseError.
    """
    if isinstance(output, str):
        try:
            data: Any = _json_in(output)
        except ValueError:
            lines = [m.group(1) for m in map(_LIST_ITEM.match, output.splitlines()) if m]
            if not lines:
                raise PlanParseError("neither JSON nor a numbered/bulleted list", output) from None
            data = lines
    else:
        data = output
    if isinstance(data, Mapping):
        for key in ("subtasks", "tasks", "steps", "plan"):
            if key in data:
                data = data[key]
                break
        else:
            raise PlanParseError("a JSON object without a 'subtasks' list", output)
    if isinstance(data, (str, bytes)) or not isinstance(data, Sequence):
        raise PlanParseError(f"subtasks must be a list, got {type(data).__name__}", output)
    subtasks: list[Subtask] = []
    for n, item in enumerate(data, 1):
        if isinstance(item, str):
            description: Any = item
            ident: Any = n
        elif isinstance(item, Mapping):
            description = next((item[k] for k in _DESCRIPTION_KEYS if isinstance(item.get(k), str)), None)
            ident = item.get("id", n)
        else:
            raise PlanParseError(f"subtask {n} is a {type(item).__name__}, not text or an object", output)
        if not isinstance(description, str) or not description.strip():
            raise PlanParseError(f"subtask {n} has no description", output)
        subtasks.append(Subtask(str(ident), description.strip()))
    if not subtasks:
        raise PlanParseError("the plan has no subtasks", output)
    return subtasks


PLANNER_PROMPT = (
    "Break the task below into at most {max_subtasks} subtasks that can be worked on separately.\n"
    'Answer with JSON only: {{"subtasks": [{{"id": "1", "description": "..."}}]}}\n\n'
    "Task: {task}"
)


class PlannerExecutorOperator(Operator):
    """A planner splits the task into subtasks, an executor does each, a synthesizer combines them.

    The planner's answer is parsed into :class:`Subtask` objects (see :func:`parse_plan`); an
    unparsable or empty plan is a failed result carrying PlanParseError, and nothing is executed.
    Plans longer than ``max_subtasks`` are cut to that length (``metadata["dropped_subtasks"]``).
    Subtasks run in parallel unless ``parallel_execution`` is False (or the config says so); run
    sequentially, each executor prompt includes the results so far. Without a synthesizer the
    content is the subtask results joined.
    """

    def __init__(
        self,
        planner: OperatorLike,
        executor: OperatorLike,
        synthesizer: OperatorLike | None = None,
        max_subtasks: int = 10,
        parallel_execution: bool = True,
        *,
        name: str = "planner_executor",
    ) -> None:
        self.planner = _agent_or_operator(planner, "planner", AgentRole.PLANNER)
        self.executor = _agent_or_operator(executor, "executor", AgentRole.EXECUTOR)
        self.synthesizer = (
            None
            if synthesizer is None
            else _agent_or_operator(synthesizer, "synthesizer", AgentRole.SYNTHESIZER)
        )
        self.max_subtasks = positive_int("max_subtasks", max_subtasks)
        self.parallel_execution = parallel_execution
        self._name = _check_name(name)

    @property
    def name(self) -> str:
        return self._name

    @property
    def role(self) -> AgentRole:
        return AgentRole.COORDINATOR

    async def execute(self, input_data: dict[str, Any], context: OperatorContext) -> OperatorResult:
        task = input_data.get("task")
        if not isinstance(task, str) or not task.strip():
            task = default_prompt(input_data)
        children: list[OperatorResult] = []

        def failed(message: str, exc: BaseException | None, **meta: Any) -> OperatorResult:
            return OperatorResult.failure(
                self.name,
                message,
                role=self.role,
                exception=exc,
                usage=sum_usage(children),
                children=children,
                metadata=meta,
            )

        plan_input = {
            **input_data,
            "task": task,
            "max_subtasks": self.max_subtasks,
            "prompt": PLANNER_PROMPT.format(max_subtasks=self.max_subtasks, task=task),
        }
        planned = await context.run_child(self.planner, plan_input)
        children.append(planned)
        if not planned.success:
            return failed(f"planner failed: {planned.error}", planned.exception)
        try:
            subtasks = parse_plan(planned.content)
        except PlanParseError as exc:
            return failed(str(exc), exc)
        dropped = max(len(subtasks) - self.max_subtasks, 0)
        subtasks = subtasks[: self.max_subtasks]
        meta: dict[str, Any] = {"subtasks": [s.to_dict() for s in subtasks], "dropped_subtasks": dropped}

        jobs = [
            (
                self.executor,
                {
                    "task": task,
                    "subtask": s.description,
                    "subtask_id": s.id,
                    "prompt": f"Overall task: {task}\n\nYour subtask: {s.description}",
                },
                f"{self.executor.name}[{s.id}]",
            )
            for s in subtasks
        ]
        stage = _Stage(
            f"{self.name}.subtasks",
            jobs,
            parallel=self.parallel_execution,
            chain_inputs=_with_results_so_far,
        )
        executed = await context.run_child(stage, {"task": task})
        children.append(executed)
        if not executed.success:
            return failed(f"subtasks failed: {executed.error}", executed.exception, **meta)
        outputs = [
            {"id": s.id, "subtask": s.description, "result": r.content}
            for s, r in zip(subtasks, executed.children, strict=True)
        ]
        if self.synthesizer is None:
            content: Any = "\n\n".join(str(o["result"]) for o in outputs)
        else:
            listing = "\n".join(f"{i}. {o['subtask']}\n{o['result']}" for i, o in enumerate(outputs, 1))
            synth_input = {
                "task": task,
                "results": outputs,
                "prompt": f"Task: {task}\n\nSubtask results:\n{listing}\n\nWrite the final answer.",
            }
            synthesized = await context.run_child(self.synthesizer, synth_input)
            children.append(synthesized)
            if not synthesized.success:
                return failed(f"synthesizer failed: {synthesized.error}", synthesized.exception, **meta)
            content = synthesized.content
        meta["results"] = outputs
        return OperatorResult(
            content=content,
            operator_name=self.name,
            role=self.role,
            usage=sum_usage(children),
            children=children,
            metadata=meta,
        )


def _with_results_so_far(data: dict[str, Any], done: list[OperatorResult]) -> dict[str, Any]:
    if not done:
        return data
    so_far = "\n".join(f"- {r.operator_name}: {r.content}" for r in done)
    return {
        **data,
        "previous": [r.content for r in done],
        "prompt": f"{data['prompt']}\n\nResults so far:\n{so_far}",
    }


def _agent_or_operator(value: OperatorLike, name: str, role: AgentRole) -> Operator:
    if isinstance(value, Operator):
        return value
    return AgentOperator(value, name=name, role=role)


# -- debate ------------------------------------------------------------------------------------------

_POSITION = re.compile(r"^\s*POSITION\s*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_CONSENSUS = re.compile(r"^\s*CONSENSUS\s*:\s*(yes|no|true|false)\b", re.IGNORECASE | re.MULTILINE)


def _position(content: Any) -> str:
    text = str(content)
    found = _POSITION.findall(text)
    return (found[-1] if found else text).strip()


def _normalise(text: str) -> str:
    return " ".join(text.casefold().split()).rstrip(".!")


def _verdict(content: Any) -> tuple[bool | None, str]:
    """(consensus, summary) from a moderator's answer; consensus None when the answer says neither."""
    text = str(content)
    try:
        data = _json_in(text)
    except ValueError:
        data = None
    if isinstance(data, Mapping) and isinstance(data.get("consensus"), bool):
        summary = data.get("summary") or data.get("answer") or data.get("conclusion") or text
        return data["consensus"], str(summary)
    match = _CONSENSUS.search(text)
    if match:
        return match.group(1).lower() in ("yes", "true"), text
    return None, text


class DebateOperator(Operator):
    """Debaters argue a topic over rounds, each round seeing the previous ones; a moderator judges.

    Debaters are asked to end with ``POSITION: ...``. After each round the moderator (if any) is
    asked for ``{"consensus": bool, "summary": ...}`` (or a ``CONSENSUS: yes|no`` line); an answer
    that says neither counts as no consensus. Without a moderator, consensus means every debater
    states the same position. ``stop_on_consensus`` ends the debate at the first agreeing round.
    The content is the moderator's last summary, else the agreed position, else the last round's
    arguments.
    """

    def __init__(
        self,
        debaters: Sequence[OperatorLike],
        moderator: OperatorLike | None = None,
        max_rounds: int = 3,
        stop_on_consensus: bool = True,
        *,
        name: str = "debate",
    ) -> None:
        self.debaters = operators_of(debaters, "debaters", prefix="debater", role=AgentRole.DEBATER)
        if len(self.debaters) < 2:
            raise ValidationError("a debate needs at least two debaters")
        names = [d.name for d in self.debaters]
        if len(set(names)) != len(names):
            raise ValidationError(f"debater names must be unique, got {names}")
        self.moderator = (
            None if moderator is None else _agent_or_operator(moderator, "moderator", AgentRole.MODERATOR)
        )
        self.max_rounds = positive_int("max_rounds", max_rounds)
        self.stop_on_consensus = stop_on_consensus
        self._name = _check_name(name)

    @property
    def name(self) -> str:
        return self._name

    @property
    def role(self) -> AgentRole:
        return AgentRole.COORDINATOR

    async def execute(self, input_data: dict[str, Any], context: OperatorContext) -> OperatorResult:
        topic = input_data.get("topic")
        if not isinstance(topic, str) or not topic.strip():
            topic = default_prompt(input_data)
        children: list[OperatorResult] = []
        try:
            context.require_child_slots(self.max_rounds * (2 if self.moderator else 1))
        except OrchestrationLimitError as exc:
            return OperatorResult.failure(self.name, exc, role=self.role)
        transcript: list[dict[str, Any]] = []
        consensus = False
        summary: str | None = None
        for round_no in range(1, self.max_rounds + 1):
            prompt = _debate_prompt(topic, transcript, round_no)
            jobs = [(d, {"topic": topic, "round": round_no, "prompt": prompt}, d.name) for d in self.debaters]
            stage = _Stage(f"{self.name}.round{round_no}", jobs, parallel=True)
            argued = await context.run_child(stage, {"topic": topic, "round": round_no})
            children.append(argued)
            if not argued.success:
                return self._failed(f"round {round_no} failed: {argued.error}", argued, children, transcript)
            arguments = {r.operator_name: r.content for r in argued.children}
            positions = {name: _position(c) for name, c in arguments.items()}
            entry: dict[str, Any] = {"round": round_no, "arguments": arguments, "positions": positions}
            if self.moderator is not None:
                judged = await context.run_child(
                    self.moderator,
                    {
                        "topic": topic,
                        "round": round_no,
                        "arguments": arguments,
                        "prompt": _moderator_prompt(topic, round_no, arguments),
                    },
                )
                children.append(judged)
                if not judged.success:
                    return self._failed(f"moderator failed: {judged.error}", judged, children, transcript)
                verdict, summary = _verdict(judged.content)
                consensus = bool(verdict)
                entry["moderator"] = judged.content
                entry["moderator_understood"] = verdict is not None
            else:
                consensus = len({_normalise(p) for p in positions.values()}) == 1
            entry["consensus"] = consensus
            transcript.append(entry)
            if consensus and self.stop_on_consensus:
                break
        last = transcript[-1]
        if summary is not None:
            content: Any = summary
        elif consensus:
            content = next(iter(last["positions"].values()))
        else:
            content = "\n\n".join(f"{name}: {text}" for name, text in last["arguments"].items())
        return OperatorResult(
            content=content,
            operator_name=self.name,
            role=self.role,
            usage=sum_usage(children),
            children=children,
            metadata={"rounds": len(transcript), "consensus": consensus, "transcript": transcript},
        )

    def _failed(
        self, message: str, failed: OperatorResult, children: list[OperatorResult], transcript: list[Any]
    ) -> OperatorResult:
        return OperatorResult.failure(
            self.name,
            message,
            role=self.role,
            exception=failed.exception or OperatorFailedError(failed.operator_name, failed.error),
            usage=sum_usage(children),
            children=children,
            metadata={"rounds": len(transcript), "consensus": False, "transcript": transcript},
        )


def _debate_prompt(topic: str, transcript: list[dict[str, Any]], round_no: int) -> str:
    parts = [f"Debate topic: {topic}"]
    for entry in transcript:
        parts.append(f"Round {entry['round']} arguments:")
        parts.extend(f"- {name}: {text}" for name, text in entry["arguments"].items())
    parts.append(
        f"Round {round_no}: give your argument, answering the others if there are any. "
        "End with a line 'POSITION: <your answer in a few words>'."
    )
    return "\n".join(parts)


def _moderator_prompt(topic: str, round_no: int, arguments: Mapping[str, Any]) -> str:
    lines = "\n".join(f"- {name}: {text}" for name, text in arguments.items())
    return (
        f"Debate topic: {topic}\nRound {round_no} arguments:\n{lines}\n\n"
        'Do the debaters agree? Answer with JSON only: {"consensus": true or false, "summary": "..."}'
    )
