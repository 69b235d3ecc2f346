"""What every TaskRepository promises. Subclass with a ``repo`` fixture; run unchanged on every adapter."""

from __future__ import annotations

import asyncio

import pytest

from skalds.domain import lifecycle
from skalds.domain.errors import ConflictError, TaskAlreadyExistsError, TaskNotFoundError
from skalds.domain.lifecycle import TaskCommand
from skalds.domain.ports import TaskOrder, TaskQuery, TaskRepository
from skalds.domain.task import LIVE, Task, TaskMode, TaskStatus, new_task


def a_task(task_id: str, *, now: int = 1_000, **fields: object) -> Task:
    return new_task(task_id=task_id, class_name=str(fields.pop("class_name", "Video")), now=now, **fields)  # type: ignore[arg-type]


def assigned(task: Task, node: str = "n1", at: int = 2_000) -> Task:
    return lifecycle.apply(task, TaskCommand.ASSIGN, at=at, executor=node)[0]


class TaskRepositoryContract:
    @pytest.fixture
    def repo(self) -> TaskRepository:
        raise NotImplementedError

    async def test_round_trip_keeps_every_field(self, repo: TaskRepository) -> None:
        task = a_task(
            "t1",
            attachments={"url": "rtsp://cam/1", "nested": {"fps": 10, "zones": [1, 2]}},
            priority=7,
            required_labels={"gpu": "a100"},
            dependencies=("t0",),
            deadline_date_time=99_000,
            name="Camera 1",
            description="front door",
            max_attempts=5,
        )
        await repo.insert(task)
        assert await repo.get("t1") == task
        failed = lifecycle.apply(assigned(task), TaskCommand.FAIL, at=3_000, error="boom", retry_at=4_000)[0]
        await repo.update(assigned(task), task.version)
        await repo.update(failed, failed.version - 1)
        assert await repo.get("t1") == failed

    async def test_an_unknown_id_is_not_found(self, repo: TaskRepository) -> None:
        with pytest.raises(TaskNotFoundError):
            await repo.get("nope")
        with pytest.raises(TaskNotFoundError):
            await repo.update(a_task("nope"), 1)
        with pytest.raises(TaskNotFoundError):
            await repo.delete("nope", 1)

    async def test_an_id_is_taken_once(self, repo: TaskRepository) -> None:
        await repo.insert(a_task("t1"))
        with pytest.raises(TaskAlreadyExistsError):
            await repo.insert(a_task("t1", class_name="Other"))
        assert (await repo.get("t1")).class_name == "Video"

    async def test_compare_and_set_lets_exactly_one_of_two_concurrent_writers_win(
        self, repo: TaskRepository
    ) -> None:
        task = a_task("t1")
        await repo.insert(task)
        cancel = lifecycle.apply(task, TaskCommand.CANCEL, at=2_000)[0]
        assign = assigned(task)
        results = await asyncio.gather(
            repo.update(cancel, task.version), repo.update(assign, task.version), return_exceptions=True
        )
        assert sum(isinstance(r, ConflictError) for r in results) == 1
        stored = await repo.get("t1")
        assert stored in (cancel, assign)

    async def test_saving_the_same_change_twice_conflicts_the_second_time(self, repo: TaskRepository) -> None:
        task = a_task("t1")
        await repo.insert(task)
        change = assigned(task)
        await repo.update(change, task.version)
        with pytest.raises(ConflictError) as conflict:
            await repo.update(change, task.version)
        assert (conflict.value.expected_version, conflict.value.actual_version) == (1, 2)

    async def test_update_many_stores_the_winners_and_names_the_losers(self, repo: TaskRepository) -> None:
        for i in range(3):
            await repo.insert(a_task(f"t{i}"))
        stale = a_task("t1")
        await repo.update(assigned(stale, "other"), 1)
        lost = await repo.update_many(
            [
                (assigned(a_task("t0")), 1),
                (assigned(stale), 1),
                (assigned(a_task("t2")), 1),
                (assigned(a_task("gone")), 1),
            ]
        )
        assert sorted(lost) == ["gone", "t1"]
        assert (await repo.get("t0")).executor == "n1"
        assert (await repo.get("t1")).executor == "other"
        assert (await repo.get("t2")).executor == "n1"

    async def test_delete_is_a_compare_and_set_too(self, repo: TaskRepository) -> None:
        await repo.insert(a_task("t1"))
        with pytest.raises(ConflictError):
            await repo.delete("t1", 7)
        await repo.delete("t1", 1)
        with pytest.raises(TaskNotFoundError):
            await repo.get("t1")

    async def test_pages_and_totals(self, repo: TaskRepository) -> None:
        for i in range(7):
            await repo.insert(a_task(f"t{i}", now=1_000 + i))
        page = await repo.list(TaskQuery(offset=2, limit=3))
        assert page.total == 7
        assert [t.id for t in page.items] == ["t4", "t3", "t2"]  # newest first
        everything = await repo.list(TaskQuery(limit=None))
        assert len(everything.items) == 7

    async def test_dispatch_order_is_priority_then_age(self, repo: TaskRepository) -> None:
        await repo.insert(a_task("old-low", now=1, priority=1))
        await repo.insert(a_task("new-high", now=3, priority=9))
        await repo.insert(a_task("old-high", now=2, priority=9))
        page = await repo.list(TaskQuery(order=TaskOrder.DISPATCH))
        assert [t.id for t in page.items] == ["old-high", "new-high", "old-low"]

    async def test_filters_combine(self, repo: TaskRepository) -> None:
        await repo.insert(a_task("cam-1", class_name="Video"))
        await repo.insert(assigned(a_task("cam-2", class_name="Video"), "n2"))
        await repo.insert(a_task("crawl-1", class_name="Crawler", mode=TaskMode.ACTIVE))
        ids = lambda page: sorted(t.id for t in page.items)  # noqa: E731
        assert ids(await repo.list(TaskQuery(class_name="Video"))) == ["cam-1", "cam-2"]
        assert ids(await repo.list(TaskQuery(statuses=frozenset({TaskStatus.ASSIGNING})))) == ["cam-2"]
        assert ids(await repo.list(TaskQuery(executor="n2"))) == ["cam-2"]
        assert ids(await repo.list(TaskQuery(modes=frozenset({TaskMode.ACTIVE})))) == ["crawl-1"]
        assert ids(await repo.list(TaskQuery(id_contains="CAM", class_name="Video", statuses=LIVE))) == [
            "cam-2"
        ]

    @pytest.mark.parametrize("text", [".*", "(", "cam[", "a+b", "$where"])
    async def test_id_contains_is_plain_text(self, repo: TaskRepository, text: str) -> None:
        await repo.insert(a_task("camera"))
        await repo.insert(a_task(f"x{text}y"))
        page = await repo.list(TaskQuery(id_contains=text))
        assert [t.id for t in page.items] == [f"x{text}y"]

    async def test_due_retries_are_found_by_time(self, repo: TaskRepository) -> None:
        task = assigned(a_task("t1", max_attempts=3))
        due = lifecycle.apply(task, TaskCommand.FAIL, at=3_000, error="x", retry_at=5_000)[0]
        await repo.insert(due)
        exhausted = lifecycle.apply(
            assigned(a_task("t2", max_attempts=1)), TaskCommand.FAIL, at=3_000, error="x"
        )[0]
        await repo.insert(exhausted)
        assert (await repo.list(TaskQuery(retry_due_by=4_999))).total == 0
        assert [t.id for t in (await repo.list(TaskQuery(retry_due_by=5_000))).items] == ["t1"]

    async def test_counts(self, repo: TaskRepository) -> None:
        await repo.insert(a_task("a", class_name="Video"))
        await repo.insert(assigned(a_task("b", class_name="Crawler"), "n1"))
        await repo.insert(assigned(a_task("c"), "n1"))
        await repo.insert(assigned(a_task("d"), "n2"))
        counts = await repo.count_by_status()
        assert counts[TaskStatus.CREATED] == 1
        assert counts[TaskStatus.ASSIGNING] == 3
        assert counts[TaskStatus.FINISHED] == 0
        assert await repo.count_by_executor(LIVE) == {"n1": 2, "n2": 1}
        assert await repo.class_names() == ["Crawler", "Video"]
