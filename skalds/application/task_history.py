"""The dashboard's memory: each task's timeline and progress, the system's changes and statuses per minute.

``HistoryKeeper`` runs with the monitor (MONITOR and DISPATCHER modes). It reads the event stream, buffers
what it sees and writes it in batches every ``flush_s``; it samples the tasks per status every
``sample_every_s``, so each minute holds what the status chart draws. A store that is away keeps the
buffer (bounded: progress points go first) and is retried, so a Redis restart costs history no entries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from skalds.domain import events as ev
from skalds.domain.errors import BackendUnavailableError, ValidationError
from skalds.domain.ports import Clock, EventSubscriber, TaskHistoryStore, TaskRepository
from skalds.domain.task import TERMINAL, Task
from skalds.domain.task_history import (
    MINUTE_MS,
    MinuteCounts,
    ProgressPoint,
    TaskTimeline,
    TimelineEntry,
    minute_of,
    progress_worth_keeping,
    timeline_entry,
)

log = logging.getLogger(__name__)
MAX_TRACKED = 200_000  # tasks whose last kept progress point the keeper remembers


class HistoryKeeper:
    def __init__(
        self,
        store: TaskHistoryStore,
        repository: TaskRepository,
        clock: Clock,
        *,
        progress_every_ms: int = 5_000,
        max_waiting: int = 100_000,
    ) -> None:
        self._store = store
        self._repository = repository
        self._clock = clock
        self._progress_every_ms = progress_every_ms
        self._max_waiting = max_waiting
        self._changes: list[TimelineEntry] = []
        self._points: list[ProgressPoint] = []
        self._forget: list[str] = []
        self._last_point: dict[str, ProgressPoint] = {}
        self._failing = False

    def observe(self, event: ev.DomainEvent) -> None:
        match event:
            case ev.TaskDeleted(task_id=task_id):
                self._forget.append(task_id)
                self._last_point.pop(task_id, None)
            case ev.TaskEvent():
                entry = timeline_entry(event)
                if entry is not None:
                    self._changes.append(entry)
                if event.to_status in TERMINAL:
                    self._last_point.pop(event.task_id, None)
            case ev.TaskHeartbeatsObserved():
                for beat in event.each():
                    self._observe_beat(beat)
            case ev.TaskHeartbeatObserved():
                self._observe_beat(event)
        self._bound()

    def _observe_beat(self, beat: ev.TaskHeartbeatObserved) -> None:
        if beat.progress is None or beat.status in TERMINAL:
            return
        point = ProgressPoint(task_id=beat.task_id, at=beat.at, done=beat.progress, total=beat.progress_total)
        if progress_worth_keeping(self._last_point.get(beat.task_id), point, self._progress_every_ms):
            if len(self._last_point) >= MAX_TRACKED:
                self._last_point.clear()  # at worst one extra point per task
            self._last_point[beat.task_id] = point
            self._points.append(point)

    def _bound(self) -> None:
        excess = len(self._changes) + len(self._points) - self._max_waiting
        if excess <= 0:
            return
        dropped = min(excess, len(self._points))
        del self._points[:dropped]
        if excess > dropped:
            del self._changes[: excess - dropped]
        log.warning("task history store is behind: dropped %d waiting entries", excess)

    async def flush(self) -> None:
        """Write what waits; on BackendUnavailableError keep it for the next flush."""
        changes, points, forget = self._changes, self._points, self._forget
        self._changes, self._points, self._forget = [], [], []
        try:
            await self._store.record(changes, points)
            if forget:
                await self._store.forget_tasks(forget)
        except BackendUnavailableError as error:
            self._changes[:0], self._points[:0], self._forget[:0] = changes, points, forget
            if not self._failing:
                log.warning("cannot keep task history (%s); retrying", error)
            self._failing = True
            return
        if self._failing:
            log.info("keeping task history again")
        self._failing = False

    async def sample(self) -> None:
        """The tasks per status now, into this minute."""
        try:
            counts = await self._repository.count_by_status()
            await self._store.record_status_counts(self._clock.now_ms(), counts)
        except BackendUnavailableError as error:
            log.warning("cannot sample the tasks per status for the history (%s)", error)

    async def run(
        self, subscriber: EventSubscriber, *, flush_s: float = 0.5, sample_every_s: float = 20.0
    ) -> None:
        subscription = subscriber.events()

        async def listen() -> None:
            async for event in subscription:
                self.observe(event)

        async def sample() -> None:
            while True:
                await self.sample()
                await asyncio.sleep(sample_every_s)

        helpers = [
            asyncio.create_task(listen(), name="history-listener"),
            asyncio.create_task(sample(), name="history-sampler"),
        ]
        try:
            while True:
                await asyncio.sleep(flush_s)
                await self.flush()
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            await asyncio.shield(self.flush())  # what the last half second saw
            await asyncio.shield(subscription.close())


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskHistory:
    task: Task
    timeline: TaskTimeline


class TaskHistoryService:
    """Reads for the API: a task's timeline, the last minutes' counts."""

    def __init__(
        self, repository: TaskRepository, store: TaskHistoryStore, clock: Clock, *, minutes_kept: int = 1_440
    ) -> None:
        self._repository = repository
        self._store = store
        self._clock = clock
        self.minutes_kept = minutes_kept

    async def timeline(self, task_id: str) -> TaskHistory:
        """TaskNotFoundError for a task that is not stored."""
        task = await self._repository.get(task_id)
        return TaskHistory(task=task, timeline=await self._store.timeline(task_id))

    async def minutes(self, count: int) -> Sequence[MinuteCounts]:
        """The last ``count`` minutes, this one last; ValidationError beyond what is kept."""
        if not 1 <= count <= self.minutes_kept:
            raise ValidationError("minutes", f"must be from 1 to {self.minutes_kept}, got {count}")
        now = minute_of(self._clock.now_ms())
        return await self._store.minutes(now - (count - 1) * MINUTE_MS, now)
