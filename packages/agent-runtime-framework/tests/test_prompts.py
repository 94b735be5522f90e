"""PromptTemplate, StepPromptMapping and PromptManager."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import pytest
from agent_runtime_framework import (
    MissingPromptVariableError,
    PromptManager,
    PromptTemplate,
    PromptTemplateError,
    StepPromptMapping,
    UnknownStepPromptError,
)


class Step(StrEnum):
    A = "a"
    B = "b"


def test_template_syntax_defaults_and_escapes() -> None:
    t = PromptTemplate("Hi ${name}, it costs $$5 at $place.", defaults={"place": "home"})
    assert t.variables == ("name", "place")
    assert t.render(name="Ann") == "Hi Ann, it costs $5 at home."
    assert t.render(name="Ann", place="work", unused=1) == "Hi Ann, it costs $5 at work."


def test_missing_variable_names_it() -> None:
    t = PromptTemplate("Hello $name at $step")
    with pytest.raises(MissingPromptVariableError) as info:
        t.render(step="a")
    assert info.value.variable == "name"
    assert "prompt variable 'name' has no value" in str(info.value)
    assert isinstance(info.value, KeyError)


def test_malformed_template_fails_when_built() -> None:
    with pytest.raises(PromptTemplateError, match="invalid prompt template"):
        PromptTemplate("costs $5")
    with pytest.raises(TypeError):
        PromptTemplate(3)  # type: ignore[arg-type]


def test_mapping_plain_strings_are_verbatim_and_unknown_steps_fail() -> None:
    mapping = StepPromptMapping[Step]({Step.A: "Pay $5 now"})
    assert mapping.get(Step.A, name="x") == "Pay $5 now"
    assert Step.A in mapping and Step.B not in mapping
    with pytest.raises(UnknownStepPromptError, match="no prompt for step 'b' and no default"):
        mapping.get(Step.B)
    with pytest.raises(TypeError, match="str or a PromptTemplate"):
        mapping.add(Step.B, 42)  # type: ignore[arg-type]


def test_manager_fills_step_enricher_and_extra_values() -> None:
    @dataclass
    class State:
        step: Step
        name: str

    manager = PromptManager[Step](
        StepPromptMapping({Step.A: PromptTemplate("[$step] $user_name $mood")}),
        context_enricher=lambda s: {"user_name": s.name, "mood": "calm"},
    )
    assert manager.get_prompt(State(Step.A, "Ann")) == "[a] Ann calm"
    assert manager.get_prompt(State(Step.A, "Ann"), mood="happy") == "[a] Ann happy"
