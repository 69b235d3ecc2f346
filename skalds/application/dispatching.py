"""The dispatcher: assigns queued tasks to nodes, and schedules automatic retries.

It is event-driven: a created, re-queued or retried task, a finished task that frees a slot, or a node coming
online wakes it at once; the periodic sweep is only the safety net. Assignment is a compare-and-set per task,
so two dispatchers running at once never assign a task twice: the loser's write is refused and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from skalds.application.batch_writes import Change, write_changes
from skalds.application.histogram import Histogram
from skalds.application.live_tasks import TaskView
from skalds.domain import events as ev
from skalds.domain import lifecycle
from skalds.domain.commands import AssignTask
from skalds.domain.dispatch import (
    Assignment,
    DispatchStrategy,
    ResourceThresholds,
    assign_batch,
    node_refusal,
)
from skalds.domain.errors import IllegalTransitionError
from skalds.domain.heartbeat import HeartbeatPolicy
from skalds.domain.lifecycle import TaskCommand
from skalds.domain.nodes import Node
from skalds.domain.ports import (
    Clock,
    EventPublisher,
    EventSubscriber,
    LiveStateStore,
    Subscription,
    TaskOrder,
    TaskQuery,
    TaskRepository,
)
from skalds.domain.resources import usage_over
from skalds.domain.task import LIVE, Task, TaskMode, TaskStatus

log = logging.getLogger(__name__)

WAKING_EVENTS = (
    ev.TaskCreated,
    ev.TaskRequeued,
    ev.TaskRetried,
    ev.TaskFinished,
    ev.TaskFailed,
    ev.TaskCancelled,
    ev.TaskDeleted,
    ev.NodeCameOnline,
)
"""Events after which a queued task may have become assignable."""
QUEUE_ONLY_EVENTS = (ev.TaskCreated, ev.TaskRetried)
"""Waking events that only add to the queue (a retried task's slot was freed by its failure): while every
node is full they cannot be placed, so they start a cycle at most every ``FULL_WAKE_GAP_S``."""
# while full, a burst of new work costs one pass over the backlog per gap, not one per task
FULL_WAKE_GAP_S = 0.25

QUEUE = TaskQuery(
    statuses=frozenset({TaskStatus.CREATED}),
    modes=frozenset({TaskMode.PASSIVE}),
    limit=None,
    order=TaskOrder.ANY,
)
BUSY = TaskQuery(statuses=LIVE, limit=None, order=TaskOrder.ANY)
RETRYING = TaskQuery(
    statuses=frozenset({TaskStatus.FAILED}), retry_due_by=2**62, limit=None, order=TaskOrder.ANY
)
"""The dispatcher's views: what it may assign, what holds a slot, and what may become due for a retry."""
RETRY_CHECK_S = 1.0  # due automatic retries are looked for this often at most (backoffs are seconds long)


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatchReport:
    assigned: int = 0
    lost: int = 0  # another dispatcher (or an operator) changed the task first
    pending: int = 0
    expired: int = 0
    retried: int = 0


@dataclass(slots=True)
class DispatcherCounters:
    cycles: int = 0
    assigned: int = 0
    lost: int = 0
    retried: int = 0
    expired: int = 0
    queue_wait_ms: Histogram = field(default_factory=Histogram)  # last queue entry -> assigned


class Dispatcher:
    def __init__(
        self,
        repository: TaskRepository,
        live: LiveStateStore,
        publisher: EventPublisher,
        clock: Clock,
        *,
        strategy: DispatchStrategy,
        policy: HeartbeatPolicy,
        rng: random.Random,
        thresholds: ResourceThresholds | None = None,
        batch_size: int = 1_000,
        resync_every_ms: int = 60_000,
    ) -> None:
        self._repository = repository
        self._live = live
        self._publisher = publisher
        self._clock = clock
        self.strategy = strategy
        self._policy = policy
        self._rng = rng
        self._thresholds = thresholds or ResourceThresholds()
        self._batch_size = batch_size
        self._resync_every_ms = resync_every_ms
        self._queue, self._busy, self._retrying = self._views(fed=False)
        self._cursor: str | None = None
        self._pending_reasons: Mapping[str, str] = MappingProxyType({})
        self.counters = DispatcherCounters()
        self.full = False  # the last cycle found no free slot on any node
        self._wake: asyncio.Event | None = None  # set while ``run`` runs
        self._over_limits: set[str] = set()  # nodes whose last reading was over a resource threshold

    def pending_reason(self, task_id: str) -> str | None:
        """Why a queued task was not assigned in the last cycle, for the API."""
        return self._pending_reasons.get(task_id)

    def consider(self, task_ids: Sequence[str]) -> None:
        """Tasks someone asks to have dispatched now (an upstream client's ``task.assign``), which may
        have been written without an event: read them before the next cycle, and start it at once. Without
        ``run`` there is nothing to do: every cycle then reads the whole queue."""
        if self._wake is None:
            return
        self._queue.lost(task_ids)
        self._wake.set()

    async def dispatch_once(self) -> DispatchReport:
        """Assign every queued task that fits. The queue and the slot loads come from views kept current
        by the task events, so a cycle reads only what changed, not the backlog; when every node is full
        the backlog is not even planned, beyond saying why newly queued tasks wait."""
        now = self._clock.now_ms()
        nodes, queued, busy = await asyncio.gather(
            self._live.list_nodes(), self._queue.tasks(), self._busy.tasks()
        )
        self._note_resources(nodes)
        loads = Counter(task.executor for task in busy if task.executor)
        late = [task for task in queued if _expired(task, now)]
        expired = await self._expire(late, now) if late else 0
        fresh = [task for task in queued if not _expired(task, now)]
        known = self._pending_reasons
        free = self._has_free_slot(nodes, loads, now)
        self.full = not free
        plan = assign_batch(
            fresh if free else [task for task in fresh if task.id not in known],
            nodes,
            strategy=self.strategy,
            now=now,
            policy=self._policy,
            rng=self._rng,
            cursor=self._cursor,
            loads=loads,
            thresholds=self._thresholds,
        )
        self._cursor = plan.cursor
        won: set[str] = set()
        for first in range(0, len(plan.assignments), self._batch_size):  # one write per batch_size
            won |= await self._claim(fresh, plan.assignments[first : first + self._batch_size], now)
        reasons = {} if free else {task.id: known[task.id] for task in fresh if task.id in known}
        reasons.update(plan.pending)
        self._pending_reasons = MappingProxyType(reasons)
        lost = len(plan.assignments) - len(won)
        self.counters.cycles += 1
        self.counters.assigned += len(won)
        self.counters.lost += lost
        self.counters.expired += expired
        return DispatchReport(assigned=len(won), lost=lost, pending=len(reasons), expired=expired)

    def _note_resources(self, nodes: Sequence[Node]) -> None:
        """INFO when a node's reading goes over a dispatch threshold (it takes no new work) or back under."""
        limits = self._thresholds
        if limits.max_cpu_percent is None and limits.max_memory_percent is None:
            return
        over_now: set[str] = set()
        for node in nodes:
            over = usage_over(
                node.cpu_percent,
                node.memory_percent,
                max_cpu_percent=limits.max_cpu_percent,
                max_memory_percent=limits.max_memory_percent,
            )
            if over:
                over_now.add(node.id)
            if bool(over) == (node.id in self._over_limits):
                continue
            fields = {"node": node.id, "cpu_percent": node.cpu_percent, "memory_percent": node.memory_percent}
            if over:
                log.info(
                    "node %s is over its dispatch limits (%s): no new tasks",
                    node.id,
                    ", ".join(over),
                    extra=fields,
                )
            else:
                log.info(
                    "node %s is back under its dispatch limits (CPU %s, memory %s): it takes tasks again",
                    node.id,
                    _pct(node.cpu_percent),
                    _pct(node.memory_percent),
                    extra=fields,
                )
        self._over_limits = over_now

    async def retry_due(self) -> int:
        """Move failed tasks whose backoff has passed back to the queue."""
        now = self._clock.now_ms()
        due = [
            task
            for task in await self._retrying.tasks()
            if task.retry_at is not None and task.retry_at <= now
        ]
        changes: list[Change] = []
        for task in due:
            try:
                new, event = lifecycle.apply(task, TaskCommand.AUTO_RETRY, at=now)
            except IllegalTransitionError:
                continue
            changes.append(Change(new, task.version, (event,)))
        lost = await self._write(changes)
        retried = len(changes) - len(lost)
        self.counters.retried += retried
        return retried

    async def run(self, subscriber: EventSubscriber, *, interval_s: float) -> None:
        """Dispatch on every waking event and at least every ``interval_s``, until cancelled."""
        wake = self._wake = asyncio.Event()
        self._queue, self._busy, self._retrying = self._views(fed=True)
        subscription = subscriber.events()
        loop = asyncio.get_running_loop()
        deferred: asyncio.TimerHandle | None = None  # a wake for queue-only events while full
        cycle_started = -math.inf

        async def listen(events: Subscription[ev.DomainEvent]) -> None:
            nonlocal deferred
            async for event in events:
                # the views first: the cycle this event wakes must see the slot it freed
                for view in (self._queue, self._busy, self._retrying):
                    view.heard(event)
                if not isinstance(event, WAKING_EVENTS):
                    continue
                due = cycle_started + FULL_WAKE_GAP_S
                if not (self.full and isinstance(event, QUEUE_ONLY_EVENTS)) or loop.time() >= due:
                    wake.set()  # events that arrive during a cycle join into the next one
                elif deferred is None or loop.time() >= deferred.when():
                    # a pass over a large backlog for each created task would starve the API
                    deferred = loop.call_at(due, wake.set)

        listener = asyncio.create_task(listen(subscription), name="dispatcher-listener")
        retries_checked = -math.inf
        try:
            while True:
                wake.clear()
                cycle_started = loop.time()
                if listener.done():  # the subscription failed: follow a new one, from a full read
                    log.error("the dispatcher's event subscription ended; it subscribes again")
                    await subscription.close()
                    self._queue, self._busy, self._retrying = self._views(fed=True)
                    subscription = subscriber.events()
                    listener = asyncio.create_task(listen(subscription), name="dispatcher-listener")
                try:
                    # a scan of its own: on a burst of wakes, look for due retries once a second at most
                    if loop.time() - retries_checked >= min(interval_s, RETRY_CHECK_S):
                        retries_checked = loop.time()
                        await self.retry_due()
                    await self.dispatch_once()
                except Exception:  # a failing backend must not kill the loop; the next cycle retries
                    log.exception("dispatch cycle failed")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(interval_s):  # not wait_for: on 3.11 it can swallow a cancel
                        await wake.wait()
        finally:
            if deferred is not None:
                deferred.cancel()
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
            await subscription.close()
            self._queue, self._busy, self._retrying = self._views(fed=False)
            self._wake = None

    def _views(self, *, fed: bool) -> tuple[TaskView, TaskView, TaskView]:
        """The queue, the tasks holding slots and the failed tasks waiting for a retry: read in full
        every cycle, unless ``fed`` the task events by ``run``."""

        def view(query: TaskQuery, admits: Callable[[Task], bool] | None = None) -> TaskView:
            return TaskView(
                self._repository,
                self._clock,
                None,
                query=query,
                admits=admits,
                resync_every_ms=self._resync_every_ms,
                fed=fed,
            )

        return view(QUEUE), view(BUSY), view(RETRYING, _retrying)

    def _has_free_slot(self, nodes: Sequence[Node], loads: Mapping[str, int], now: int) -> bool:
        return any(
            node_refusal(node, now, self._policy, self._thresholds) is None
            and (node.capacity is None or loads.get(node.id, 0) < node.capacity)
            for node in nodes
        )

    async def _claim(self, tasks: Sequence[Task], assignments: Sequence[Assignment], now: int) -> set[str]:
        by_id = {t.id: t for t in tasks}
        changes: list[Change] = []
        for assignment in assignments:
            task = by_id[assignment.task_id]
            new, event = lifecycle.apply(task, TaskCommand.ASSIGN, at=now, executor=assignment.node_id)
            command = AssignTask(
                task_id=new.id, node_id=assignment.node_id, version=new.version, at=now, attempt=new.attempt
            )
            changes.append(Change(new, task.version, (event,), then=(command,)))
        lost = await self._write(changes)
        won = {change.task.id for change in changes} - lost
        for task_id in won:
            self.counters.queue_wait_ms.observe(max(0, now - by_id[task_id].update_date_time))
        return won

    async def _expire(self, tasks: list[Task], now: int) -> int:
        changes: list[Change] = []
        for task in tasks:
            error = f"deadline {task.deadline_date_time} passed before it ran"
            new, event = lifecycle.apply(task, TaskCommand.FAIL, at=now, error=error)
            changes.append(Change(new, task.version, (event,)))
        lost = await self._write(changes)
        return len(changes) - len(lost)

    async def _write(self, changes: Sequence[Change]) -> set[str]:
        """Store ``changes``; the views learn of each write at once, won or lost."""
        if not changes:
            return set()
        lost = await write_changes(self._repository, self._publisher, changes, logger=log, by="dispatcher")
        for view in (self._queue, self._busy, self._retrying):
            view.lost(lost)
            for change in changes:
                if change.task.id not in lost:
                    view.stored(change.task)
        return lost


def _pct(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.0f}%"


def _expired(task: Task, now: int) -> bool:
    deadline = task.deadline_date_time
    return deadline is not None and deadline > 0 and deadline < now


def _retrying(task: Task) -> bool:
    return task.lifecycle_status is TaskStatus.FAILED and task.retry_at is not None
