"""Record a kernel run and replay it: republish its events, or re-execute it deterministically
with the recorded model responses and tool results and report the first divergence.

How it fits together (the kernel needs no change):

.. code-block:: python

    bus = InMemoryEventBus()
    recorder = ReplayRecorder(bus, RunMetadata.create(model_version="gpt-4o-mini"))
    engine = ExecutionEngine(provider, middleware=[recorder.middleware()])
    agent = Agent(engine=engine, tools=recorder.wrap_tools([search, calculate]))
    kernel = RuntimeKernel(engine, agent, event_bus=bus)

    await recorder.start(initial_input={"prompt": "Hello"})
    await (await kernel.execute(ExecutionRequest(prompt="Hello"))).result()
    recording = await recorder.stop()

    result = await ReplayPlayer(recording, bus, agent=agent).replay(mode=ReplayMode.DETERMINISTIC)
    assert result.success, result.divergence
"""

from __future__ import annotations

from .exchange import ReplayedFailure, ReplayExhaustedError, ReplayToolMismatchError, current_tool_call_id
from .models import (
    FORMAT_NAME,
    FORMAT_VERSION,
    VOLATILE_DATA_KEYS,
    EventFingerprint,
    RecordedEvent,
    Recording,
    ReplayError,
    ReplayIssue,
    ReplayStateError,
    ReplayValidationError,
    RunMetadata,
)
from .player import KernelFactory, ReplayDivergence, ReplayMode, ReplayPlayer, ReplayProvider, ReplayResult
from .recorder import ReplayRecorder

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "VOLATILE_DATA_KEYS",
    "RunMetadata",
    "EventFingerprint",
    "RecordedEvent",
    "Recording",
    "ReplayIssue",
    "ReplayError",
    "ReplayValidationError",
    "ReplayStateError",
    "ReplayExhaustedError",
    "ReplayToolMismatchError",
    "ReplayedFailure",
    "ReplayRecorder",
    "ReplayPlayer",
    "ReplayMode",
    "ReplayResult",
    "ReplayDivergence",
    "ReplayProvider",
    "KernelFactory",
    "current_tool_call_id",
]
