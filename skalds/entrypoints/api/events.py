"""SSE: ``/api/events/tasks`` and ``/api/events/skalds`` pushed as changes happen, ``/api/events/status``.

One subscription to the event stream per API process feeds a numbered ring buffer and every connected
client. Each client has its own bounded queue: a slow client loses its oldest frames (and is told so),
never slows the others. Frames carry ``id:`` so a reconnecting browser's ``Last-Event-ID`` resumes from the
buffer; a ``: keep-alive`` comment goes out when nothing happened for a while, so proxies keep the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from litestar import Controller, Request, get
from litestar.response import ServerSentEvent, ServerSentEventMessage

from skalds.bootstrap import Services
from skalds.domain.events import DomainEvent
from skalds.domain.ports import EventSubscriber
from skalds.entrypoints.api.frames import Stream, frame_for

KEEP_ALIVE_S = 15.0
CLIENT_QUEUE = 1_000
REPLAY = 5_000


@dataclass(slots=True, eq=False)  # identity, so clients can live in a set
class _Client:
    stream: Stream
    queue: asyncio.Queue[tuple[int, str]]
    task_id: str | None = None
    node_id: str | None = None
    dropped: int = 0

    def wants(self, stream: Stream, frame: dict[str, Any]) -> bool:
        if stream is not self.stream:
            return False
        if self.task_id is not None and frame.get("taskId") != self.task_id:
            return False
        return self.node_id is None or frame.get("skaldId") == self.node_id

    def offer(self, number: int, encoded: str) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait((number, encoded))


@dataclass(slots=True)
class EventFeed:
    """Frames numbered in arrival order, the last ``REPLAY`` kept for reconnecting clients."""

    recent: deque[tuple[int, Stream, dict[str, Any], str]] = field(
        default_factory=lambda: deque(maxlen=REPLAY)
    )
    clients: set[_Client] = field(default_factory=set)
    counter: int = 0

    def publish(self, event: DomainEvent) -> None:
        found = frame_for(event)
        if found is None:
            return
        stream, frame = found
        encoded = json.dumps(frame, separators=(",", ":"))  # once per event, not once per client
        self.counter += 1
        self.recent.append((self.counter, stream, frame, encoded))
        for client in self.clients:
            if client.wants(stream, frame):
                client.offer(self.counter, encoded)

    async def run(self, subscriber: EventSubscriber) -> None:
        subscription = subscriber.events()
        try:
            async for event in subscription:
                self.publish(event)
        finally:
            await asyncio.shield(subscription.close())

    def connect(
        self, stream: Stream, *, task_id: str | None, node_id: str | None, after: int | None
    ) -> _Client:
        client = _Client(stream=stream, queue=asyncio.Queue(CLIENT_QUEUE), task_id=task_id, node_id=node_id)
        if after is not None:
            for number, kind, frame, encoded in self.recent:
                if number > after and client.wants(kind, frame):
                    client.offer(number, encoded)
        self.clients.add(client)
        return client


def _last_event_id(request: Request[Any, Any, Any]) -> int | None:
    raw = request.headers.get("last-event-id")
    with contextlib.suppress(TypeError, ValueError):
        return int(raw) if raw is not None else None
    return None


async def _messages(feed: EventFeed, client: _Client, greeting: str) -> AsyncIterator[ServerSentEventMessage]:
    yield ServerSentEventMessage(data=json.dumps({"type": "connection", "message": greeting}), retry=3_000)
    try:
        while True:
            try:
                async with asyncio.timeout(KEEP_ALIVE_S):  # no task per frame, unlike wait_for
                    number, encoded = await client.queue.get()
            except TimeoutError:
                yield ServerSentEventMessage(comment="keep-alive")
                continue
            if client.dropped:
                lost, client.dropped = client.dropped, 0
                yield ServerSentEventMessage(
                    data=json.dumps({"type": "frames_dropped", "data": {"count": lost}})
                )
            yield ServerSentEventMessage(data=encoded, id=number)
    finally:
        feed.clients.discard(client)


def _sse(messages: AsyncIterator[ServerSentEventMessage]) -> ServerSentEvent:
    return ServerSentEvent(messages, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


class EventController(Controller):
    path = "/api/events"

    @get("/tasks")
    async def task_events(
        self, request: Request[Any, Any, Any], services: Services, task_id: str | None = None
    ) -> ServerSentEvent:
        feed: EventFeed = request.app.state.event_feed
        client = feed.connect(Stream.TASKS, task_id=task_id, node_id=None, after=_last_event_id(request))
        return _sse(_messages(feed, client, "Connected to Skalds Task events"))

    @get("/skalds")
    async def skald_events(
        self, request: Request[Any, Any, Any], services: Services, skald_id: str | None = None
    ) -> ServerSentEvent:
        feed: EventFeed = request.app.state.event_feed
        client = feed.connect(Stream.SKALDS, task_id=None, node_id=skald_id, after=_last_event_id(request))
        return _sse(_messages(feed, client, "Connected to Skalds events"))

    @get("/status")
    async def status(self, request: Request[Any, Any, Any], services: Services) -> dict[str, Any]:
        feed: EventFeed = request.app.state.event_feed
        return {
            "connectedClients": len(feed.clients),
            "timestamp": services.clock.now_ms(),
            "status": "active",
            "lastEventId": feed.counter,
        }
