"""Domain events as upstream's SSE frames: ``{"type", "taskId"|"skaldId", "data", "timestamp"}``.

Upstream had ``task_heartbeat``, ``task_error``, ``task_exception``, ``skald_status`` and ``skald_heartbeat``
and never sent a status-only change; we add ``task_status`` (every lifecycle change) and ``alert`` frames.
The dashboard reads ``data.lifecycleStatus``, ``data.heartbeat``, ``data.error``, ``data.exception``,
``data.status`` and ``data.tasks``; they are all here. A batch event (``TaskHeartbeatsObserved``) becomes one
frame per task, exactly as its per-task events would, so the SSE contract does not know batches exist.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from skalds.domain import events as ev


class Stream(StrEnum):
    TASKS = "tasks"
    SKALDS = "skalds"


Framed = tuple[Stream, dict[str, Any]]


def frames_for(event: ev.DomainEvent) -> list[Framed]:
    """Each frame an event becomes, with its stream, in order; none for events live views do not show."""
    if isinstance(event, ev.TaskHeartbeatsObserved):
        return [framed for single in event.each() for framed in frames_for(single)]
    framed = _frame(event)
    return [] if framed is None else [framed]


def _frame(event: ev.DomainEvent) -> Framed | None:
    match event:
        case ev.TaskHeartbeatObserved():
            data: dict[str, Any] = {
                "heartbeat": event.sequence % 200,
                "lifecycleStatus": event.status.value,
                "progress": event.progress,
                "verdict": event.verdict,
            }
            return Stream.TASKS, _task("task_heartbeat", event.task_id, data, event.at)
        case ev.TaskErrorReported():
            data = {"error": event.error, "lifecycleStatus": event.status.value}
            return Stream.TASKS, _task("task_error", event.task_id, data, event.at)
        case ev.TaskFailed():
            data = {
                "exception": event.error,
                "lifecycleStatus": event.to_status.value,
                "attemptsLeft": event.attempts_left,
            }
            return Stream.TASKS, _task("task_exception", event.task_id, data, event.at)
        case ev.TaskEvent():
            data = {
                "lifecycleStatus": event.to_status.value,
                "previousStatus": event.from_status.value if event.from_status else None,
                "desiredState": event.desired_state.value,
                "version": event.version,
                "change": type(event).__name__,
            }
            executor = getattr(event, "executor", None)
            if executor is not None:
                data["executor"] = executor
            return Stream.TASKS, _task("task_status", event.task_id, data, event.at)
        case ev.TaskVerdictChanged():
            data = {"verdict": event.verdict, "previous": event.previous}
            return Stream.TASKS, _task("task_verdict", event.task_id, data, event.at)
        case ev.TaskPauseNotHonoured():
            data = {"requestedForMs": event.requested_for_ms}
            return Stream.TASKS, _task("task_pause_not_honoured", event.task_id, data, event.at)
        case ev.NodeHeartbeatObserved():
            data = {
                "heartbeat": 0,
                "status": _online(event.health),
                "health": event.health,
                "tasks": list(event.tasks),
            }
            return Stream.SKALDS, _skald("skald_heartbeat", event.node_id, data, event.at)
        case ev.NodeCameOnline():
            return Stream.SKALDS, _skald(
                "skald_status", event.node_id, {"status": "online", "health": "online"}, event.at
            )
        case ev.NodeWentSuspect():
            data = {"status": "offline", "health": "suspect", "silentForMs": event.silent_for_ms}
            return Stream.SKALDS, _skald("skald_status", event.node_id, data, event.at)
        case ev.NodeWentOffline():
            data = {"status": "offline", "health": "offline", "silentForMs": event.silent_for_ms}
            return Stream.SKALDS, _skald("skald_status", event.node_id, data, event.at)
        case ev.AlertRaised():
            data = {
                "alertId": event.alert_id,
                "rule": event.rule,
                "severity": event.severity,
                "message": event.message,
            }
            return Stream.TASKS, {
                "type": "alert_raised",
                "subject": event.subject,
                "data": data,
                "timestamp": event.at,
            }
        case ev.AlertResolved():
            data = {"alertId": event.alert_id, "rule": event.rule}
            return Stream.TASKS, {
                "type": "alert_resolved",
                "subject": event.subject,
                "data": data,
                "timestamp": event.at,
            }
    return None


def _online(health: str) -> str:
    return "online" if health == "online" else "offline"


def _task(kind: str, task_id: str, data: dict[str, Any], at: int) -> dict[str, Any]:
    return {"type": kind, "taskId": task_id, "data": data, "timestamp": at}


def _skald(kind: str, node_id: str, data: dict[str, Any], at: int) -> dict[str, Any]:
    return {"type": kind, "skaldId": node_id, "data": data, "timestamp": at}
