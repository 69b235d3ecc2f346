"""The Kafka bus under faults: malformed messages, duplicates, restarted consumers, a restarted broker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from skalds.adapters.kafka.event_bus import KafkaEventBus
from skalds.adapters.memory.live_state import InMemoryLiveStateStore
from skalds.adapters.memory.repository import InMemoryTaskRepository
from skalds.adapters.memory.supervisor import InProcessWorkerContext, InProcessWorkerSupervisor
from skalds.application.node_runtime import NodeIdentity, NodeRuntime
from skalds.domain import events as ev
from skalds.domain import lifecycle
from skalds.domain.commands import (
    AssignTask,
    CancelTask,
    NodeCommand,
    PauseTask,
    ResumeTask,
    UpdateTaskAttachments,
)
from skalds.domain.errors import BackendUnavailableError
from skalds.domain.lifecycle import TaskCommand
from skalds.domain.ports import Subscription
from skalds.domain.task import new_task
from tests.contracts.event_bus import created, drain, receive
from tests.fakes import FakeClock
from tests.integration.test_kafka_event_bus import DELIVERY_TIMEOUT_S, open_bus, read_topic

BAD_COMMANDS: dict[type[NodeCommand], bytes] = {
    AssignTask: b"{not json",
    CancelTask: json.dumps({"id": "k", "task_ids": "k", "create_date_time": 1}).encode(),  # not a list
    UpdateTaskAttachments: json.dumps(
        {
            "id": "k",
            "title": "LaunchRocket",
            "recipient": "n1",
            "createDateTime": 1,
            "taskIds": ["k"],
            "skalds": {},
        }
    ).encode(),
    PauseTask: json.dumps(
        {
            "id": "k",
            "title": "PauseTask",
            "recipient": "n1",
            "createDateTime": 1,
            "taskIds": ["k"],
            "skalds": {"version": "two"},
        }
    ).encode(),
    ResumeTask: json.dumps(
        {
            "id": "k",
            "title": "ResumeTask",
            "recipient": "n1",
            "createDateTime": 1,
            "taskIds": ["k"],
            "skalds": {},
        }
    ).encode(),
}
GOOD_COMMANDS: list[NodeCommand] = [
    AssignTask(task_id="k", node_id="n1", version=2, at=1, attempt=1),
    CancelTask(task_id="k", node_id="n1", version=3, at=1),
    UpdateTaskAttachments(
        task_id="k", node_id="n1", version=4, at=1, attachments={"a": 1}, attachments_version=2
    ),
    PauseTask(task_id="k", node_id="n1", version=5, at=1),
    ResumeTask(task_id="k", node_id="n1", version=6, at=1),
]
GOOD_EVENTS: list[ev.DomainEvent] = [
    created("k"),
    ev.NodeCameOnline(at=1, node_id="k"),
    ev.AlertRaised(at=1, alert_id="k", rule="r", severity="warning", subject="s", message="m"),
]
BAD_EVENTS = [b"\xff not json", b'{"type": "TaskExploded", "at": 1}', b'{"type": "NodeCameOnline", "at": 1}']


async def produce_raw(bootstrap: str, messages: list[tuple[str, bytes]], key: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for topic, value in messages:
        producer.produce(topic, value, key)
    assert await asyncio.to_thread(producer.flush, 10) == 0


async def test_a_malformed_message_on_each_topic_is_parked_and_the_next_good_one_delivered(
    kafka_bootstrap: str, unique: str
) -> None:
    async with open_bus(kafka_bootstrap, unique) as bus:
        commands, events = bus.commands("n1"), bus.events()
        topics = bus.topics
        bad = [(topics.for_command_class(cls), value) for cls, value in BAD_COMMANDS.items()]
        bad += [(topic, value) for topic, value in zip(topics.events, BAD_EVENTS, strict=True)]
        await produce_raw(kafka_bootstrap, bad, key="k")  # same key as the good ones: same partition, before
        await bus.publish_many([*GOOD_COMMANDS, *GOOD_EVENTS])

        received = await receive(commands, len(GOOD_COMMANDS), DELIVERY_TIMEOUT_S)
        assert sorted(received, key=lambda c: c.version) == GOOD_COMMANDS
        assert sorted(map(repr, await receive(events, 3, DELIVERY_TIMEOUT_S))) == sorted(
            map(repr, GOOD_EVENTS)
        )

        parked = await asyncio.to_thread(read_topic, kafka_bootstrap, topics.dead_letter, len(bad))
        by_topic = {dict(m.headers())["skalds.origin.topic"].decode(): m for m in parked}
        assert set(by_topic) == {topic for topic, _ in bad}
        for topic, value in bad:
            message = by_topic[topic]
            headers = {name: raw.decode() for name, raw in message.headers()}
            assert (message.value(), message.key()) == (value, b"k")
            assert int(headers["skalds.origin.offset"]) >= 0 and headers["skalds.origin.partition"].isdigit()
            assert headers["skalds.error"]
        cancel_topic = topics.for_command_class(CancelTask)
        assert "task_ids" in dict(by_topic[cancel_topic].headers())["skalds.error"].decode()
        await commands.close()
        await events.close()


class CountingWorkers:
    """A worker that counts its starts and the updates it applies; runs until told to finish."""

    def __init__(self) -> None:
        self.starts: Counter[str] = Counter()
        self.updates: list[tuple[str, int]] = []
        self.finish: set[str] = set()

    async def __call__(self, ctx: InProcessWorkerContext) -> None:
        self.starts[ctx.task_id] += 1
        ctx.on_update = lambda attachments, version: self.updates.append((ctx.task_id, version))
        while ctx.task_id not in self.finish:
            await ctx.sleep(0.01)


@dataclass
class Node:
    """A real NodeRuntime on the in-memory repository, live state and in-process supervisor, fed by Kafka."""

    runtime: NodeRuntime
    supervisor: InProcessWorkerSupervisor
    workers: CountingWorkers
    assign: AssignTask

    async def obey(self, subscription: Subscription[NodeCommand], count: int) -> None:
        """Handle ``count`` commands as the node's loop does."""
        async with asyncio.timeout(DELIVERY_TIMEOUT_S):
            async for command in subscription:
                await self.runtime.handle(command)
                count -= 1
                if count == 0:
                    return


