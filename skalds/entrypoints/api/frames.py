"""Domain events as SSE frames: ``{"type", "taskId"|"skaldId", "data", "timestamp"}``.

Two kinds of frame share each stream. Upstream's kinds (``task_heartbeat``, ``task_error``,
``task_exception``, ``skald_status``, ``skald_heartbeat``) go out as unnamed SSE messages with upstream's
meaning in every field upstream's dashboard reads: ``data.heartbeat`` is upstream's code (0-199 alive, 200
finished, -1 failed, -2 cancelled) and ``data.lifecycleStatus`` the status after the change. Upstream's page
takes a task's status from the newest such frame and keeps it over what REST says, so every lifecycle change
is also sent as a ``task_heartbeat`` (marked with ``data.change``). Our own kinds (``task_status``,
``task_verdict``, ``task_pause_not_honoured``, ``alert_raised``, ``alert_repeated``, ``alert_resolved``,
``alert_acknowledged``, ``silence_created``, ``silence_expired``, ``frames_dropped``) go out as SSE
messages named ``skalds`` (``event: skalds``): a browser hands those only to listeners of that name, so
upstream's page (``onmessage``) never sees a frame it would misread. docs/upstream.md has the table.

A batch event (``TaskHeartbeatsObserved``) becomes one frame per task, exactly as its per-task events would,
so the SSE contract does not know batches exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from skalds.domain import events as ev
from skalds.domain.upstream_codes import code_for_status

OWN_EVENT_NAME = "skalds"


class Stream(StrEnum):
    TASKS = "tasks"
    SKALDS = "skalds"


@dataclass(frozen=True, slots=True)
class Framed:
    """One frame, the stream it belongs to, and whether it is one of our kinds (sent as ``event: skalds``)."""

    stream: Stream
    frame: dict[str, Any]
    own: bool = False


def frames_for(event: ev.DomainEvent) -> list[Framed]:
    """Each frame an event becomes, in order; none for events live views do not show."""
    if isinstance(event, ev.TaskHeartbeatsObserved):
        return [framed for single in event.each() for framed in frames_for(single)]
    return _frames(event)


def _frames(event: ev.DomainEvent) -> list[Framed]:
    if isinstance(event, ev.TaskEvent):
        return _lifecycle_frames(event)
    framed = _frame(event)
    return [] if framed is None else [framed]


def _lifecycle_frames(event: ev.TaskEvent) -> list[Framed]:
    """A lifecycle change: upstream's ``task_exception`` when it is a failure, upstream's ``task_heartbeat``
    with the new status and its code, and our ``task_status`` with the whole change."""
    status = event.to_status.value
    out: list[Framed] = []
    if isinstance(event, ev.TaskFailed):
        data: dict[str, Any] = {
            "exception": event.error,
            "lifecycleStatus": status,
            "attemptsLeft": event.attempts_left,
        }
        out.append(Framed(Stream.TASKS, _task("task_exception", event.task_id, data, event.at)))
    change = type(event).__name__
    if not isinstance(event, ev.TaskDeleted):  # upstream's page would keep a deleted task on show
        beat = {"heartbeat": code_for_status(event.to_status), "lifecycleStatus": status, "change": change}
        out.append(Framed(Stream.TASKS, _task("task_heartbeat", event.task_id, beat, event.at)))
    data = {
        "lifecycleStatus": status,
        "previousStatus": event.from_status.value if event.from_status else None,
        "desiredState": event.desired_state.value,
        "version": event.version,
        "change": change,
    }
    executor = getattr(event, "executor", None)
    if executor is not None:
        data["executor"] = executor
    if isinstance(event, ev.TaskFailed):
        data |= {"exception": event.error, "attemptsLeft": event.attempts_left}
    out.append(Framed(Stream.TASKS, _task("task_status", event.task_id, data, event.at), own=True))
    return out


def _frame(event: ev.DomainEvent) -> Framed | None:
    match event:
        case ev.TaskHeartbeatObserved():
            data: dict[str, Any] = {
                "heartbeat": code_for_status(event.status, event.sequence),
                "lifecycleStatus": event.status.value,
                "progress": event.progress,
                "verdict": event.verdict,
            }
            if event.progress_total is not None or event.progress_unit is not None:
                data |= {"progressTotal": event.progress_total, "progressUnit": event.progress_unit}
            return Framed(Stream.TASKS, _task("task_heartbeat", event.task_id, data, event.at))
        case ev.TaskErrorReported():
            data = {"error": event.error, "lifecycleStatus": event.status.value}
            return Framed(Stream.TASKS, _task("task_error", event.task_id, data, event.at))
        case ev.TaskVerdictChanged():
            data = {"verdict": event.verdict, "previous": event.previous}
            return Framed(Stream.TASKS, _task("task_verdict", event.task_id, data, event.at), own=True)
        case ev.TaskPauseNotHonoured():
            data = {"requestedForMs": event.requested_for_ms}
            frame = _task("task_pause_not_honoured", event.task_id, data, event.at)
            return Framed(Stream.TASKS, frame, own=True)
        case ev.NodeHeartbeatObserved():
            data = {
                "heartbeat": 0,
                "status": _online(event.health),
                "health": event.health,
                "tasks": list(event.tasks),
            }
            if event.cpu_percent is not None or event.memory_percent is not None:
                data |= {"cpuPercent": event.cpu_percent, "memoryPercent": event.memory_percent}
            return Framed(Stream.SKALDS, _skald("skald_heartbeat", event.node_id, data, event.at))
        case ev.NodeCameOnline():
            data = {"status": "online", "health": "online"}
            return Framed(Stream.SKALDS, _skald("skald_status", event.node_id, data, event.at))
        case ev.NodeWentSuspect():
            data = {"status": "offline", "health": "suspect", "silentForMs": event.silent_for_ms}
            return Framed(Stream.SKALDS, _skald("skald_status", event.node_id, data, event.at))
        case ev.NodeWentOffline():
            data = {"status": "offline", "health": "offline", "silentForMs": event.silent_for_ms}
            return Framed(Stream.SKALDS, _skald("skald_status", event.node_id, data, event.at))
        case ev.AlertRaised():
            data = {
                "alertId": event.alert_id,
                "rule": event.rule,
                "severity": event.severity,
                "message": event.message,
                "silencedBy": event.silenced_by,
            }
            return _own("alert_raised", event.subject, data, event.at)
        case ev.AlertResolved():
            data = {"alertId": event.alert_id, "rule": event.rule, "raisedAt": event.raised_at}
            return _own("alert_resolved", event.subject, data, event.at)
        case ev.AlertRepeated():
            data = {
                "alertId": event.alert_id,
                "rule": event.rule,
                "severity": event.severity,
                "message": event.message,
                "count": event.count,
            }
            return _own("alert_repeated", event.subject, data, event.at)
        case ev.AlertAcknowledged():
            data = {"alertId": event.alert_id, "rule": event.rule, "by": event.by}
            return _own("alert_acknowledged", event.subject, data, event.at)
        case ev.SilenceCreated():
            data = {
                "silenceId": event.silence_id,
                "rule": event.rule,
                "endsAt": event.ends_at,
                "createdBy": event.created_by,
                "comment": event.comment,
            }
            return _own("silence_created", event.subject, data, event.at)
        case ev.SilenceExpired():
            data = {"silenceId": event.silence_id, "rule": event.rule, "by": event.by}
            return _own("silence_expired", event.subject, data, event.at)
    return None


def _own(kind: str, subject: str, data: dict[str, Any], at: int) -> Framed:
    """Alert and silence frames: about a subject (node, task, ``tasks`` or ``*``), ours only."""
    return Framed(Stream.TASKS, {"type": kind, "subject": subject, "data": data, "timestamp": at}, own=True)


def _online(health: str) -> str:
    return "online" if health == "online" else "offline"


def _task(kind: str, task_id: str, data: dict[str, Any], at: int) -> dict[str, Any]:
    return {"type": kind, "taskId": task_id, "data": data, "timestamp": at}


def _skald(kind: str, node_id: str, data: dict[str, Any], at: int) -> dict[str, Any]:
    return {"type": kind, "skaldId": node_id, "data": data, "timestamp": at}
