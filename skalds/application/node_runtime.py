"""The application side of a skald node: register, heartbeat, obey commands addressed to this node only.

The node never writes a task's lifecycle status; it reports heartbeats (with progress and outcome) and the
monitor decides. It fences itself: before starting a worker it checks that the stored task is still assigned
to it, and on every beat it stops local workers whose task is no longer its own, so a re-queued task never
runs twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from skalds.domain.commands import (
    AssignTask,
    CancelTask,
    NodeCommand,
    PauseTask,
    ResumeTask,
    UpdateTaskAttachments,
)
from skalds.domain.errors import TaskNotFoundError
from skalds.domain.heartbeat import HeartbeatReport, Outcome
from skalds.domain.nodes import Node, NodeMode
from skalds.domain.ports import (
    Clock,
    EventSubscriber,
    LiveStateStore,
    TaskQuery,
    TaskRepository,
    WorkerSupervisor,
)
from skalds.domain.task import LIVE, DesiredState, TaskStatus
from skalds.domain.workers import WorkerState

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeIdentity:
    """What a node says about itself when it registers."""

    id: str
    mode: NodeMode = NodeMode.NODE
    supported_classes: frozenset[str] = frozenset()
    capacity: int | None = None
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


class NodeRuntime:
    def __init__(
        self,
        identity: NodeIdentity,
        repository: TaskRepository,
        live: LiveStateStore,
        clock: Clock,
        supervisor: WorkerSupervisor,
    ) -> None:
        self.identity = identity
        self._repository = repository
        self._live = live
        self._clock = clock
        self._supervisor = supervisor
        self._registered_at: int | None = None
        self._sequences: dict[str, int] = {}
        self._beats_seen: dict[str, int] = {}

    @property
    def node_id(self) -> str:
        return self.identity.id

    async def register(self) -> None:
        self._registered_at = self._clock.now_ms()
        await self._publish_node(self._registered_at)

    async def handle(self, command: NodeCommand) -> None:
        """Act on one command; commands for other nodes and stale commands are ignored."""
        if command.node_id != self.node_id:
            return
        match command:
            case AssignTask():
                await self._start(command)
            case CancelTask():
                await self._cancel(command.task_id)
            case PauseTask():
                await self._supervisor.pause(command.task_id)
            case ResumeTask():
                await self._supervisor.resume(command.task_id)
            case UpdateTaskAttachments():
                await self._supervisor.update(
                    command.task_id, command.attachments, command.attachments_version
                )

    async def beat(self) -> None:
        """Report every worker's heartbeat and this node's own, and stop workers it no longer owns."""
        now = self._clock.now_ms()
        states = dict(self._supervisor.states())
        for task_id, state in states.items():
            if state.outcome is None and state.beats == self._beats_seen.get(task_id):
                continue  # its runtime sent nothing since the last report: do not vouch for it
            self._beats_seen[task_id] = state.beats
            await self._report(task_id, state, now)
            if state.outcome is not None:
                self._supervisor.forget(task_id)
                self._sequences.pop(task_id, None)
                self._beats_seen.pop(task_id, None)
        await self._fence({tid for tid, s in states.items() if s.outcome is None})
        await self._publish_node(now)

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
                await asyncio.sleep(heartbeat_interval_s)
        finally:
            listener.cancel()
            await subscription.close()
            await self._supervisor.shutdown()

    async def _start(self, command: AssignTask) -> None:
        try:
            task = await self._repository.get(command.task_id)
        except TaskNotFoundError:
            return
        mine = task.executor == self.node_id and task.lifecycle_status is TaskStatus.ASSIGNING
        if not mine or task.desired_state is not DesiredState.RUN or task.id in self._supervisor.states():
            log.info("node %s ignores a stale assignment of %s", self.node_id, task.id)
            return
        if task.class_name not in self.identity.supported_classes:
            reason = f"node {self.node_id} cannot run {task.class_name}"
            await self._report_outcome(task.id, task.attempt, Outcome.FAILED, reason)
            return
        await self._supervisor.start(task)

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

    async def _report(self, task_id: str, state: WorkerState, now: int) -> None:
        sequence = self._sequences.get(task_id, 0) + 1
        self._sequences[task_id] = sequence
        await self._live.record_heartbeat(
            task_id,
            HeartbeatReport(
                received_at=now,
                sequence=sequence,
                progress=state.progress,
                outcome=state.outcome,
                error=state.error,
                paused=state.paused,
                applied_attachments_version=state.applied_attachments_version,
                attempt=state.attempt,
            ),
        )

    async def _report_outcome(self, task_id: str, attempt: int, outcome: Outcome, error: str | None) -> None:
        report = HeartbeatReport(
            received_at=self._clock.now_ms(), outcome=outcome, error=error, attempt=attempt
        )
        await self._live.record_heartbeat(task_id, report)

    async def _publish_node(self, now: int) -> None:
        identity = self.identity
        running = frozenset(t for t, s in self._supervisor.states().items() if s.outcome is None)
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
            )
        )
