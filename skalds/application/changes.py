"""Read, apply a lifecycle command, compare-and-set: the one way application code changes a stored task."""

from __future__ import annotations

import logging
from typing import Any

from skalds.application.operator_log import log_task_change
from skalds.domain import lifecycle
from skalds.domain.errors import ConflictError
from skalds.domain.events import TaskEvent
from skalds.domain.lifecycle import TaskCommand
from skalds.domain.ports import Clock, EventPublisher, TaskRepository
from skalds.domain.task import Task

log = logging.getLogger(__name__)


async def change_task(
    repository: TaskRepository,
    publisher: EventPublisher,
    clock: Clock,
    task_id: str,
    command: TaskCommand,
    *,
    expected_version: int | None = None,
    attempts: int = 3,
    by: str = "api",
    **args: Any,
) -> tuple[Task, TaskEvent]:
    """Apply ``command`` to the stored task, log the change (``by`` says who asked) and publish its event.

    With ``expected_version`` (the caller saw that version) a concurrent change is a ConflictError at once.
    Without it, a lost compare-and-set is retried on fresh state, up to ``attempts`` times: the command is
    re-checked against the new status, so a retry can be refused but never overwrites someone else's change.
    """
    for attempt in range(attempts):
        task = await repository.get(task_id)
        if expected_version is not None and task.version != expected_version:
            raise ConflictError(task_id, expected_version, task.version)
        new, event = lifecycle.apply(task, command, at=clock.now_ms(), **args)
        try:
            await repository.update(new, task.version)
        except ConflictError:
            if expected_version is not None or attempt == attempts - 1:
                raise
            continue
        log_task_change(log, new, event, by=by)
        await publisher.publish(event)
        return new, event
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover
