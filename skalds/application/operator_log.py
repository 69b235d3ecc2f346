"""What an operator reads at 3 a.m.: one line per lifecycle change that was written, and one per change in a
node's health.

Every line names the task (or node) and says what happened in words (``assigned``, ``requeued``, ``pause
requested``); the same facts go into the record as fields (``extra``), so the JSON log format carries
``task_id``, ``node``, ``attempt``, ``reason`` ... as keys of their own. Callers pass their own logger, so
a line says which component wrote the change; ``by`` says it in the line as well.

Standard library only; nothing here reads a clock or a store.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from skalds.domain import events as ev
from skalds.domain.task import Task

MAX_ERROR_CHARS = 200
"""A failure's error is stored in full on the task; the log line gets its first line, cut to this."""

CHANGE_NAMES: Mapping[type[ev.TaskEvent], str] = MappingProxyType(
    {
        ev.TaskCreated: "created",
        ev.TaskAssigned: "assigned",
        ev.TaskStarted: "started",
        ev.TaskPauseRequested: "pause requested",
        ev.TaskPaused: "paused",
        ev.TaskResumeRequested: "resume requested",
        ev.TaskResumed: "resumed",
        ev.TaskCancelRequested: "cancel requested",
        ev.TaskCancelled: "cancelled",
        ev.TaskFinished: "finished",
        ev.TaskFailed: "failed",
        ev.TaskRequeued: "requeued",
        ev.TaskRetried: "retried",
        ev.TaskAttachmentsUpdated: "attachments updated",
        ev.TaskAttachmentsApplied: "attachments applied",
        ev.TaskDeleted: "deleted",
    }
)
"""How each event reads in a log line; an event not listed reads as its class name in words."""


def change_name(event: ev.TaskEvent) -> str:
    """``TaskPauseRequested`` -> ``"pause requested"``; an automatic retry is ``"retried automatically"``."""
    if isinstance(event, ev.TaskRetried) and event.automatic:
        return "retried automatically"
    known = CHANGE_NAMES.get(type(event))
    if known is not None:
        return known
    words = re.findall(r"[A-Z][a-z0-9]*", type(event).__name__.removeprefix("Task"))
    return " ".join(word.lower() for word in words) or type(event).__name__


def first_line(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """The first non-blank line of ``text``, cut to ``limit`` characters (ending in ``…`` when cut)."""
    line = next((candidate.strip() for candidate in text.splitlines() if candidate.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def log_task_change(logger: logging.Logger, task: Task, event: ev.TaskEvent, *, by: str) -> None:
    """One INFO line for a lifecycle change that was just stored.

    ``task`` is the task after the change and ``event`` the event ``lifecycle.apply`` returned with it;
    ``by`` is who wrote it: ``"api"``, ``"monitor"``, ``"dispatcher"`` or ``"node"``.
    """
    if not logger.isEnabledFor(logging.INFO):
        return
    change = change_name(event)
    node = _node(task, event)
    fields: dict[str, Any] = {
        "task_id": event.task_id,
        "change": change,
        "from_status": event.from_status.value if event.from_status is not None else None,
        "to_status": event.to_status.value,
        "desired_state": event.desired_state.value,
        "class_name": task.class_name,
        "node": node,
        "attempt": task.attempt,
        "version": event.version,
        "by": by,
    }
    details = _details(task, event, fields)
    statuses = (
        event.to_status.value
        if event.from_status in (None, event.to_status)
        else f"{event.from_status.value} -> {event.to_status.value}"
    )
    where = f", node {node}" if node else ""
    said = "".join(f", {detail}" for detail in details)
    logger.info(
        f"task {event.task_id} {change} ({statuses}): class {task.class_name}{where}, "
        f"attempt {task.attempt}{said}; by {by}",
        extra=fields,
    )


def log_task_changes(
    logger: logging.Logger, changes: Iterable[tuple[Task, ev.TaskEvent]], *, by: str
) -> None:
    """``log_task_change`` for each ``(task, event)`` of a batch, in order."""
    for task, event in changes:
        log_task_change(logger, task, event, by=by)


def log_node_event(logger: logging.Logger, event: ev.NodeEvent) -> None:
    """A node's health changed: INFO when it is online, WARNING when it went suspect or offline.

    ``NodeWentOffline.silent_for_ms`` -1 means the node removed itself (it left); other node events
    (heartbeats seen, worker changes reported) are not logged here.
    """
    fields: dict[str, Any] = {"node": event.node_id}
    match event:
        case ev.NodeCameOnline():
            logger.info(f"node {event.node_id} online", extra={**fields, "change": "online"})
        case ev.NodeWentSuspect():
            logger.warning(
                f"node {event.node_id} suspect: silent for {event.silent_for_ms} ms",
                extra={**fields, "change": "suspect", "silent_for_ms": event.silent_for_ms},
            )
        case ev.NodeWentOffline() if event.silent_for_ms < 0:
            logger.warning(
                f"node {event.node_id} offline: it left (removed itself)",
                extra={**fields, "change": "offline", "silent_for_ms": None, "left": True},
            )
        case ev.NodeWentOffline():
            logger.warning(
                f"node {event.node_id} offline: silent for {event.silent_for_ms} ms",
                extra={**fields, "change": "offline", "silent_for_ms": event.silent_for_ms, "left": False},
            )


def _node(task: Task, event: ev.TaskEvent) -> str | None:
    """The node the change concerns: the one that lost a re-queued task, else the one that runs it."""
    if isinstance(event, ev.TaskRequeued):
        return event.previous_executor
    executor = getattr(event, "executor", None)
    return executor if isinstance(executor, str) and executor else task.executor


def _details(task: Task, event: ev.TaskEvent, fields: dict[str, Any]) -> list[str]:
    """What else the event says, as phrases for the line; the same facts are added to ``fields``."""
    match event:
        case ev.TaskRequeued() | ev.TaskCancelled() if event.reason:
            fields["reason"] = event.reason
            return [f"reason: {event.reason}"]
        case ev.TaskFailed():
            error = first_line(event.error) if event.error else None
            fields.update(error=error, attempts_left=event.attempts_left, retry_at=task.retry_at)
            if event.attempts_left == 0:
                retry = "no attempts left"
            elif task.retry_at is None:
                retry = f"{_attempts(event.attempts_left)} left, no automatic retry"
            else:
                retry = (
                    f"{_attempts(event.attempts_left)} left, retry in {max(0, task.retry_at - event.at)} ms"
                )
            return [retry, *([f"error: {error}"] if error else [])]
        case ev.TaskAttachmentsUpdated():
            fields["attachments_version"] = event.attachments_version
            return [f"attachments version {event.attachments_version}"]
        case ev.TaskAttachmentsApplied():
            fields["attachments_version"] = event.applied_attachments_version
            return [f"attachments version {event.applied_attachments_version}"]
    return []


def _attempts(count: int) -> str:
    return f"{count} attempt{'s' if count != 1 else ''}"
