"""What the monitor should do about one live task, given what its heartbeats and its node say.

Pure decisions, kept apart from the monitor's I/O so each rule is a one-line test. The rule that matters
most: a task is re-queued or failed for silence only when its worker is known to be gone (dead verdict or
offline node, whose runtime stops its own workers when it loses the control plane), never merely suspect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from skalds.domain.heartbeat import HeartbeatReport, Verdict
from skalds.domain.lifecycle import TaskCommand
from skalds.domain.nodes import NodeHealth
from skalds.domain.retry import RetryPolicy, retry_at
from skalds.domain.task import DesiredState, Task, TaskStatus


class OfflineNodePolicy(StrEnum):
    REQUEUE = "requeue"
    FAIL = "fail"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconcileRules:
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    offline_node_policy: OfflineNodePolicy = OfflineNodePolicy.REQUEUE
    assign_timeout_ms: int = 60_000


@dataclass(frozen=True, slots=True)
class Step:
    command: TaskCommand
    args: dict[str, Any]


ALIVE_VERDICTS = frozenset({Verdict.ALIVE, Verdict.PROGRESSING, Verdict.STALLED, Verdict.SUSPECT})


def decide(
    task: Task,
    *,
    verdict: Verdict,
    report: HeartbeatReport | None,
    executor_health: NodeHealth,
    now: int,
    rules: ReconcileRules,
) -> list[Step]:
    """The lifecycle commands that bring ``task`` in line with what was observed, in order."""
    if verdict is Verdict.FINISHED:
        return [Step(TaskCommand.FINISH, {})]
    if verdict is Verdict.FAILED:
        error = report.error if report and report.error else "the worker failed without an error message"
        return [Step(TaskCommand.FAIL, {"error": error, "retry_at": retry_at(task, now, rules.retry)})]
    if verdict is Verdict.CANCELLED:
        return [Step(TaskCommand.CONFIRM_CANCEL, {"reason": "the worker stopped on cancel"})]
    if verdict is Verdict.RELEASED:  # the worker is gone, its node alive: hand the task on at once
        why = report.error if report and report.error else f"node {task.executor} released it"
        return [_worker_gone(task, why, now, rules, node_lost=True)]
    if executor_health is NodeHealth.OFFLINE:
        return [_worker_gone(task, f"node {task.executor} went offline", now, rules, node_lost=True)]
    if task.lifecycle_status is TaskStatus.ASSIGNING and report is None:
        assigned_at = task.assigned_at if task.assigned_at is not None else task.update_date_time
        if now - assigned_at > rules.assign_timeout_ms:
            reason = f"node {task.executor} did not start it within {rules.assign_timeout_ms} ms"
            return [_worker_gone(task, reason, now, rules, node_lost=True)]
        return []
    if verdict is Verdict.DEAD and executor_health is NodeHealth.SUSPECT:
        return []  # its node is silent too (a node vouches for its workers): wait for the node's verdict
    if verdict is Verdict.DEAD:
        return [_worker_gone(task, _silence_reason(task, report, now), now, rules, node_lost=False)]
    if report is None or verdict not in ALIVE_VERDICTS:
        return []
    return _follow_worker(task, report)


def _follow_worker(task: Task, report: HeartbeatReport) -> list[Step]:
    steps: list[Step] = []
    status = task.lifecycle_status
    if status is TaskStatus.ASSIGNING:
        steps.append(Step(TaskCommand.START, {}))
        status = TaskStatus.RUNNING
    if status is TaskStatus.RUNNING and report.paused and task.desired_state is DesiredState.PAUSE:
        steps.append(Step(TaskCommand.CONFIRM_PAUSE, {}))
    elif status is TaskStatus.PAUSED and not report.paused and task.desired_state is DesiredState.RUN:
        steps.append(Step(TaskCommand.CONFIRM_RESUME, {}))
    applied = report.applied_attachments_version
    if applied is not None and (task.applied_attachments_version or 0) < applied <= task.attachments_version:
        steps.append(Step(TaskCommand.ACK_ATTACHMENTS, {"attachments_version": applied}))
    return steps


def _worker_gone(task: Task, why: str, now: int, rules: ReconcileRules, *, node_lost: bool) -> Step:
    """The old worker cannot run any more: settle a pending cancel, else re-queue or fail."""
    if task.desired_state is DesiredState.CANCEL:
        return Step(TaskCommand.CONFIRM_CANCEL, {"reason": why})
    requeue = node_lost and rules.offline_node_policy is OfflineNodePolicy.REQUEUE
    if requeue and task.attempts_left > 0:
        return Step(TaskCommand.REQUEUE, {"reason": why})
    return Step(TaskCommand.FAIL, {"error": why, "retry_at": retry_at(task, now, rules.retry)})


def _silence_reason(task: Task, report: HeartbeatReport | None, now: int) -> str:
    if report is None:
        return f"the worker on {task.executor} never sent a heartbeat"
    return f"the worker on {task.executor} stopped heartbeating {now - report.received_at} ms ago"
