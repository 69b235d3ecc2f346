"""What every event bus (EventPublisher + EventSubscriber) promises. Subclass with a ``bus`` fixture."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import pytest

from skalds.domain import events as ev
from skalds.domain.commands import AssignTask, CancelTask, UpdateTaskAttachments
from skalds.domain.ports import Subscription
from skalds.domain.task import DesiredState, TaskStatus

T = TypeVar("T")


def created(task_id: str, at: int = 1) -> ev.TaskCreated:
    return ev.TaskCreated(
        at=at,
        task_id=task_id,
        version=1,
        from_status=None,
        to_status=TaskStatus.CREATED,
        desired_state=DesiredState.RUN,
        class_name="Video",
    )


def heartbeats(*task_ids: str, at: int = 1) -> ev.TaskHeartbeatsObserved:
    """One monitor cycle's heartbeats: the i-th task has sequence i + 1, progress 10 * i (none first)."""
    return ev.TaskHeartbeatsObserved(
        at=at,
        task_ids=task_ids,
        sequences=tuple(i + 1 for i in range(len(task_ids))),
        progress=tuple(None if i == 0 else 10.0 * i for i in range(len(task_ids))),
        verdicts=tuple("progressing" for _ in task_ids),
        statuses=tuple(TaskStatus.RUNNING for _ in task_ids),
    )


async def receive(subscription: Subscription[T], count: int, within: float = 1.0) -> list[T]:
    iterator: AsyncIterator[T] = aiter(subscription)
    return [await asyncio.wait_for(anext(iterator), within) for _ in range(count)]


async def nothing_arrives(subscription: Subscription[Any], wait: float = 0.05) -> bool:
    try:
        await asyncio.wait_for(anext(aiter(subscription)), wait)
    except (TimeoutError, StopAsyncIteration):
        return True
    return False


