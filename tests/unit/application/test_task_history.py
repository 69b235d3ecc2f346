"""What the history keeper keeps from the event stream: every lifecycle change of a task with its attempt,
node and error; its progress, thinned; the changes and statuses per minute; nothing twice; nothing lost
while the store is away."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from skalds.application.task_history import HistoryKeeper
from skalds.application.tasks import TaskDraft
from skalds.domain import events as ev
from skalds.domain.errors import BackendUnavailableError
from skalds.domain.ports import TaskHistoryStore
from skalds.domain.task import TaskStatus
from skalds.domain.task_history import ProgressPoint, TimelineEntry, minute_of
from tests.contracts.event_bus import drain
from tests.unit.application.harness import CLASS, System, build_system


@pytest.fixture
async def system() -> AsyncIterator[System]:
    built = await build_system()
    yield built
    await built.close()


async def test_a_failed_and_retried_task_shows_every_change_with_its_attempt_node_and_error(
    system: System,
) -> None:
    keeper: HistoryKeeper = system.services.history_keeper
    events = system.services.subscriber.events()
    await system.add_node("n1")
    await system.services.tasks.create(TaskDraft(id="t1", class_name=CLASS, max_attempts=2))
    await system.cycle()
    system.workers.control("t1").fail = "camera unreachable"
    await system.settle()
    await system.cycle()
    for event in await drain(events):
        keeper.observe(event)
    await keeper.flush()
    history = await system.services.task_history.timeline("t1")
    changes = [(c.change, c.status, c.attempt, c.executor) for c in history.timeline.changes]
    assert changes[:4] == [
        ("TaskCreated", TaskStatus.CREATED, None, None),
        ("TaskAssigned", TaskStatus.ASSIGNING, 1, "n1"),
        ("TaskStarted", TaskStatus.RUNNING, None, "n1"),
        ("TaskFailed", TaskStatus.FAILED, 1, None),
    ]
    failed = history.timeline.changes[3]
    assert (
        failed.detail is not None
        and "camera unreachable" in failed.detail
        and "1 attempt(s) left" in failed.detail
    )
    versions = [c.version for c in history.timeline.changes]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    (minute,) = await system.services.task_history.minutes(1)
    assert (minute.created, minute.failed) == (1, 1)


async def test_progress_is_kept_once_per_period_and_when_it_reaches_the_total(system: System) -> None:
    keeper = HistoryKeeper(system.services.task_history_store, system.services.repository, system.clock)
    beats = [(0, 1.0), (1_000, 2.0), (4_999, 3.0), (5_000, 4.0), (6_000, 4.0), (7_000, 10.0), (20_000, 10.0)]
    for at, done in beats:
        keeper.observe(
            ev.TaskHeartbeatObserved(
                at=at,
                task_id="t1",
                sequence=at,
                progress=done,
                verdict="progressing",
                status=TaskStatus.RUNNING,
                progress_total=10.0,
            )
        )
    await keeper.flush()
    kept = (await system.services.task_history_store.timeline("t1")).progress
    assert [(p.at, p.done) for p in kept] == [(0, 1.0), (5_000, 4.0), (7_000, 10.0)]


async def test_the_status_sample_lands_in_this_minute(system: System) -> None:
    await system.services.tasks.create(TaskDraft(id="t1", class_name=CLASS))
    await system.services.history_keeper.sample()
    (minute,) = await system.services.task_history.minutes(1)
    assert minute.minute == minute_of(system.clock.now_ms())
    assert minute.by_status is not None and minute.by_status[TaskStatus.CREATED] == 1


async def test_a_deleted_task_takes_its_timeline_with_it(system: System) -> None:
    keeper: HistoryKeeper = system.services.history_keeper
    events = system.services.subscriber.events()
    await system.services.tasks.create(TaskDraft(id="t1", class_name=CLASS))
    await system.services.tasks.cancel("t1")
    await system.services.tasks.delete("t1")
    for event in await drain(events):
        keeper.observe(event)
    await keeper.flush()
    assert (await system.services.task_history_store.timeline("t1")).changes == ()


class AwayStore:
    """A store that refuses while ``away`` and otherwise hands on to the real one."""

    def __init__(self, inner: TaskHistoryStore) -> None:
        self.inner = inner
        self.away = True

    async def record(self, changes: Sequence[TimelineEntry], progress: Sequence[ProgressPoint]) -> None:
        if self.away:
            raise BackendUnavailableError("redis", "connection refused")
        await self.inner.record(changes, progress)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


async def test_what_arrives_while_the_store_is_away_is_written_once_it_is_back(system: System) -> None:
    store = AwayStore(system.services.task_history_store)
    keeper = HistoryKeeper(store, system.services.repository, system.clock)  # type: ignore[arg-type]
    events = system.services.subscriber.events()
    await system.services.tasks.create(TaskDraft(id="t1", class_name=CLASS))
    for event in await drain(events):
        keeper.observe(event)
    await keeper.flush()
    assert (await store.inner.timeline("t1")).changes == ()
    store.away = False
    await keeper.flush()
    assert [c.change for c in (await store.inner.timeline("t1")).changes] == ["TaskCreated"]
