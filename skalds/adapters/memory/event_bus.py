"""Events fanned out to every subscriber, commands queued per node: the embedded default bus.

Event subscribers each get a bounded queue; a slow one loses its oldest events (counted in ``dropped``)
instead of slowing the publisher or the others. Commands are never dropped: they wait in their node's queue
until that node reads them, like a durable topic with one consumer group per node.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

from skalds.domain.commands import NodeCommand
from skalds.domain.events import DomainEvent
from skalds.domain.ports import EventPublisher, EventSubscriber, Subscription

T = TypeVar("T")
_CLOSED = object()


class InMemorySubscription(Subscription[T], Generic[T]):
    def __init__(self, queue: asyncio.Queue[object], on_close: object = None) -> None:
        self._queue = queue
        self._on_close = on_close
        self.closed = False
        self.dropped = 0

    def __aiter__(self) -> AsyncIterator[T]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[T]:
        while not self.closed:
            message = await self._queue.get()
            if message is _CLOSED:
                return
            yield message  # type: ignore[misc]

    def offer(self, message: object) -> None:
        """Enqueue without blocking; when full, drop the oldest message."""
        if self.closed:
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(message)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if callable(self._on_close):
            self._on_close(self)
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(_CLOSED)


class InMemoryEventBus(EventPublisher, EventSubscriber):
    def __init__(self, *, event_queue_size: int = 10_000) -> None:
        self._event_queue_size = event_queue_size
        self._event_subscriptions: list[InMemorySubscription[DomainEvent]] = []
        self._command_queues: dict[str, asyncio.Queue[object]] = {}

    async def publish(self, message: DomainEvent | NodeCommand) -> None:
        if isinstance(message, NodeCommand):
            self._commands_for(message.node_id).put_nowait(message)
            return
        for subscription in self._event_subscriptions:
            subscription.offer(message)

    def events(self) -> InMemorySubscription[DomainEvent]:
        subscription: InMemorySubscription[DomainEvent] = InMemorySubscription(
            asyncio.Queue(maxsize=self._event_queue_size), self._event_subscriptions.remove
        )
        self._event_subscriptions.append(subscription)
        return subscription

    def commands(self, node_id: str) -> InMemorySubscription[NodeCommand]:
        return InMemorySubscription(self._commands_for(node_id))

    def pending_commands(self, node_id: str) -> int:
        queue = self._command_queues.get(node_id)
        return 0 if queue is None else queue.qsize()

    def _commands_for(self, node_id: str) -> asyncio.Queue[object]:
        queue = self._command_queues.get(node_id)
        if queue is None:
            queue = self._command_queues[node_id] = asyncio.Queue()
        return queue
