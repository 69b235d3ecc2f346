"""Task use cases for operators and other services: create, read, steer and delete tasks.

Every change is a compare-and-set through ``change_task``; a command for a running worker is published to
its node after the change is stored, so the stored desired state is the source of truth and the monitor
can re-send a command that got lost.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from skalds.application.changes import change_task
from skalds.application.operator_log import log_task_change
from skalds.domain import lifecycle
from skalds.domain.commands import CancelTask, NodeCommand, PauseTask, ResumeTask, UpdateTaskAttachments
from skalds.domain.errors import ConflictError, ValidationError
from skalds.domain.lifecycle import TaskCommand
from skalds.domain.ports import (
    Clock,
    EventPublisher,
    IdGenerator,
    TaskPage,
    TaskQuery,
    TaskRepository,
    WorkerCatalog,
)
from skalds.domain.task import DEFAULT_MAX_ATTEMPTS, Task, TaskMode, TaskStatus, new_task

MAX_ID_LENGTH = 200
MAX_ATTACHMENTS_BYTES = 1_048_576

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskDraft:
    """What a client may say about a new task; the rest is the system's to decide."""

    class_name: str
    id: str | None = None
    source: str = "api"
    name: str | None = None
    description: str | None = None
    priority: int = 0
    attachments: Mapping[str, Any] = field(default_factory=dict)
    deadline_date_time: int | None = None
    dependencies: tuple[str, ...] = ()
    required_labels: Mapping[str, str] = field(default_factory=dict)
    max_attempts: int | None = None


