"""What every TaskRepository promises. Subclass with a ``repo`` fixture; run unchanged on every adapter."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from skalds.domain import lifecycle
from skalds.domain.errors import ConflictError, TaskAlreadyExistsError, TaskNotFoundError
from skalds.domain.lifecycle import TaskCommand
from skalds.domain.ports import TaskOrder, TaskPage, TaskQuery, TaskRepository
from skalds.domain.task import LIVE, Task, TaskMode, TaskStatus, new_task


def a_task(task_id: str, *, now: int = 1_000, **fields: object) -> Task:
    return new_task(task_id=task_id, class_name=str(fields.pop("class_name", "Video")), now=now, **fields)  # type: ignore[arg-type]


def assigned(task: Task, node: str = "n1", at: int = 2_000) -> Task:
    return lifecycle.apply(task, TaskCommand.ASSIGN, at=at, executor=node)[0]


def failed(task: Task, *, at: int = 3_000, retry_at: int | None = None) -> Task:
    return lifecycle.apply(assigned(task), TaskCommand.FAIL, at=at, error="boom", retry_at=retry_at)[0]


def ids(page: TaskPage) -> list[str]:
    return [task.id for task in page.items]


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
            mode=TaskMode.PASSIVE_PROCESS,
            source="yaml",
        )
        await repo.insert(task)
        assert await repo.get("t1") == task
        await repo.update(assigned(task), task.version)
        after_failure = failed(task, retry_at=4_000)
        await repo.update(after_failure, after_failure.version - 1)
        assert await repo.get("t1") == after_failure

    async def test_an_unknown_id_is_not_found(self, repo: TaskRepository) -> None:
        with pytest.raises(TaskNotFoundError):
            await repo.get("nope")
        with pytest.raises(TaskNotFoundError):
            await repo.update(a_task("nope"), 1)
        with pytest.raises(TaskNotFoundError):
            await repo.delete("nope", 1)
        with pytest.raises(TaskNotFoundError):
            await repo.get("nope")  # a failed update never creates the task

    async def test_get_many_reads_the_stored_ones_of_many_ids_at_once(self, repo: TaskRepository) -> None:
        for task_id in ("a", "b", "c"):
            await repo.insert(a_task(task_id))
        await repo.update(assigned(a_task("b")), 1)
        found = await repo.get_many(["c", "b", "missing", "b"])
        assert sorted(found) == ["b", "c"]
        assert found["b"] == assigned(a_task("b")) and found["c"] == a_task("c")
        assert dict(await repo.get_many([])) == {}

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
        conflicts = [r for r in results if isinstance(r, ConflictError)]
        assert len(conflicts) == 1 and results.count(None) == 1
        assert (conflicts[0].task_id, conflicts[0].expected_version) == ("t1", 1)
        stored = await repo.get("t1")
        assert stored == (cancel if results[0] is None else assign)

    async def test_writers_that_retry_on_conflict_lose_no_update(self, repo: TaskRepository) -> None:
        await repo.insert(a_task("counter", attachments={"count": 0}))

        async def increment() -> int:
            conflicts = 0
            while True:
                current = await repo.get("counter")
                await asyncio.sleep(0)  # let the other writers read the same version
                change = dataclasses.replace(
                    current,
                    attachments={"count": current.attachments["count"] + 1},
                    version=current.version + 1,
                )
                try:
                    await repo.update(change, current.version)
                except ConflictError:
                    conflicts += 1
                    continue
                return conflicts

        conflicts = await asyncio.gather(*(increment() for _ in range(10)))
        stored = await repo.get("counter")
        assert stored.attachments["count"] == 10
        assert stored.version == 11
        assert sum(conflicts) > 0  # the writers did overlap

    async def test_saving_the_same_change_twice_conflicts_the_second_time(self, repo: TaskRepository) -> None:
        task = a_task("t1")
        await repo.insert(task)
        change = assigned(task)
        await repo.update(change, task.version)
        with pytest.raises(ConflictError) as conflict:
            await repo.update(change, task.version)
        assert (conflict.value.expected_version, conflict.value.actual_version) == (1, 2)
        assert await repo.get("t1") == change

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
        with pytest.raises(TaskNotFoundError):
            await repo.get("gone")
        assert list(await repo.update_many([])) == []

    async def test_delete_is_a_compare_and_set_too(self, repo: TaskRepository) -> None:
        await repo.insert(a_task("t1"))
        with pytest.raises(ConflictError):
            await repo.delete("t1", 7)
        assert (await repo.get("t1")).version == 1
        await repo.delete("t1", 1)
        with pytest.raises(TaskNotFoundError):
            await repo.get("t1")
        with pytest.raises(TaskNotFoundError):
            await repo.delete("t1", 1)
        assert (await repo.list(TaskQuery())).total == 0
        assert await repo.class_names() == []
        await repo.insert(a_task("t1"))  # the id is free again

    async def test_pages_and_totals(self, repo: TaskRepository) -> None:
        for i in range(7):
            await repo.insert(a_task(f"t{i}", now=1_000 + i))
        page = await repo.list(TaskQuery(offset=2, limit=3))
        assert page.total == 7
        assert ids(page) == ["t4", "t3", "t2"]  # newest first
        assert len((await repo.list(TaskQuery(limit=None))).items) == 7
        beyond = await repo.list(TaskQuery(offset=10, limit=3))
        assert (list(beyond.items), beyond.total) == ([], 7)
        assert ids(await repo.list(TaskQuery(offset=5, limit=None))) == ["t1", "t0"]

    async def test_a_page_without_its_total_counts_at_least_what_it_shows(self, repo: TaskRepository) -> None:
        for i in range(7):
            await repo.insert(a_task(f"t{i}", now=1_000 + i))
        page = await repo.list(TaskQuery(offset=2, limit=3, with_total=False))
        assert ids(page) == ["t4", "t3", "t2"]
        assert 5 <= page.total <= 7

    async def test_filtered_pages_are_newest_first_with_the_filtered_total(
        self, repo: TaskRepository
    ) -> None:
        for i in range(6):
            task = a_task(f"t{i}", now=1_000 + i)
            await repo.insert(assigned(task) if i in (1, 4) else task)
        few = await repo.list(TaskQuery(statuses=frozenset({TaskStatus.ASSIGNING}), limit=1))
        assert (ids(few), few.total) == (["t4"], 2)
        many = await repo.list(TaskQuery(statuses=frozenset({TaskStatus.CREATED}), offset=1, limit=2))
        assert (ids(many), many.total) == (["t3", "t2"], 4)
        both = await repo.list(TaskQuery(statuses=frozenset({TaskStatus.CREATED, TaskStatus.ASSIGNING})))
        assert ids(both) == ["t5", "t4", "t3", "t2", "t1", "t0"]

    async def test_newest_first_breaks_ties_by_id(self, repo: TaskRepository) -> None:
        for task_id in ("b", "c", "a"):
            await repo.insert(a_task(task_id, now=5))
        await repo.insert(a_task("z", now=4))
        for i in range(6):
            await repo.insert(assigned(a_task(f"older-{i}", now=0)))
        assert ids(await repo.list(TaskQuery(limit=4))) == ["a", "b", "c", "z"]
        assert ids(await repo.list(TaskQuery(statuses=frozenset({TaskStatus.CREATED})))) == [
            "a",
            "b",
            "c",
            "z",
        ]

    async def test_dispatch_order_is_priority_then_age_then_id(self, repo: TaskRepository) -> None:
        await repo.insert(a_task("old-low", now=1, priority=1))
        await repo.insert(a_task("new-high", now=3, priority=9))
        await repo.insert(a_task("old-high-b", now=2, priority=9))
        await repo.insert(a_task("old-high-a", now=2, priority=9))
        page = await repo.list(TaskQuery(order=TaskOrder.DISPATCH))
        assert ids(page) == ["old-high-a", "old-high-b", "new-high", "old-low"]
        first = await repo.list(
            TaskQuery(order=TaskOrder.DISPATCH, statuses=frozenset({TaskStatus.CREATED}), limit=1)
        )
        assert (ids(first), first.total) == (["old-high-a"], 4)

    async def test_any_order_returns_every_match(self, repo: TaskRepository) -> None:
        for i in range(5):
            await repo.insert(a_task(f"t{i}", now=i))
        page = await repo.list(TaskQuery(order=TaskOrder.ANY, limit=None))
        assert sorted(ids(page)) == [f"t{i}" for i in range(5)] and page.total == 5

    async def test_filters_combine(self, repo: TaskRepository) -> None:
        await repo.insert(a_task("cam-1", class_name="Video"))
        await repo.insert(assigned(a_task("cam-2", class_name="Video"), "n2"))
        await repo.insert(a_task("crawl-1", class_name="Crawler", mode=TaskMode.ACTIVE))

        async def found(query: TaskQuery) -> list[str]:
            return sorted(ids(await repo.list(query)))

        assert await found(TaskQuery(class_name="Video")) == ["cam-1", "cam-2"]
        assert await found(TaskQuery(class_name="video")) == []  # exact, not case-folded
        assert await found(TaskQuery(statuses=frozenset({TaskStatus.ASSIGNING}))) == ["cam-2"]
        assert await found(TaskQuery(executor="n2")) == ["cam-2"]
        assert await found(TaskQuery(executor="n1")) == []
        assert await found(TaskQuery(modes=frozenset({TaskMode.ACTIVE}))) == ["crawl-1"]
        assert await found(TaskQuery(modes=frozenset({TaskMode.ACTIVE, TaskMode.PASSIVE}))) == [
            "cam-1",
            "cam-2",
            "crawl-1",
        ]
        assert await found(TaskQuery(id_contains="CAM", class_name="Video", statuses=LIVE)) == ["cam-2"]
        assert await found(TaskQuery(id_contains="cam", executor="n2", class_name="Crawler")) == []

    @pytest.mark.parametrize("text", [".*", "(", "cam[", "a+b", "$where", "\\d", "^x"])
    async def test_id_contains_is_plain_text(self, repo: TaskRepository, text: str) -> None:
        await repo.insert(a_task("camera"))
        await repo.insert(a_task("x1y"))
        await repo.insert(a_task(f"x{text}y"))
        page = await repo.list(TaskQuery(id_contains=text))
        assert ids(page) == [f"x{text}y"]

    async def test_due_retries_are_found_by_time(self, repo: TaskRepository) -> None:
        await repo.insert(failed(a_task("due", max_attempts=3), retry_at=5_000))
        await repo.insert(failed(a_task("later", max_attempts=3), retry_at=9_000))
        await repo.insert(failed(a_task("exhausted", max_attempts=1)))
        not_failed = dataclasses.replace(assigned(a_task("running")), retry_at=1_000)
        await repo.insert(not_failed)
        assert (await repo.list(TaskQuery(retry_due_by=4_999))).total == 0
        assert ids(await repo.list(TaskQuery(retry_due_by=5_000))) == ["due"]
        assert sorted(ids(await repo.list(TaskQuery(retry_due_by=10_000)))) == ["due", "later"]
        assert ids(await repo.list(TaskQuery(retry_due_by=5_000, statuses=LIVE))) == []
        assert ids(await repo.list(TaskQuery(retry_due_by=5_000, class_name="Other"))) == []

    async def test_counts(self, repo: TaskRepository) -> None:
        await repo.insert(a_task("a", class_name="Video"))
        await repo.insert(assigned(a_task("b", class_name="Crawler"), "n1"))
        await repo.insert(assigned(a_task("c"), "n1"))
        await repo.insert(assigned(a_task("d"), "n2"))
        await repo.insert(failed(a_task("e")))  # failed on n1: not live
        counts = await repo.count_by_status()
        assert dict(counts) == {status: 0 for status in TaskStatus} | {
            TaskStatus.CREATED: 1,
            TaskStatus.ASSIGNING: 3,
            TaskStatus.FAILED: 1,
        }
        assert dict(await repo.count_by_executor(LIVE)) == {"n1": 2, "n2": 1}
        assert dict(await repo.count_by_executor(frozenset({TaskStatus.FAILED}))) == {"n1": 1}
        assert dict(await repo.count_by_executor(frozenset({TaskStatus.CREATED}))) == {}  # no executor
        assert list(await repo.class_names()) == ["Crawler", "Video"]

    async def test_counts_follow_updates(self, repo: TaskRepository) -> None:
        task = a_task("t1")
        await repo.insert(task)
        await repo.update(assigned(task, "n1"), 1)
        counts = await repo.count_by_status()
        assert (counts[TaskStatus.CREATED], counts[TaskStatus.ASSIGNING]) == (0, 1)
        assert ids(await repo.list(TaskQuery(statuses=frozenset({TaskStatus.CREATED})))) == []
        assert dict(await repo.count_by_executor(LIVE)) == {"n1": 1}

    async def test_insert_many_stores_every_task_in_order_in_one_call(self, repo: TaskRepository) -> None:
        tasks = [
            a_task(f"t{i}", now=1_000 + i, class_name="Crawler" if i == 2 else "Video") for i in range(5)
        ]
        await repo.insert_many(tasks)
        assert dict(await repo.get_many([task.id for task in tasks])) == {task.id: task for task in tasks}
        assert ids(await repo.list(TaskQuery())) == ["t4", "t3", "t2", "t1", "t0"]
        assert list(await repo.class_names()) == ["Crawler", "Video"]
        assert (await repo.count_by_status())[TaskStatus.CREATED] == 5
        await repo.insert_many([])
        assert (await repo.list(TaskQuery())).total == 5

    async def test_insert_many_with_a_taken_id_names_it_and_stores_none(self, repo: TaskRepository) -> None:
        await repo.insert(a_task("taken"))
        batch = [a_task("new-1"), a_task("taken", class_name="Other"), a_task("new-2")]
        with pytest.raises(TaskAlreadyExistsError) as taken:
            await repo.insert_many(batch)
        assert taken.value.task_id == "taken"
        assert sorted(await repo.get_many(["new-1", "new-2", "taken"])) == ["taken"]
        assert (await repo.get("taken")).class_name == "Video"
        assert list(await repo.class_names()) == ["Video"]

    async def test_insert_many_with_an_id_twice_names_it_and_stores_none(self, repo: TaskRepository) -> None:
        with pytest.raises(TaskAlreadyExistsError) as twice:
            await repo.insert_many([a_task("a"), a_task("b"), a_task("a", class_name="Other")])
        assert twice.value.task_id == "a"
        assert dict(await repo.get_many(["a", "b"])) == {}
        assert (await repo.list(TaskQuery())).total == 0
