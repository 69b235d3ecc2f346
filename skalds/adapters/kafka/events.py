"""Every event, to every subscription of this bus: one shared consumer fanned out into bounded mailboxes.

The consumer is assigned every partition of the event topics at their end when the bus starts (no group,
no commits). A subscription receives what was published after it was created and nothing before: it
remembers, per partition, the highest offset the bus had seen when it subscribed (from its own delivery
reports and from the consumer) and takes only later offsets. A slow subscriber loses its oldest events
(counted in ``dropped``); it never blocks the publisher or the other subscribers. Order is publish order
within a partition, so across all tasks with the default single event partition. Events that no
subscription takes are not decoded (a node process never subscribes): malformed ones are parked by the
processes that read them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from skalds.adapters.kafka.consumer import ConsumerThread
from skalds.adapters.kafka.dead_letters import DeadLetters
from skalds.adapters.kafka.mailbox import Mailbox
from skalds.adapters.kafka.messages import WireCodec
from skalds.domain.errors import BackendUnavailableError, ValidationError
from skalds.domain.events import DomainEvent
from skalds.domain.ports import Subscription

log = logging.getLogger(__name__)
Partition = tuple[str, int]


_ELECTING = frozenset(
    {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError.UNKNOWN_TOPIC_OR_PART}
)


def _high_watermark(consumer: Consumer, partition: TopicPartition, deadline: float) -> int:
    """Retried while a just-created topic's leader is still being elected."""
    while True:
        try:
            _, high = consumer.get_watermark_offsets(
                partition, timeout=max(0.1, deadline - time.monotonic()), cached=False
            )
            return int(high)
        except KafkaException as error:
            kafka_error: KafkaError = error.args[0]
            electing = kafka_error.retriable() or kafka_error.code() in _ELECTING
            if not electing or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


class KafkaEventSubscription(Subscription[DomainEvent]):
    def __init__(self, fan_out: EventFanOut, start_after: Mapping[Partition, int], queue_size: int) -> None:
        self._fan_out = fan_out
        self.start_after = start_after
        self.mailbox: Mailbox[DomainEvent] = Mailbox(queue_size)
        self.closed = False

    @property
    def dropped(self) -> int:
        """Events lost to overflow before this subscription read them."""
        return self.mailbox.dropped

    def __aiter__(self) -> AsyncIterator[DomainEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[DomainEvent]:
        while (event := await self.mailbox.get()) is not None:
            yield event

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.mailbox.close()
            self._fan_out.unsubscribe(self)


class EventFanOut:
    def __init__(
        self,
        config: dict[str, Any],
        *,
        topics: Sequence[str],
        partitions: Mapping[str, int],
        codec: WireCodec,
        dead_letters: DeadLetters,
        queue_size: int,
        timeout_s: float,
    ) -> None:
        self._codec = codec
        self._dead_letters = dead_letters
        self._queue_size = queue_size
        self._timeout_s = timeout_s
        self._topics = frozenset(topics)
        self._wanted = [(topic, p) for topic in topics for p in range(partitions[topic])]
        self._seen: dict[Partition, int] = {}
        self._subscriptions: dict[KafkaEventSubscription, None] = {}  # a set that keeps subscription order
        self._parking: set[asyncio.Task[None]] = set()
        self._consumer = ConsumerThread(
            config,
            name="skalds-kafka-events",
            topics=topics,
            on_batch=self._fan_out,
            positions=self._ends,
        )

    async def start(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(self._consumer.start(loop)), self._timeout_s + 1)
        except Exception as error:  # a timeout, or the broker's refusal
            await self._consumer.stop(self._timeout_s)
            raise BackendUnavailableError("kafka", f"cannot read the event topics: {error}") from None

    def _ends(self, consumer: Consumer) -> list[TopicPartition]:
        """On the consumer thread: start at the current end of every partition, and count it as seen."""
        deadline = time.monotonic() + self._timeout_s
        positions = []
        for topic, partition in self._wanted:
            high = _high_watermark(consumer, TopicPartition(topic, partition), deadline)
            self._seen[(topic, partition)] = high - 1
            positions.append(TopicPartition(topic, partition, high))
        return positions

    def saw(self, topic: str, partition: int, offset: int) -> None:
        """Something landed there: this bus's own publish (a delivery report), or the consumer read it."""
        if topic not in self._topics:
            return
        key = (topic, partition)
        if offset > self._seen.get(key, -1):
            self._seen[key] = offset

    def subscribe(self) -> KafkaEventSubscription:
        subscription = KafkaEventSubscription(self, dict(self._seen), self._queue_size)
        self._subscriptions[subscription] = None
        return subscription

    def unsubscribe(self, subscription: KafkaEventSubscription) -> None:
        self._subscriptions.pop(subscription, None)

    def _fan_out(self, messages: list[Message]) -> None:
        for message in messages:
            key = (message.topic() or "", message.partition() or 0)
            offset = message.offset() or 0
            self.saw(*key, offset)
            takers = [s for s in self._subscriptions if offset > s.start_after.get(key, -1)]
            if not takers:  # nobody here reads it (a node process): not even worth decoding
                continue
            try:
                event = self._codec.decode_event(message.value())
            except ValidationError as error:
                task = asyncio.create_task(self._dead_letters.park(message, str(error)))
                self._parking.add(task)
                task.add_done_callback(self._parking.discard)
                continue
            for subscription in takers:
                subscription.mailbox.put(event)

    async def close(self, timeout_s: float) -> None:
        for subscription in list(self._subscriptions):
            await subscription.close()
        await self._consumer.stop(timeout_s)
        if self._parking:
            await asyncio.wait(self._parking, timeout=timeout_s)
