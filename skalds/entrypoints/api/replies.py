"""The JSON answers that are not a task, as types: the handlers return them and /schema describes them.

TypedDicts rather than models: the builders stay plain dicts (nothing is copied or validated on the way
out), mypy checks every key a builder writes, and Litestar turns each into the response schema, so a
client generated from ``/schema`` reads what is sent. Keys are the wire's camelCase (upstream's names).
"""

# no ``from __future__ import annotations``: TypedDict reads NotRequired only from real annotations
from typing import Any, Literal, NotRequired, TypedDict

from skalds.domain.task import DesiredState, TaskStatus


class HeartbeatJson(TypedDict):
    receivedAt: int
    sequence: int
    # upstream's code: 0-199 alive, 200 finished, -1 failed, -2 cancelled
    heartbeat: int
    progress: float | None
    progressChangedAt: int | None
    outcome: str | None
    error: str | None
    paused: bool
    appliedAttachmentsVersion: int | None
    attempt: int | None
    progressTotal: float | None
    progressUnit: str | None
    progressMessage: str | None
    # the worker process's CPU (100 = one CPU) and resident memory, as its node measured them
    cpuPercent: float | None
    memoryBytes: int | None


class TaskHeartbeatReply(TypedDict):
    taskId: str
    heartbeat: int
    status: TaskStatus
    isAlive: bool
    isAssigning: bool
    error: str | None
    exception: str | None
    lastUpdate: int | None
    progress: float | None
    heartbeatHistory: list[HeartbeatJson]


class AttachmentsData(TypedDict):
    taskId: str
    attachments: dict[str, Any]
    attachmentsVersion: int


class AttachmentsReply(TypedDict):
    success: bool
    message: str
    data: AttachmentsData


class StatusData(TypedDict):
    taskId: str
    # the status asked for (upstream's dashboard shows it)
    status: TaskStatus
    # the status now: a running task stays Running until its worker stopped
    lifecycleStatus: TaskStatus
    desiredState: DesiredState


class StatusReply(TypedDict):
    success: bool
    message: str
    data: StatusData


class DeletedData(TypedDict):
    taskId: str
    # after a cancel (no ``purge``): the task's status now
    status: NotRequired[TaskStatus]


class DeletedReply(TypedDict):
    success: bool
    message: str
    data: DeletedData


class TaskLogLineJson(TypedDict):
    seq: int  # the line's number within its attempt, from 1; a gap is lines the worker dropped
    at: int
    level: str
    stream: Literal["log", "stdout", "stderr"]
    logger: str
    message: str


class TaskLogsReply(TypedDict):
    """One page of a task attempt's output. ``next`` is the ``since`` of the following read."""

    taskId: str
    attempt: int
    attempts: list[int]
    lifecycleStatus: TaskStatus
    lines: list[TaskLogLineJson]
    next: int
    lastSeq: int


class TimelineChangeJson(TypedDict):
    at: int
    version: int
    change: str  # the event: TaskCreated, TaskAssigned, TaskFailed, TaskRequeued, ...
    lifecycleStatus: TaskStatus  # the status after it
    attempt: int | None
    executor: str | None  # the node (for a re-queue: the node the task left)
    detail: str | None  # the error, the reason


class ProgressPointJson(TypedDict):
    at: int
    done: float
    total: float | None


class TaskTimelineReply(TypedDict):
    """What the controller kept of a task: every lifecycle change and its progress over time, oldest first."""

    taskId: str
    lifecycleStatus: TaskStatus
    attempt: int
    changes: list[TimelineChangeJson]
    progress: list[ProgressPointJson]


class MinuteJson(TypedDict):
    at: int  # the minute's first epoch millisecond
    created: int
    finished: int
    failed: int
    cancelled: int
    byStatus: dict[str, int] | None  # tasks per status as sampled in that minute; null if none was


class DashboardHistoryReply(TypedDict):
    """The last ``minutes`` minutes, this one last."""

    minuteMs: int
    items: list[MinuteJson]


class CheckpointReply(TypedDict):
    """A task's latest checkpoint; every field but taskId is null when none was saved (or it was cleared)."""

    taskId: str
    checkpoint: Any
    attempt: int | None
    sequence: int | None
    savedAt: int | None
    sizeBytes: int | None


