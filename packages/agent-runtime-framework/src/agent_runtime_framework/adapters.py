"""Running a journey under a host runtime (the Django app, a worker) through core's contract only.

:class:`RuntimeAdapter` is a journey agent whose ``create_tools`` also receives a
``backend_client`` (the host's API or database client), with the seed adapter's signature
``create_tools(state, ctx, backend_client)``. Everything a host needs comes from core:

* the host's ``RunContext`` becomes an :class:`~agent_runtime_framework.AgentContext`;
* state is kept through ``RunContext.checkpoint``/``get_state`` (the host's checkpoint system);
* events go through ``RunContext.emit`` (the host's event bus);
* the result is a core ``RunResult``.

This module imports neither Django nor the Django package (the layering forbids it).
``DjangoRuntimeAdapter`` is exported here as an alias of ``RuntimeAdapter``, so the seed's
``from agent_runtime_framework.adapters import DjangoRuntimeAdapter`` works; the Django package
builds its own registration on top of it.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from .agent import JourneyRuntime, StateT, StepT, ToolsT
from .context import AgentContext

__all__ = ["RuntimeAdapter", "CoreRuntimeAdapter", "DjangoRuntimeAdapter"]


class RuntimeAdapter(JourneyRuntime[StateT, ToolsT, StepT]):
    """A journey agent for a host runtime. ``backend_client`` is given at construction, or computed
    per run by overriding :meth:`get_backend_client`."""

    def __init__(self, llm_client: Any = None, *, backend_client: Any = None, **kwargs: Any) -> None:
        super().__init__(llm_client, **kwargs)
        self.backend_client = backend_client

    def get_backend_client(self, ctx: AgentContext) -> Any:
        """The client handed to ``create_tools`` for this run (default: the constructor's)."""
        return self.backend_client

    @abstractmethod
    def create_tools(self, state: StateT, ctx: AgentContext, backend_client: Any) -> ToolsT:
        """The object the step's tools run on, for one run."""

    def _build_tools(self, state: StateT, ctx: AgentContext) -> ToolsT:
        return self.create_tools(state, ctx, self.get_backend_client(ctx))


CoreRuntimeAdapter = RuntimeAdapter
DjangoRuntimeAdapter = RuntimeAdapter