class TaskService:
    def __init__(
        self,
        repository: TaskRepository,
        publisher: EventPublisher,
        clock: Clock,
        ids: IdGenerator,
        catalog: WorkerCatalog,
        *,
        default_max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        self._repository = repository
        self._publisher = publisher
        self._clock = clock
        self._ids = ids
        self._catalog = catalog
        self._default_max_attempts = default_max_attempts

    async def create(self, draft: TaskDraft) -> Task:
        """Store a new Passive task (the dispatcher then assigns it); its id is generated when not given."""
        task_id = self._ids.new_id() if draft.id is None else _checked_id(draft.id)
        attachments = self._validated(draft.class_name, draft.attachments)
        task = new_task(
            task_id=task_id,
            class_name=draft.class_name,
            now=self._clock.now_ms(),
            source=draft.source,
            name=draft.name,
            description=draft.description,
            mode=TaskMode.PASSIVE,
            priority=draft.priority,
            attachments=attachments,
            deadline_date_time=draft.deadline_date_time,
            dependencies=draft.dependencies,
            required_labels=draft.required_labels,
            max_attempts=draft.max_attempts or self._default_max_attempts,
        )
        await self._repository.insert(task)
        event = lifecycle.created(task)
        log_task_change(log, task, event, by="api")
        await self._publisher.publish(event)
        return task

    async def get(self, task_id: str) -> Task:
        return await self._repository.get(task_id)

    async def list(self, query: TaskQuery) -> TaskPage:
        return await self._repository.list(query)

    async def class_names(self) -> Sequence[str]:
        stored = set(await self._repository.class_names())
        return sorted(stored | self._catalog.class_names())

    async def update_attachments(
        self, task_id: str, attachments: Mapping[str, Any], *, expected_version: int | None = None
    ) -> Task:
        """Validate and store new attachments, then deliver them to the running worker."""
        current = await self._repository.get(task_id)
        validated = self._validated(current.class_name, attachments)
        task, _ = await change_task(
            self._repository,
            self._publisher,
            self._clock,
            task_id,
            TaskCommand.UPDATE_ATTACHMENTS,
            expected_version=expected_version,
            attachments=validated,
        )
        if task.is_live and task.executor:
            await self._tell_node(
                UpdateTaskAttachments(
                    task_id=task.id,
                    node_id=task.executor,
                    version=task.version,
                    at=task.update_date_time,
                    attachments=task.attachments,
                    attachments_version=task.attachments_version,
                )
            )
        return task

    async def cancel(self, task_id: str, *, expected_version: int | None = None) -> Task:
        return await self._steer(task_id, TaskCommand.CANCEL, CancelTask, expected_version)

    async def pause(self, task_id: str, *, expected_version: int | None = None) -> Task:
        return await self._steer(task_id, TaskCommand.PAUSE, PauseTask, expected_version)

    async def resume(self, task_id: str, *, expected_version: int | None = None) -> Task:
        return await self._steer(task_id, TaskCommand.RESUME, ResumeTask, expected_version)

    async def retry(self, task_id: str, *, expected_version: int | None = None) -> Task:
        """Run a Finished, Failed or Cancelled task again (upstream's "set Created")."""
        task, _ = await change_task(
            self._repository,
            self._publisher,
            self._clock,
            task_id,
            TaskCommand.RETRY,
            expected_version=expected_version,
        )
        return task

    async def set_status(self, task_id: str, status: TaskStatus) -> Task:
        """Upstream's ``PUT /api/tasks/{id}/status``: ``Cancelled`` cancels, ``Created`` re-queues."""
        if status is TaskStatus.CANCELLED:
            return await self.cancel(task_id)
        if status is TaskStatus.CREATED:
            return await self.retry(task_id)
        raise ValidationError("lifecycleStatus", f"must be Created or Cancelled, got {status.value}")

    async def delete(self, task_id: str, *, expected_version: int | None = None) -> None:
        """Delete a task no worker owns; a live task must be cancelled first (409)."""
        task = await self._repository.get(task_id)
        if expected_version is not None and expected_version != task.version:
            raise ConflictError(task_id, expected_version, task.version)
        event = lifecycle.deleted(task, at=self._clock.now_ms())
        await self._repository.delete(task_id, task.version)
        log_task_change(log, task, event, by="api")
        await self._publisher.publish(event)

    async def _steer(
        self,
        task_id: str,
        command: TaskCommand,
        node_command: type[CancelTask] | type[PauseTask] | type[ResumeTask],
        expected_version: int | None,
    ) -> Task:
        task, _ = await change_task(
            self._repository,
            self._publisher,
            self._clock,
            task_id,
            command,
            expected_version=expected_version,
        )
        if task.is_live and task.executor:
            await self._tell_node(
                node_command(
                    task_id=task.id, node_id=task.executor, version=task.version, at=task.update_date_time
                )
            )
        return task

    async def _tell_node(self, command: NodeCommand) -> None:
        await self._publisher.publish(command)

    def _validated(self, class_name: str, attachments: Mapping[str, Any]) -> Mapping[str, Any]:
        if not isinstance(attachments, Mapping):
            raise ValidationError("attachments", f"must be a JSON object, got {type(attachments).__name__}")
        try:
            size = len(json.dumps(attachments, separators=(",", ":"), allow_nan=False))
        except (TypeError, ValueError) as error:
            raise ValidationError("attachments", f"must be JSON-serialisable: {error}") from error
        if size > MAX_ATTACHMENTS_BYTES:
            raise ValidationError("attachments", f"must be at most {MAX_ATTACHMENTS_BYTES} bytes, got {size}")
        known = self._catalog.class_names()
        if not known:
            return attachments
        if class_name not in known:
            raise ValidationError(
                "className", f"unknown worker class {class_name!r}; known: {', '.join(sorted(known))}"
            )
        return self._catalog.validate_attachments(class_name, attachments)


def _checked_id(task_id: str) -> str:
    if not task_id or len(task_id) > MAX_ID_LENGTH:
        raise ValidationError("id", f"must be 1 to {MAX_ID_LENGTH} characters, got {len(task_id)}")
    if any(ch.isspace() or ch == "/" for ch in task_id) or not task_id.isprintable():
        raise ValidationError("id", f"must not contain whitespace, '/' or control characters: {task_id!r}")
    return task_id
