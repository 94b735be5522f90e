"""WebhookEventAdapter against a real HTTP server on 127.0.0.1 (aiohttp), with a fake sleep."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from agent_runtime import (
    InMemoryEventBus,
    RuntimeEvent,
    RuntimeEventType,
    ValidationError,
    WebhookEventAdapter,
)
from agent_runtime.events import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    DeadLetter,
    sign_payload,
    verify_signature,
)
from aiohttp import web
from llm_client import RetryPolicy

T = RuntimeEventType
SECRET = "s3cret"
NO_JITTER = RetryPolicy(max_attempts=3, initial_delay=0.5, multiplier=2.0, jitter=0.0)


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]


@dataclass
class Receiver:
    """Answers each POST with the next scripted (status, headers), then 200."""

    url: str = ""
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(Received(await request.read(), dict(request.headers)))
        status, headers = self.script.pop(0) if self.script else (200, {})
        return web.Response(status=status, headers=headers, text="nope" if status >= 400 else "ok")


@pytest.fixture
async def receiver(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Receiver]:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    state = Receiver()
    app = web.Application()
    app.router.add_post("/hook", state.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    state.url = f"http://{host}:{port}/hook"
    yield state
    await runner.cleanup()


class FakeSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def event(type_: RuntimeEventType = T.JOB_COMPLETED, **data: object) -> RuntimeEvent:
    return RuntimeEvent(type=type_, job_id="job-1", data=dict(data))


# --- delivery -----------------------------------------------------------------------------------


async def test_seed_webhook_block_posts_the_event_json(receiver: Receiver) -> None:
    evt = event(content="done")
    webhook_adapter = WebhookEventAdapter(
        webhook_url=receiver.url,
        headers={"Authorization": "Bearer token"},
    )
    assert await webhook_adapter.adapt(evt) is True
    await webhook_adapter.aclose()

    [request] = receiver.requests
    assert json.loads(request.body) == evt.to_dict()
    assert request.headers["Authorization"] == "Bearer token"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers[EVENT_ID_HEADER] == evt.event_id
    assert SIGNATURE_HEADER not in request.headers  # no secret, no signature
    assert webhook_adapter.delivered == 1 and webhook_adapter.dead_letters == []


async def test_signed_body_verifies_and_tampering_does_not(receiver: Receiver) -> None:
    async with WebhookEventAdapter(receiver.url, secret=SECRET) as adapter:
        await adapter.adapt(event(answer=42))
    [request] = receiver.requests
    headers = request.headers
    stamp = int(headers[TIMESTAMP_HEADER])
    assert abs(stamp - time.time()) < 60
    assert headers[SIGNATURE_HEADER] == sign_payload(request.body, SECRET, stamp)
    assert verify_signature(request.body, headers, SECRET)
    assert verify_signature(
        request.body.decode(), {k.lower(): v for k, v in headers.items()}, SECRET.encode()
    )

    assert not verify_signature(request.body.replace(b"42", b"43"), headers, SECRET)
    assert not verify_signature(request.body, headers, "other-secret")
    assert not verify_signature(request.body, headers, SECRET, now=stamp + 301)  # replayed too late
    assert verify_signature(request.body, headers, SECRET, now=stamp + 299)
    forged_time = {**headers, TIMESTAMP_HEADER: str(stamp + 1)}
    assert not verify_signature(request.body, forged_time, SECRET)
    assert not verify_signature(request.body, {TIMESTAMP_HEADER: str(stamp)}, SECRET)
    assert not verify_signature(request.body, {**headers, TIMESTAMP_HEADER: "soon"}, SECRET)


async def test_server_error_then_success_is_delivered_after_a_retry(receiver: Receiver) -> None:
    receiver.script = [(500, {})]
    sleep = FakeSleep()
    async with WebhookEventAdapter(receiver.url, secret=SECRET, retry=NO_JITTER, sleep=sleep) as adapter:
        assert await adapter.adapt(event()) is True
    assert len(receiver.requests) == 2
    assert sleep.delays == [0.5]
    first, second = receiver.requests
    assert first.body == second.body
    assert first.headers[EVENT_ID_HEADER] == second.headers[EVENT_ID_HEADER]  # receivers can deduplicate
    assert verify_signature(second.body, second.headers, SECRET)
    assert adapter.dead_letters == []


async def test_retry_after_is_honoured(receiver: Receiver) -> None:
    receiver.script = [(429, {"Retry-After": "7"}), (503, {"Retry-After": "3"})]
    sleep = FakeSleep()
    async with WebhookEventAdapter(receiver.url, retry=NO_JITTER, sleep=sleep) as adapter:
        assert await adapter.adapt(event()) is True
    assert sleep.delays == [7.0, 3.0]
    assert len(receiver.requests) == 3


async def test_client_errors_are_not_retried(receiver: Receiver) -> None:
    receiver.script = [(400, {})]
    sleep = FakeSleep()
    evt = event()
    async with WebhookEventAdapter(receiver.url, retry=NO_JITTER, sleep=sleep) as adapter:
        assert await adapter.adapt(evt) is False
    assert len(receiver.requests) == 1
    assert sleep.delays == []
    [letter] = adapter.dead_letters
    assert isinstance(letter, DeadLetter)
    assert (letter.event, letter.attempts, letter.status_code) == (evt, 1, 400)
    assert "HTTP 400" in letter.error and "nope" in letter.error


async def test_failures_go_to_dead_letters_after_max_attempts(receiver: Receiver) -> None:
    receiver.script = [(503, {})] * 3
    sleep = FakeSleep()
    seen: list[DeadLetter] = []

    async def on_dead_letter(letter: DeadLetter) -> None:
        seen.append(letter)

    adapter = WebhookEventAdapter(receiver.url, retry=NO_JITTER, sleep=sleep, on_dead_letter=on_dead_letter)
    assert await adapter.adapt(event()) is False
    assert len(receiver.requests) == 3
    assert sleep.delays == [0.5, 1.0]
    [letter] = adapter.dead_letters
    assert (letter.attempts, letter.status_code) == (3, 503)
    assert seen == [letter]

    # Once the endpoint is back, dead letters can be redelivered.
    assert await adapter.retry_dead_letters() == 1
    assert adapter.dead_letters == []
    assert json.loads(receiver.requests[-1].body)["event_id"] == letter.event.event_id
    await adapter.aclose()


async def test_connection_errors_are_retried_then_dead_lettered() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleep = FakeSleep()
    async with WebhookEventAdapter(f"http://127.0.0.1:{port}/hook", retry=NO_JITTER, sleep=sleep) as adapter:
        assert await adapter.adapt(event()) is False
    [letter] = adapter.dead_letters
    assert letter.attempts == 3 and letter.status_code is None
    assert "connection failed" in letter.error
    assert sleep.delays == [0.5, 1.0]


async def test_the_dead_letter_list_is_bounded_and_evictions_are_counted(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.script = [(410, {})] * 3
    events = [event(i=i) for i in range(3)]
    async with WebhookEventAdapter(receiver.url, max_dead_letters=2) as adapter:
        for evt in events:
            await adapter.adapt(evt)
    assert [d.event for d in adapter.dead_letters] == events[1:]
    assert adapter.dead_letters_evicted == 1
    assert events[0].event_id in caplog.text  # the evicted event is logged in full


async def test_event_type_filter_and_attach_to_a_bus(receiver: Receiver) -> None:
    bus = InMemoryEventBus()
    adapter = WebhookEventAdapter(receiver.url, event_types={T.JOB_COMPLETED, T.JOB_FAILED})
    assert await adapter.adapt(event(T.MODEL_TOKEN)) is False
    assert receiver.requests == []

    subscription = await adapter.attach(bus)
    published = [event(T.JOB_STARTED), event(T.JOB_FAILED), event(T.JOB_COMPLETED)]
    for evt in published:
        await bus.publish(evt)
    await bus.flush()
    assert [json.loads(r.body)["event_id"] for r in receiver.requests] == [
        published[1].event_id,
        published[2].event_id,
    ]
    assert subscription.delivered == 2  # the adapter's filter is applied by the bus already
    await adapter.aclose()
    assert not subscription.active
    await bus.close()


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValidationError, match="absolute http"):
        WebhookEventAdapter("ftp://example.com/hook")
    with pytest.raises(ValidationError, match="absolute http"):
        WebhookEventAdapter("/relative")
    with pytest.raises(ValidationError, match="timeout"):
        WebhookEventAdapter("http://127.0.0.1/hook", timeout=0)
    with pytest.raises(ValidationError, match="headers"):
        WebhookEventAdapter("http://127.0.0.1/hook", headers={"X-Count": 3})  # type: ignore[dict-item]
    with pytest.raises(ValidationError, match="secret"):
        WebhookEventAdapter("http://127.0.0.1/hook", secret="")
    with pytest.raises(ValidationError, match="RetryPolicy"):
        WebhookEventAdapter("http://127.0.0.1/hook", retry=3)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="max_dead_letters"):
        WebhookEventAdapter("http://127.0.0.1/hook", max_dead_letters=0)


async def test_adapt_refuses_what_is_not_an_event() -> None:
    adapter = WebhookEventAdapter("http://127.0.0.1/hook")
    with pytest.raises(ValidationError, match="RuntimeEvent"):
        await adapter.adapt({"type": "job.completed"})  # type: ignore[arg-type]


def test_missing_httpx_names_the_extra() -> None:
    code = (
        "import sys\n"
        "sys.modules['httpx'] = None  # makes 'import httpx' raise ImportError\n"
        "import agent_runtime\n"
        "from agent_runtime import WebhookEventAdapter, InMemoryEventBus\n"
        "InMemoryEventBus()\n"
        "try:\n"
        "    WebhookEventAdapter('http://127.0.0.1/hook')\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
        "else:\n"
        "    print('no error')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "agent-runtime[webhooks]" in out
    assert "MissingDependencyError" in out


def test_importing_the_events_package_does_not_import_httpx() -> None:
    code = "import sys, agent_runtime.events\nprint('httpx' in sys.modules)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


async def test_user_headers_replace_defaults_case_insensitively(receiver: Receiver) -> None:
    async with WebhookEventAdapter(receiver.url, {"content-type": "application/cloudevents+json"}) as adapter:
        await adapter.adapt(event())
    [request] = receiver.requests
    assert request.headers["Content-Type"] == "application/cloudevents+json"