async def a_node_with_an_assigned_task(bus: KafkaEventBus) -> Node:
    """As bootstrap's ``_node`` builds it; task t1 is stored as assigned to n1, its AssignTask unsent."""
    clock = FakeClock()
    repository = InMemoryTaskRepository()
    task = new_task(task_id="t1", class_name="Video", now=clock.now_ms())
    task, _ = lifecycle.apply(task, TaskCommand.ASSIGN, at=clock.now_ms(), executor="n1")
    await repository.insert(task)
    workers = CountingWorkers()
    supervisor = InProcessWorkerSupervisor({"Video": workers}, cancel_grace_s=0.1)
    runtime = NodeRuntime(
        NodeIdentity(id="n1", supported_classes=frozenset({"Video"})),
        repository,
        InMemoryLiveStateStore(clock),
        clock,
        supervisor,
        publisher=bus,
        lease_ms=5_000,
    )
    assign = AssignTask(
        task_id=task.id, node_id="n1", version=task.version, at=task.update_date_time, attempt=1
    )
    return Node(runtime=runtime, supervisor=supervisor, workers=workers, assign=assign)


async def test_a_duplicate_assignment_starts_the_worker_once(kafka_bootstrap: str, unique: str) -> None:
    async with open_bus(kafka_bootstrap, unique) as bus:
        node = await a_node_with_an_assigned_task(bus)
        await bus.publish_many([node.assign, node.assign])  # the same command delivered twice
        subscription = bus.commands("n1")
        await node.obey(subscription, 2)
        await asyncio.sleep(0.05)  # let a second worker start, if one were started
        assert node.workers.starts == Counter({"t1": 1})
        assert list(node.supervisor.states()) == ["t1"]
        await subscription.close()
        await node.supervisor.shutdown()


