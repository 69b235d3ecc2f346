"""Wire shapes of the HTTP API: upstream's camelCase JSON (reference §2.6, §13, §15) plus the new fields.

Requests are validated here with pydantic, so a bad field is named in the 422; responses are plain dicts
built from domain objects, so what goes out is exactly what the dashboard contract says.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

from skalds.application.queries import NodeView, Summary
from skalds.application.tasks import TaskDraft
from skalds.domain.alerts import Alert
from skalds.domain.heartbeat import HeartbeatReport
from skalds.domain.nodes import NodeHealth, NodeMode
from skalds.domain.task import MAX_PRIORITY, MIN_PRIORITY, TaskStatus
from skalds.domain.upstream_codes import to_upstream_code
from skalds.entrypoints.api.openapi import body
from skalds.entrypoints.api.replies import AlertJson, HeartbeatJson, SkaldJson, SummaryReply

INT64_MAX = 2**63 - 1  # what BSON and most stores can hold
MAX_ATTEMPTS = 1_000_000


class _Request(BaseModel):
    """The wire's camelCase names only, nothing else (``extra="forbid"``): what /schema says a body is."""

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", frozen=True)


class CreateTaskRequest(_Request):
    class_name: str = Field(min_length=1, max_length=200)
    id: str | None = None
    source: str = "api"
    name: str | None = None
    description: str | None = None
    priority: int = Field(default=0, ge=MIN_PRIORITY, le=MAX_PRIORITY, strict=True)  # true is no priority
    attachments: dict[str, Any] = Field(default_factory=dict)
    deadline_date_time: int | None = Field(default=None, ge=0, le=INT64_MAX, strict=True)  # epoch ms
    dependencies: list[str] = Field(default_factory=list)
    required_labels: dict[str, str] = Field(default_factory=dict)
    max_attempts: int | None = Field(default=None, ge=1, le=MAX_ATTEMPTS, strict=True)

    def draft(self) -> TaskDraft:
        """What the task service takes, for a single create and for each item of a batch alike."""
        return TaskDraft(
            class_name=self.class_name,
            id=self.id,
            source=self.source,
            name=self.name,
            description=self.description,
            priority=self.priority,
            attachments=self.attachments,
            deadline_date_time=self.deadline_date_time,
            dependencies=tuple(self.dependencies),
            required_labels=self.required_labels,
            max_attempts=self.max_attempts,
        )


SETTABLE_STATUSES = (TaskStatus.CREATED, TaskStatus.CANCELLED)
"""What upstream's PUT .../status takes: Cancelled cancels, Created re-queues (the task service says so)."""


class UpdateStatusRequest(_Request):
    # the schema lists the two values the service takes; any other status is its 422, which names them
    lifecycle_status: Annotated[
        TaskStatus, WithJsonSchema({"type": "string", "enum": [s.value for s in SETTABLE_STATUSES]})
    ]


class UpdateAttachmentsRequest(_Request):
    attachments: dict[str, Any]
    expected_version: int | None = Field(default=None, ge=1, le=INT64_MAX, strict=True)


CreateBody: TypeAlias = Annotated[
    dict[str, Any],
    body(CreateTaskRequest, "A task to create; only className is required (docs/api.md: limits, id rules)"),
]
StatusBody: TypeAlias = Annotated[
    dict[str, Any], body(UpdateStatusRequest, "Cancelled cancels the task; Created re-queues a finished one")
]
AttachmentsBody: TypeAlias = Annotated[
    dict[str, Any],
    body(UpdateAttachmentsRequest, "PUT: the whole new attachments; PATCH: the keys to change"),
]
"""The bodies as the handlers read them (plain JSON, validated by the model), described by the model."""


def heartbeat_json(report: HeartbeatReport) -> HeartbeatJson:
    return {
        "receivedAt": report.received_at,
        "sequence": report.sequence,
        "heartbeat": to_upstream_code(report),
        "progress": report.progress,
        "progressChangedAt": report.progress_changed_at,
        "outcome": report.outcome.value if report.outcome else None,
        "error": report.error,
        "paused": report.paused,
        "appliedAttachmentsVersion": report.applied_attachments_version,
        "attempt": report.attempt,
        "progressTotal": report.progress_total,
        "progressUnit": report.progress_unit,
        "progressMessage": report.progress_message,
        "cpuPercent": report.cpu_percent,
        "memoryBytes": report.memory_bytes,
    }


def skald_json(view: NodeView) -> SkaldJson:
    """Upstream's SkaldResponse: type node or edge, status online or offline, lastHeartbeat a string."""
    node = view.node
    online = view.health is NodeHealth.ONLINE
    return {
        "id": node.id,
        "type": "node" if node.mode is NodeMode.NODE else "edge",
        "mode": node.mode.value,
        "status": "online" if online else "offline",
        "health": view.health.value,
        "lastHeartbeat": str(node.last_heartbeat_at or node.registered_at),
        "supportedTasks": sorted(node.supported_classes),
        "currentTasks": sorted(t.id for t in view.tasks) or sorted(node.current_tasks),
        "heartbeat": 0,
        "taskCount": len(view.tasks) or len(node.current_tasks),
        "capacity": node.capacity,
        "labels": dict(node.labels),
        "cpuPercent": node.cpu_percent,
        "memoryPercent": node.memory_percent,
        "draining": node.draining,
    }


def summary_json(summary: Summary) -> SummaryReply:
    """Upstream's DashboardSummary (the 10 ints), plus pausedTasks and createdTasks."""
    counts = summary.by_status
    return {
        "totalSkalds": summary.total_nodes,
        "onlineSkalds": summary.online_nodes,
        "totalTasks": summary.total_tasks,
        "runningTasks": counts[TaskStatus.RUNNING],
        "finishedTasks": counts[TaskStatus.FINISHED],
        "failedTasks": counts[TaskStatus.FAILED],
        "assigningTasks": counts[TaskStatus.ASSIGNING],
        "cancelledTasks": counts[TaskStatus.CANCELLED],
        "pausedTasks": counts[TaskStatus.PAUSED],
        "createdTasks": counts[TaskStatus.CREATED],
        "nodeSkalds": summary.node_nodes,
        "edgeSkalds": summary.edge_nodes,
    }


def alert_json(alert: Alert) -> AlertJson:
    return {
        "id": alert.id,
        "rule": alert.rule.value,
        "severity": alert.severity.value,
        "subject": alert.subject,
        "message": alert.message,
        "status": "firing" if alert.active else "resolved",
        "raisedAt": alert.raised_at,
        "resolvedAt": alert.resolved_at,
        "lastSeenAt": alert.last_seen_at or alert.raised_at,
        "count": alert.count,
        "acknowledgedBy": alert.acknowledged_by,
        "acknowledgedAt": alert.acknowledged_at,
        "silencedBy": alert.silenced_by,
        "active": alert.active,
    }
