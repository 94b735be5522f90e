"""Tiny OpenAI-compatible chat.completions stub on 127.0.0.1 (aiohttp). Not a test module.

Same approach as shared/peer-bench/stub_server.py (a fixed "hi" chat.completion, a /stats
counter, 127.0.0.1 only, self-terminating), plus an SSE streaming mode:

  POST /v1/chat/completions            {"stream": false}  -> fixed chat.completion JSON ("hi")
  POST /v1/chat/completions            {"stream": true}   -> SSE: N one-character content chunks
       N comes from the body field "stub_tokens" (the SDKs send it via extra_body=...) or the
       query parameter ?tokens=N (default 1). The stream is: a role chunk, N chunks with content
       "x", a finish chunk (finish_reason "stop"), a usage chunk when
       stream_options.include_usage is set, then "data: [DONE]".
  GET  /stats                          -> {"requests": <completions served>}

Streams are pre-rendered per N and written in one go, so the stub's own per-chunk cost stays
out of the client's measurement (it runs pinned to the other CPU anyway).
Prints "PORT <n>" on stdout when ready. Exits by itself after --max-seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from aiohttp import web

MODEL = "gpt-4o-mini"
BODY = json.dumps(
    {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 1700000000,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "hi"},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }
).encode()

COUNT = 0
_SSE_CACHE: dict[tuple[int, bool], bytes] = {}


def _chunk(delta: dict, finish: str | None = None, usage: dict | None = None, choices: bool = True) -> bytes:
    obj: dict = {
        "id": "chatcmpl-stub",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": MODEL,
        "choices": [],
    }
    if choices:
        obj["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]
    if usage is not None:
        obj["usage"] = usage
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def sse_body(n: int, include_usage: bool) -> bytes:
    key = (n, include_usage)
    body = _SSE_CACHE.get(key)
    if body is None:
        parts = [_chunk({"role": "assistant", "content": ""})]
        one = _chunk({"content": "x"})
        parts.extend(one for _ in range(n))
        parts.append(_chunk({}, finish="stop"))
        if include_usage:
            parts.append(
                _chunk(
                    {},
                    usage={"prompt_tokens": 5, "completion_tokens": n, "total_tokens": 5 + n},
                    choices=False,
                )
            )
        parts.append(b"data: [DONE]\n\n")
        body = _SSE_CACHE[key] = b"".join(parts)
    return body


async def completions(request: web.Request) -> web.StreamResponse:
    global COUNT
    raw = await request.read()
    COUNT += 1
    req = json.loads(raw) if raw else {}
    if not req.get("stream"):
        return web.Response(body=BODY, content_type="application/json")
    n = int(req.get("stub_tokens") or request.query.get("tokens") or 1)
    include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await resp.prepare(request)
    await resp.write(sse_body(n, include_usage))
    await resp.write_eof()
    return resp


async def stats(request: web.Request) -> web.Response:
    return web.json_response({"requests": COUNT})


async def main(port: int, max_seconds: float) -> None:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    app.router.add_get("/stats", stats)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    real_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"PORT {real_port}", flush=True)
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    await runner.cleanup()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--max-seconds", type=float, default=900)
    a = p.parse_args()
    asyncio.run(main(a.port, a.max_seconds))
