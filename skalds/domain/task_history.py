"""What the control plane keeps of the past, for the dashboard: each task's timeline of lifecycle changes,
its progress over time, and the whole system's changes counted per minute.

A timeline entry is keyed by the task's version, so an event delivered again (the bus is at-least-once)
is kept, and counted, once. Progress is thinned on the way in (``progress_worth_keeping``): a task
beating every second for a day would otherwise bury its own history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from skalds.domain import events as ev
from skalds.domain.task import TaskStatus

MINUTE_MS = 60_000


@dataclass(frozen=True, slots=True, kw_only=True)
class TimelineEntry:
    """One lifecycle change: ``change`` is the event's name (``TaskFailed``), ``detail`` its error or
    reason, ``counted`` the per-minute counter it adds to (``failed``), if any."""

    task_id: str
    at: int
    version: int
    change: str
    status: TaskStatus
    attempt: int | None = None
    executor: str | None = None
    detail: str | None = None

    @property
    def counted(self) -> str | None:
        return COUNTERS.get(self.change)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProgressPoint:
    task_id: str
    at: int
    done: float
    total: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskTimeline:
    """Oldest first, both."""

    changes: tuple[TimelineEntry, ...] = ()
    progress: tuple[ProgressPoint, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class MinuteCounts:
    """One minute (``minute`` is its first epoch millisecond): the changes that happened in it, and the tasks
    per status as last sampled in it (``None`` when nothing sampled it, e.g. the controller was down)."""

    minute: int
    created: int = 0
    finished: int = 0
    failed: int = 0
    cancelled: int = 0
    by_status: Mapping[TaskStatus, int] | None = field(default=None)


COUNTERS: Mapping[str, str] = {
    "TaskCreated": "created",
    "TaskFinished": "finished",
    "TaskFailed": "failed",
    "TaskCancelled": "cancelled",
}


def minute_of(at_ms: int) -> int:
    return at_ms - at_ms % MINUTE_MS


def timeline_entry(event: ev.TaskEvent) -> TimelineEntry | None:
    """The entry a task event adds to its task's timeline; None for a deletion (the timeline goes too)."""
    if isinstance(event, ev.TaskDeleted):
        return None
    attempt = getattr(event, "attempt", None)
    executor = getattr(event, "executor", None)
    detail: str | None = None
    match event:
        case ev.TaskFailed(error=error, attempts_left=left):
            detail = error if not left else f"{error or 'failed'} ({left} attempt(s) left)"
        case ev.TaskCancelled(reason=reason):
            detail = reason
        case ev.TaskRequeued(previous_executor=previous, reason=reason):
            executor = previous
            detail = reason
        case ev.TaskRetried(automatic=automatic):
            detail = "retried automatically" if automatic else "retried by an operator"
        case ev.TaskAttachmentsUpdated(attachments_version=version):
            detail = f"attachments v{version} saved"
        case ev.TaskAttachmentsApplied(applied_attachments_version=version):
            detail = f"attachments v{version} applied by the worker"
    return TimelineEntry(
        task_id=event.task_id,
        at=event.at,
        version=event.version,
        change=type(event).__name__,
        status=event.to_status,
        attempt=attempt,
        executor=executor,
        detail=detail,
    )


def progress_worth_keeping(last: ProgressPoint | None, point: ProgressPoint, every_ms: int) -> bool:
    """The first point, a point ``every_ms`` after the last kept one, or one that reaches the total; never
    the same progress again."""
    if last is None:
        return True
    if point.done == last.done and point.total == last.total:
        return False
    reached = point.total is not None and point.done >= point.total
    return reached or point.at - last.at >= every_ms
