"""The framework's own typed errors.

Problems with tools, their schemas and their arguments are llm-client's errors
(``ToolSchemaError``, ``ToolArgumentsError``, ...): the framework adds only what llm-client has no
notion of (prompts, routes, journey state), so callers catch one error per kind of mistake.
"""

from __future__ import annotations

__all__ = [
    "FrameworkError",
    "PromptTemplateError",
    "MissingPromptVariableError",
    "UnknownStepPromptError",
    "UnknownRouteError",
    "StateDataError",
    "MissingToolExecutorError",
]


class FrameworkError(Exception):
    """Base class of the framework's own errors (never retryable: they are bad input)."""

    retryable = False


class PromptTemplateError(FrameworkError, ValueError):
    """A prompt template is malformed (e.g. a lone ``$`` or ``${`` without a closing brace)."""


class MissingPromptVariableError(FrameworkError, KeyError):
    """A template was rendered without a value for one of its variables; ``.variable`` names it."""

    def __init__(self, variable: str, template: str) -> None:
        self.variable = variable
        self.template = template
        super().__init__(
            f"prompt variable {variable!r} has no value: pass {variable}=... or give it a default "
            f"(template: {template[:60]!r})"
        )

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class UnknownStepPromptError(FrameworkError, LookupError):
    """A step has no prompt and the mapping has no default."""


class UnknownRouteError(FrameworkError, LookupError):
    """A routing tool call names no registered route; ``.known`` lists the routes that exist."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        listed = ", ".join(repr(k) for k in known) or "none registered"
        super().__init__(f"no route named {name!r}; known routes: {listed}")


class StateDataError(FrameworkError, ValueError):
    """A stored state dict cannot be turned back into a journey state (wrong type, unknown step)."""


class MissingToolExecutorError(FrameworkError, TypeError):
    """An Executor was given declaration-only tool schemas but no ``tool_executor`` to run them."""
