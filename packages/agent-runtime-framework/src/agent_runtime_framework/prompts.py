"""Prompts per journey step: templates, a step -> prompt mapping, and a manager that fills them
from the state.

Templates use ``string.Template`` syntax (``$name``, ``${name}``, ``$$`` for a dollar sign): prompts
are prose full of braces (JSON examples), which ``str.format`` would trip over. A plain string in a
mapping is used verbatim (it is not a template), so a prompt mentioning "$5" needs no escaping
unless it is wrapped in :class:`PromptTemplate`.
"""

from __future__ import annotations

import enum
import string
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from .errors import MissingPromptVariableError, PromptTemplateError, UnknownStepPromptError

__all__ = ["PromptTemplate", "StepPromptMapping", "PromptManager"]

StepT = TypeVar("StepT")


class PromptTemplate:
    """``PromptTemplate("Hello $name!", defaults={"name": "there"}).render(name="Alice")``.

    A malformed template raises :class:`PromptTemplateError` when built; rendering without a value
    (or default) for a variable raises :class:`MissingPromptVariableError` naming it. Extra values
    are ignored, so one set of values can serve every step's template.
    """

    def __init__(self, template: str, defaults: Mapping[str, Any] | None = None) -> None:
        if not isinstance(template, str):
            raise TypeError(f"template must be a str, got {type(template).__name__}")
        self.template = template
        self.defaults = dict(defaults or {})
        self._template = string.Template(template)
        if not self._template.is_valid():
            raise PromptTemplateError(
                f"invalid prompt template {template[:60]!r}: use $name or ${{name}}, and $$ for a dollar sign"
            )
        self.variables: tuple[str, ...] = tuple(self._template.get_identifiers())

    def render(self, **values: Any) -> str:
        merged = {**self.defaults, **values} if self.defaults else values
        try:
            return self._template.substitute(merged)
        except KeyError as exc:
            raise MissingPromptVariableError(str(exc.args[0]), self.template) from None

    def __repr__(self) -> str:
        return f"PromptTemplate({self.template[:40]!r}, variables={list(self.variables)!r})"


Prompt = str | PromptTemplate


class StepPromptMapping(Generic[StepT]):
    """The prompt of each step, with an optional ``default`` for steps without one."""

    def __init__(self, prompts: Mapping[StepT, Prompt] | None = None, default: Prompt | None = None) -> None:
        self.prompts: dict[StepT, Prompt] = {}
        for step, prompt in (prompts or {}).items():
            self.add(step, prompt)
        self.default = _checked(default) if default is not None else None

    def add(self, step: StepT, prompt: Prompt, /) -> None:
        """Set (or replace) the prompt of ``step``."""
        self.prompts[step] = _checked(prompt)

    def get(self, step: StepT, /, **values: Any) -> str:
        """The step's prompt, rendered with ``values`` when it is a template."""
        prompt = self.prompts.get(step, self.default)
        if prompt is None:
            known = ", ".join(repr(_label(s)) for s in self.prompts) or "none"
            raise UnknownStepPromptError(
                f"no prompt for step {_label(step)!r} and no default (steps: {known})"
            )
        return prompt if isinstance(prompt, str) else prompt.render(**values)

    def __contains__(self, step: object) -> bool:
        return step in self.prompts


class PromptManager(Generic[StepT]):
    """Renders the current step's prompt from a state: the values are ``step`` (the step's value),
    then what ``context_enricher(state)`` returns, then the caller's extra values."""

    def __init__(
        self,
        mapping: StepPromptMapping[StepT],
        context_enricher: Callable[[Any], Mapping[str, Any]] | None = None,
    ) -> None:
        self.mapping = mapping
        self.context_enricher = context_enricher

    def get_prompt(self, state: Any, **extra: Any) -> str:
        step: StepT = state.step
        values: dict[str, Any] = {"step": _label(step)}
        if self.context_enricher is not None:
            values.update(self.context_enricher(state))
        values.update(extra)
        return self.mapping.get(step, **values)


def _checked(prompt: Prompt) -> Prompt:
    if not isinstance(prompt, str | PromptTemplate):
        raise TypeError(f"a prompt must be a str or a PromptTemplate, got {type(prompt).__name__}")
    return prompt


def _label(step: Any) -> Any:
    return step.value if isinstance(step, enum.Enum) else step
