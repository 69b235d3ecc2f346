"""Views of the tasks in some statuses, kept current from task events instead of re-read every cycle: the
live tasks the monitor judges (``LiveTaskView``), and the dispatcher's queue and slot loads.

Reading every such task each cycle costs a document per task (at 10,000 tasks: ~1.8 s on FerretDB, ~0.3 s of
decoding on any server), so the view reads them all once and then follows the task events: every one names
its task and the version it wrote, and a task whose stored version may be newer than the view's is re-read
by id (one batched read) before the next cycle. The monitor's own writes update the view directly.

Events can be missed (a writer that crashed between its write and its event, a subscriber that overflowed),
so the view is also reloaded in full every ``resync_every_ms``, beside the cycles, and merged: per task the
higher version wins; where only one side has a task, the view's side wins if the task changed during the
reload, else the reload's.
A stale entry cannot cause a wrong write: every write is a compare-and-set on the version, and the monitor
hands a lost one back (``lost``) to be re-read. Without a subscriber, the view reloads every cycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

from skalds.domain import events as ev
from skalds.domain.ports import Clock, EventSubscriber, Subscription, TaskOrder, TaskQuery, TaskRepository
from skalds.domain.task import LIVE, Task

log = logging.getLogger(__name__)

LIVE_TASKS = TaskQuery(statuses=LIVE, limit=None, order=TaskOrder.ANY)


class TaskView:
    """The stored tasks ``query`` matches (its statuses, and whatever else ``admits`` checks of a task)."""

    def __init__(
        self,
        repository: TaskRepository,
        clock: Clock,
        subscriber: EventSubscriber | None,
        *,
        query: TaskQuery,
        admits: Callable[[Task], bool] | None = None,
        resync_every_ms: int = 60_000,
        fed: bool = False,
    ) -> None:
        """``query`` must name its statuses (events are followed by status) and match what ``admits``
        does; by default ``admits`` checks the query's statuses and modes. ``fed``: the owner passes every
        event to ``heard`` itself (in order with its own reactions to them) instead of the view
        subscribing; ``subscriber`` is then ignored."""
        if query.statuses is None:
            raise ValueError("a task view follows its tasks by status: the query must name them")
        self._fed = fed
        self._statuses = query.statuses
        self._modes = query.modes
        self._query = query
        self._admits = admits or self._in_query
        self._repository = repository
        self._clock = clock
        self._subscriber = subscriber
        self._resync_every_ms = resync_every_ms
        self._tasks: dict[str, Task] = {}
        self._dirty: set[str] = set()  # may have changed since the view's copy: re-read before the next use
        self._loaded_at: int | None = None
        self._subscription: Subscription[ev.DomainEvent] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._reload: asyncio.Task[list[Task]] | None = None
        self._touched: set[str] = set()  # changed while a background reload ran
        self._ended: dict[str, int] = {}  # a task the view dropped -> the version that ended it (to a reload)
        self.reloads = 0

    async def tasks(self) -> list[Task]:
        """Every task of the view, as current as the events the view has seen."""
        if not self._fed:
            if self._subscriber is None:
                self._tasks = {task.id: task for task in await self._load()}
                return list(self._tasks.values())
            await self._follow(self._subscriber)
        now = self._clock.now_ms()
        if self._loaded_at is None:
            self._dirty.clear()  # the load below is newer than anything marked so far
            self._tasks = {task.id: task for task in await self._load()}
            self._loaded_at = now
        elif self._reload is not None and self._reload.done():
            self._merge_reload()
        elif self._reload is None and now - self._loaded_at >= self._resync_every_ms:
            self._touched = set()
            self._reload = asyncio.create_task(self._load())
            self._loaded_at = now
        if self._dirty:
            await self._refresh()
        return list(self._tasks.values())

    def stored(self, task: Task) -> None:
        """A task the caller has just written (and won)."""
        self._touched.add(task.id)
        known = self._tasks.get(task.id)
        if known is not None and known.version > task.version:
            return
        self._keep(task)

    def lost(self, task_ids: Iterable[str]) -> None:
        """Tasks whose write the caller lost: someone changed them; re-read before the next use."""
        for task_id in task_ids:
            self._mark(task_id)

    async def aclose(self) -> None:
        for task in (self._listener, self._reload):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._listener = self._reload = None
        if self._subscription is not None:
            await self._subscription.close()
            self._subscription = None
        self._loaded_at = None

    async def _follow(self, subscriber: EventSubscriber) -> None:
        if self._listener is None or self._listener.done():
            if self._listener is not None:  # it ended (a closed bus, a failure): start again from a reload
                self._loaded_at = None
            if self._subscription is not None:
                await self._subscription.close()
            self._subscription = subscriber.events()
            self._listener = asyncio.create_task(self._listen(self._subscription))

    async def _listen(self, subscription: Subscription[ev.DomainEvent]) -> None:
        try:
            async for event in subscription:
                self.heard(event)
        except Exception:
            log.exception("the monitor's task event subscription failed; it reloads the live tasks")

    def heard(self, event: ev.DomainEvent) -> None:
        """A change the view may not hold: re-read a task it moved into the view; one it moved out of the
        view just leaves."""
        if not isinstance(event, ev.TaskEvent):
            return
        task_id = event.task_id
        known = self._tasks.get(task_id)
        held = known.version if known is not None else self._ended.get(task_id, 0)
        if held >= event.version:
            return  # the view holds this version or a newer one (the monitor's own writes come back so)
        if event.to_status in self._statuses:
            self._mark(task_id)
        elif known is not None:  # no read needed: at this version it is not live, whatever else changed
            self._touched.add(task_id)
            self._tasks.pop(task_id)
            self._ended[task_id] = event.version

    def _mark(self, task_id: str) -> None:
        self._dirty.add(task_id)
        self._touched.add(task_id)

    async def _refresh(self) -> None:
        ids, self._dirty = sorted(self._dirty), set()
        try:
            found = await self._repository.get_many(ids)
        except BaseException:
            self._dirty.update(ids)  # read them again next time
            raise
        for task_id in ids:
            task = found.get(task_id)
            known = self._tasks.get(task_id)
            if task is not None and known is not None and known.version > task.version:
                continue  # the view already holds a newer write (ours)
            if task is None:
                self._tasks.pop(task_id, None)
            else:
                self._keep(task)

    def _keep(self, task: Task) -> None:
        if self._admits(task):
            self._tasks[task.id] = task
            self._ended.pop(task.id, None)
        else:
            self._tasks.pop(task.id, None)
            self._ended[task.id] = task.version

    def _merge_reload(self) -> None:
        reload, self._reload = self._reload, None
        assert reload is not None
        try:
            loaded = {task.id: task for task in reload.result()}
        except Exception:
            log.exception("reloading the live tasks failed; retried at the next resync")
            return
        self.reloads += 1
        self._ended.clear()
        merged: dict[str, Task] = {}
        for task_id in loaded.keys() | self._tasks.keys():
            fresh, known = loaded.get(task_id), self._tasks.get(task_id)
            if fresh is None or known is None:
                if task_id in self._touched:  # changed during the reload: the view's answer is newer
                    if known is not None:
                        merged[task_id] = known
                elif fresh is not None:
                    merged[task_id] = fresh
            elif fresh.version >= known.version:
                merged[task_id] = fresh
            else:
                merged[task_id] = known
        self._tasks = merged

    def _in_query(self, task: Task) -> bool:
        return task.lifecycle_status in self._statuses and (self._modes is None or task.mode in self._modes)

    async def _load(self) -> list[Task]:
        return list((await self._repository.list(self._query)).items)


class LiveTaskView(TaskView):
    """Every live task (Assigning, Running, Paused): what the monitor judges."""

    def __init__(
        self,
        repository: TaskRepository,
        clock: Clock,
        subscriber: EventSubscriber | None,
        *,
        resync_every_ms: int = 60_000,
    ) -> None:
        super().__init__(repository, clock, subscriber, query=LIVE_TASKS, resync_every_ms=resync_every_ms)
