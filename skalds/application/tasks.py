"""Task use cases for operators and other services: create, read, steer and delete tasks.

Every change is a compare-and-set through ``change_task``; a command for a running worker is published to
its node after the change is stored, so the stored desired state is the source of truth and the monitor
can re-send a command that got lost.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from skalds.application.changes import change_task
from skalds.application.drafts import (
    DraftLimits,
    batch_item,
    check_sizes,
    check_unique_ids,
    checked_attachments,
    checked_id,
)
from skalds.application.operator_log import log_task_change, log_task_changes
from skalds.domain import lifecycle
from skalds.domain.commands import CancelTask, NodeCommand, PauseTask, ResumeTask, UpdateTaskAttachments
from skalds.domain.errors import (
    BackendUnavailableError,
    ConflictError,
    TaskAlreadyExistsError,
    ValidationError,
)
from skalds.domain.lifecycle import TaskCommand
from skalds.domain.ports import (
    CheckpointStore,
    Clock,
    EventPublisher,
    IdGenerator,
    TaskLogStore,
    TaskPage,
    TaskQuery,
    TaskRepository,
    WorkerCatalog,
)
from skalds.domain.task import DEFAULT_MAX_ATTEMPTS, Task, TaskMode, TaskStatus, new_task

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


PATCH_ATTEMPTS = 3  # a PATCH that keeps losing to concurrent changes gives up with a 409


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
        limits: DraftLimits | None = None,
        checkpoints: CheckpointStore | None = None,
        logs: TaskLogStore | None = None,
    ) -> None:
        self._limits = limits or DraftLimits()
        self._checkpoints = checkpoints
        self._logs = logs
        self._repository = repository
        self._publisher = publisher
        self._clock = clock
        self._ids = ids
        self._catalog = catalog
        self._default_max_attempts = default_max_attempts

    async def create(self, draft: TaskDraft) -> Task:
        """Store a new Passive task (the dispatcher then assigns it); its id is generated when not given."""
        task = self._new_task(draft, self._clock.now_ms())
        await self._repository.insert(task)
        await self._announce_created([task])
        return task

    async def create_many(self, drafts: Sequence[TaskDraft]) -> list[Task]:
        """``create`` for many drafts, all or none, in order: every draft is checked as ``create`` checks it,
        and ids must differ and be free, before anything is stored; a ValidationError names the first bad
        item as ``tasks[i].<field>``. Then one insert and one batch of TaskCreated events.

        TaskAlreadyExistsError means a concurrent writer took an id during the insert; on MongoDB the tasks
        before it were stored then, and are announced like the others (a ValidationError of data the
        server refused mid-insert likewise)."""
        if not drafts:
            raise ValidationError("tasks", "must list at least one task")
        now = self._clock.now_ms()
        tasks = []
        for index, draft in enumerate(drafts):
            with batch_item(index):
                tasks.append(self._new_task(draft, now))
        check_unique_ids(tasks)
        await self._check_free(tasks, [d.id for d in drafts])
        try:
            await self._repository.insert_many(tasks)
        except (TaskAlreadyExistsError, ValidationError):
            await self._announce_landed(tasks)
            raise
        await self._announce_created(tasks)
        return tasks

    def _new_task(self, draft: TaskDraft, now: int) -> Task:
        task_id = self._ids.new_id() if draft.id is None else checked_id(draft.id)
        texts = {"name": draft.name, "description": draft.description, "source": draft.source}
        check_sizes(
            self._limits, texts=texts, dependencies=draft.dependencies, required_labels=draft.required_labels
        )
        attachments = self._validated(draft.class_name, draft.attachments)
        return new_task(
            task_id=task_id,
            class_name=draft.class_name,
            now=now,
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

    async def _announce_created(self, tasks: Sequence[Task]) -> None:
        events = [lifecycle.created(task) for task in tasks]
        log_task_changes(log, zip(tasks, events, strict=True), by="api")
        await self._publisher.publish_many(events)

    async def _check_free(self, tasks: Sequence[Task], given: Sequence[str | None]) -> None:
        """Ids the client gave must not be stored yet (generated ones are fresh): one read for the batch."""
        stored = await self._repository.get_many([task_id for task_id in given if task_id is not None])
        for index, task in enumerate(tasks):
            if task.id in stored:
                raise ValidationError(f"tasks[{index}].id", f"task {task.id!r} already exists")

    async def _announce_landed(self, tasks: Sequence[Task]) -> None:
        """After an insert failed part-way: announce what it stored (exactly our task) before the error."""
        stored = await self._repository.get_many([task.id for task in tasks])
        landed = [task for task in tasks if stored.get(task.id) == task]
        if landed:
            log.warning("batch create failed part-way: %d of %d tasks were stored", len(landed), len(tasks))
            await self._announce_created(landed)

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
        """Replace the attachments as a whole (keys left out take the model's defaults), validated, then
        deliver them to the running worker."""
        current = await self._repository.get(task_id)
        validated = self._validated(current.class_name, attachments)
        return await self._store_attachments(task_id, validated, expected_version)

    async def patch_attachments(
        self, task_id: str, changes: Mapping[str, Any], *, expected_version: int | None = None
    ) -> Task:
        """Lay ``changes`` over the stored attachments key by key, validate the whole, store and deliver it.
        Without ``expected_version`` a concurrent change is merged with, never overwritten (read again)."""
        for attempt in range(PATCH_ATTEMPTS):
            current = await self._repository.get(task_id)
            if expected_version is not None and current.version != expected_version:
                raise ConflictError(task_id, expected_version, current.version)
            merged = self._catalog.merged_attachments(current.class_name, current.attachments, changes)
            validated = self._validated(current.class_name, merged)
            try:
                return await self._store_attachments(task_id, validated, current.version)
            except ConflictError:
                if expected_version is not None or attempt == PATCH_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _store_attachments(
        self, task_id: str, validated: Mapping[str, Any], expected_version: int | None
    ) -> Task:
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
        task, event = await change_task(
            self._repository,
            self._publisher,
            self._clock,
            task_id,
            TaskCommand.RETRY,
            expected_version=expected_version,
        )
        if self._checkpoints is not None and event.from_status is TaskStatus.FINISHED:
            # run again from zero: a finished task's checkpoint is its end; a failed or cancelled one resumes
            await self._checkpoints.delete(task_id)
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
        if self._checkpoints is not None:  # gone from storage: its checkpoint too
            await self._checkpoints.delete(task_id)
        if self._logs is not None:  # and its output (which expires by itself if the store is away now)
            try:
                await self._logs.forget_tasks([task_id])
            except BackendUnavailableError as error:
                log.warning("task %s deleted; its output stays until it expires: %s", task_id, error)
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
        return checked_attachments(
            self._catalog, class_name, attachments, max_bytes=self._limits.attachments_bytes
        )
