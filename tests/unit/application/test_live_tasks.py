"""The monitor's view of the live tasks: read once, kept current from task events, repaired by resyncs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence

import pytest

from skalds.adapters.memory.event_bus import InMemoryEventBus, InMemorySubscription
from skalds.adapters.memory.repository import InMemoryTaskRepository
from skalds.application.live_tasks import LiveTaskView
from skalds.domain import events as ev
from skalds.domain import lifecycle
from skalds.domain.lifecycle import TaskCommand
from skalds.domain.ports import Subscription, TaskPage, TaskQuery
from skalds.domain.task import Task, new_task
from tests.fakes import FakeClock

RESYNC_MS = 60_000


class CountedReads(InMemoryTaskRepository):
    """The in-memory repository, counting the reads the view makes."""

    def __init__(self) -> None:
        super().__init__()
        self.lists = 0
        self.read_ids: list[list[str]] = []

    async def list(self, query: TaskQuery) -> TaskPage:
        self.lists += 1
        return await super().list(query)

    async def get_many(self, task_ids: Sequence[str]) -> Mapping[str, Task]:
        self.read_ids.append(list(task_ids))
        return await super().get_many(task_ids)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def repository() -> CountedReads:
    return CountedReads()


@pytest.fixture
async def bus() -> AsyncIterator[InMemoryEventBus]:
    bus = InMemoryEventBus()
    yield bus


@pytest.fixture
async def view(
    repository: CountedReads, clock: FakeClock, bus: InMemoryEventBus
) -> AsyncIterator[LiveTaskView]:
    view = LiveTaskView(repository, clock, bus, resync_every_ms=RESYNC_MS)
    yield view
    await view.aclose()


async def running(repository: CountedReads, task_id: str, now: int) -> Task:
    """A task written as running, without any event (as a writer that crashed before publishing)."""
    task = new_task(task_id=task_id, class_name="W", now=now)
    await repository.insert(task)
    assigned, _ = lifecycle.apply(task, TaskCommand.ASSIGN, at=now, executor="n1")
    await repository.update(assigned, task.version)
    return assigned


async def change(
    repository: CountedReads, bus: InMemoryEventBus, task: Task, command: TaskCommand, now: int, **args: str
) -> Task:
    """A change as every writer makes it: the compare-and-set, then its event."""
    new, event = lifecycle.apply(task, command, at=now, **args)
    await repository.update(new, task.version)
    await bus.publish(event)
    return new


async def settled() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def ids(tasks: list[Task]) -> list[str]:
    return sorted(task.id for task in tasks)


async def test_the_first_call_reads_every_live_task_and_later_calls_read_none_while_nothing_changes(
    view: LiveTaskView, repository: CountedReads, clock: FakeClock
) -> None:
    await running(repository, "a", clock.now_ms())
    await repository.insert(new_task(task_id="queued", class_name="W", now=clock.now_ms()))
    assert ids(await view.tasks()) == ["a"]
    for _ in range(3):
        clock.advance(3_000)
        assert ids(await view.tasks()) == ["a"]
    assert (repository.lists, repository.read_ids) == (1, [])


async def test_a_task_event_re_reads_just_that_task_before_the_next_call(
    view: LiveTaskView, repository: CountedReads, bus: InMemoryEventBus, clock: FakeClock
) -> None:
    a = await running(repository, "a", clock.now_ms())
    queued = new_task(task_id="b", class_name="W", now=clock.now_ms())
    await repository.insert(queued)
    await view.tasks()
    await change(repository, bus, queued, TaskCommand.ASSIGN, clock.now_ms(), executor="n2")
    await change(repository, bus, a, TaskCommand.CANCEL, clock.now_ms())
    await settled()
    tasks = {task.id: task for task in await view.tasks()}
    assert sorted(tasks) == ["a", "b"]
    assert tasks["a"].version == a.version + 1 and tasks["b"].executor == "n2"
    assert repository.read_ids == [["a", "b"]] and repository.lists == 1


async def test_an_event_that_ends_a_task_or_creates_one_needs_no_read(
    view: LiveTaskView, repository: CountedReads, bus: InMemoryEventBus, clock: FakeClock
) -> None:
    a = await running(repository, "a", clock.now_ms())
    await view.tasks()
    created = new_task(task_id="new", class_name="W", now=clock.now_ms())
    await repository.insert(created)
    await bus.publish(lifecycle.created(created))  # queued: not live
    await change(repository, bus, a, TaskCommand.FAIL, clock.now_ms(), error="x")
    await settled()
    assert await view.tasks() == []
    assert repository.read_ids == []


async def test_the_callers_own_writes_update_the_view_without_a_read(
    view: LiveTaskView, repository: CountedReads, bus: InMemoryEventBus, clock: FakeClock
) -> None:
    a = await running(repository, "a", clock.now_ms())
    await view.tasks()
    started = await change(repository, bus, a, TaskCommand.START, clock.now_ms())
    view.stored(started)  # the monitor's write: its event comes back with a version the view holds
    await settled()
    assert await view.tasks() == [started]
    finished = await change(repository, bus, started, TaskCommand.FINISH, clock.now_ms())
    view.stored(finished)
    await settled()
    assert await view.tasks() == []
    assert repository.read_ids == []


async def test_a_lost_write_is_re_read(
    view: LiveTaskView, repository: CountedReads, clock: FakeClock
) -> None:
    a = await running(repository, "a", clock.now_ms())
    await view.tasks()
    moved, _ = lifecycle.apply(a, TaskCommand.START, at=clock.now_ms())
    await repository.update(moved, a.version)  # someone else's write, its event not seen yet
    view.lost(["a"])
    assert await view.tasks() == [moved]


async def test_a_missed_event_is_repaired_by_the_resync_which_runs_beside_the_calls(
    view: LiveTaskView, repository: CountedReads, clock: FakeClock
) -> None:
    a = await running(repository, "a", clock.now_ms())
    await view.tasks()
    silent = await running(repository, "silent", clock.now_ms())  # no event: the view cannot know
    gone, _ = lifecycle.apply(a, TaskCommand.FAIL, at=clock.now_ms(), error="x")
    await repository.update(gone, a.version)
    clock.advance(RESYNC_MS)
    assert ids(await view.tasks()) == ["a"]  # the reload started; this call does not wait for it
    await settled()
    assert await view.tasks() == [silent]
    assert (repository.lists, view.reloads) == (2, 1)


async def test_a_change_during_the_resync_is_not_undone_by_its_older_answer(
    view: LiveTaskView, repository: CountedReads, bus: InMemoryEventBus, clock: FakeClock
) -> None:
    a = await running(repository, "a", clock.now_ms())
    await view.tasks()
    clock.advance(RESYNC_MS)
    await view.tasks()  # starts the reload, which reads at once (in memory)
    await settled()
    await change(repository, bus, a, TaskCommand.FAIL, clock.now_ms(), error="x")  # after the read
    await settled()
    assert await view.tasks() == []  # the reload's live "a" is older than the event's re-read


async def test_without_a_subscriber_every_call_reads_every_live_task(
    repository: CountedReads, clock: FakeClock
) -> None:
    view = LiveTaskView(repository, clock, None)
    await running(repository, "a", clock.now_ms())
    for _ in range(3):
        assert ids(await view.tasks()) == ["a"]
    assert repository.lists == 3


class EndingSubscriptions(InMemoryEventBus):
    """The in-memory bus, keeping each subscription it hands out so a test can end one (as a closed bus or a
    broken consumer would)."""

    def __init__(self) -> None:
        super().__init__()
        self.handed_out: list[Subscription[ev.DomainEvent]] = []

    def events(self) -> InMemorySubscription[ev.DomainEvent]:
        subscription = super().events()
        self.handed_out.append(subscription)
        return subscription


async def test_when_its_subscription_ends_the_view_follows_again_from_a_full_read(
    repository: CountedReads, clock: FakeClock
) -> None:
    bus = EndingSubscriptions()
    view = LiveTaskView(repository, clock, bus, resync_every_ms=RESYNC_MS)
    try:
        await running(repository, "a", clock.now_ms())
        await view.tasks()
        await bus.handed_out[-1].close()
        await settled()
        silent = await running(repository, "unheard", clock.now_ms())  # while no one listened
        assert sorted(task.id for task in await view.tasks()) == ["a", silent.id]
        assert (len(bus.handed_out), repository.lists) == (2, 2)
    finally:
        await view.aclose()
