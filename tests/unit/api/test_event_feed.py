"""The SSE fan-out: what each client receives, and why a slow or idle one harms nobody else."""

from __future__ import annotations

import asyncio
import json

from skalds.adapters.memory.event_bus import InMemoryEventBus
from skalds.domain import events as ev
from skalds.domain.events import DomainEvent
from skalds.domain.task import DesiredState, TaskStatus
from skalds.entrypoints.api.event_feed import KEEP_ALIVE, EventFeed
from skalds.entrypoints.api.frames import Stream
from tests.contracts.event_bus import created, heartbeats


def messages(batch: bytes) -> list[dict[str, object]]:
    """The JSON data of every message in a batch, keep-alive comments left out."""
    return [data for _, data in named_messages(batch)]


def named_messages(batch: bytes) -> list[tuple[str | None, dict[str, object]]]:
    """Each message's SSE event name (None for an unnamed one) and JSON data."""
    found = []
    for message in batch.decode().split("\n\n"):
        name = None
        for line in message.splitlines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            if line.startswith("data: "):
                found.append((name, json.loads(line.removeprefix("data: "))))
    return found


def beat(task_id: str) -> DomainEvent:
    """An event that becomes exactly one frame (a task's heartbeat)."""
    return next(iter(heartbeats(task_id).each()))


async def test_each_frame_is_encoded_once_numbered_and_sent_to_the_clients_that_want_it() -> None:
    feed = EventFeed()
    everyone = feed.connect(Stream.TASKS, task_id=None, node_id=None, after=None)
    only_t2 = feed.connect(Stream.TASKS, task_id="t2", node_id=None, after=None)
    nodes = feed.connect(Stream.SKALDS, task_id=None, node_id=None, after=None)
    feed.publish(beat("t1"))
    feed.publish(beat("t2"))
    assert [m["taskId"] for m in messages(await everyone.next_batch())] == ["t1", "t2"]
    assert [m["taskId"] for m in messages(await only_t2.next_batch())] == ["t2"]
    assert not nodes.pending
    assert everyone.pending == only_t2.pending  # both drained
    assert feed.recent[1][2].startswith(b"id: 2\n")


async def test_a_change_goes_out_as_upstreams_unnamed_heartbeat_and_as_our_named_task_status() -> None:
    """Upstream's page reads unnamed messages only, and takes a task's status from the newest one."""
    feed = EventFeed()
    client = feed.connect(Stream.TASKS, task_id=None, node_id=None, after=None)
    feed.publish(created("t1"))
    [(upstream_name, upstream), (own_name, own)] = named_messages(await client.next_batch())
    assert upstream_name is None and own_name == "skalds"
    assert upstream == {
        "type": "task_heartbeat",
        "taskId": "t1",
        "data": {"heartbeat": 0, "lifecycleStatus": "Created", "change": "TaskCreated"},
        "timestamp": 1,
    }
    assert own["type"] == "task_status" and own["data"]["change"] == "TaskCreated"  # type: ignore[index]


def fed(*events: DomainEvent) -> EventFeed:
    """A feed with one client per task stream (all tasks, and only t2) that was sent these events."""
    feed = EventFeed()
    feed.connect(Stream.TASKS, task_id=None, node_id=None, after=None)
    feed.connect(Stream.TASKS, task_id="t2", node_id=None, after=None)
    for event in events:
        feed.publish(event)
    return feed


async def test_a_heartbeat_batch_gives_each_client_the_frames_its_single_events_would() -> None:
    batch = heartbeats("t1", "t2", "t3", at=9)
    batched, single = fed(created("t0"), batch), fed(created("t0"), *batch.each())
    assert [message for *_, message in batched.recent] == [message for *_, message in single.recent]
    assert len(batched.recent) == 5 and batched.counter == single.counter == 5
    got = {client.task_id: b"".join(client.pending) for client in batched.clients}
    want = {client.task_id: b"".join(client.pending) for client in single.clients}
    assert got == want
    assert [m["taskId"] for m in messages(got["t2"])] == ["t2"]  # filtered per task, like any frame
    assert messages(got["t2"])[0] == {
        "type": "task_heartbeat",
        "taskId": "t2",
        "data": {"heartbeat": 2, "lifecycleStatus": "Running", "progress": 10.0, "verdict": "progressing"},
        "timestamp": 9,
    }


async def test_a_reconnecting_client_resumes_in_the_middle_of_a_batch() -> None:
    feed = fed(heartbeats("t1", "t2", "t3"))
    back = feed.connect(Stream.TASKS, task_id=None, node_id=None, after=1)
    assert [m["taskId"] for m in messages(await back.next_batch())] == ["t2", "t3"]


async def test_a_slow_client_loses_its_oldest_frames_is_told_how_many_and_others_get_all() -> None:
    feed = EventFeed(client_capacity=3)
    slow = feed.connect(Stream.TASKS, task_id=None, node_id=None, after=None)
    fast = feed.connect(Stream.TASKS, task_id=None, node_id=None, after=None)
    received: list[str] = []
    for i in range(5):
        feed.publish(beat(f"t{i}"))
        received += [str(m["taskId"]) for m in messages(await fast.next_batch())]
    named = named_messages(await slow.next_batch())
    got = [data for _, data in named]
    assert received == ["t0", "t1", "t2", "t3", "t4"]
    assert named[0] == ("skalds", {"type": "frames_dropped", "data": {"count": 2}})  # ours, so named
    assert [m["taskId"] for m in got[1:]] == ["t2", "t3", "t4"]


