"""The API process's one subscription to the event stream, fanned out to every connected SSE client.

Frames are numbered in arrival order and encoded once, as the exact bytes of an SSE message, however many
clients want them; the last ``replay`` are kept so a reconnecting browser's ``Last-Event-ID`` resumes from
there. Each client has its own bounded mailbox: a slow client loses its oldest frames (and is told how
many), never slows the others. A batch event of thousands of frames (a monitor cycle's heartbeats) is fed
in slices of ``FRAMES_PER_TURN`` with a turn of the event loop between them, so a client that keeps up
drains its mailbox as the batch goes by instead of losing all but its last ``capacity`` frames. Keep-alive
comments go out from one timer for all clients, only to those
that were sent nothing since the previous tick, so an idle stream stays open through proxies.

Upstream's page takes a task's status from the newest unnamed frame about it and keeps it. Events can
arrive behind a change (two monitors, heartbeat batches on another partition, a change that lost its write
elsewhere), so the feed remembers the status of the newest change (by version) of each task it has seen
lately and tells that status in every unnamed frame about the task (with its code, once the task is over).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from skalds.domain.events import DomainEvent, TaskDeleted, TaskEvent
from skalds.domain.ports import EventSubscriber
from skalds.domain.task import TERMINAL, TaskStatus
from skalds.domain.upstream_codes import code_for_status
from skalds.entrypoints.api.frames import OWN_EVENT_NAME, Framed, Stream, frames_for

KEEP_ALIVE = b": keep-alive\n\n"
STATUSES_KEPT = 100_000  # tasks whose newest change the feed remembers (the most recently changed)
FRAMES_PER_TURN = 250  # well under a client's mailbox, so a client that keeps up never overflows


def sse_message(data: str, number: int | None = None, *, name: str | None = None) -> bytes:
    """One SSE message; ``data`` is compact JSON, so it never holds a line break. A ``name`` makes it a named
    event, which browsers give only to listeners of that name (never to ``onmessage``)."""
    head = f"id: {number}\n" if number is not None else ""
    if name is not None:
        head += f"event: {name}\n"
    return f"{head}data: {data}\n\n".encode()


@dataclass(slots=True, eq=False)  # identity, so clients can live in a set
class FeedClient:
    """One connected stream: what it wants, and the frames waiting for it."""

    stream: Stream
    capacity: int
    task_id: str | None = None
    node_id: str | None = None
    pending: deque[bytes] = field(default_factory=deque)
    dropped: int = 0
    closed: bool = False
    sent_since_tick: bool = False
    _waiter: asyncio.Future[None] | None = None

    def wants(self, framed: Framed) -> bool:
        frame = framed.frame
        if framed.stream is not self.stream:
            return False
        if self.task_id is not None and frame.get("taskId") != self.task_id:
            return False
        return self.node_id is None or frame.get("skaldId") == self.node_id

    def offer(self, message: bytes) -> None:
        if len(self.pending) >= self.capacity:
            self.pending.popleft()
            self.dropped += 1
        self.pending.append(message)
        self._wake()

    def close(self) -> None:
        self.closed = True
        self._wake()

    async def next_batch(self) -> bytes:
        """Everything waiting, as one write (a burst costs one send, not one per frame); empty once closed."""
        while not self.pending and not self.closed:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self.closed:
            return b""
        batch = b"".join(self.pending)
        self.pending.clear()
        if self.dropped:
            notice = json.dumps({"type": "frames_dropped", "data": {"count": self.dropped}})
            self.dropped = 0
            batch = sse_message(notice, name=OWN_EVENT_NAME) + batch
        self.sent_since_tick = True
        return batch

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


@dataclass(slots=True)
class EventFeed:
    client_capacity: int = 1_000
    replay: int = 5_000
    keep_alive_s: float = 15.0
    recent: deque[tuple[int, Framed, bytes]] = field(init=False)
    clients: set[FeedClient] = field(default_factory=set)
    latest: OrderedDict[str, tuple[int, TaskStatus]] = field(default_factory=OrderedDict)
    counter: int = 0
    closed: bool = False

    def __post_init__(self) -> None:
        self.recent = deque(maxlen=self.replay)

    def publish(self, event: DomainEvent) -> None:
        """Number, encode and offer each frame of the event (a batch event gives one frame per task)."""
        for framed in self._frames(event):
            self._offer(framed)

    async def run(self, subscriber: EventSubscriber) -> None:
        """Feed clients from the event stream, and keep idle streams alive, until cancelled."""
        keeping_alive = asyncio.create_task(self._keep_alive(), name="SSE keep-alive")
        subscription = subscriber.events()
        try:
            async for event in subscription:
                for count, framed in enumerate(self._frames(event), start=1):
                    self._offer(framed)
                    if count % FRAMES_PER_TURN == 0:
                        await asyncio.sleep(0)  # the clients' writers send what is waiting
        finally:
            keeping_alive.cancel()
            await asyncio.shield(subscription.close())

    def _frames(self, event: DomainEvent) -> list[Framed]:
        if isinstance(event, TaskEvent):
            self._remember(event)
        return [self._current(framed) for framed in frames_for(event)]

    def _remember(self, event: TaskEvent) -> None:
        latest = self.latest
        if isinstance(event, TaskDeleted):
            latest.pop(event.task_id, None)
            return
        known = latest.get(event.task_id)
        if known is None or known[0] < event.version:
            latest[event.task_id] = (event.version, event.to_status)
            latest.move_to_end(event.task_id)
            if len(latest) > STATUSES_KEPT:
                latest.popitem(last=False)

    def _current(self, framed: Framed) -> Framed:
        """An unnamed frame about a task, telling the status of the task's newest change."""
        frame = framed.frame
        data = frame.get("data")
        if framed.own or not isinstance(data, dict) or "lifecycleStatus" not in data:
            return framed
        known = self.latest.get(frame.get("taskId", ""))
        if known is None or data["lifecycleStatus"] == known[1].value:
            return framed
        status = known[1]
        told = {**data, "lifecycleStatus": status.value}
        if "heartbeat" in told and (status in TERMINAL or "change" in told):
            told["heartbeat"] = code_for_status(status)  # a beat's alive code stays while it runs
        return dataclasses.replace(framed, frame={**frame, "data": told})

    def _offer(self, framed: Framed) -> None:
        self.counter += 1
        name = OWN_EVENT_NAME if framed.own else None
        message = sse_message(json.dumps(framed.frame, separators=(",", ":")), self.counter, name=name)
        self.recent.append((self.counter, framed, message))
        for client in self.clients:
            if client.wants(framed):
                client.offer(message)

    def connect(
        self, stream: Stream, *, task_id: str | None, node_id: str | None, after: int | None
    ) -> FeedClient:
        client = FeedClient(stream=stream, capacity=self.client_capacity, task_id=task_id, node_id=node_id)
        if self.closed:  # the process is stopping: the stream ends after its greeting
            client.close()
            return client
        if after is not None:
            for number, framed, message in self.recent:
                if number > after and client.wants(framed):
                    client.offer(message)
        self.clients.add(client)
        return client

    def close(self) -> None:
        """End every stream cleanly (a stopping server), and any that connects later."""
        self.closed = True
        for client in list(self.clients):
            self.disconnect(client)

    def disconnect(self, client: FeedClient) -> None:
        client.close()
        self.clients.discard(client)

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(self.keep_alive_s)
            for client in self.clients:
                if not client.sent_since_tick and not client.pending:
                    client.offer(KEEP_ALIVE)
                client.sent_since_tick = False
