"""Alerts: what an operator must look at, how bad it is, and whether it is still true.

The lifecycle follows Alertmanager's words: an alert is *firing* from ``raised_at`` (its startsAt) until its
condition clears, then *resolved* at ``resolved_at`` (its endsAt). While it fires, the same rule and subject
firing again is grouped into it (``count``, ``last_seen_at``, the newest message), never a second alert.
People *acknowledge* a firing alert (who and when); a *silence* mutes notifications but not the record.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from skalds.domain.errors import AlertStateError, ValidationError


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


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


MAX_NAME_CHARS = 200  # who acknowledged, who silenced


def person(field: str, name: str) -> str:
    """A name as people give it (``by``, ``createdBy``): trimmed, not empty, not a novel."""
    trimmed = name.strip()
    if not trimmed or len(trimmed) > MAX_NAME_CHARS:
        raise ValidationError(field, f"must be 1 to {MAX_NAME_CHARS} characters, got {len(trimmed)}")
    return trimmed


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """One occurrence of a rule firing for a subject (a node id, a task id, or ``tasks``), from raise to
    resolve. ``notified`` says whether the channels were told it fired (not while a silence matched), so
    they are told it resolved only if they knew; ``silenced_by`` is the silence muting it now."""

    id: str
    rule: AlertRule
    severity: Severity
    subject: str
    message: str
    raised_at: int
    resolved_at: int | None = None
    last_seen_at: int | None = None  # the latest firing grouped into this alert; None: only the first
    count: int = 1
    acknowledged_by: str | None = None
    acknowledged_at: int | None = None
    silenced_by: str | None = None
    notified: bool = False

    @property
    def active(self) -> bool:
        return self.resolved_at is None

    @property
    def status(self) -> AlertStatus:
        return AlertStatus.FIRING if self.active else AlertStatus.RESOLVED

    @property
    def key(self) -> tuple[AlertRule, str]:
        """What groups firings: one firing alert per rule and subject."""
        return self.rule, self.subject

    def fired_again(self, *, severity: Severity, message: str, at: int) -> Alert:
        """The same condition fired again while this alert fires: counted here, not raised twice."""
        self._require_firing("fire again")
        return replace(self, severity=severity, message=message, last_seen_at=at, count=self.count + 1)

    def still_true(self, *, severity: Severity, message: str, at: int) -> Alert:
        """A reading (CPU, failure rate) still over its threshold: fresher text, not a new firing."""
        self._require_firing("refresh")
        return replace(self, severity=severity, message=message, last_seen_at=at)

    def resolved(self, *, at: int) -> Alert:
        self._require_firing("resolve")
        return replace(self, resolved_at=at, silenced_by=None)

    def acknowledged(self, *, by: str, at: int) -> Alert:
        """Someone is on it. Only a firing alert can be acknowledged; acknowledging again keeps the first."""
        self._require_firing("acknowledge")
        if self.acknowledged_by is not None:
            return self
        return replace(self, acknowledged_by=person("by", by), acknowledged_at=at)

    def _require_firing(self, command: str) -> None:
        if not self.active:
            raise AlertStateError(
                "alert", self.id, self.status.value, command, f"it resolved at {self.resolved_at}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertThresholds:
    """When the rules fire. Window and rate are for the failure-rate rule."""

    failure_rate: float = 0.5
    failure_window_ms: int = 300_000
    failure_min_samples: int = 5
    max_cpu_percent: float = 90.0
    max_memory_percent: float = 90.0
