"""Runtime events: the event model, the bus that fans them out, and SSE and webhook adapters.

``agent_runtime.events.webhook`` needs httpx only when a WebhookEventAdapter is built.
"""

from __future__ import annotations

from .bus import EventBus, EventBusClosedError, EventHandler, EventStream, EventSubscription, InMemoryEventBus
from .models import SSE_KEEPALIVE, TERMINAL_EVENT_TYPES, RuntimeEvent, RuntimeEventType, format_sse
from .sse import SSEEventAdapter
from .webhook import (
    DEFAULT_WEBHOOK_RETRY,
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    DeadLetter,
    WebhookEventAdapter,
    sign_payload,
    verify_signature,
)

__all__ = [
    "RuntimeEvent",
    "RuntimeEventType",
    "TERMINAL_EVENT_TYPES",
    "EventBus",
    "EventBusClosedError",
    "EventHandler",
    "EventStream",
    "EventSubscription",
    "InMemoryEventBus",
    "SSEEventAdapter",
    "SSE_KEEPALIVE",
    "format_sse",
    "WebhookEventAdapter",
    "DeadLetter",
    "DEFAULT_WEBHOOK_RETRY",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "EVENT_ID_HEADER",
    "EVENT_TYPE_HEADER",
    "sign_payload",
    "verify_signature",
]