class SkaldJson(TypedDict):
    """Upstream's SkaldResponse, plus mode, health, capacity, labels and draining."""

    id: str
    type: Literal["node", "edge"]
    mode: str
    status: Literal["online", "offline"]
    health: str
    lastHeartbeat: str
    supportedTasks: list[str]
    currentTasks: list[str]
    heartbeat: int
    taskCount: int
    capacity: int | None
    labels: dict[str, str]
    cpuPercent: float | None
    memoryPercent: float | None
    draining: bool


class SkaldPage(TypedDict):
    items: list[SkaldJson]
    total: int


class SkaldTask(TypedDict):
    id: str
    className: str
    assignedAt: int | None
    lifecycleStatus: TaskStatus


class SkaldTasksReply(TypedDict):
    skaldId: str
    tasks: list[SkaldTask]
    totalTasks: int


class SkaldTaskName(TypedDict):
    id: str
    className: str


class SkaldStatusDetails(TypedDict):
    canAcceptTasks: bool
    lastHeartbeatAge: int
    tasks: list[SkaldTaskName]


class SkaldStatusReply(TypedDict):
    skaldId: str
    status: Literal["online", "offline"]
    type: Literal["node", "edge"]
    lastUpdate: int | None
    taskCount: int
    isOnline: bool
    details: SkaldStatusDetails


class HealthReply(TypedDict):
    """200 with every dependency healthy; 503 naming the failing ones in ``details``."""

    status: Literal["healthy", "unhealthy"]
    timestamp: int
    services: dict[str, Literal["healthy", "unhealthy"]]
    details: dict[str, str]


class ComponentJson(TypedDict):
    name: str
    running: bool
    details: dict[str, float | str | None]


class SystemStatusReply(TypedDict):
    mode: str
    version: str
    backends: dict[str, str]
    components: list[ComponentJson]


class SummaryReply(TypedDict):
    """Upstream's DashboardSummary (the 10 ints), plus pausedTasks and createdTasks."""

    totalSkalds: int
    onlineSkalds: int
    totalTasks: int
    runningTasks: int
    finishedTasks: int
    failedTasks: int
    assigningTasks: int
    cancelledTasks: int
    pausedTasks: int
    createdTasks: int
    nodeSkalds: int
    edgeSkalds: int


class SkaldCounts(TypedDict):
    total: int
    online: int
    offline: int
    nodes: int
    edges: int


class Performance(TypedDict):
    averageTasksPerSkald: float
    taskDistribution: dict[str, int]


class MetricsReply(TypedDict):
    timestamp: int
    skalds: SkaldCounts
    # a count per status (lower case) and ``total``
    tasks: dict[str, int]
    performance: Performance


class ActivityReply(TypedDict):
    # the newest frames of /api/events, oldest first (docs/api.md lists their types)
    items: list[dict[str, Any]]


class AlertJson(TypedDict):
    id: str
    rule: str
    severity: str
    subject: str
    message: str  # the newest firing's text
    status: Literal["firing", "resolved"]
    raisedAt: int  # started firing (Alertmanager's startsAt)
    resolvedAt: int | None  # the condition cleared (endsAt); None while firing
    lastSeenAt: int  # the newest firing grouped into it
    count: int  # firings grouped into it
    acknowledgedBy: str | None
    acknowledgedAt: int | None
    silencedBy: str | None  # the silence muting its notifications now
    active: bool


class AlertPage(TypedDict):
    items: list[AlertJson]
    total: int


class SilenceJson(TypedDict):
    id: str
    rule: str  # an alert rule or "*"
    subject: str  # a node id, task id, "tasks" or "*"
    status: Literal["active", "expired"]
    startsAt: int
    endsAt: int
    createdBy: str
    comment: str
    expiredBy: str | None  # who ended it early; None if it ran out or still runs


class SilencePage(TypedDict):
    items: list[SilenceJson]
    total: int


class EventFeedStatus(TypedDict):
    connectedClients: int
    timestamp: int
    status: Literal["active"]
    lastEventId: int
