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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from skalds.application.batch_writes import Change, write_changes
from skalds.application.histogram import Histogram
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
    TaskOrder,
    TaskPage,
    TaskQuery,
    TaskRepository,
)
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
        self._cursor: str | None = None
        self._pending_reasons: Mapping[str, str] = MappingProxyType({})
        self.counters = DispatcherCounters()

    def pending_reason(self, task_id: str) -> str | None:
        """Why a queued task was not assigned in the last cycle, for the API."""
        return self._pending_reasons.get(task_id)

    async def dispatch_once(self) -> DispatchReport:
        """Assign every queued task that fits, page by page in dispatch order."""
        now = self._clock.now_ms()
        # the first page, the nodes and their loads in one round trip's time, not three
        first_page = self._queued(0)
        nodes, counted, page = await asyncio.gather(
            self._live.list_nodes(), self._repository.count_by_executor(LIVE), first_page
        )
        loads = dict(counted)
        reasons: dict[str, str] = {}
        assigned = lost = expired = offset = 0
        first = True
        while True:
            if not first:
                page = await self._queued(offset)
            first = False
            if not page.items:
                break
            fresh = [t for t in page.items if not _expired(t, now)]
            expired += await self._expire([t for t in page.items if _expired(t, now)], now)
            plan = assign_batch(
                fresh,
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
            reasons.update(plan.pending)
            won = await self._claim(page.items, plan.assignments, now)
            for assignment in plan.assignments:
                if assignment.task_id in won:
                    loads[assignment.node_id] = loads.get(assignment.node_id, 0) + 1
            assigned += len(won)
            lost += len(plan.assignments) - len(won)
            # assigned and expired tasks left the queue, so they no longer take up offsets
            offset += len(fresh) - len(plan.assignments)
            if len(page.items) < self._batch_size or not self._has_free_slot(nodes, loads, now):
                break
        self._pending_reasons = MappingProxyType(reasons)
        self.counters.cycles += 1
        self.counters.assigned += assigned
        self.counters.lost += lost
        self.counters.expired += expired
        return DispatchReport(assigned=assigned, lost=lost, pending=len(reasons), expired=expired)

    async def retry_due(self) -> int:
        """Move failed tasks whose backoff has passed back to the queue."""
        now = self._clock.now_ms()
        page = await self._repository.list(TaskQuery(retry_due_by=now, limit=self._batch_size))
        changes: list[Change] = []
        for task in page.items:
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
        wake = asyncio.Event()
        subscription = subscriber.events()

        async def listen() -> None:
            async for event in subscription:
                if isinstance(event, WAKING_EVENTS):
                    wake.set()

        listener = asyncio.create_task(listen(), name="dispatcher-listener")
        loop = asyncio.get_running_loop()
        retries_checked = -math.inf
        try:
            while True:
                wake.clear()
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
            listener.cancel()
            await subscription.close()

    async def _queued(self, offset: int) -> TaskPage:
        """A page of the queue in dispatch order (no total: counting would scan the collection again)."""
        return await self._repository.list(
            TaskQuery(
                statuses=frozenset({TaskStatus.CREATED}),
                modes=frozenset({TaskMode.PASSIVE}),
                order=TaskOrder.DISPATCH,
                offset=offset,
                limit=self._batch_size,
                with_total=False,
            )
        )

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
        if not changes:
            return set()
        return await write_changes(self._repository, self._publisher, changes, logger=log, by="dispatcher")


def _expired(task: Task, now: int) -> bool:
    deadline = task.deadline_date_time
    return deadline is not None and deadline > 0 and deadline < now
