"""Domain events: facts, in the past tense, that live views and other components react to.

Every task event carries the status before and after and the task's new version, so a consumer can
order events per task and drop duplicates (at-least-once delivery) without reading the repository.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from skalds.domain.errors import ValidationError
from skalds.domain.task import DesiredState, TaskStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainEvent:
    """Base of every event; ``at`` is epoch milliseconds from the injected clock."""

    at: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskEvent(DomainEvent):
    task_id: str
    version: int
    from_status: TaskStatus | None
    to_status: TaskStatus
    desired_state: DesiredState


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskCreated(TaskEvent):
    class_name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskAssigned(TaskEvent):
    executor: str
    attempt: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskStarted(TaskEvent):
    executor: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskPauseRequested(TaskEvent):
    executor: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskPaused(TaskEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskResumeRequested(TaskEvent):
    executor: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskResumed(TaskEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskCancelRequested(TaskEvent):
    executor: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskCancelled(TaskEvent):
    reason: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskFinished(TaskEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskFailed(TaskEvent):
    error: str | None
    attempt: int
    attempts_left: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskRequeued(TaskEvent):
    """The owner is gone (node offline, assignment timed out); the task waits for a new node."""

    previous_executor: str | None
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskRetried(TaskEvent):
    automatic: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskAttachmentsUpdated(TaskEvent):
    attachments_version: int
    executor: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskAttachmentsApplied(TaskEvent):
    applied_attachments_version: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskDeleted(TaskEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeEvent(DomainEvent):
    node_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeCameOnline(NodeEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeHeartbeatObserved(NodeEvent):
    """A node reported in (published by the monitor once per cycle per node at most)."""

    tasks: tuple[str, ...]
    health: str
    cpu_percent: float | None = None  # the node's latest reading, when it measures itself
    memory_percent: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerChangesReported(NodeEvent):
    """A node saw workers start, end, pause, resume or apply an update, and has stored the heartbeats that
    say so: the monitor judges those tasks at once instead of at its next cycle (published by nodes)."""

    task_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeWentSuspect(NodeEvent):
    silent_for_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeWentOffline(NodeEvent):
    silent_for_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskHeartbeatObserved(DomainEvent):
    """A new heartbeat was seen for a task (published by the monitor once per cycle per task at most)."""

    task_id: str
    sequence: int
    progress: float | None
    verdict: str
    status: TaskStatus
    progress_total: float | None = None  # the worker's scale for ``progress``, when it gave one
    progress_unit: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskHeartbeatsObserved(DomainEvent):
    """One monitor cycle's new heartbeats, as columns: one message per cycle instead of one per task.

    Position ``i`` of every column is one task's ``TaskHeartbeatObserved``; ``each()`` gives those back.
    """

    task_ids: tuple[str, ...]
    sequences: tuple[int, ...]
    progress: tuple[float | None, ...]
    verdicts: tuple[str, ...]
    statuses: tuple[TaskStatus, ...]
    progress_totals: tuple[float | None, ...] = ()  # empty: no task of the batch gave a scale
    progress_units: tuple[str | None, ...] = ()

    def __post_init__(self) -> None:
        expected = len(self.task_ids)
        for name, column in (
            ("sequences", self.sequences),
            ("progress", self.progress),
            ("verdicts", self.verdicts),
            ("statuses", self.statuses),
            ("progress_totals", self.progress_totals or (None,) * expected),
            ("progress_units", self.progress_units or (None,) * expected),
        ):
            if len(column) != expected:
                raise ValidationError(
                    name, f"has {len(column)} entries; expected {expected}, one per task id"
                )

    def each(self) -> Iterator[TaskHeartbeatObserved]:
        """The per-task events, in column order, all at this batch's ``at``."""
        count = len(self.task_ids)
        columns = zip(
            self.task_ids,
            self.sequences,
            self.progress,
            self.verdicts,
            self.statuses,
            self.progress_totals or (None,) * count,
            self.progress_units or (None,) * count,
            strict=True,
        )
        for task_id, sequence, progress, verdict, status, total, unit in columns:
            yield TaskHeartbeatObserved(
                at=self.at,
                task_id=task_id,
                sequence=sequence,
                progress=progress,
                verdict=verdict,
                status=status,
                progress_total=total,
                progress_unit=unit,
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskErrorReported(DomainEvent):
    """A running worker reported a non-fatal error (upstream's ``has-error``)."""

    task_id: str
    error: str
    status: TaskStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskVerdictChanged(DomainEvent):
    """The heartbeat verdict on a live task changed, e.g. progressing -> stalled."""

    task_id: str
    previous: str | None
    verdict: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskPauseNotHonoured(DomainEvent):
    """A pause was requested but the worker kept running past the grace period."""

    task_id: str
    requested_for_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertRaised(DomainEvent):
    alert_id: str
    rule: str
    severity: str
    subject: str
    message: str
    silenced_by: str | None = None  # recorded, but the channels were not told


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertResolved(DomainEvent):
    alert_id: str
    rule: str
    subject: str
    raised_at: int | None = None  # when it started firing; ``at`` is when it resolved


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertRepeated(DomainEvent):
    """A firing alert's condition fired again: grouped into it (``count`` so far), not raised twice."""

    alert_id: str
    rule: str
    subject: str
    severity: str
    message: str
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertAcknowledged(DomainEvent):
    alert_id: str
    rule: str
    subject: str
    by: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SilenceCreated(DomainEvent):
    silence_id: str
    rule: str
    subject: str
    ends_at: int
    created_by: str
    comment: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SilenceExpired(DomainEvent):
    """A silence ended: its time ran out (``by`` is None) or someone expired it early."""

    silence_id: str
    rule: str
    subject: str
    by: str | None
