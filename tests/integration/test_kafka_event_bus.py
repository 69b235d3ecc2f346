"""The Kafka event bus passes the same contract as its in-memory twin, on a real broker.

Each test gets its own topic prefix and consumer-group prefix, and deletes its topics afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from skalds.adapters.kafka.event_bus import KafkaEventBus, kafka_event_bus
from skalds.adapters.kafka.topics import Topics
from skalds.domain import events as ev
from skalds.domain.commands import CancelTask, PauseTask, UpdateTaskAttachments
from skalds.domain.errors import BackendUnavailableError
from tests.contracts.event_bus import EventBusContract, created, drain, receive

DELIVERY_TIMEOUT_S = 10.0  # a first group join plus a fetch; generous for a loaded CI machine


@contextlib.asynccontextmanager
async def open_bus(bootstrap: str, unique: str, **options: Any) -> AsyncIterator[KafkaEventBus]:
    """A started bus with names of its own; closed and its topics deleted afterwards."""
    settings: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "topic_prefix": f"{unique}.",
        "consumer_group_prefix": unique,
        "client_id": unique,
        "partitions": 3,
    }
    bus = KafkaEventBus(**(settings | options))
    await bus.start()
    try:
        yield bus
    finally:
        await bus.close()
        await delete_topics(bootstrap, bus.topics)


async def delete_topics(bootstrap: str, topics: Topics) -> None:
    names = list(topics.partitions_of(1, 1))
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until its futures resolve
    futures = admin.delete_topics(names, operation_timeout=10)
    for future in futures.values():
        with contextlib.suppress(Exception):  # best effort: a shared broker, not this test's result
            await asyncio.to_thread(future.result, 10)


def read_topic(bootstrap: str, topic: str, count: int, timeout_s: float = 10.0) -> list[Any]:
    """The first ``count`` messages of a single-partition topic, read with a plain consumer (blocking)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"reader-{topic}", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    messages: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(messages) < count and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                messages.append(message)
    finally:
        consumer.close()
    return messages


class TestKafkaEventBus(EventBusContract):
    delivery_timeout_s = DELIVERY_TIMEOUT_S

    @pytest.fixture
    async def bus(self, kafka_bootstrap: str, unique: str) -> AsyncIterator[KafkaEventBus]:
        async with open_bus(kafka_bootstrap, unique) as bus:
            yield bus


async def test_a_command_for_another_node_is_skipped_not_delivered(kafka_bootstrap: str, unique: str) -> None:
    async with open_bus(kafka_bootstrap, unique) as bus:
        mine = bus.commands("n1")
        for i in range(5):
            await bus.publish(CancelTask(task_id=f"other{i}", node_id="n2", version=2, at=1))
        await bus.publish(CancelTask(task_id="mine", node_id="n1", version=2, at=2))
        [command] = await receive(mine, 1, DELIVERY_TIMEOUT_S)
        assert command.task_id == "mine"
        assert await drain(mine, quiet=0.5) == []
        await mine.close()


async def test_publish_many_delivers_every_message_in_order(kafka_bootstrap: str, unique: str) -> None:
    async with open_bus(kafka_bootstrap, unique) as bus:
        events, commands = bus.events(), bus.commands("n1")
        batch = [created(f"t{i}") for i in range(50)]
        pause = PauseTask(task_id="t1", node_id="n1", version=3, at=4)
        await bus.publish_many([*batch[:25], pause, *batch[25:]])
        assert await receive(events, 50, DELIVERY_TIMEOUT_S) == batch
        assert await receive(commands, 1, DELIVERY_TIMEOUT_S) == [pause]
        await events.close()
        await commands.close()


async def test_attachment_updates_also_reach_upstream_workers_in_their_form(
    kafka_bootstrap: str, unique: str
) -> None:
    async with open_bus(kafka_bootstrap, unique, partitions=1) as bus:
        update = UpdateTaskAttachments(
            task_id="t1", node_id="n1", version=3, at=7, attachments={"fps": 5}, attachments_version=2
        )
        await bus.publish(update)
        [message] = await asyncio.to_thread(read_topic, kafka_bootstrap, bus.topics.worker_update, 1)
        assert (message.key(), json.loads(message.value())) == (b"t1", {"attachments": {"fps": 5}})


async def test_node_events_and_alerts_reach_event_subscribers(kafka_bootstrap: str, unique: str) -> None:
    async with open_bus(kafka_bootstrap, unique) as bus:
        subscription = bus.events()
        online = ev.NodeCameOnline(at=1, node_id="n1")
        alert = ev.AlertRaised(at=2, alert_id="a1", rule="r", severity="warning", subject="n1", message="m")
        await bus.publish(online)
        await bus.publish(alert)
        assert sorted(map(repr, await receive(subscription, 2, DELIVERY_TIMEOUT_S))) == sorted(
            map(repr, [online, alert])
        )
        await subscription.close()


async def test_ping_answers_while_running_and_refuses_once_closed(kafka_bootstrap: str, unique: str) -> None:
    async with open_bus(kafka_bootstrap, unique) as bus:
        await bus.ping()
    with pytest.raises(BackendUnavailableError):
        await bus.ping()


async def test_the_resource_closes_every_thread_it_started(kafka_bootstrap: str, unique: str) -> None:
    before = {t for t in threading.enumerate() if t.name.startswith("skalds-kafka")}
    resource = kafka_event_bus(
        KafkaEventBus(
            bootstrap_servers=kafka_bootstrap, topic_prefix=f"{unique}.", consumer_group_prefix=unique
        )
    )
    bus = await anext(resource)
    subscription = bus.commands("n1")
    await bus.publish(CancelTask(task_id="t1", node_id="n1", version=2, at=1))
    await receive(subscription, 1, DELIVERY_TIMEOUT_S)
    with contextlib.suppress(StopAsyncIteration):
        await anext(resource)
    await bus.close()  # idempotent
    assert {t for t in threading.enumerate() if t.name.startswith("skalds-kafka")} <= before
    assert subscription.closed
    await delete_topics(kafka_bootstrap, bus.topics)
