"""The Kafka event bus: commands to one node's consumer group, events to every process, at least once.

``start()`` creates the topics (see ``topics``), starts the producer and the shared event consumer, and
fails with BackendUnavailableError naming the bootstrap servers within ``start_timeout_s`` when no broker
answers. ``publish`` returns once the broker has the message (see ``producer``): it waits up to
``delivery_timeout_ms`` for a broker that is away and then raises BackendUnavailableError, so a publish
during a broker restart either succeeds after the reconnect or fails cleanly. Subscriptions survive a
broker restart: librdkafka reconnects and the consumers go on from their positions. The blocking client
never runs on the event loop: one poll thread for the producer, one thread per consumer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from types import MappingProxyType
from uuid import uuid4

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from skalds.adapters.kafka.clients import ClientSettings
from skalds.adapters.kafka.commands import KafkaCommandSubscription
from skalds.adapters.kafka.dead_letters import DeadLetters
from skalds.adapters.kafka.events import EventFanOut, KafkaEventSubscription
from skalds.adapters.kafka.messages import WireCodec
from skalds.adapters.kafka.producer import DeliveringProducer
from skalds.adapters.kafka.task_logs import KafkaLogBatches, encode_log_lines
from skalds.adapters.kafka.topics import Topics, ensure_topics, event_key
from skalds.adapters.kafka.upstream_intake import KafkaUpstreamRequests
from skalds.domain.commands import NodeCommand, UpdateTaskAttachments
from skalds.domain.errors import BackendUnavailableError
from skalds.domain.events import DomainEvent
from skalds.domain.ports import EventPublisher, EventSubscriber, LogShipper, UpstreamRequestSource
from skalds.domain.task_logs import LogLine


class KafkaEventBus(EventPublisher, EventSubscriber, UpstreamRequestSource, LogShipper):
    def __init__(
        self,
        *,
        bootstrap_servers: str,
        topic_prefix: str = "",
        partitions: int = 6,
        event_partitions: int = 1,
        replication_factor: int = 1,
        client_id: str = "skalds",
        consumer_group_prefix: str = "skalds",
        client_config: Mapping[str, str] | None = None,
        event_queue_size: int = 10_000,
        delivery_timeout_ms: int = 10_000,
        start_timeout_s: float = 10.0,
    ) -> None:
        for name, value in (
            ("partitions", partitions),
            ("event_partitions", event_partitions),
            ("replication_factor", replication_factor),
            ("event_queue_size", event_queue_size),
            ("delivery_timeout_ms", delivery_timeout_ms),
        ):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        self._servers = bootstrap_servers
        self._topics = Topics(topic_prefix)
        self._partitions = partitions
        self._event_partitions = event_partitions
        self._replication_factor = replication_factor
        self._group_prefix = consumer_group_prefix
        self._clients = ClientSettings(
            bootstrap_servers=bootstrap_servers,
            client_id=client_id,
            client_config=MappingProxyType(dict(client_config or {})),
            delivery_timeout_ms=delivery_timeout_ms,
        )
        self._event_queue_size = event_queue_size
        self._timeout_s = start_timeout_s
        self._codec = WireCodec()
        self._admin: AdminClient | None = None
        self._producer: DeliveringProducer | None = None
        self._fan_out: EventFanOut | None = None
        self._dead_letters: DeadLetters | None = None
        self._command_subscriptions: dict[KafkaCommandSubscription, None] = {}
        self._upstream_subscriptions: dict[KafkaUpstreamRequests, None] = {}
        self._log_subscriptions: dict[KafkaLogBatches, None] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @property
    def topics(self) -> Topics:
        return self._topics

    async def start(self) -> None:
        """Create the topics and start the clients; BackendUnavailableError if no broker answers in time."""
        if self._producer is not None or self._closed:
            raise RuntimeError("a KafkaEventBus starts once")
        self._loop = asyncio.get_running_loop()
        wanted = self._topics.partitions_of(self._partitions, self._event_partitions)
        try:
            self._admin = AdminClient(self._clients.admin())
            self._producer = DeliveringProducer(self._clients.producer())
        except KafkaException as error:  # an unknown or invalid property, most likely in client_config
            await self.close()
            raise ValueError(f"invalid Kafka client settings: {error.args[0]}") from None
        try:
            counts = await ensure_topics(
                self._admin,
                wanted,
                replication_factor=self._replication_factor,
                bootstrap_servers=self._servers,
                timeout_s=self._timeout_s,
            )
            self._producer.start()
            self._dead_letters = DeadLetters(self._producer, self._topics.dead_letter)
            self._fan_out = EventFanOut(
                self._clients.event_consumer(f"{self._group_prefix}.events.{uuid4().hex[:12]}"),
                topics=self._topics.events,
                partitions=counts,
                codec=self._codec,
                dead_letters=self._dead_letters,
                queue_size=self._event_queue_size,
                timeout_s=self._timeout_s,
            )
            await self._fan_out.start(self._loop)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Close every subscription (committing what was handled), then deliver what is queued; idempotent."""
        if self._closed:
            return
        self._closed = True
        await asyncio.gather(*(s.close() for s in list(self._command_subscriptions)))
        await asyncio.gather(*(s.close() for s in list(self._upstream_subscriptions)))
        await asyncio.gather(*(s.close() for s in list(self._log_subscriptions)))
        if self._fan_out is not None:
            await self._fan_out.close(self._timeout_s)
        if self._producer is not None:
            await self._producer.close(self._timeout_s)

    async def ping(self) -> None:
        """Raise BackendUnavailableError unless a broker answers a metadata request within the start-up
        timeout (the health check); a connection dropped since the last call is retried within that time."""
        if self._admin is None or self._closed:
            raise BackendUnavailableError("kafka", f"the bus for {self._servers} is not running")
        deadline = time.monotonic() + self._timeout_s
        while True:
            left = deadline - time.monotonic()
            try:
                await asyncio.to_thread(
                    self._admin.list_topics, self._topics.task_events, timeout=max(0.1, left)
                )
                return
            except KafkaException as error:
                if time.monotonic() + 0.1 >= deadline:
                    detail = (
                        f"no broker answered at {self._servers} within {self._timeout_s} s: {error.args[0]}"
                    )
                    raise BackendUnavailableError("kafka", detail) from None
            await asyncio.sleep(0.1)

    async def publish(self, message: DomainEvent | NodeCommand) -> None:
        await self.publish_many((message,))

    async def publish_many(self, messages: Sequence[DomainEvent | NodeCommand]) -> None:
        """Produce every message in order, then wait once for all the delivery reports."""
        producer, fan_out = self._running()
        landed = await producer.send([form for message in messages for form in self._wire_forms(message)])
        for (topic, partition), offset in landed.items():
            fan_out.saw(topic, partition, offset)  # only event topics matter there; the rest is ignored

    def _wire_forms(self, message: DomainEvent | NodeCommand) -> list[tuple[str, bytes, str | None]]:
        """(topic, value, key) of every copy a message is published as."""
        if isinstance(message, DomainEvent):
            topic = self._topics.for_event(message)
            return [(topic, self._codec.encode_event(message), event_key(message))]
        if not isinstance(message, NodeCommand):
            raise TypeError(f"cannot publish a {type(message).__name__}: not a DomainEvent or NodeCommand")
        forms: list[tuple[str, bytes, str | None]] = [
            (self._topics.for_command(message), self._codec.encode_command(message), message.task_id)
        ]
        if isinstance(message, UpdateTaskAttachments):  # upstream workers in a mixed deployment read this
            forms.append(
                (self._topics.worker_update, self._codec.encode_worker_update(message), message.task_id)
            )
        return forms

    async def ship(self, lines: Sequence[LogLine]) -> None:
        producer, _ = self._running()
        topic = self._topics.task_logs
        await producer.send([(topic, value, key) for value, key in encode_log_lines(lines)])

    def log_batches(self) -> KafkaLogBatches:
        self._running()
        assert self._dead_letters is not None and self._loop is not None
        subscription = KafkaLogBatches(
            self._clients.command_consumer(f"{self._group_prefix}.log-keepers"),
            topic=self._topics.task_logs,
            dead_letters=self._dead_letters,
            on_close=lambda s: self._log_subscriptions.pop(s, None),
            close_timeout_s=self._timeout_s,
        )
        self._log_subscriptions[subscription] = None
        subscription.open(self._loop)
        return subscription

    def events(self) -> KafkaEventSubscription:
        _, fan_out = self._running()
        return fan_out.subscribe()

    def upstream_requests(self) -> KafkaUpstreamRequests:
        self._running()
        assert self._loop is not None
        subscription = KafkaUpstreamRequests(
            self._clients.command_consumer(f"{self._group_prefix}.upstream-intake"),
            topics=self._topics,
            codec=self._codec,
            on_close=lambda s: self._upstream_subscriptions.pop(s, None),
            close_timeout_s=self._timeout_s,
        )
        self._upstream_subscriptions[subscription] = None
        subscription.open(self._loop)
        return subscription

    def commands(self, node_id: str) -> KafkaCommandSubscription:
        self._running()
        assert self._dead_letters is not None and self._loop is not None
        group = f"{self._group_prefix}.{node_id}"
        subscription = KafkaCommandSubscription(
            node_id,
            self._clients.command_consumer(group),
            topics=self._topics,
            codec=self._codec,
            dead_letters=self._dead_letters,
            on_close=lambda s: self._command_subscriptions.pop(s, None),
            close_timeout_s=self._timeout_s,
        )
        self._command_subscriptions[subscription] = None
        subscription.open(self._loop)
        return subscription

    def _running(self) -> tuple[DeliveringProducer, EventFanOut]:
        if self._producer is None or self._fan_out is None or self._closed:
            state = "closed" if self._closed else "not started; await start() first"
            raise RuntimeError(f"the KafkaEventBus for {self._servers} is {state}")
        return self._producer, self._fan_out


async def kafka_event_bus(bus: KafkaEventBus) -> AsyncIterator[KafkaEventBus]:
    """The bus as a resource: started, yielded, closed (for ``providers.Resource`` in bootstrap)."""
    await bus.start()
    try:
        yield bus
    finally:
        await bus.close()
