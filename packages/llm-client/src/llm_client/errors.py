"""Typed errors for everything that can go wrong when talking to a model.

Provider SDKs each raise their own exception hierarchy; callers should not have to know which SDK
sits underneath. Every provider maps its SDK's errors onto these classes, keeping the original
exception as ``original`` (and as ``__cause__``) so nothing the provider said is lost.
``retryable`` is the single fact the retry middleware looks at.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "LLMClientError",
    "ProviderError",
    "AuthenticationError",
    "PermissionDeniedError",
    "RateLimitError",
    "ContextLengthError",
    "ContentFilterError",
    "RequestTimeoutError",
    "ProviderConnectionError",
    "InvalidRequestError",
    "MalformedResponseError",
    "StreamInterruptedError",
    "RequestCancelledError",
    "InvalidMessageError",
    "ToolSchemaError",
    "ToolArgumentsError",
    "ToolNotFoundError",
    "ToolExecutionError",
    "IdempotencyConflictError",
    "BudgetExceededError",
    "MockExhaustedError",
    "MaxTurnsExceededError",
    "MissingDependencyError",
    "ToolInterrupt",
    "AgentInterrupted",
]


class LLMClientError(Exception):
    """Base class of every error raised by llm-client."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status_code: int | None = None,
        original: BaseException | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status_code = status_code
        self.original = original
        if original is not None:
            self.__cause__ = original

    def __str__(self) -> str:
        where = f"[{self.provider}] " if self.provider else ""
        code = f" (HTTP {self.status_code})" if self.status_code else ""
        return f"{where}{self.message}{code}"


# --- errors a provider reports -------------------------------------------------------------------


class ProviderError(LLMClientError):
    """The provider failed on its side (5xx, overloaded, unknown failure). Retryable."""

    retryable = True


class AuthenticationError(LLMClientError):
    """The API key is missing, invalid or expired. Never retried: fix the credentials."""


class PermissionDeniedError(LLMClientError):
    """The key is valid but may not use this model or endpoint."""


class RateLimitError(LLMClientError):
    """HTTP 429. ``retry_after`` holds the seconds the provider asked us to wait, when it said."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        provider: str | None = None,
        status_code: int | None = 429,
        original: BaseException | None = None,
    ) -> None:
        super().__init__(message, provider=provider, status_code=status_code, original=original)
        self.retry_after = retry_after


class ContextLengthError(LLMClientError):
    """The prompt plus requested output does not fit the model's context window."""


class ContentFilterError(LLMClientError):
    """The provider refused or cut the output on content-policy grounds."""


class RequestTimeoutError(LLMClientError):
    """The request did not finish within its timeout. Retryable."""

    retryable = True


class ProviderConnectionError(LLMClientError):
    """The connection failed or dropped before a complete answer arrived. Retryable."""

    retryable = True


class InvalidRequestError(LLMClientError):
    """The provider rejected the request as malformed (HTTP 400/404/422)."""


class MalformedResponseError(LLMClientError):
    """The provider's answer could not be parsed (bad JSON, a broken stream chunk)."""

    retryable = True


class StreamInterruptedError(LLMClientError):
    """A stream failed after it had already yielded output; it is never retried automatically.

    ``partial_text`` holds the text that had arrived before the failure.
    """

    def __init__(
        self,
        message: str,
        *,
        partial_text: str = "",
        provider: str | None = None,
        original: BaseException | None = None,
    ) -> None:
        super().__init__(message, provider=provider, original=original)
        self.partial_text = partial_text


class RequestCancelledError(LLMClientError):
    """The request's CancellationToken was cancelled."""


# --- errors in what the caller passed ------------------------------------------------------------


class InvalidMessageError(LLMClientError, ValueError):
    """A message is not a valid chat message (unknown role, missing content, bad tool call)."""


class ToolSchemaError(LLMClientError, TypeError):
    """A JSON schema cannot be built for a tool function (unsupported parameter type, *args, ...)."""


class ToolArgumentsError(LLMClientError, ValueError):
    """Tool-call arguments are not valid JSON or do not fit the tool's schema."""


class ToolNotFoundError(LLMClientError, LookupError):
    """The model called a tool that is not registered."""


class ToolExecutionError(LLMClientError):
    """A tool raised while running; ``original`` is what it raised."""


class IdempotencyConflictError(LLMClientError):
    """An idempotency key was reused with a different request."""


class BudgetExceededError(LLMClientError):
    """A call would go over the token or cost limit carried in the RequestContext."""


class MockExhaustedError(LLMClientError, AssertionError):
    """A MockProvider was called more times than it had scripted responses."""


class MaxTurnsExceededError(LLMClientError):
    """The Agent's tool loop hit ``max_turns`` without a final answer.

    ``result`` holds the run so far (messages, usage, tool calls), so nothing already paid for is lost.
    """

    def __init__(self, message: str, *, result: object = None) -> None:
        super().__init__(message)
        self.result = result


class ToolInterrupt(Exception):
    """Raised by a tool to pause the agent run instead of failing the tool call.

    The Agent does not turn it into a tool message: it lets the other tool calls of the turn
    finish, then stops with :class:`AgentInterrupted`, carrying everything needed to resume later
    without calling the model again. The kernel's ``ActionRequiredError`` (human approval) is one.
    """


class AgentInterrupted(LLMClientError):
    """An Agent run stopped because a tool raised :class:`ToolInterrupt`.

    ``messages`` is the conversation up to and including the assistant message with the tool
    calls; ``completed`` maps each finished tool call id to its tool message, so a resumed run does
    not execute those calls again; ``pending`` is the interrupted call; ``interrupt`` is what the
    tool raised. Resume with :meth:`resume_messages` once the pending call has a result.
    """

    def __init__(
        self,
        interrupt: ToolInterrupt,
        *,
        messages: list[dict[str, Any]],
        completed: dict[str, dict[str, Any]],
        pending: list[Any],
        usage: Any = None,
        turns: int = 0,
        interrupts: list[ToolInterrupt] | None = None,
    ) -> None:
        names = ", ".join(getattr(c, "name", "?") for c in pending)
        super().__init__(f"agent run paused by tool call(s) {names}: {interrupt}")
        self.interrupt = interrupt
        self.messages = messages
        self.completed = completed
        self.pending = pending
        self.usage = usage
        self.turns = turns
        #: what each pending call raised, in the order of ``pending``
        self.interrupts = interrupts if interrupts is not None else [interrupt]
        self.__cause__ = interrupt

    def resume_messages(self, results: dict[str, str]) -> list[dict[str, Any]]:
        """The conversation to continue with: ``results`` maps each pending call id to its content."""
        missing = [c.id for c in self.pending if c.id not in results]
        if missing:
            raise ValueError(f"no result given for pending tool call(s) {missing}")
        out = list(self.messages)
        for tc in out[-1].get("tool_calls") or ():
            call_id = tc["id"]
            if call_id in self.completed:
                out.append(self.completed[call_id])
            elif call_id in results:
                out.append({"role": "tool", "tool_call_id": call_id, "content": results[call_id]})
        return out

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable form, to persist a paused run (e.g. with a job) and resume elsewhere."""
        return {
            "messages": self.messages,
            "completed": self.completed,
            "pending": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in self.pending],
            "turns": self.turns,
        }


class MissingDependencyError(ImportError):
    """An optional SDK is not installed. The message names the extra that installs it."""

    def __init__(self, package: str, extra: str, *, distribution: str = "llm-client") -> None:
        super().__init__(
            f"{package!r} is not installed. Install it with: pip install '{distribution}[{extra}]'",
            name=package,
        )
        self.package = package
        self.extra = extra