class EventBusContract:
    delivery_timeout_s = 1.0  # how long ``receive`` waits per message; a networked bus's subclass raises it

    @pytest.fixture
    def bus(self) -> Any:
        raise NotImplementedError

    async def test_every_subscriber_gets_every_event_in_order(self, bus: Any) -> None:
        first, second = bus.events(), bus.events()
        await asyncio.sleep(0)
        for i in range(3):
            await bus.publish(created(f"t{i}"))
        assert [e.task_id for e in await receive(first, 3, self.delivery_timeout_s)] == ["t0", "t1", "t2"]
        assert [e.task_id for e in await receive(second, 3, self.delivery_timeout_s)] == ["t0", "t1", "t2"]
        await first.close()
        await second.close()

    async def test_events_round_trip_with_their_fields(self, bus: Any) -> None:
        subscription = bus.events()
        await asyncio.sleep(0)
        event = ev.TaskFailed(
            at=5,
            task_id="t1",
            version=4,
            from_status=TaskStatus.RUNNING,
            to_status=TaskStatus.FAILED,
            desired_state=DesiredState.RUN,
            error="boom",
            attempt=1,
            attempts_left=2,
        )
        await bus.publish(event)
        assert await receive(subscription, 1, self.delivery_timeout_s) == [event]
        await subscription.close()

    async def test_a_heartbeat_batch_arrives_whole_and_in_order_among_task_events(self, bus: Any) -> None:
        subscription = bus.events()
        await asyncio.sleep(0)
        sent = [created("t1"), heartbeats("t1", "t2", "t3"), created("t4")]
        await bus.publish_many(sent)
        assert await receive(subscription, 3, self.delivery_timeout_s) == sent
        await subscription.close()

    async def test_commands_reach_only_their_node(self, bus: Any) -> None:
        n1, n2 = bus.commands("n1"), bus.commands("n2")
        await asyncio.sleep(0)
        update = UpdateTaskAttachments(
            task_id="t1", node_id="n1", version=3, at=7, attachments={"fps": 5}, attachments_version=2
        )
        await bus.publish(update)
        await bus.publish(CancelTask(task_id="t2", node_id="n2", version=2, at=8))
        assert await receive(n1, 1, self.delivery_timeout_s) == [update]
        [cancel] = await receive(n2, 1, self.delivery_timeout_s)
        assert isinstance(cancel, CancelTask) and cancel.task_id == "t2"
        assert await nothing_arrives(n1)
        await n1.close()
        await n2.close()

    async def test_commands_sent_before_the_node_listens_are_kept(self, bus: Any) -> None:
        await bus.publish(AssignTask(task_id="t1", node_id="late", version=2, at=1, attempt=1))
        subscription = bus.commands("late")
        [command] = await receive(subscription, 1, self.delivery_timeout_s)
        assert isinstance(command, AssignTask) and command.attempt == 1
        await subscription.close()

    async def test_a_closed_subscription_ends_and_receives_nothing(self, bus: Any) -> None:
        subscription, other = bus.events(), bus.events()
        await asyncio.sleep(0)
        await subscription.close()
        await bus.publish(created("t1"))
        assert await nothing_arrives(subscription)
        # the others are unaffected
        assert [e.task_id for e in await receive(other, 1, self.delivery_timeout_s)] == ["t1"]
        await other.close()

    async def test_closing_ends_a_reader_that_is_waiting(self, bus: Any) -> None:
        events, commands = bus.events(), bus.commands("n1")
        await asyncio.sleep(0)

        async def read_all(subscription: Subscription[Any]) -> list[Any]:
            return [message async for message in subscription]

        readers = [asyncio.create_task(read_all(s)) for s in (events, commands)]
        await asyncio.sleep(0.05)
        await events.close()
        await commands.close()
        assert await asyncio.wait_for(asyncio.gather(*readers), 1.0) == [[], []]

    async def test_commands_sent_between_subscriptions_wait_for_the_nodes_next_one(self, bus: Any) -> None:
        first = bus.commands("n1")
        await asyncio.sleep(0)
        await bus.publish(CancelTask(task_id="t1", node_id="n1", version=2, at=1))
        [command] = await receive(first, 1, self.delivery_timeout_s)
        assert command.task_id == "t1"
        await first.close()
        await bus.publish(CancelTask(task_id="t2", node_id="n1", version=2, at=2))
        second = bus.commands("n1")
        assert [c.task_id for c in await receive(second, 1, self.delivery_timeout_s)] == ["t2"]
        await second.close()

    async def test_commands_come_in_batches_of_what_is_waiting_in_order(self, bus: Any) -> None:
        # one task's commands: the order a bus keeps is per task (Kafka: per partition, keyed by task id)
        sent = [CancelTask(task_id="t", node_id="n1", version=i + 1, at=i) for i in range(7)]
        await bus.publish(CancelTask(task_id="other", node_id="n2", version=1, at=0))
        await bus.publish_many(sent)
        subscription = bus.commands("n1")
        got: list[Any] = []
        batches = subscription.batches(3)
        async with asyncio.timeout(self.delivery_timeout_s * 10):
            while len(got) < len(sent):
                batch = await anext(batches)
                assert 1 <= len(batch) <= 3
                got.extend(batch)
        assert got == sent  # in order, none for another node, none twice
        await subscription.close()

    async def test_a_slow_subscriber_does_not_block_the_publisher_or_the_others(self, bus: Any) -> None:
        slow, fast = bus.events(), bus.events()
        await asyncio.sleep(0)
        await asyncio.wait_for(self._publish_many(bus, 200), 1.0)  # nobody reads ``slow``
        assert [e.task_id for e in await receive(fast, 200, self.delivery_timeout_s)] == [
            f"t{i}" for i in range(200)
        ]
        await slow.close()
        await fast.close()

    @staticmethod
    async def _publish_many(bus: Any, count: int) -> None:
        for i in range(count):
            await bus.publish(created(f"t{i}"))

    async def test_events_published_before_subscribing_are_not_replayed(self, bus: Any) -> None:
        await bus.publish(created("before"))
        subscription = bus.events()
        await asyncio.sleep(0)
        await bus.publish(created("after"))
        assert [e.task_id for e in await receive(subscription, 1, self.delivery_timeout_s)] == ["after"]
        await subscription.close()


async def drain(subscription: Subscription[T], quiet: float = 0.05) -> list[T]:
    """Everything delivered so far: read until nothing more arrives for ``quiet`` seconds."""
    received: list[T] = []
    iterator: AsyncIterator[T] = aiter(subscription)
    while True:
        try:
            received.append(await asyncio.wait_for(anext(iterator), quiet))
        except (TimeoutError, StopAsyncIteration):
            return received
