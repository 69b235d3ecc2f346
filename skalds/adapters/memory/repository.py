"""Tasks in a dict, indexed by status: the embedded default, and the twin the contract suite holds the
MongoDB adapter to. No method awaits halfway, so each is atomic under asyncio."""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from skalds.domain.errors import ConflictError, TaskAlreadyExistsError, TaskNotFoundError
from skalds.domain.ports import TaskOrder, TaskPage, TaskQuery, TaskRepository
from skalds.domain.task import Task, TaskStatus


class InMemoryTaskRepository(TaskRepository):
    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}
        self._by_status: dict[TaskStatus, dict[str, None]] = {status: {} for status in TaskStatus}
        self._class_counts: Counter[str] = Counter()
        self._newest: list[tuple[int, str]] = []  # (-createDateTime, id), kept sorted: pages without sorting

    async def get(self, task_id: str) -> Task:
        task = self._tasks.get(task_id)
        if task is None:
            raise TaskNotFoundError(task_id)
        return task

    async def get_many(self, task_ids: Sequence[str]) -> dict[str, Task]:
        return {task_id: self._tasks[task_id] for task_id in task_ids if task_id in self._tasks}

    async def list(self, query: TaskQuery) -> TaskPage:
        end = None if query.limit is None else query.offset + query.limit
        statuses = _statuses(query)
        if query.order is TaskOrder.NEWEST_FIRST and self._walk_newest(statuses):
            return self._newest_first(query, statuses, end)
        if statuses is None:
            candidates: Iterable[Task] = self._tasks.values()
        else:
            candidates = (self._tasks[task_id] for status in statuses for task_id in self._by_status[status])
        if _filters_beyond_status(query):
            matches = [task for task in candidates if _matches(task, query)]
        else:
            matches = list(candidates)
        if query.order is TaskOrder.DISPATCH:
            matches.sort(key=lambda t: (-t.priority, t.create_date_time, t.id))
        elif query.order is TaskOrder.NEWEST_FIRST:
            matches.sort(key=lambda t: (-t.create_date_time, t.id))
        return TaskPage(items=matches[query.offset : end], total=len(matches))

    def _walk_newest(self, statuses: frozenset[TaskStatus] | None) -> bool:
        """Walking the kept order costs O(all tasks); sorting the status matches is cheaper when they are few
        (the live tasks among many finished ones), so a status filter walks only for a large share."""
        if statuses is None:
            return True
        candidates = sum(len(self._by_status[status]) for status in statuses)
        return candidates * 2 > len(self._tasks)

    def _newest_first(
        self, query: TaskQuery, statuses: frozenset[TaskStatus] | None, end: int | None
    ) -> TaskPage:
        """What people browse: walk the kept order instead of sorting every match on every request."""
        if statuses is None and not _filters_beyond_status(query):
            window = self._newest[query.offset : end]
            return TaskPage(items=[self._tasks[task_id] for _, task_id in window], total=len(self._tasks))
        ordered = (self._tasks[task_id] for _, task_id in self._newest)
        matches = [
            task
            for task in ordered
            if (statuses is None or task.lifecycle_status in statuses) and _matches(task, query)
        ]
        return TaskPage(items=matches[query.offset : end], total=len(matches))

    async def insert(self, task: Task) -> None:
        if task.id in self._tasks:
            raise TaskAlreadyExistsError(task.id)
        self._store(task)

    async def insert_many(self, tasks: Sequence[Task]) -> None:
        """All or nothing: every id is checked before the first is stored (no await in between)."""
        seen: set[str] = set()
        for task in tasks:
            if task.id in self._tasks or task.id in seen:
                raise TaskAlreadyExistsError(task.id)
            seen.add(task.id)
        for task in tasks:
            self._store(task)

    async def update(self, task: Task, expected_version: int) -> None:
        self._check(task.id, expected_version)
        self._store(task)

    async def update_many(self, updates: Sequence[tuple[Task, int]]) -> Sequence[str]:
        lost: list[str] = []
        for task, expected_version in updates:
            try:
                self._check(task.id, expected_version)
            except (ConflictError, TaskNotFoundError):
                lost.append(task.id)
                continue
            self._store(task)
        return lost

    async def delete(self, task_id: str, expected_version: int) -> None:
        current = self._check(task_id, expected_version)
        del self._tasks[task_id]
        del self._by_status[current.lifecycle_status][task_id]
        self._forget_class(current.class_name)
        self._unlist_newest(current)

    async def class_names(self) -> Sequence[str]:
        return sorted(self._class_counts)

    async def count_by_status(self) -> Mapping[TaskStatus, int]:
        return {status: len(ids) for status, ids in self._by_status.items()}

    async def count_by_executor(self, statuses: frozenset[TaskStatus]) -> Mapping[str, int]:
        counts: Counter[str] = Counter()
        for status in statuses:
            for task_id in self._by_status[status]:
                executor = self._tasks[task_id].executor
                if executor is not None:
                    counts[executor] += 1
        return dict(counts)

    async def ping(self) -> None:
        """Memory always answers."""

    def _check(self, task_id: str, expected_version: int) -> Task:
        current = self._tasks.get(task_id)
        if current is None:
            raise TaskNotFoundError(task_id)
        if current.version != expected_version:
            raise ConflictError(task_id, expected_version, current.version)
        return current

    def _store(self, task: Task) -> None:
        previous = self._tasks.get(task.id)
        if previous is None:
            self._class_counts[task.class_name] += 1
            bisect.insort(self._newest, (-task.create_date_time, task.id))
        else:
            if previous.lifecycle_status is not task.lifecycle_status:
                del self._by_status[previous.lifecycle_status][task.id]
            if previous.class_name != task.class_name:
                self._forget_class(previous.class_name)
                self._class_counts[task.class_name] += 1
            if previous.create_date_time != task.create_date_time:  # the lifecycle never does; a caller may
                self._unlist_newest(previous)
                bisect.insort(self._newest, (-task.create_date_time, task.id))
        self._tasks[task.id] = task
        self._by_status[task.lifecycle_status][task.id] = None

    def _unlist_newest(self, task: Task) -> None:
        key = (-task.create_date_time, task.id)
        del self._newest[bisect.bisect_left(self._newest, key)]

    def _forget_class(self, class_name: str) -> None:
        self._class_counts[class_name] -= 1
        if self._class_counts[class_name] <= 0:
            del self._class_counts[class_name]


_FAILED: frozenset[TaskStatus] = frozenset({TaskStatus.FAILED})


def _statuses(query: TaskQuery) -> frozenset[TaskStatus] | None:
    """The statuses a match may have; only failed tasks are ever due for a retry."""
    if query.retry_due_by is None:
        return query.statuses
    return _FAILED if query.statuses is None else query.statuses & _FAILED


def _filters_beyond_status(query: TaskQuery) -> bool:
    return bool(query.id_contains) or any(
        value is not None for value in (query.class_name, query.executor, query.modes, query.retry_due_by)
    )


def _matches(task: Task, query: TaskQuery) -> bool:
    if query.class_name is not None and task.class_name != query.class_name:
        return False
    if query.id_contains and query.id_contains.casefold() not in task.id.casefold():
        return False
    if query.executor is not None and task.executor != query.executor:
        return False
    if query.modes is not None and task.mode not in query.modes:
        return False
    due_by = query.retry_due_by
    return due_by is None or (task.retry_at is not None and task.retry_at <= due_by)
