"""Edge nodes own the tasks their YAML file names (upstream's ``TaskWorkers``): store them, start them, and
take back the ones an operator retried.

Kept apart from the node runtime: only an edge node adopts, and adoption reads and writes the repository,
which the runtime's liveness path never waits on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from skalds.application.operator_log import log_task_change
from skalds.domain import lifecycle
from skalds.domain.errors import ConflictError, TaskNotFoundError
from skalds.domain.lifecycle import TaskCommand
from skalds.domain.ports import Clock, EventPublisher, TaskQuery, TaskRepository, WorkerSupervisor
from skalds.domain.task import Task, TaskMode, TaskStatus, new_task

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class EdgeTask:
    """A task an edge node owns because its file says so (upstream's ``TaskWorkers`` entry)."""

    id: str
    class_name: str
    attachments: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    is_persistent: bool = True


RETRIED_EDGE_TASKS = TaskQuery(
    statuses=frozenset({TaskStatus.CREATED}), modes=frozenset({TaskMode.ACTIVE}), limit=None
)


class EdgeAdoption:
    def __init__(
        self,
        node_id: str,
        repository: TaskRepository,
        clock: Clock,
        supervisor: WorkerSupervisor,
        publisher: EventPublisher | None,
        *,
        started: Callable[[str, int], None],
        checkpoint_of: Callable[[Task], Awaitable[str | None]] | None = None,
    ) -> None:
        """``started(task_id, attempt)`` tells the node a worker was started for it; ``checkpoint_of``
        reads what earlier attempts of a task saved, handed to its new worker."""
        self._node_id = node_id
        self._repository = repository
        self._clock = clock
        self._supervisor = supervisor
        self._publisher = publisher
        self._started = started
        self._checkpoint_of = checkpoint_of
        self.task_ids: frozenset[str] = frozenset()

    async def adopt(self, tasks: Sequence[EdgeTask]) -> list[str]:
        """Store (first time) and start the tasks of an edge file; returns why any were not started.

        The stored task wins over the file for attachments (hot updates are stored), as upstream did. A
        finished, failed or cancelled task is not resurrected on restart: retry it to run it again.
        """
        self.task_ids = frozenset(t.id for t in tasks)
        problems: list[str] = []
        for edge in tasks:
            problem = await self._adopt(edge)
            if problem:
                problems.append(f"{edge.id}: {problem}")
        return problems

    async def adopt_retried(self) -> None:
        """Edge tasks an operator retried are queued again; this node, their owner, takes them back."""
        if not self.task_ids:
            return
        queued = await self._repository.list(RETRIED_EDGE_TASKS)
        for task in queued.items:
            if task.id in self.task_ids:
                await self._adopt(EdgeTask(id=task.id, class_name=task.class_name))

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
            created = lifecycle.created(task)
            log_task_change(log, task, created, by="node")
            if self._publisher is not None:
                await self._publisher.publish(created)
        if task.class_name != edge.class_name:
            return f"stored as class {task.class_name!r}, the file says {edge.class_name!r}; not started"
        if task.mode is not TaskMode.ACTIVE:
            return f"the id belongs to a {task.mode.value} task; not started"
        if task.is_live:
            if task.executor != self._node_id:
                return f"owned by node {task.executor}; not started"
            # it was running here when this node last stopped
            await self._supervisor.start(task, checkpoint=await self._saved(task))
            self._started(task.id, task.attempt)
            return None
        if task.is_terminal:
            return f"is {task.lifecycle_status.value}; retry it to run it again"
        now = self._clock.now_ms()
        assigned, event = lifecycle.apply(task, TaskCommand.ASSIGN, at=now, executor=self._node_id)
        try:
            await self._repository.update(assigned, task.version)
        except ConflictError:
            return "changed concurrently; will try again"
        log_task_change(log, assigned, event, by="node")
        if self._publisher is not None:
            await self._publisher.publish(event)
        await self._supervisor.start(assigned, checkpoint=await self._saved(assigned))
        self._started(assigned.id, assigned.attempt)
        return None

    async def _saved(self, task: Task) -> str | None:
        return None if self._checkpoint_of is None else await self._checkpoint_of(task)
