"""Events fanned out to every subscriber, commands queued per node: the embedded default bus.

Event subscribers each get a bounded mailbox; a slow one loses its oldest events (counted in ``dropped``)
instead of slowing the publisher or the others. Commands are never dropped: they wait in their node's mailbox
until that node reads them, like a durable topic with one consumer group per node.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Generic, TypeVar

from skalds.domain.commands import NodeCommand
from skalds.domain.events import DomainEvent
from skalds.domain.ports import (
    EventPublisher,
    EventSubscriber,
    LogShipper,
    Subscription,
    UpstreamRequestSource,
)
from skalds.domain.task_logs import LogLine
from skalds.domain.upstream_requests import UpstreamRequest

T = TypeVar("T")


class _Mailbox(Generic[T]):
    """Messages waiting to be read, and the readers waiting for them.

    A full bounded mailbox drops its oldest message. Readers wait on their own futures, so closing one
    subscription wakes only its readers and leaves nothing behind for the next subscription to trip on.
    """

    def __init__(self, maxlen: int | None = None) -> None:
        self.messages: deque[T] = deque(maxlen=maxlen)
        self.waiters: set[asyncio.Future[None]] = set()
        self.dropped = 0

    def put(self, message: T) -> None:
        if len(self.messages) == self.messages.maxlen:
            self.dropped += 1  # the append below pushes out the oldest
        self.messages.append(message)
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(None)


class InMemorySubscription(Subscription[T], Generic[T]):
    """Reads one mailbox until closed; iteration ends once ``close()`` was called."""

    def __init__(self, mailbox: _Mailbox[T], on_close: Callable[[], None] | None = None) -> None:
        self._mailbox = mailbox
        self._on_close = on_close
        self._waiters: set[asyncio.Future[None]] = set()
        self.closed = False

    @property
    def dropped(self) -> int:
        """Messages lost to overflow before this subscription read them (events only)."""
        return self._mailbox.dropped

    def __aiter__(self) -> AsyncIterator[T]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[T]:
        mailbox = self._mailbox
        while not self.closed:
            if mailbox.messages:
                yield mailbox.messages.popleft()
                continue
            waiter = asyncio.get_running_loop().create_future()
            mailbox.waiters.add(waiter)
            self._waiters.add(waiter)
            try:
                await waiter
            finally:
                mailbox.waiters.discard(waiter)
                self._waiters.discard(waiter)

    def batches(self, limit: int) -> AsyncIterator[list[T]]:
        """What is waiting, at least one and at most ``limit`` at a time (nothing to commit in memory)."""
        return self._batches(limit)

    async def _batches(self, limit: int) -> AsyncIterator[list[T]]:
        messages = self._messages()
        async for first in messages:
            batch = [first]
            waiting = self._mailbox.messages
            while waiting and len(batch) < limit:
                batch.append(waiting.popleft())
            yield batch

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._on_close is not None:
            self._on_close()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)


class InMemoryEventBus(EventPublisher, EventSubscriber, UpstreamRequestSource, LogShipper):
    def __init__(self, *, event_queue_size: int = 10_000, log_batches_waiting: int = 10_000) -> None:
        """``log_batches_waiting``: shipped output batches kept while no controller reads them (a node
        without a control plane in this process); beyond it the oldest go."""
        if event_queue_size < 1:
            raise ValueError(f"event_queue_size must be at least 1, got {event_queue_size}")
        self._event_queue_size = event_queue_size
        self._event_mailboxes: dict[_Mailbox[DomainEvent], None] = {}  # a set that keeps subscription order
        self._command_mailboxes: dict[str, _Mailbox[NodeCommand]] = {}
        self._upstream: _Mailbox[UpstreamRequest] = _Mailbox()
        self._logs: _Mailbox[Sequence[LogLine]] = _Mailbox(log_batches_waiting)

    async def publish(self, message: DomainEvent | NodeCommand) -> None:
        if isinstance(message, NodeCommand):
            self._commands_for(message.node_id).put(message)
            return
        for mailbox in self._event_mailboxes:
            mailbox.put(message)

    async def publish_many(self, messages: Sequence[DomainEvent | NodeCommand]) -> None:
        for message in messages:
            await self.publish(message)

    async def ping(self) -> None:
        """Memory always answers."""

    def events(self) -> InMemorySubscription[DomainEvent]:
        mailbox: _Mailbox[DomainEvent] = _Mailbox(self._event_queue_size)
        self._event_mailboxes[mailbox] = None

        def unsubscribe() -> None:
            del self._event_mailboxes[mailbox]
            mailbox.messages.clear()

        return InMemorySubscription(mailbox, unsubscribe)

    def commands(self, node_id: str) -> InMemorySubscription[NodeCommand]:
        """Subscriptions for one node share its mailbox: each command goes to one of them, and commands
        left unread when a subscription closes wait for the next one."""
        return InMemorySubscription(self._commands_for(node_id))

    def upstream_requests(self) -> InMemorySubscription[UpstreamRequest]:
        """Like a node's commands: subscriptions share one mailbox, so each request is read once."""
        return InMemorySubscription(self._upstream)

    async def ship(self, lines: Sequence[LogLine]) -> None:
        if lines:
            self._logs.put(tuple(lines))

    def log_batches(self) -> InMemorySubscription[Sequence[LogLine]]:
        """Like a node's commands: subscriptions share one mailbox, so each batch is kept once."""
        return InMemorySubscription(self._logs)

    def submit_upstream(self, request: UpstreamRequest) -> None:
        """What an upstream client's message would be on Kafka (memory has no upstream clients)."""
        self._upstream.put(request)

    def pending_commands(self, node_id: str) -> int:
        mailbox = self._command_mailboxes.get(node_id)
        return 0 if mailbox is None else len(mailbox.messages)

    def _commands_for(self, node_id: str) -> _Mailbox[NodeCommand]:
        mailbox = self._command_mailboxes.get(node_id)
        if mailbox is None:
            mailbox = self._command_mailboxes[node_id] = _Mailbox()
        return mailbox