async def test_an_assignment_redelivered_after_its_worker_ended_does_not_run_it_again(
    kafka_bootstrap: str, unique: str
) -> None:
    """The redelivery lands after the worker finished and the node reported it, before the monitor settled
    the task (still Assigning to this node in the repository)."""
    async with open_bus(kafka_bootstrap, unique) as bus:
        node = await a_node_with_an_assigned_task(bus)
        await bus.publish_many([node.assign, node.assign])
        subscription = bus.commands("n1")
        await node.obey(subscription, 1)
        node.workers.finish.add("t1")
        async with asyncio.timeout(5):
            while node.supervisor.states()["t1"].outcome is None:  # noqa: ASYNC110 - the port reports by polling
                await asyncio.sleep(0.01)
        await node.runtime.beat()  # reports the outcome and forgets the worker
        assert node.supervisor.states() == {}
        await node.obey(subscription, 1)
        await asyncio.sleep(0.05)
        assert node.workers.starts == Counter({"t1": 1})
        await subscription.close()
        await node.supervisor.shutdown()


async def test_a_duplicate_attachment_update_is_applied_once(kafka_bootstrap: str, unique: str) -> None:
    async with open_bus(kafka_bootstrap, unique) as bus:
        node = await a_node_with_an_assigned_task(bus)
        update = UpdateTaskAttachments(
            task_id="t1", node_id="n1", version=3, at=2, attachments={"fps": 5}, attachments_version=2
        )
        await bus.publish(node.assign)
        subscription = bus.commands("n1")
        await node.obey(subscription, 1)
        await bus.publish_many([update, update])
        await node.obey(subscription, 2)
        assert node.workers.updates == [("t1", 2)]
        await subscription.close()
        await node.supervisor.shutdown()


def cancels(count: int, node_id: str) -> list[CancelTask]:
    return [CancelTask(task_id=f"c{i}", node_id=node_id, version=i + 1, at=i) for i in range(count)]


async def test_a_restarted_subscription_gets_exactly_the_commands_not_yet_handled(
    kafka_bootstrap: str, unique: str
) -> None:
    async with open_bus(kafka_bootstrap, unique) as bus:
        sent = cancels(8, "n1")
        await bus.publish_many(sent)
        first = bus.commands("n1")
        handled = await receive(first, 3, DELIVERY_TIMEOUT_S)
        await first.close()
        second = bus.commands("n1")
        rest = await receive(second, 5, DELIVERY_TIMEOUT_S)
        assert await drain(second, quiet=0.5) == []  # nothing twice, nothing more
        assert sorted([*handled, *rest], key=lambda c: c.version) == sent
        await second.close()


async def test_a_reader_that_crashes_while_handling_gets_that_command_again(
    kafka_bootstrap: str, unique: str
) -> None:
    applied: Counter[tuple[str, int]] = Counter()

    def apply(command: NodeCommand) -> None:
        """Idempotent: a command applied before (same task, same version) changes nothing."""
        applied[(command.task_id, command.version)] = 1

    async with open_bus(kafka_bootstrap, unique) as bus:
        sent = cancels(6, "n1")
        await bus.publish_many(sent)
        subscription = bus.commands("n1")
        crashed_on: list[NodeCommand] = []
        reached = asyncio.Event()

        async def reader() -> None:
            async for command in subscription:
                if len(applied) == 2:  # the third command: the process dies while handling it
                    crashed_on.append(command)
                    reached.set()
                    await asyncio.Event().wait()
                apply(command)

        crashing = asyncio.create_task(reader())
        await asyncio.wait_for(reached.wait(), DELIVERY_TIMEOUT_S)
        crashing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await crashing
        await subscription.close()

        restarted = bus.commands("n1")
        redelivered = await receive(restarted, 4, DELIVERY_TIMEOUT_S)
        assert await drain(restarted, quiet=0.5) == []
        assert crashed_on[0] in redelivered  # at-least-once: the interrupted one comes back
        for command in redelivered:
            apply(command)
        assert applied == Counter({(c.task_id, c.version): 1 for c in sent})
        await restarted.close()


class Collector:
    """Reads a subscription in the background, as a node's loop does: each message handled at once."""

    def __init__(self, subscription: Subscription[Any]) -> None:
        self.subscription = subscription
        self.ids: list[str] = []
        self._arrived = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.subscription:
            async with self._arrived:
                self.ids.append(message.task_id)
                self._arrived.notify_all()

    async def until(self, task_id: str, within_s: float = 30) -> list[str]:
        async with asyncio.timeout(within_s), self._arrived:
            await self._arrived.wait_for(lambda: task_id in self.ids)
        return self.ids

    async def close(self) -> None:
        await self.subscription.close()
        await self._reader


