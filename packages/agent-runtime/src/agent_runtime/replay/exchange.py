"""Model calls and tool calls as plain JSON data, and back.

A deterministic replay must hand the agent *the same* CompletionResult it got the first time, and
a replayed failure must read exactly like the original one (the kernel puts the exception's type
name and text into FINAL_ERROR / TOOL_ERROR events, which are fingerprinted). So the conversions
here are exact round trips, and a failure is rebuilt under its original class name.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from typing import Any

import llm_client.errors as llm_errors
from llm_client import CompletionResult, LLMClientError, RequestSpec, ToolCall, Usage

from .models import ReplayError, _digest, to_plain

__all__ = [
    "ReplayExhaustedError",
    "ReplayedFailure",
    "ReplayToolMismatchError",
    "current_tool_call_id",
    "error_from_dict",
    "error_to_dict",
    "request_digest",
    "request_to_dict",
    "result_from_dict",
    "result_to_dict",
]


class ReplayExhaustedError(ReplayError, LLMClientError):
    """The replayed run asked the model more often than the recording answered.

    Also an ``LLMClientError``, so it travels the same path as any provider failure (the job fails
    with it and the divergence is reported at that event) instead of crashing the replay.
    """


class ReplayToolMismatchError(ReplayError):
    """A replayed tool was called for a tool call the recording has no result for."""


class ReplayedFailure(Exception):
    """Base of the exceptions rebuilt from a recording under the recorded class name."""


_current_call: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "agent_runtime_replay_tool_call", default=None
)


def current_tool_call_id() -> str | None:
    """The id of the tool call whose (recorder-wrapped) handler is running, when it is known."""
    return _current_call.get()


def set_tool_call_id(call_id: str | None) -> contextvars.Token[str | None]:
    return _current_call.set(call_id)


def reset_tool_call_id(token: contextvars.Token[str | None]) -> None:
    _current_call.reset(token)


# --- requests -----------------------------------------------------------------------------------


def request_to_dict(spec: RequestSpec) -> dict[str, Any]:
    """Everything the model is shown (the timeout is not: it changes nothing the model sees)."""
    out: dict[str, Any] = to_plain(
        {
            "messages": list(spec.messages),
            "model": spec.model,
            "tools": list(spec.tools),
            "tool_choice": spec.tool_choice,
            "parallel_tool_calls": spec.parallel_tool_calls,
            "temperature": spec.temperature,
            "top_p": spec.top_p,
            "max_tokens": spec.max_tokens,
            "stop": None if spec.stop is None else list(spec.stop),
            "response_format": spec.response_format,
            "reasoning_effort": spec.reasoning_effort,
            "thinking_budget": spec.thinking_budget,
            "extra": dict(spec.extra),
        }
    )
    return out


def request_digest(spec: RequestSpec) -> str:
    return _digest(request_to_dict(spec))


# --- results ------------------------------------------------------------------------------------


def result_to_dict(result: CompletionResult) -> dict[str, Any]:
    out: dict[str, Any] = to_plain(
        {
            "content": result.content,
            "tool_calls": [tc.to_dict() for tc in result.tool_calls],
            "usage": result.usage.to_dict(),
            "model": result.model,
            "finish_reason": result.finish_reason,
            "reasoning": result.reasoning,
            "provider": result.provider,
        }
    )
    return out


def result_from_dict(data: Mapping[str, Any]) -> CompletionResult:
    usage = data.get("usage")
    return CompletionResult(
        content=data.get("content"),
        tool_calls=tuple(ToolCall.from_dict(tc) for tc in data.get("tool_calls") or ()),
        usage=Usage.from_dict(dict(usage)) if usage else Usage(),
        model=data.get("model"),
        finish_reason=data.get("finish_reason"),
        reasoning=data.get("reasoning"),
        provider=data.get("provider"),
    )


# --- failures -----------------------------------------------------------------------------------


def error_to_dict(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, LLMClientError):
        return {
            "type": type(exc).__name__,
            "message": exc.message,
            "provider": exc.provider,
            "status_code": exc.status_code,
        }
    return {"type": type(exc).__name__, "message": str(exc), "provider": None, "status_code": None}


_rebuilt: dict[tuple[str, type[Exception]], type[Exception]] = {}


def _named(name: str, base: type[Exception]) -> type[Exception]:
    """An exception class called ``name`` (so messages built from ``type(exc).__name__`` match)."""
    key = (name, base)
    cls = _rebuilt.get(key)
    if cls is None:
        cls = _rebuilt[key] = type(name, (base,), {"__module__": __name__})
    return cls


class _ReplayedModelError(ReplayedFailure, LLMClientError):
    """A model failure of a class llm-client does not define, rebuilt under its recorded name."""


def error_from_dict(data: Mapping[str, Any], *, model_call: bool) -> Exception:
    """The recorded failure, as an exception whose type name and text equal the original's.

    A model failure becomes the llm-client error class of that name when there is one (so retry
    flags and ``isinstance`` checks behave as before); anything else gets a stand-in class of the
    recorded name.
    """
    name = str(data.get("type") or "Exception")
    message = str(data.get("message") or "")
    if model_call:
        cls = getattr(llm_errors, name, None)
        if isinstance(cls, type) and issubclass(cls, LLMClientError):
            try:
                return cls(message, provider=data.get("provider"), status_code=data.get("status_code"))
            except TypeError:
                pass
        if not name.isidentifier():
            name = "ReplayedModelError"
        return _named(name, _ReplayedModelError)(message)
    if not name.isidentifier():
        name = "ReplayedToolError"
    return _named(name, ReplayedFailure)(message)
