"""A local HTTP server that speaks OpenAI's and Anthropic's wire formats, for testing real SDKs.

Tests script the replies in order (JSON bodies, SSE streams, error statuses, dropped connections,
delays held on an ``asyncio.Event``) and assert on the recorded requests. A request beyond the
script gets HTTP 599 and is recorded in ``errors``, which the pytest fixture fails on at teardown.
``always(reply)`` switches to a fixed reply for benchmarks.

Only aiohttp is needed; the builders below return plain dicts in each vendor's real format.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = [
    "Reply",
    "RecordedRequest",
    "WireStub",
    "json_reply",
    "sse_reply",
    "drop_reply",
    "openai_completion",
    "openai_tool_call",
    "openai_chunks",
    "openai_sse",
    "openai_error",
    "anthropic_message",
    "anthropic_text",
    "anthropic_tool_use",
    "anthropic_thinking",
    "anthropic_events",
    "anthropic_sse",
    "anthropic_error",
]


@dataclass
class Reply:
    """One scripted reply.

    ``frames`` makes it an SSE stream (each frame already in wire form). ``drop_after=n`` aborts the
    TCP connection after ``n`` frames (``0``: right after the headers). ``drop_before_headers``
    aborts before any response. ``wait`` holds the reply until the event is set; ``keep_open``
    leaves the stream open after the frames until the client goes away.
    """

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    frames: Sequence[str] | None = None
    drop_after: int | None = None
    drop_before_headers: bool = False
    wait: asyncio.Event | None = None
    keep_open: bool = False


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: Mapping[str, str]  # case-insensitive
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw)


def json_reply(body: Any, status: int = 200, headers: Mapping[str, str] | None = None, **kw: Any) -> Reply:
    return Reply(status=status, body=body, headers=dict(headers or {}), **kw)


def sse_reply(frames: Sequence[str], **kw: Any) -> Reply:
    return Reply(frames=list(frames), **kw)


def drop_reply(**kw: Any) -> Reply:
    return Reply(drop_before_headers=True, **kw)


class WireStub:
    """The server. Use as ``async with WireStub() as stub`` or via the ``wire_stub`` fixture."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.errors: list[str] = []
        self.disconnected = asyncio.Event()
        self._script: deque[Reply] = deque()
        self._fixed: Reply | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- scripting -------------------------------------------------------------------------------

    def add(self, *replies: Reply) -> WireStub:
        self._script.extend(replies)
        return self

    def always(self, reply: Reply) -> WireStub:
        """Fixed-reply mode: answer every request with ``reply`` (benchmarks)."""
        self._fixed = reply
        return self

    @property
    def pending(self) -> int:
        return len(self._script)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def last(self) -> Any:
        """The JSON body of the last request."""
        return self.requests[-1].json

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> WireStub:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        app.router.add_post("/v1/messages", self._handle)
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        # handler_cancellation: a client that goes away cancels the handler, so we notice.
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> WireStub:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- serving ---------------------------------------------------------------------------------

    async def _unknown(self, request: web.Request) -> web.Response:
        self.errors.append(f"unexpected {request.method} {request.path}")
        return web.json_response({"error": {"message": f"stub: no route {request.path}"}}, status=404)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        self.requests.append(RecordedRequest(request.method, request.path, request.headers.copy(), raw))
        if self._script:
            reply = self._script.popleft()
        elif self._fixed is not None:
            reply = self._fixed
        else:
            self.errors.append(f"request #{len(self.requests)} to {request.path} beyond the script")
            return web.json_response(
                {"error": {"message": "wire stub: request beyond the script", "type": "stub_error"}},
                status=599,
            )
        try:
            return await self._serve(request, reply)
        except asyncio.CancelledError:
            self.disconnected.set()
            raise

    async def _abort(self, request: web.Request) -> None:
        assert request.transport is not None
        request.transport.abort()
        await asyncio.Event().wait()  # the abort cancels this handler (handler_cancellation)

    async def _serve(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        if reply.wait is not None:
            await reply.wait.wait()
        if reply.drop_before_headers:
            await self._abort(request)
        if reply.frames is None:
            body = reply.body
            text = body if isinstance(body, str) else json.dumps(body)
            return web.Response(
                status=reply.status, text=text, content_type="application/json", headers=dict(reply.headers)
            )
        resp = web.StreamResponse(status=reply.status, headers={"Cache-Control": "no-cache", **reply.headers})
        resp.content_type = "text/event-stream"
        await resp.prepare(request)
        for i, frame in enumerate(reply.frames):
            if reply.drop_after == i:
                await self._abort(request)
            await resp.write(frame.encode())
        if reply.drop_after is not None and reply.drop_after >= len(reply.frames):
            await self._abort(request)
        if reply.keep_open:
            await asyncio.Event().wait()
        await resp.write_eof()
        return resp


# --- OpenAI builders -------------------------------------------------------------------------------


def openai_tool_call(id: str, name: str, arguments: Mapping[str, Any] | str) -> dict[str, Any]:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": id, "type": "function", "function": {"name": name, "arguments": args}}


def _openai_usage(
    prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0, reasoning_tokens: int = 0
) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def openai_completion(
    content: str | None = "Hello!",
    *,
    tool_calls: Sequence[Mapping[str, Any]] = (),
    model: str = "gpt-4o-mini-2024-07-18",
    finish_reason: str | None = None,
    prompt_tokens: int = 12,
    completion_tokens: int = 5,
    cached_tokens: int = 0,
    reasoning_tokens: int = 0,
    **message_extra: Any,
) -> dict[str, Any]:
    """A ``chat.completion`` body; ``message_extra`` adds fields such as ``reasoning_content``."""
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None, **message_extra}
    if tool_calls:
        message["tool_calls"] = [dict(tc) for tc in tool_calls]
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "system_fingerprint": "fp_stub",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop"),
            }
        ],
        "usage": _openai_usage(prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens),
    }