def committed_offset(bootstrap: str, group: str, topic: str) -> int:
    """The group's committed offset on partition 0, read without joining the group (blocking)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        [position] = consumer.committed([TopicPartition(topic, 0)], timeout=5)
        return int(position.offset)
    finally:
        consumer.close()


async def wait_until_unreachable(bus: KafkaEventBus, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            await bus.ping()
        except BackendUnavailableError:
            return True
        await asyncio.sleep(0.1)
    return False


async def test_a_broker_restart_mid_run_gives_clear_errors_then_recovers(
    kafka_bootstrap: str,
    unique: str,
    restart_service: Callable[[str], None],
    record_property: Callable[[str, Any], None],
) -> None:
    """A publish during the outage either succeeds once the broker is back (within delivery_timeout_ms) or
    raises BackendUnavailableError; either way the open subscriptions deliver again after the restart, and
    a command handled (and committed) before it is not delivered again."""
    async with open_bus(
        kafka_bootstrap, unique, partitions=1, start_timeout_s=2.0, delivery_timeout_ms=8_000
    ) as bus:
        events, commands = Collector(bus.events()), Collector(bus.commands("n1"))
        await bus.publish(CancelTask(task_id="before", node_id="n1", version=1, at=1))
        await commands.until("before")
        cancel_topic = bus.topics.for_command_class(CancelTask)
        async with asyncio.timeout(DELIVERY_TIMEOUT_S):  # the reader asked for more: "before" gets committed
            while (  # noqa: ASYNC110 - the broker has no event to wait on
                await asyncio.to_thread(committed_offset, kafka_bootstrap, f"{unique}.n1", cancel_topic) < 1
            ):
                await asyncio.sleep(0.05)

        restarting = asyncio.create_task(asyncio.to_thread(restart_service, "kafka"))
        went_down = await wait_until_unreachable(bus, within_s=30)
        outcome = "broker never seen down"
        if went_down:
            try:
                await bus.publish(CancelTask(task_id="during", node_id="n1", version=2, at=2))
                outcome = "delivered after the reconnect"
            except BackendUnavailableError as error:
                outcome = f"BackendUnavailableError: {error}"
        await restarting
        record_property("publish_during_outage", outcome)
        print(f"publish during the Kafka restart: {outcome}")

        await bus.publish(CancelTask(task_id="after", node_id="n1", version=3, at=3))
        await bus.publish(created("after"))
        ids = await commands.until("after")
        assert ids.count("before") == 1 and ids.count("during") <= 1 and ids.count("after") == 1
        await events.until("after")
        await bus.ping()
        await events.close()
        await commands.close()


async def test_no_broker_at_start_up_is_a_clear_error_not_a_hang() -> None:
    bus = KafkaEventBus(bootstrap_servers="127.0.0.1:9", start_timeout_s=1.0)
    with pytest.raises(BackendUnavailableError, match=r"127\.0\.0\.1:9"):
        await asyncio.wait_for(bus.start(), 30)
    await bus.close()


async def test_a_reader_that_crashes_holding_a_batch_gets_the_whole_batch_again(
    kafka_bootstrap: str, unique: str
) -> None:
    """A batch counts as handled only when the next is asked for. One task's commands share a partition,
    so another node's command between two of ours must not mark ours handled (a mark covers every
    earlier offset of its partition)."""
    async with open_bus(kafka_bootstrap, unique) as bus:
        await bus.publish_many(
            [CancelTask(task_id="t", node_id=node, version=v, at=v) for v, node in enumerate("abab", 1)]
        )
        subscription = bus.commands("a")
        held: list[NodeCommand] = []
        reached = asyncio.Event()

        async def reader() -> None:
            async for batch in subscription.batches(100):
                held[:] = batch  # asking for this batch handled the one before
                if any(command.version == 3 for command in batch):
                    reached.set()
                    await asyncio.Event().wait()  # the process dies while handling it

        crashing = asyncio.create_task(reader())
        await asyncio.wait_for(reached.wait(), DELIVERY_TIMEOUT_S * 4)
        crashing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await crashing
        await subscription.close()

        restarted = bus.commands("a")
        redelivered = await receive(restarted, len(held), DELIVERY_TIMEOUT_S)
        assert [c.version for c in redelivered] == [c.version for c in held]
        assert await drain(restarted, quiet=0.5) == []
        await restarted.close()
