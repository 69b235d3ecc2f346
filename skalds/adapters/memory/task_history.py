"""Task timelines and per-minute counts in this process: the embedded default's ``TaskHistoryStore``.

Bounded per task (``changes_per_task`` changes, ``points_per_task`` progress points: the oldest go), in
tasks (``max_tasks``: the timelines written least recently go whole) and in minutes (``minutes_kept``).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from skalds.domain.ports import TaskHistoryStore
from skalds.domain.task import TaskStatus
from skalds.domain.task_history import (
    MINUTE_MS,
    MinuteCounts,
    ProgressPoint,
    TaskTimeline,
    TimelineEntry,
    minute_of,
)

DEFAULT_CHANGES_PER_TASK = 500
DEFAULT_POINTS_PER_TASK = 720
DEFAULT_MAX_TASKS = 100_000
DEFAULT_MINUTES_KEPT = 1_440


@dataclass(slots=True)
class _Kept:
    changes: dict[int, TimelineEntry] = field(default_factory=dict)
    floor: int = 0  # the highest version dropped for room: anything at or below it is not kept again
    progress: deque[ProgressPoint] = field(default_factory=deque)


class InMemoryTaskHistoryStore(TaskHistoryStore):
    def __init__(
        self,
        *,
        changes_per_task: int = DEFAULT_CHANGES_PER_TASK,
        points_per_task: int = DEFAULT_POINTS_PER_TASK,
        max_tasks: int = DEFAULT_MAX_TASKS,
        minutes_kept: int = DEFAULT_MINUTES_KEPT,
    ) -> None:
        if min(changes_per_task, points_per_task, max_tasks, minutes_kept) < 1:
            raise ValueError("every bound of the task history must be at least 1")
        self._changes_per_task = changes_per_task
        self._points_per_task = points_per_task
        self._max_tasks = max_tasks
        self._minutes_kept = minutes_kept
        self._tasks: OrderedDict[str, _Kept] = OrderedDict()  # least recently written first
        self._minutes: dict[int, dict[str, int]] = {}
        self._samples: dict[int, dict[TaskStatus, int]] = {}

    async def record(self, changes: Sequence[TimelineEntry], progress: Sequence[ProgressPoint]) -> None:
        for entry in changes:
            kept = self._task(entry.task_id)
            if entry.version in kept.changes or entry.version <= kept.floor:
                continue  # delivered again
            kept.changes[entry.version] = entry
            if len(kept.changes) > self._changes_per_task:
                oldest = min(kept.changes)
                del kept.changes[oldest]
                kept.floor = max(kept.floor, oldest)
            if entry.counted is not None:
                counts = self._minutes.setdefault(minute_of(entry.at), {})
                counts[entry.counted] = counts.get(entry.counted, 0) + 1
        for point in progress:
            points = self._task(point.task_id).progress
            points.append(point)
            if len(points) > self._points_per_task:
                points.popleft()
        while len(self._tasks) > self._max_tasks:
            self._tasks.popitem(last=False)
        self._prune()

    async def record_status_counts(self, minute: int, counts: Mapping[TaskStatus, int]) -> None:
        self._samples[minute_of(minute)] = dict(counts)
        self._prune()

    async def timeline(self, task_id: str) -> TaskTimeline:
        kept = self._tasks.get(task_id)
        if kept is None:
            return TaskTimeline()
        changes = tuple(kept.changes[version] for version in sorted(kept.changes))
        return TaskTimeline(changes=changes, progress=tuple(sorted(kept.progress, key=lambda p: p.at)))

    async def minutes(self, first: int, last: int) -> Sequence[MinuteCounts]:
        return [
            MinuteCounts(minute=minute, **self._minutes.get(minute, {}), by_status=self._samples.get(minute))
            for minute in range(minute_of(first), minute_of(last) + 1, MINUTE_MS)
        ]

    async def forget_tasks(self, task_ids: Sequence[str]) -> None:
        for task_id in task_ids:
            self._tasks.pop(task_id, None)

    async def ping(self) -> None:
        return None

    def _task(self, task_id: str) -> _Kept:
        kept = self._tasks.get(task_id)
        if kept is None:
            kept = self._tasks[task_id] = _Kept()
        self._tasks.move_to_end(task_id)
        return kept

    def _prune(self) -> None:
        for minutes in (self._minutes, self._samples):
            if len(minutes) > self._minutes_kept:
                newest = max(minutes)
                for minute in [m for m in minutes if m <= newest - self._minutes_kept * MINUTE_MS]:
                    del minutes[minute]
