"""The task lifecycle as data: one transition table, a few named guards, and one function that applies them.

``TRANSITIONS`` maps (status, command) to the next status and reads as the specification. Commands that an
operator issues against a running worker (pause, resume, cancel) are two-step: the command records the
*desired* state and leaves the observed status alone; the worker's confirmation (or the monitor's, once
the worker is known to be gone) moves the status. So a task is never re-queued while its old worker may
still be alive.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from skalds.domain import events as ev
from skalds.domain.errors import IllegalTransitionError
from skalds.domain.task import DesiredState, Task, TaskStatus, evolve


class TaskCommand(StrEnum):
    ASSIGN = "assign"  # dispatcher picked an executor
    START = "start"  # the worker confirmed it runs
    PAUSE = "pause"  # operator: please pause (two-step)
    CONFIRM_PAUSE = "confirm_pause"  # the worker paused
    RESUME = "resume"  # operator: please resume (two-step), or withdraw a pending pause
    CONFIRM_RESUME = "confirm_resume"  # the worker resumed
    CANCEL = "cancel"  # operator: please cancel (immediate when no worker owns the task)
    CONFIRM_CANCEL = "confirm_cancel"  # the worker stopped because it was cancelled, or is known gone
    FINISH = "finish"  # the worker's main hook returned
    FAIL = "fail"  # the worker raised, died, or the task can never run
    REQUEUE = "requeue"  # the owner is gone; wait for another node
    RETRY = "retry"  # operator: run a terminal task again
    AUTO_RETRY = "auto_retry"  # dispatcher: a failed task still has attempts left
    UPDATE_ATTACHMENTS = "update_attachments"  # new parameters for the (running) worker
    ACK_ATTACHMENTS = "ack_attachments"  # the worker applied an attachments version


S, C = TaskStatus, TaskCommand

TRANSITIONS: Mapping[tuple[TaskStatus, TaskCommand], TaskStatus] = MappingProxyType(
    {
        (S.CREATED, C.ASSIGN): S.ASSIGNING,
        (S.CREATED, C.CANCEL): S.CANCELLED,
        (S.CREATED, C.FAIL): S.FAILED,
        (S.CREATED, C.UPDATE_ATTACHMENTS): S.CREATED,
        (S.ASSIGNING, C.START): S.RUNNING,
        (S.ASSIGNING, C.CANCEL): S.ASSIGNING,
        (S.ASSIGNING, C.CONFIRM_CANCEL): S.CANCELLED,
        (S.ASSIGNING, C.FINISH): S.FINISHED,
        (S.ASSIGNING, C.FAIL): S.FAILED,
        (S.ASSIGNING, C.REQUEUE): S.CREATED,
        (S.ASSIGNING, C.UPDATE_ATTACHMENTS): S.ASSIGNING,
        (S.ASSIGNING, C.ACK_ATTACHMENTS): S.ASSIGNING,
        (S.RUNNING, C.PAUSE): S.RUNNING,
        (S.RUNNING, C.CONFIRM_PAUSE): S.PAUSED,
        (S.RUNNING, C.RESUME): S.RUNNING,
        (S.RUNNING, C.CANCEL): S.RUNNING,
        (S.RUNNING, C.CONFIRM_CANCEL): S.CANCELLED,
        (S.RUNNING, C.FINISH): S.FINISHED,
        (S.RUNNING, C.FAIL): S.FAILED,
        (S.RUNNING, C.REQUEUE): S.CREATED,
        (S.RUNNING, C.UPDATE_ATTACHMENTS): S.RUNNING,
        (S.RUNNING, C.ACK_ATTACHMENTS): S.RUNNING,
        (S.PAUSED, C.RESUME): S.PAUSED,
        (S.PAUSED, C.CONFIRM_RESUME): S.RUNNING,
        (S.PAUSED, C.PAUSE): S.PAUSED,
        (S.PAUSED, C.CANCEL): S.PAUSED,
        (S.PAUSED, C.CONFIRM_CANCEL): S.CANCELLED,
        (S.PAUSED, C.FINISH): S.FINISHED,
        (S.PAUSED, C.FAIL): S.FAILED,
        (S.PAUSED, C.REQUEUE): S.CREATED,
        (S.PAUSED, C.UPDATE_ATTACHMENTS): S.PAUSED,
        (S.PAUSED, C.ACK_ATTACHMENTS): S.PAUSED,
        (S.FINISHED, C.RETRY): S.CREATED,
        (S.FAILED, C.RETRY): S.CREATED,
        (S.FAILED, C.AUTO_RETRY): S.CREATED,
        (S.CANCELLED, C.RETRY): S.CREATED,
    }
)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CommandArgs:
    """What a command carries besides the task and the time."""

    executor: str | None = None
    error: str | None = None
    reason: str | None = None
    attachments: Mapping[str, Any] | None = None
    attachments_version: int | None = None
    retry_at: int | None = None
    at: int = 0


Guard = Callable[[Task, CommandArgs], str | None]
"""Returns why the command is refused, or None when it may proceed."""


def _needs_executor(task: Task, args: CommandArgs) -> str | None:
    return None if args.executor else "an executor (node id) is required"


def _same_executor(task: Task, args: CommandArgs) -> str | None:
    if args.executor is not None and args.executor != task.executor:
        return f"reported by {args.executor!r}, but the task is assigned to {task.executor!r}"
    return None


def _desired(expected: DesiredState, refusal: str) -> Guard:
    def guard(task: Task, args: CommandArgs) -> str | None:
        return None if task.desired_state is expected else refusal

    return guard


def _not_cancelling(task: Task, args: CommandArgs) -> str | None:
    return "cancel was already requested" if task.desired_state is DesiredState.CANCEL else None


def _requeue(task: Task, args: CommandArgs) -> str | None:
    """A lost run counts as an attempt, so a task that keeps killing its node cannot loop forever."""
    if not args.reason:
        return "a reason is required"
    return _not_cancelling(task, args) or _attempts_left(task, args)


def _attempts_left(task: Task, args: CommandArgs) -> str | None:
    if task.attempt < task.max_attempts:
        return None
    return f"no attempts left ({task.attempt} of {task.max_attempts} used)"


def _retry_due(task: Task, args: CommandArgs) -> str | None:
    if task.retry_at is None:
        return "no automatic retry is scheduled"
    if args.at < task.retry_at:
        return f"the next attempt is not due before {task.retry_at}"
    return _attempts_left(task, args)


def _new_attachments(task: Task, args: CommandArgs) -> str | None:
    if args.attachments is None:
        return "attachments are required"
    return _not_cancelling(task, args)


def _ack(task: Task, args: CommandArgs) -> str | None:
    version = args.attachments_version
    if version is None or not 1 <= version <= task.attachments_version:
        return f"attachments version must be between 1 and {task.attachments_version}, got {version}"
    if task.applied_attachments_version is not None and version <= task.applied_attachments_version:
        return f"attachments version {task.applied_attachments_version} is already applied"
    return None


GUARDS: Mapping[TaskCommand, tuple[Guard, ...]] = MappingProxyType(
    {
        C.ASSIGN: (_needs_executor, _desired(DesiredState.RUN, "the operator did not ask it to run")),
        C.START: (_same_executor,),
        C.PAUSE: (_desired(DesiredState.RUN, "pause or cancel was already requested"),),
        C.CONFIRM_PAUSE: (_desired(DesiredState.PAUSE, "no pause was requested"),),
        C.RESUME: (_desired(DesiredState.PAUSE, "it is not paused or being paused"),),
        C.CONFIRM_RESUME: (_desired(DesiredState.RUN, "no resume was requested"),),
        C.CANCEL: (_not_cancelling,),
        C.REQUEUE: (_requeue,),
        C.AUTO_RETRY: (_retry_due,),
        C.UPDATE_ATTACHMENTS: (_new_attachments,),
        C.ACK_ATTACHMENTS: (_ack,),
    }
)


def target_status(status: TaskStatus, command: TaskCommand) -> TaskStatus | None:
    """Where ``command`` leads from ``status`` by the table alone, or None when the table forbids it."""
    return TRANSITIONS.get((status, command))


def check(task: Task, command: TaskCommand, args: CommandArgs) -> TaskStatus:
    """The status ``command`` leads to, or IllegalTransitionError naming the task and both statuses."""
    target = TRANSITIONS.get((task.lifecycle_status, command))
    if target is None:
        allowed = sorted(c.value for (s, c) in TRANSITIONS if s is task.lifecycle_status)
        raise IllegalTransitionError(
            task.id, task.lifecycle_status, command, None, f"allowed from here: {', '.join(allowed)}"
        )
    for guard in GUARDS.get(command, ()):
        refusal = guard(task, args)
        if refusal is not None:
            raise IllegalTransitionError(task.id, task.lifecycle_status, command, target, refusal)
    return target


def apply(
    task: Task,
    command: TaskCommand,
    *,
    at: int,
    executor: str | None = None,
    error: str | None = None,
    reason: str | None = None,
    attachments: Mapping[str, Any] | None = None,
    attachments_version: int | None = None,
    retry_at: int | None = None,
) -> tuple[Task, ev.TaskEvent]:
    """Apply one command: the only way a task's lifecycle changes. Returns the new task and its event.

    ``retry_at`` goes with FAIL: when the task still has attempts left, the time an automatic retry is due
    (the caller computes it from its retry policy).
    """
    args = CommandArgs(
        executor=executor,
        error=error,
        reason=reason,
        attachments=attachments,
        attachments_version=attachments_version,
        retry_at=retry_at,
        at=at,
    )
    target = check(task, command, args)
    changes = _CHANGES[command](task, args, at)
    changes.update(lifecycle_status=target, version=task.version + 1, update_date_time=at)
    new = evolve(task, changes)
    return new, _event(task, new, command, args, at)


def _terminal(at: int, **extra: Any) -> dict[str, Any]:
    return {"finished_at": at, **extra}


def _back_to_queue(task: Task, at: int) -> dict[str, Any]:
    """Nobody owns a queued task: forget the executor, and whatever the operator wanted of the old run."""
    return {
        "executor": None,
        "assigned_at": None,
        "started_at": None,
        "desired_state": DesiredState.RUN,
        "retry_at": None,
    }


_CHANGES: Mapping[TaskCommand, Callable[[Task, CommandArgs, int], dict[str, Any]]] = MappingProxyType(
    {
        C.ASSIGN: lambda t, a, at: {
            "executor": a.executor,
            "attempt": t.attempt + 1,
            "assigned_at": at,
            "started_at": None,
            "finished_at": None,
            "applied_attachments_version": None,
        },
        C.START: lambda t, a, at: {"started_at": at},
        C.PAUSE: lambda t, a, at: {"desired_state": DesiredState.PAUSE},
        C.CONFIRM_PAUSE: lambda t, a, at: {},
        C.RESUME: lambda t, a, at: {"desired_state": DesiredState.RUN},
        C.CONFIRM_RESUME: lambda t, a, at: {},
        C.CANCEL: lambda t, a, at: (
            {**_terminal(at), "desired_state": DesiredState.CANCEL}
            if t.lifecycle_status is S.CREATED
            else {"desired_state": DesiredState.CANCEL}
        ),
        C.CONFIRM_CANCEL: lambda t, a, at: _terminal(at),
        C.FINISH: lambda t, a, at: _terminal(at),
        C.FAIL: lambda t, a, at: _terminal(
            at,
            last_error=a.error or "failed without an error message",
            retry_at=a.retry_at if t.attempts_left > 0 else None,
        ),
        C.REQUEUE: lambda t, a, at: _back_to_queue(t, at),
        C.RETRY: lambda t, a, at: {
            **_back_to_queue(t, at),
            "finished_at": None,
            "max_attempts": max(t.max_attempts, t.attempt + 1),
        },
        C.AUTO_RETRY: lambda t, a, at: {**_back_to_queue(t, at), "finished_at": None},
        C.UPDATE_ATTACHMENTS: lambda t, a, at: {
            "attachments": a.attachments,
            "attachments_version": t.attachments_version + 1,
        },
        C.ACK_ATTACHMENTS: lambda t, a, at: {"applied_attachments_version": a.attachments_version},
    }
)


def _event(old: Task, new: Task, command: TaskCommand, args: CommandArgs, at: int) -> ev.TaskEvent:
    base: dict[str, Any] = {
        "at": at,
        "task_id": new.id,
        "version": new.version,
        "from_status": old.lifecycle_status,
        "to_status": new.lifecycle_status,
        "desired_state": new.desired_state,
    }
    match command:
        case C.ASSIGN:
            return ev.TaskAssigned(**base, executor=new.executor or "", attempt=new.attempt)
        case C.START:
            return ev.TaskStarted(**base, executor=new.executor or "")
        case C.PAUSE:
            return ev.TaskPauseRequested(**base, executor=new.executor)
        case C.CONFIRM_PAUSE:
            return ev.TaskPaused(**base)
        case C.RESUME:
            return ev.TaskResumeRequested(**base, executor=new.executor)
        case C.CONFIRM_RESUME:
            return ev.TaskResumed(**base)
        case C.CANCEL if new.lifecycle_status is S.CANCELLED:
            return ev.TaskCancelled(**base, reason=args.reason or "cancelled before it was assigned")
        case C.CANCEL:
            return ev.TaskCancelRequested(**base, executor=new.executor)
        case C.CONFIRM_CANCEL:
            return ev.TaskCancelled(**base, reason=args.reason)
        case C.FINISH:
            return ev.TaskFinished(**base)
        case C.FAIL:
            return ev.TaskFailed(
                **base, error=new.last_error, attempt=new.attempt, attempts_left=new.attempts_left
            )
        case C.REQUEUE:
            return ev.TaskRequeued(**base, previous_executor=old.executor, reason=args.reason or "")
        case C.RETRY | C.AUTO_RETRY:
            return ev.TaskRetried(**base, automatic=command is C.AUTO_RETRY)
        case C.UPDATE_ATTACHMENTS:
            return ev.TaskAttachmentsUpdated(
                **base, attachments_version=new.attachments_version, executor=new.executor
            )
        case C.ACK_ATTACHMENTS:
            return ev.TaskAttachmentsApplied(
                **base, applied_attachments_version=new.applied_attachments_version or 0
            )
    raise AssertionError(f"no event for {command}")  # pragma: no cover - the table and this match agree


def created(task: Task) -> ev.TaskCreated:
    """The event for a task's first save."""
    return ev.TaskCreated(
        at=task.create_date_time,
        task_id=task.id,
        version=task.version,
        from_status=None,
        to_status=task.lifecycle_status,
        desired_state=task.desired_state,
        class_name=task.class_name,
    )


def deleted(task: Task, *, at: int) -> ev.TaskDeleted:
    """The event for deleting a task; refused while a worker may still own it (cancel it first)."""
    if task.is_live:
        raise IllegalTransitionError(
            task.id, task.lifecycle_status, "delete", None, "a worker may still run it; cancel it first"
        )
    return ev.TaskDeleted(
        at=at,
        task_id=task.id,
        version=task.version + 1,
        from_status=task.lifecycle_status,
        to_status=task.lifecycle_status,
        desired_state=task.desired_state,
    )