def openai_chunks(
    text: Iterable[str] = (),
    *,
    tool_calls: Sequence[Mapping[str, Any]] = (),
    reasoning: Iterable[str] = (),
    model: str = "gpt-4o-mini-2024-07-18",
    finish_reason: str | None = None,
    usage: tuple[int, int] | None = (12, 5),
) -> list[dict[str, Any]]:
    """Stream chunks as OpenAI sends them: a role chunk, deltas, a finish chunk, a usage chunk.

    Tool-call arguments are split in two pieces so tests exercise assembly.
    """

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-stub",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": model,
            "system_fingerprint": "fp_stub",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    out = [chunk({"role": "assistant", "content": "", "refusal": None})]
    out += [chunk({"reasoning_content": piece}) for piece in reasoning]
    out += [chunk({"content": piece}) for piece in text]
    for i, tc in enumerate(tool_calls):
        args = tc["function"]["arguments"]
        half = len(args) // 2
        first = {
            "index": i,
            "id": tc["id"],
            "type": "function",
            "function": {"name": tc["function"]["name"], "arguments": ""},
        }
        out.append(chunk({"tool_calls": [first]}))
        for piece in (args[:half], args[half:]):
            out.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}))
    out.append(chunk({}, finish_reason or ("tool_calls" if tool_calls else "stop")))
    if usage is not None:
        last = chunk({})
        last["choices"] = []
        last["usage"] = _openai_usage(*usage)
        out.append(last)
    return out


def openai_sse(chunks: Iterable[Mapping[str, Any] | str], *, done: bool = True) -> list[str]:
    """SSE frames: ``data: {json}`` per chunk (a str is sent verbatim as the data), then ``[DONE]``."""
    frames = [f"data: {c if isinstance(c, str) else json.dumps(c)}\n\n" for c in chunks]
    if done:
        frames.append("data: [DONE]\n\n")
    return frames


def openai_error(
    message: str, type: str = "invalid_request_error", code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


# --- Anthropic builders ----------------------------------------------------------------------------


def anthropic_text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def anthropic_tool_use(id: str, name: str, input: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": id, "name": name, "input": dict(input)}


def anthropic_thinking(thinking: str) -> dict[str, Any]:
    return {"type": "thinking", "thinking": thinking, "signature": "sig-stub"}


def _anthropic_usage(
    input_tokens: int, output_tokens: int, cache_read: int, cache_creation: int
) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_input_tokens": cache_read,
        "cache_creation_input_tokens": cache_creation,
        "service_tier": "standard",
    }


def anthropic_message(
    content: str | Sequence[Mapping[str, Any]] = "Hello!",
    *,
    model: str = "claude-sonnet-4-6",
    stop_reason: str | None = None,
    input_tokens: int = 12,
    output_tokens: int = 5,
    cache_read: int = 0,
    cache_creation: int = 0,
) -> dict[str, Any]:
    blocks = [anthropic_text(content)] if isinstance(content, str) else [dict(b) for b in content]
    has_tool = any(b["type"] == "tool_use" for b in blocks)
    return {
        "id": "msg_stub",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": blocks,
        "stop_reason": stop_reason or ("tool_use" if has_tool else "end_turn"),
        "stop_sequence": None,
        "usage": _anthropic_usage(input_tokens, output_tokens, cache_read, cache_creation),
    }


def anthropic_events(
    text: Iterable[str] = (),
    *,
    tool_uses: Sequence[Mapping[str, Any]] = (),
    thinking: Iterable[str] = (),
    model: str = "claude-sonnet-4-6",
    stop_reason: str | None = None,
    input_tokens: int = 12,
    output_tokens: int = 5,
    cache_read: int = 0,
    cache_creation: int = 0,
) -> list[tuple[str, dict[str, Any]]]:
    """``(event type, data)`` pairs in the order the Messages API streams them.

    Tool inputs are streamed as two ``input_json_delta`` pieces.
    """
    start = anthropic_message(
        [],
        model=model,
        input_tokens=input_tokens,
        output_tokens=1,
        cache_read=cache_read,
        cache_creation=cache_creation,
    )
    start["stop_reason"] = None
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start})
    ]
    index = 0

    def block(content_block: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
        nonlocal index
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": content_block},
            )
        )
        for d in deltas:
            events.append(
                ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
            )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1

    thinking = list(thinking)
    if thinking:
        deltas = [{"type": "thinking_delta", "thinking": t} for t in thinking]
        block(
            {"type": "thinking", "thinking": "", "signature": ""},
            [*deltas, {"type": "signature_delta", "signature": "sig"}],
        )
    text = list(text)
    if text:
        events.append(("ping", {"type": "ping"}))
        block({"type": "text", "text": ""}, [{"type": "text_delta", "text": t} for t in text])
    for tu in tool_uses:
        args = json.dumps(tu["input"])
        half = len(args) // 2
        block(
            {"type": "tool_use", "id": tu["id"], "name": tu["name"], "input": {}},
            [{"type": "input_json_delta", "partial_json": p} for p in (args[:half], args[half:])],
        )
    stop = stop_reason or ("tool_use" if tool_uses else "end_turn")
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def anthropic_sse(events: Iterable[tuple[str, Mapping[str, Any] | str]]) -> list[str]:
    """SSE frames: ``event: <type>`` + ``data: {json}`` (a str is sent verbatim as the data)."""
    return [f"event: {name}\ndata: {d if isinstance(d, str) else json.dumps(d)}\n\n" for name, d in events]


def anthropic_error(type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": type, "message": message}, "request_id": "req_stub"}
