"""The application side of a skald node: register, heartbeat, obey commands addressed to this node only.

The node never writes a task's lifecycle status; it reports heartbeats (with progress and outcome) and the
monitor decides. It fences itself: before starting a worker it checks that the stored task is still assigned
to it, and on every beat it stops local workers whose task is no longer its own, so a re-queued task never
runs twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from skalds.domain import lifecycle
from skalds.domain.commands import (
    AssignTask,
    CancelTask,
    NodeCommand,
    PauseTask,
    ResumeTask,
    UpdateTaskAttachments,
)
from skalds.domain.errors import ConflictError, TaskNotFoundError
from skalds.domain.events import DomainEvent
from skalds.domain.heartbeat import HeartbeatReport, Outcome
from skalds.domain.lifecycle import TaskCommand
from skalds.domain.nodes import Node, NodeMode
from skalds.domain.ports import (
    Clock,
    EventPublisher,
    EventSubscriber,
    LiveStateStore,
    TaskQuery,
    TaskRepository,
    WorkerSupervisor,
)
from skalds.domain.task import LIVE, DesiredState, TaskMode, TaskStatus, new_task
from skalds.domain.workers import WorkerState

log = logging.getLogger(__name__)
_REMEMBERED_STARTS = 10_000  # far more tasks than a node starts between two monitor cycles


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeIdentity:
    """What a node says about itself when it registers."""

    id: str
    mode: NodeMode = NodeMode.NODE
    supported_classes: frozenset[str] = frozenset()
    capacity: int | None = None
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True, kw_only=True)
class EdgeTask:
    """A task an edge node owns because its file says so (upstream's ``TaskWorkers`` entry)."""

    id: str
    class_name: str
    attachments: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    is_persistent: bool = True


class NodeRuntime:
    def __init__(
        self,
        identity: NodeIdentity,
        repository: TaskRepository,
        live: LiveStateStore,
        clock: Clock,
        supervisor: WorkerSupervisor,
        *,
        publisher: EventPublisher | None = None,
        lease_ms: int | None = None,
    ) -> None:
        """``lease_ms``: after this long without a heartbeat reaching the live-state store, the node stops
        its own workers, because the monitor will soon give their tasks to other nodes. Keep it below the
        monitor's dead-after, with room for the workers' cancel grace."""
        self.identity = identity
        self._repository = repository
        self._live = live
        self._clock = clock
        self._supervisor = supervisor
        self._publisher = publisher
        self._edge_ids: frozenset[str] = frozenset()
        self.draining = False
        self._registered_at: int | None = None
        self._sequences: dict[str, int] = {}
        self._beats_seen: dict[str, int] = {}
        self._lease_ms = lease_ms
        self._last_contact: int | None = None
        self._fenced: set[str] = set()
        # Commands arrive at least once: remember what was obeyed, so a redelivery changes nothing.
        self._started_attempts: dict[str, int] = {}  # kept after the worker is forgotten, bounded
        self._updates_sent: dict[str, int] = {}  # attachments version last handed to the worker
        self._controls_obeyed: dict[str, int] = {}  # task version of the last pause / resume obeyed

    @property
    def node_id(self) -> str:
        return self.identity.id

    async def register(self) -> None:
        self._registered_at = self._clock.now_ms()
        await self._publish_node(self._registered_at)
        self._last_contact = self._registered_at

    async def handle(self, command: NodeCommand) -> None:
        """Act on one command; commands for other nodes and stale commands are ignored."""
        if command.node_id != self.node_id:
            return
        match command:
            case AssignTask():
                await self._start(command)
            case CancelTask():
                await self._cancel(command.task_id)
            case PauseTask() | ResumeTask():
                if command.version <= self._controls_obeyed.get(command.task_id, 0):
                    return  # a redelivery, or overtaken by a later pause / resume (another topic on Kafka)
                self._controls_obeyed[command.task_id] = command.version
                if isinstance(command, PauseTask):
                    await self._supervisor.pause(command.task_id)
                else:
                    await self._supervisor.resume(command.task_id)
            case UpdateTaskAttachments():
                if command.attachments_version <= self._updates_sent.get(command.task_id, 0):
                    return  # a redelivered (or older) update: the worker has it already
                self._updates_sent[command.task_id] = command.attachments_version
                await self._supervisor.update(
                    command.task_id, command.attachments, command.attachments_version
                )

    async def adopt_edge_tasks(self, tasks: Sequence[EdgeTask]) -> list[str]:
        """Store (first time) and start the tasks of an edge file; returns why any were not started.

        The stored task wins over the file for attachments (hot updates are stored), as upstream did. A
        finished, failed or cancelled task is not resurrected on restart: retry it to run it again.
        """
        self._edge_ids = frozenset(t.id for t in tasks)
        problems: list[str] = []
        for edge in tasks:
            problem = await self._adopt(edge)
            if problem:
                problems.append(f"{edge.id}: {problem}")
        return problems

    async def stop(self, *, drain: bool, drain_timeout_s: float) -> None:
        """Leave the cluster. Draining lets running tasks finish first (then cancels the rest); otherwise
        workers stop now and the node disappears, so the monitor hands their tasks to other nodes."""
        self.draining = True
        if drain:
            await self._publish_node(self._clock.now_ms())
            loop = asyncio.get_running_loop()
            deadline = loop.time() + drain_timeout_s
            while self._running() and loop.time() < deadline:  # noqa: ASYNC110 - the port reports by polling
                await asyncio.sleep(0.1)
            await self._supervisor.shutdown()
            await self.beat()  # report the outcomes, so the monitor settles them at once
            return
        await self._supervisor.shutdown()
        await self._live.remove_node(self.node_id)

    async def check_lease(self) -> None:
        """Stop every worker if this node has been out of touch for longer than its lease (a partition,
        a stalled store): the control plane is about to hand their tasks to other nodes."""
        if self._lease_ms is None or self._last_contact is None:
            return
        silent = self._clock.now_ms() - self._last_contact
        if silent <= self._lease_ms:
            return
        for task_id in self._running() - self._fenced:
            log.warning("node %s lost contact %d ms ago; stopping %s", self.node_id, silent, task_id)
            self._fenced.add(task_id)
            await self._supervisor.cancel(task_id)

    async def beat(self) -> None:
        """Report every worker's heartbeat and this node's own, and stop workers it no longer owns."""
        await self.check_lease()
        now = self._clock.now_ms()
        states = dict(self._supervisor.states())
        due: list[tuple[str, WorkerState]] = []
        for task_id, state in states.items():
            if task_id in self._fenced:  # stopped by the lease: the task is no longer this node's to report
                if state.outcome is not None:
                    self._forget(task_id)
                continue
            if state.outcome is None and state.beats == self._beats_seen.get(task_id):
                continue  # its runtime sent nothing since the last report: do not vouch for it
            due.append((task_id, state))
        await self._report_all(due, now)
        await self._fence({tid for tid, s in states.items() if s.outcome is None})
        if self._edge_ids and not self.draining:
            await self._adopt_retried()
        await self._publish_node(now)
        self._last_contact = now

    def _forget(self, task_id: str) -> None:
        self._supervisor.forget(task_id)
        self._sequences.pop(task_id, None)
        self._beats_seen.pop(task_id, None)
        self._fenced.discard(task_id)
        self._updates_sent.pop(task_id, None)
        self._controls_obeyed.pop(task_id, None)

    async def run(self, subscriber: EventSubscriber, *, heartbeat_interval_s: float) -> None:
        """Register, then obey commands and beat until cancelled; on the way out stop every worker."""
        await self.register()
        subscription = subscriber.commands(self.node_id)

        async def obey() -> None:
            async for command in subscription:
                try:
                    await self.handle(command)
                except Exception:
                    log.exception("node %s failed to handle %s", self.node_id, command)

        listener = asyncio.create_task(obey(), name=f"node-{self.node_id}-commands")
        try:
            while True:
                try:
                    await self.beat()
                except Exception:
                    log.exception("node %s heartbeat failed", self.node_id)
                    await self.check_lease()
                await asyncio.sleep(heartbeat_interval_s)
        finally:
            listener.cancel()
            await subscription.close()

    async def _start(self, command: AssignTask) -> None:
        if self.draining:
            log.info("node %s is draining and ignores the assignment of %s", self.node_id, command.task_id)
            return
        try:
            task = await self._repository.get(command.task_id)
        except TaskNotFoundError:
            return
        mine = task.executor == self.node_id and task.lifecycle_status is TaskStatus.ASSIGNING
        if not mine or task.desired_state is not DesiredState.RUN or task.id in self._supervisor.states():
            log.info("node %s ignores a stale assignment of %s", self.node_id, task.id)
            return
        if self._started_attempts.get(task.id, 0) >= task.attempt:  # ended here, not yet settled
            log.info("node %s ignores a repeated assignment of %s", self.node_id, task.id)
            return
        if task.class_name not in self.identity.supported_classes:
            reason = f"node {self.node_id} cannot run {task.class_name}"
            await self._report_outcome(task.id, task.attempt, Outcome.FAILED, reason)
            return
        await self._supervisor.start(task)
        self._started_attempts[task.id] = task.attempt
        if len(self._started_attempts) > _REMEMBERED_STARTS:
            del self._started_attempts[next(iter(self._started_attempts))]  # the oldest

    async def _adopt(self, edge: EdgeTask) -> str | None:
        try:
            task = await self._repository.get(edge.id)
        except TaskNotFoundError:
            task = new_task(
                task_id=edge.id,
                class_name=edge.class_name,
                now=self._clock.now_ms(),
                source="YAML",
                name=edge.id,
                description=f"Active TaskWorker from YAML. ClassName: {edge.class_name}",
                mode=TaskMode.ACTIVE,
                attachments=edge.attachments,
                is_persistent=edge.is_persistent,
            )
            await self._repository.insert(task)
            await self._publish(lifecycle.created(task))
        if task.class_name != edge.class_name:
            return f"stored as class {task.class_name!r}, the file says {edge.class_name!r}; not started"
        if task.mode is not TaskMode.ACTIVE:
            return f"the id belongs to a {task.mode.value} task; not started"
        if task.is_live:
            if task.executor != self.node_id:
                return f"owned by node {task.executor}; not started"
            await self._supervisor.start(task)  # it was running here when this node last stopped
            return None
        if task.is_terminal:
            return f"is {task.lifecycle_status.value}; retry it to run it again"
        now = self._clock.now_ms()
        assigned, event = lifecycle.apply(task, TaskCommand.ASSIGN, at=now, executor=self.node_id)
        try:
            await self._repository.update(assigned, task.version)
        except ConflictError:
            return "changed concurrently; will try again"
        await self._publish(event)
        await self._supervisor.start(assigned)
        return None

    async def _adopt_retried(self) -> None:
        """Edge tasks an operator retried are queued again; this node, their owner, takes them back."""
        queued = await self._repository.list(
            TaskQuery(
                statuses=frozenset({TaskStatus.CREATED}), modes=frozenset({TaskMode.ACTIVE}), limit=None
            )
        )
        for task in queued.items:
            if task.id in self._edge_ids:
                await self._adopt(EdgeTask(id=task.id, class_name=task.class_name))

    async def _publish(self, event: DomainEvent) -> None:
        if self._publisher is not None:
            await self._publisher.publish(event)

    def _running(self) -> set[str]:
        return {task_id for task_id, state in self._supervisor.states().items() if state.outcome is None}

    async def _cancel(self, task_id: str) -> None:
        if task_id in self._supervisor.states():
            await self._supervisor.cancel(task_id)
            return
        try:
            task = await self._repository.get(task_id)
        except TaskNotFoundError:
            return
        if task.executor == self.node_id and task.is_live:
            # nothing runs here for it (never started, or already gone): say so, so the cancel completes
            await self._report_outcome(task_id, task.attempt, Outcome.CANCELLED, None)

    async def _fence(self, running: set[str]) -> None:
        if not running:
            return
        page = await self._repository.list(TaskQuery(executor=self.node_id, statuses=LIVE, limit=None))
        owned = {t.id for t in page.items}
        for task_id in running - owned:
            log.warning("node %s stops %s: the task is no longer assigned to it", self.node_id, task_id)
            await self._supervisor.cancel(task_id)

    async def _report_all(self, due: Sequence[tuple[str, WorkerState]], now: int) -> None:
        """Record one heartbeat per worker in one batch (a few round trips on Redis, however many workers),
        each task's reports in order. Only a stored report vouches for its worker's beats, and a worker that
        ended is forgotten once its outcome is stored; a failed batch stores nothing and is raised, and the
        next beat reports again."""
        if not due:
            return
        reports = []
        for task_id, state in due:
            sequence = self._sequences.get(task_id, 0) + 1
            self._sequences[task_id] = sequence
            report = HeartbeatReport(
                received_at=now,
                sequence=sequence,
                progress=state.progress,
                outcome=state.outcome,
                error=state.error,
                paused=state.paused,
                applied_attachments_version=state.applied_attachments_version,
                attempt=state.attempt,
            )
            reports.append((task_id, report))
        await self._live.record_heartbeats(reports)
        for task_id, state in due:
            self._beats_seen[task_id] = state.beats
            if state.outcome is not None:
                self._forget(task_id)

    async def _report_outcome(self, task_id: str, attempt: int, outcome: Outcome, error: str | None) -> None:
        report = HeartbeatReport(
            received_at=self._clock.now_ms(), outcome=outcome, error=error, attempt=attempt
        )
        await self._live.record_heartbeat(task_id, report)

    async def _publish_node(self, now: int) -> None:
        identity = self.identity
        running = frozenset(self._running())
        await self._live.put_node(
            Node(
                id=identity.id,
                mode=identity.mode,
                supported_classes=identity.supported_classes,
                current_tasks=running,
                capacity=identity.capacity,
                labels=identity.labels,
                registered_at=self._registered_at if self._registered_at is not None else now,
                last_heartbeat_at=now,
                draining=self.draining,
            )
        )
