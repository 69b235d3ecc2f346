"""The task: what to run, where, and what is known about it.

Wire names (``className``, ``lifecycleStatus``, ...) live in the codecs at the edges; here attributes are
snake_case. A task never changes in place: lifecycle changes go through ``skalds.domain.lifecycle.apply``,
which returns a new task and the event that describes the change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from skalds.domain.errors import ValidationError

MIN_PRIORITY = 0
MAX_PRIORITY = 10
DEFAULT_MAX_ATTEMPTS = 3


class TaskStatus(StrEnum):
    """The observed lifecycle status; the 7 wire strings of upstream Skalds, unchanged."""

    CREATED = "Created"
    ASSIGNING = "Assigning"
    RUNNING = "Running"
    PAUSED = "Paused"
    FINISHED = "Finished"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


TERMINAL: frozenset[TaskStatus] = frozenset({TaskStatus.FINISHED, TaskStatus.FAILED, TaskStatus.CANCELLED})
"""Statuses no worker owns; only an explicit retry leaves them."""

LIVE: frozenset[TaskStatus] = frozenset({TaskStatus.ASSIGNING, TaskStatus.RUNNING, TaskStatus.PAUSED})
"""Statuses in which a worker may be alive on the task's executor."""


class TaskMode(StrEnum):
    """Who starts the task: ``Passive`` tasks are dispatched, ``Active`` ones belong to an edge node."""

    ACTIVE = "Active"
    PASSIVE = "Passive"
    PASSIVE_PROCESS = "PassiveProcess"


class DesiredState(StrEnum):
    """What the operator asked for, kept apart from what the worker is observed doing."""

    RUN = "run"
    PAUSE = "pause"
    CANCEL = "cancel"


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return mapping if isinstance(mapping, MappingProxyType) else MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True, kw_only=True)
class Task:
    """A unit of long-running work and everything the system knows about it.

    ``version`` grows by one with every stored change and is the compare-and-set token.
    ``attempt`` counts assignments; automatic retries stop at ``max_attempts``. ``retry_at`` is when a
    failed task with attempts left may be retried automatically.
    """

    id: str
    class_name: str
    source: str = "api"
    name: str | None = None
    description: str | None = None
    executor: str | None = None
    mode: TaskMode = TaskMode.PASSIVE
    priority: int = 0
    attachments: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    attachments_version: int = 1
    applied_attachments_version: int | None = None
    create_date_time: int = 0
    update_date_time: int = 0
    deadline_date_time: int | None = None
    dependencies: tuple[str, ...] = ()
    required_labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    is_persistent: bool = True
    lifecycle_status: TaskStatus = TaskStatus.CREATED
    desired_state: DesiredState = DesiredState.RUN
    version: int = 1
    attempt: int = 0
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    assigned_at: int | None = None
    started_at: int | None = None
    finished_at: int | None = None
    last_error: str | None = None
    retry_at: int | None = None

    def __post_init__(self) -> None:
        if not self.id or not self.id.strip():
            raise ValidationError("id", "must be a non-empty string")
        if not self.class_name or not self.class_name.strip():
            raise ValidationError("className", "must be a non-empty string")
        if not MIN_PRIORITY <= self.priority <= MAX_PRIORITY:
            raise ValidationError(
                "priority", f"must be between {MIN_PRIORITY} and {MAX_PRIORITY}, got {self.priority}"
            )
        if self.max_attempts < 1:
            raise ValidationError("maxAttempts", f"must be at least 1, got {self.max_attempts}")
        if self.version < 1:
            raise ValidationError("version", f"must be at least 1, got {self.version}")
        object.__setattr__(self, "attachments", _frozen(self.attachments))
        object.__setattr__(self, "required_labels", _frozen(self.required_labels))
        object.__setattr__(self, "dependencies", tuple(self.dependencies))

    @property
    def is_terminal(self) -> bool:
        return self.lifecycle_status in TERMINAL

    @property
    def is_live(self) -> bool:
        """True while a worker may be running this task on its executor."""
        return self.lifecycle_status in LIVE

    @property
    def attempts_left(self) -> int:
        return max(0, self.max_attempts - self.attempt)


_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Task))


def evolve(task: Task, changes: Mapping[str, Any]) -> Task:
    """A copy of ``task`` with ``changes``, without re-running validation.

    For the lifecycle's hot path (the dispatcher assigns tens of thousands of tasks a second): the
    transition table guarantees the changed fields are valid, so this skips ``dataclasses.replace``'s
    ``__init__`` and ``__post_init__``. Mappings in ``changes`` are frozen like the constructor does.
    """
    changes = {**changes}
    for name in ("attachments", "required_labels"):
        if name in changes:
            changes[name] = _frozen(changes[name])
    new = object.__new__(Task)
    for name in _FIELD_NAMES:
        object.__setattr__(new, name, changes[name] if name in changes else getattr(task, name))
    return new


def new_task(
    *,
    task_id: str,
    class_name: str,
    now: int,
    source: str = "api",
    name: str | None = None,
    description: str | None = None,
    mode: TaskMode = TaskMode.PASSIVE,
    priority: int = 0,
    attachments: Mapping[str, Any] | None = None,
    deadline_date_time: int | None = None,
    dependencies: tuple[str, ...] = (),
    required_labels: Mapping[str, str] | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    executor: str | None = None,
    is_persistent: bool = True,
) -> Task:
    """A task as it is first stored: ``Created``, version 1, no attempt yet."""
    return Task(
        id=task_id,
        class_name=class_name,
        source=source,
        name=name,
        description=description,
        executor=executor,
        mode=mode,
        priority=priority,
        attachments=attachments or {},
        create_date_time=now,
        update_date_time=now,
        deadline_date_time=deadline_date_time,
        dependencies=dependencies,
        required_labels=required_labels or {},
        max_attempts=max_attempts,
        is_persistent=is_persistent,
    )
