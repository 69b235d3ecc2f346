"""SSE: ``/api/events/tasks`` and ``/api/events/skalds`` pushed as changes happen, ``/api/events/status``.

The handlers are ordinary Litestar routes (guards, CORS, query parsing, OpenAPI), but the stream they
return is a small ASGI app writing the feed's pre-encoded bytes: Litestar's ServerSentEvent re-encodes every
frame for every client through four generator layers, which was most of the cost of a 1,000-client fan-out.
The feed (event_feed.py) numbers frames for ``Last-Event-ID`` and bounds each client's mailbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, get
from litestar.params import FromQuery
from litestar.types import ASGIApp, Receive, Scope, Send

from skalds.entrypoints.api.event_feed import EventFeed, FeedClient, sse_message
from skalds.entrypoints.api.frames import Stream
from skalds.entrypoints.api.injection import Injected
from skalds.entrypoints.api.openapi import READ, error_responses
from skalds.entrypoints.api.replies import EventFeedStatus

EVENT_STREAM = "text/event-stream"
RETRY_MS = 3_000
_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"connection", b"keep-alive"),
    (b"x-accel-buffering", b"no"),
]


def _last_event_id(request: Request[Any, Any, Any]) -> int | None:
    raw = request.headers.get("last-event-id")
    with contextlib.suppress(TypeError, ValueError):
        return int(raw) if raw is not None else None
    return None


@dataclass(slots=True)
class _EventStream:
    """Writes one client's frames until it disconnects; the client leaves the feed either way."""

    feed: EventFeed
    client: FeedClient
    greeting: str

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watching = asyncio.create_task(self._close_on_disconnect(receive))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
            hello = json.dumps({"type": "connection", "message": self.greeting})
            await send(
                {
                    "type": "http.response.body",
                    "body": f"retry: {RETRY_MS}\n".encode() + sse_message(hello),
                    "more_body": True,
                }
            )
            while batch := await self.client.next_batch():
                await send({"type": "http.response.body", "body": batch, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watching.cancel()
            self.feed.disconnect(self.client)

    async def _close_on_disconnect(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.client.close()


def _stream(
    request: Request[Any, Any, Any],
    stream: Stream,
    greeting: str,
    *,
    task_id: str | None,
    node_id: str | None,
) -> ASGIApp:
    feed: EventFeed = request.app.state.event_feed
    client = feed.connect(stream, task_id=task_id, node_id=node_id, after=_last_event_id(request))
    return _EventStream(feed, client, greeting)


class EventController(Controller):
    path = "/api/events"

    @get(
        "/tasks",
        media_type=EVENT_STREAM,
        response_description="task frames, as they happen",
        responses=error_responses(*READ, 422),
    )
    async def task_events(
        self, request: Request[Any, Any, Any], services: Injected, task_id: FromQuery[str | None] = None
    ) -> ASGIApp:
        greeting = "Connected to Skalds Task events"
        return _stream(request, Stream.TASKS, greeting, task_id=task_id, node_id=None)

    @get(
        "/skalds",
        media_type=EVENT_STREAM,
        response_description="node frames, as they happen",
        responses=error_responses(*READ, 422),
    )
    async def skald_events(
        self, request: Request[Any, Any, Any], services: Injected, skald_id: FromQuery[str | None] = None
    ) -> ASGIApp:
        return _stream(request, Stream.SKALDS, "Connected to Skalds events", task_id=None, node_id=skald_id)

    @get("/status", responses=error_responses(*READ))
    async def status(self, request: Request[Any, Any, Any], services: Injected) -> EventFeedStatus:
        feed: EventFeed = request.app.state.event_feed
        return {
            "connectedClients": len(feed.clients),
            "timestamp": services.clock.now_ms(),
            "status": "active",
            "lastEventId": feed.counter,
        }
