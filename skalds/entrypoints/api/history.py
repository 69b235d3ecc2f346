"""What the controller kept for the dashboard: ``/api/tasks/{id}/timeline`` (a task's lifecycle changes and
progress over time) and ``/api/system/dashboard/history`` (changes and statuses per minute).

Both read the history store, which the controller's history keeper fills from the event stream (MONITOR
and DISPATCHER modes); any controller process can serve them. docs/dashboard.md says what they draw.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import FromPath, QueryParameter

from skalds.domain.task_history import MINUTE_MS, MinuteCounts, ProgressPoint, TimelineEntry
from skalds.entrypoints.api.injection import Injected
from skalds.entrypoints.api.openapi import READ, error_responses
from skalds.entrypoints.api.replies import (
    DashboardHistoryReply,
    MinuteJson,
    ProgressPointJson,
    TaskTimelineReply,
    TimelineChangeJson,
)

Minutes = Annotated[int, QueryParameter(ge=1, description="how many minutes back, this one included")]


def change_json(entry: TimelineEntry) -> TimelineChangeJson:
    return {
        "at": entry.at,
        "version": entry.version,
        "change": entry.change,
        "lifecycleStatus": entry.status,
        "attempt": entry.attempt,
        "executor": entry.executor,
        "detail": entry.detail,
    }


def point_json(point: ProgressPoint) -> ProgressPointJson:
    return {"at": point.at, "done": point.done, "total": point.total}


def minute_json(counts: MinuteCounts) -> MinuteJson:
    by_status = counts.by_status
    return {
        "at": counts.minute,
        "created": counts.created,
        "finished": counts.finished,
        "failed": counts.failed,
        "cancelled": counts.cancelled,
        "byStatus": None if by_status is None else {status.value: n for status, n in by_status.items()},
    }


class TaskTimelineController(Controller):
    path = "/api/tasks/{task_id:str}/timeline"

    @get("/", responses=error_responses(*READ, 404))
    async def timeline(self, services: Injected, task_id: FromPath[str]) -> TaskTimelineReply:
        """Every lifecycle change the controller kept (the last ``history.changes_per_task``), with the
        attempt, node and error or reason, and the progress points (one per ``history.progress_every_ms``)."""
        kept = await services.task_history.timeline(task_id)
        return {
            "taskId": kept.task.id,
            "lifecycleStatus": kept.task.lifecycle_status,
            "attempt": kept.task.attempt,
            "changes": [change_json(entry) for entry in kept.timeline.changes],
            "progress": [point_json(point) for point in kept.timeline.progress],
        }


class DashboardHistoryController(Controller):
    path = "/api/system/dashboard/history"

    @get("/", responses=error_responses(*READ, 422))
    async def history(self, services: Injected, minutes: Minutes = 60) -> DashboardHistoryReply:
        """Per minute: tasks created, finished, failed and cancelled in it, and the tasks per status as
        sampled in it; at most ``history.minutes_kept`` minutes."""
        counts = await services.task_history.minutes(minutes)
        return {"minuteMs": MINUTE_MS, "items": [minute_json(minute) for minute in counts]}
