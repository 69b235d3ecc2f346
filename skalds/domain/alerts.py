"""Alerts: what an operator must look at, how bad it is, and whether it is still true."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertRule(StrEnum):
    NODE_OFFLINE = "node_offline"
    TASK_FAILED = "task_failed"
    FAILURE_RATE = "failure_rate"
    TASK_STALLED = "task_stalled"
    NODE_RESOURCES = "node_resources"


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """One occurrence of a rule firing for a subject (a node id, a task id, or ``tasks``).

    An alert stays active until the condition clears (``resolved_at`` set); while active, the same rule
    and subject do not raise a second alert.
    """

    id: str
    rule: AlertRule
    severity: Severity
    subject: str
    message: str
    raised_at: int
    resolved_at: int | None = None

    @property
    def active(self) -> bool:
        return self.resolved_at is None


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertThresholds:
    """When the rules fire. Window and rate are for the failure-rate rule."""

    failure_rate: float = 0.5
    failure_window_ms: int = 300_000
    failure_min_samples: int = 5
    max_cpu_percent: float = 90.0
    max_memory_percent: float = 90.0