async def test_a_reconnecting_client_gets_what_it_missed_after_its_last_event_id() -> None:
    feed = EventFeed()
    for i in range(4):
        feed.publish(beat(f"t{i}"))
    back = feed.connect(Stream.TASKS, task_id=None, node_id=None, after=2)
    assert [m["taskId"] for m in messages(await back.next_batch())] == ["t2", "t3"]


async def test_events_from_the_bus_reach_clients_and_only_idle_ones_get_a_keep_alive() -> None:
    bus = InMemoryEventBus()
    feed = EventFeed(keep_alive_s=0.05)
    idle = feed.connect(Stream.TASKS, task_id="nothing-happens", node_id=None, after=None)
    busy = feed.connect(Stream.TASKS, task_id="t1", node_id=None, after=None)
    running = asyncio.create_task(feed.run(bus))
    try:
        await asyncio.sleep(0.01)
        await bus.publish(beat("t1"))
        assert [m["taskId"] for m in messages(await asyncio.wait_for(busy.next_batch(), 1))] == ["t1"]
        assert await asyncio.wait_for(idle.next_batch(), 1) == KEEP_ALIVE
        assert not busy.pending  # it was sent a frame in that tick
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_a_client_that_keeps_up_gets_every_frame_of_a_batch_far_larger_than_its_mailbox() -> None:
    """10,000 heartbeats in one monitor batch, a mailbox of 1,000: fed in slices, nothing is dropped."""
    bus = InMemoryEventBus()
    feed = EventFeed()
    client = feed.connect(Stream.TASKS, task_id=None, node_id=None, after=None)
    received: list[dict[str, object]] = []

    async def read() -> None:
        while not received or received[-1].get("taskId") != "after":
            received.extend(messages(await client.next_batch()))

    running = asyncio.create_task(feed.run(bus))
    try:
        await asyncio.sleep(0.01)
        await bus.publish(heartbeats(*(f"t{i}" for i in range(10_000))))
        await bus.publish(beat("after"))
        await asyncio.wait_for(read(), 5)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert [m["taskId"] for m in received].count("after") == 1 and len(received) == 10_001
    assert "frames_dropped" not in {m["type"] for m in received}
    assert received[-1]["taskId"] == "after"


async def test_a_disconnected_client_leaves_the_feed_and_its_writer_stops() -> None:
    feed = EventFeed()
    client = feed.connect(Stream.TASKS, task_id=None, node_id=None, after=None)
    waiting = asyncio.create_task(client.next_batch())
    await asyncio.sleep(0)
    feed.disconnect(client)
    assert await asyncio.wait_for(waiting, 1) == b""
    assert client not in feed.clients
    feed.publish(created("t1"))
    assert not client.pending


async def test_closing_the_feed_ends_every_stream_and_any_that_connects_later() -> None:
    feed = EventFeed()
    open_one = feed.connect(Stream.TASKS, task_id=None, node_id=None, after=None)
    feed.close()
    late = feed.connect(Stream.TASKS, task_id=None, node_id=None, after=None)
    assert await open_one.next_batch() == b"" and await late.next_batch() == b""
    assert not feed.clients


def change(task_id: str, version: int, to: TaskStatus) -> ev.TaskEvent:
    return ev.TaskEvent(
        at=version,
        task_id=task_id,
        version=version,
        from_status=None,
        to_status=to,
        desired_state=DesiredState.RUN,
    )


def upstream_view(batch: bytes) -> list[tuple[str, object, object]]:
    """What upstream's page reads: the unnamed frames' type, status and heartbeat code."""
    return [
        (str(data["type"]), data["data"]["lifecycleStatus"], data["data"].get("heartbeat"))  # type: ignore[index]
        for name, data in named_messages(batch)
        if name is None
    ]


async def test_a_frame_behind_the_newest_change_tells_upstreams_page_the_newest_status() -> None:
    """A beat judged before the task finished, or an older change, that arrives late (another monitor,
    another partition) must not put upstream's page back on Running: it keeps the newest frame's status."""
    feed = EventFeed()
    client = feed.connect(Stream.TASKS, task_id=None, node_id=None, after=None)
    feed.publish(change("t1", 5, TaskStatus.FINISHED))
    feed.publish(beat("t1"))  # the batch's beats say Running
    feed.publish(change("t1", 4, TaskStatus.RUNNING))
    assert upstream_view(await client.next_batch()) == [
        ("task_heartbeat", "Finished", 200),
        ("task_heartbeat", "Finished", 200),
        ("task_heartbeat", "Finished", 200),
    ]
    feed.publish(change("t1", 6, TaskStatus.CREATED))  # retried: newer, so it is told as it is
    feed.publish(beat("t2"))  # a task the feed has seen no change of: as it is
    assert upstream_view(await client.next_batch()) == [
        ("task_heartbeat", "Created", 0),
        ("task_heartbeat", "Running", 1),
    ]


async def test_a_deletion_is_no_frame_for_upstreams_page_and_is_forgotten() -> None:
    feed = EventFeed()
    client = feed.connect(Stream.TASKS, task_id=None, node_id=None, after=None)
    feed.publish(change("t1", 2, TaskStatus.FINISHED))
    deleted = ev.TaskDeleted(
        at=3, task_id="t1", version=3, from_status=TaskStatus.FINISHED, to_status=TaskStatus.FINISHED,
        desired_state=DesiredState.RUN,
    )  # fmt: skip
    feed.publish(deleted)
    kinds = [(name, data["type"]) for name, data in named_messages(await client.next_batch())]
    assert kinds[-1:] == [("skalds", "task_status")] and kinds.count((None, "task_heartbeat")) == 1
    assert "t1" not in feed.latest
