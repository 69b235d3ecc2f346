"""What every TaskHistoryStore promises. Subclass with a ``store`` fixture; run unchanged on every adapter."""

from __future__ import annotations

import pytest

from skalds.domain.ports import TaskHistoryStore
from skalds.domain.task import TaskStatus
from skalds.domain.task_history import MINUTE_MS, MinuteCounts, ProgressPoint, TimelineEntry

T0 = 1_700_000_040_000  # a minute's start


def change(
    version: int, change: str = "TaskAssigned", *, task: str = "t1", at: int | None = None, **fields: object
) -> TimelineEntry:
    status = {
        "TaskCreated": TaskStatus.CREATED,
        "TaskFinished": TaskStatus.FINISHED,
        "TaskFailed": TaskStatus.FAILED,
        "TaskCancelled": TaskStatus.CANCELLED,
    }.get(change, TaskStatus.ASSIGNING)
    return TimelineEntry(
        task_id=task,
        at=T0 + version * 1_000 if at is None else at,
        version=version,
        change=change,
        status=status,
        **fields,  # type: ignore[arg-type]
    )


def point(at_s: int, done: float, *, task: str = "t1", total: float | None = 120.0) -> ProgressPoint:
    return ProgressPoint(task_id=task, at=T0 + at_s * 1_000, done=done, total=total)


class TaskHistoryStoreContract:
    changes_per_task = 20  # the store under test keeps this many changes per task
    points_per_task = 10

    @pytest.fixture
    def store(self) -> TaskHistoryStore:
        raise NotImplementedError

    async def test_changes_and_progress_come_back_whole_and_in_order(self, store: TaskHistoryStore) -> None:
        failed = change(3, "TaskFailed", attempt=1, executor="node-a", detail="boom ✗\nTraceback …")
        await store.record([change(2, attempt=1, executor="node-a"), change(1, "TaskCreated"), failed], [])
        await store.record([], [point(5, 10), point(1, 0, total=None)])
        timeline = await store.timeline("t1")
        assert timeline.changes == (change(1, "TaskCreated"), change(2, attempt=1, executor="node-a"), failed)
        assert timeline.progress == (point(1, 0, total=None), point(5, 10))

    async def test_a_task_with_nothing_kept_has_an_empty_timeline(self, store: TaskHistoryStore) -> None:
        timeline = await store.timeline("nobody")
        assert timeline.changes == () and timeline.progress == ()

    async def test_a_change_delivered_again_is_kept_and_counted_once(self, store: TaskHistoryStore) -> None:
        batch = [change(1, "TaskCreated"), change(2, "TaskFinished")]
        await store.record(batch, [])
        await store.record(batch, [])
        await store.record([change(2, "TaskFinished", at=T0 + 5)], [])  # same version, other copy
        assert len((await store.timeline("t1")).changes) == 2
        (minute,) = await store.minutes(T0, T0)
        assert (minute.created, minute.finished) == (1, 1)

    async def test_changes_are_counted_in_the_minute_they_happened(self, store: TaskHistoryStore) -> None:
        await store.record(
            [
                change(1, "TaskCreated", task="a", at=T0),
                change(1, "TaskCreated", task="b", at=T0 + 59_999),
                change(2, "TaskFailed", task="a", at=T0 + MINUTE_MS),
                change(2, "TaskCancelled", task="b", at=T0 + 2 * MINUTE_MS + 1),
                change(3, "TaskAssigned", task="b", at=T0 + 2 * MINUTE_MS + 2),  # not a counted change
            ],
            [],
        )
        minutes = await store.minutes(T0, T0 + 3 * MINUTE_MS)
        assert [(m.minute, m.created, m.finished, m.failed, m.cancelled) for m in minutes] == [
            (T0, 2, 0, 0, 0),
            (T0 + MINUTE_MS, 0, 0, 1, 0),
            (T0 + 2 * MINUTE_MS, 0, 0, 0, 1),
            (T0 + 3 * MINUTE_MS, 0, 0, 0, 0),
        ]

    async def test_minutes_without_anything_are_zeros(self, store: TaskHistoryStore) -> None:
        minutes = await store.minutes(T0 + 10, T0 + MINUTE_MS + 10)
        assert list(minutes) == [MinuteCounts(minute=T0), MinuteCounts(minute=T0 + MINUTE_MS)]

    async def test_the_last_status_sample_of_a_minute_wins(self, store: TaskHistoryStore) -> None:
        await store.record_status_counts(T0 + 1_000, {TaskStatus.RUNNING: 3, TaskStatus.CREATED: 9})
        await store.record_status_counts(T0 + 40_000, {TaskStatus.RUNNING: 4, TaskStatus.FINISHED: 1})
        first, second = await store.minutes(T0, T0 + MINUTE_MS)
        assert first.by_status is not None
        assert {s: n for s, n in first.by_status.items() if n} == {
            TaskStatus.RUNNING: 4,
            TaskStatus.FINISHED: 1,
        }
        assert second.by_status is None

    async def test_a_task_keeps_its_newest_changes_and_points(self, store: TaskHistoryStore) -> None:
        total = self.changes_per_task + 5
        await store.record([change(v) for v in range(1, total + 1)], [])
        await store.record([change(1)], [])  # an old version delivered again is not taken back
        await store.record([], [point(s, s) for s in range(self.points_per_task + 3)])
        timeline = await store.timeline("t1")
        assert [c.version for c in timeline.changes] == list(range(6, total + 1))
        assert [p.done for p in timeline.progress] == [float(s) for s in range(3, self.points_per_task + 3)]

    async def test_a_forgotten_task_has_no_timeline_but_its_counts_stay(
        self, store: TaskHistoryStore
    ) -> None:
        await store.record([change(1, "TaskCreated"), change(1, "TaskCreated", task="t2")], [point(1, 1)])
        await store.forget_tasks(["t1", "never-there"])
        assert (await store.timeline("t1")).changes == ()
        assert (await store.timeline("t1")).progress == ()
        assert len((await store.timeline("t2")).changes) == 1
        (minute,) = await store.minutes(T0, T0)
        assert minute.created == 2

    async def test_it_answers_a_ping(self, store: TaskHistoryStore) -> None:
        await store.ping()
