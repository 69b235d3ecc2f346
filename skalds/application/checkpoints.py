"""What an operator does with a task's checkpoint: look at it, or clear it to force a fresh start."""

from __future__ import annotations

import logging

from skalds.domain.checkpoints import Checkpoint
from skalds.domain.ports import CheckpointStore, TaskRepository
from skalds.domain.task import Task

log = logging.getLogger(__name__)


class CheckpointService:
    def __init__(self, repository: TaskRepository, checkpoints: CheckpointStore) -> None:
        self._repository = repository
        self._checkpoints = checkpoints

    async def of(self, task_id: str) -> tuple[Task, Checkpoint | None]:
        """The task (TaskNotFoundError if there is none) and its latest checkpoint, if any was saved."""
        task = await self._repository.get(task_id)
        return task, await self._checkpoints.get(task_id)

    async def clear(self, task_id: str, *, by: str = "api") -> Task:
        """Forget the checkpoint: the next attempt starts from zero. A worker running now keeps its own
        and its next save is stored again; clear a task that is not running to be sure."""
        task = await self._repository.get(task_id)
        await self._checkpoints.delete(task_id)
        log.info(
            "task %s: checkpoint cleared by %s (status %s, node %s)",
            task.id,
            by,
            task.lifecycle_status.value,
            task.executor,
            extra={"task_id": task.id, "node": task.executor, "reason": "checkpoint cleared"},
        )
        return task
