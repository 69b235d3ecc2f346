"""What heartbeats say about a task: one pure function from reports and time to a verdict.

Liveness and progress are separate: a worker whose heartbeats arrive but whose progress has not moved for
``stall_after_ms`` is *stalled*, not dead. Reports are stamped with the receiver's clock (``received_at``),
so verdicts never compare two machines' clocks, and nothing here depends on random numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from skalds.domain.errors import ValidationError
from skalds.domain.task import Task, TaskStatus


class Outcome(StrEnum):
    """How a worker ended, when it reports that it has."""

    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"
    RELEASED = "released"  # its node stopped it unasked (it lost its lease) and hands the task back


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatReport:
    """One heartbeat of a worker, as received.

    ``sequence`` increases with every beat of one worker run. ``progress`` is optional (0-100 or any
    counter the worker chooses); ``progress_changed_at`` may be stamped by the store when it keeps only the
    latest report, so stalls stay visible without a long history. ``attempt`` names the run that sent it, so
    a late report from an earlier run is not taken for the current one.
    """

    received_at: int
    sequence: int = 0
    progress: float | None = None
    progress_changed_at: int | None = None
    outcome: Outcome | None = None
    error: str | None = None
    paused: bool = False
    applied_attachments_version: int | None = None
    attempt: int | None = None
    progress_total: float | None = None  # what ``progress`` counts up to, when the worker knows it
    progress_unit: str | None = None  # what it counts: "frames", "rows", "pages"
    progress_message: str | None = None  # a word on where it is: "decoding", "waiting for the camera"
    cpu_percent: float | None = None  # the worker process's CPU as its node measured it (100 = one CPU)
    memory_bytes: int | None = None  # and its resident memory (RSS)


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatPolicy:
    """Silence thresholds, in milliseconds. ``stall_after_ms`` None disables stall detection."""

    suspect_after_ms: int = 5_000
    dead_after_ms: int = 10_000
    stall_after_ms: int | None = 300_000
    first_heartbeat_grace_ms: int = 30_000

    def __post_init__(self) -> None:
        if self.suspect_after_ms <= 0:
            raise ValidationError("heartbeat.suspectAfterMs", f"must be > 0, got {self.suspect_after_ms}")
        if self.dead_after_ms <= self.suspect_after_ms:
            raise ValidationError(
                "heartbeat.deadAfterMs",
                f"must be greater than suspectAfterMs ({self.suspect_after_ms}), got {self.dead_after_ms}",
            )
        if self.stall_after_ms is not None and self.stall_after_ms <= 0:
            raise ValidationError("heartbeat.stallAfterMs", f"must be > 0 or null, got {self.stall_after_ms}")
        if self.first_heartbeat_grace_ms < 0:
            raise ValidationError(
                "heartbeat.firstHeartbeatGraceMs", f"must be >= 0, got {self.first_heartbeat_grace_ms}"
            )


class Verdict(StrEnum):
    STARTING = "starting"  # no heartbeat yet, still within the grace period
    ALIVE = "alive"  # heartbeats arrive; the worker reports no progress
    PROGRESSING = "progressing"  # heartbeats arrive and progress moved recently
    STALLED = "stalled"  # heartbeats arrive but progress has not moved for stall_after_ms
    SUSPECT = "suspect"  # silent for longer than suspect_after_ms
    DEAD = "dead"  # silent for longer than dead_after_ms (or never heard of after the grace)
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"
    RELEASED = "released"  # its node stopped it and gave the task back: the worker is gone


SEVERITY: dict[Verdict, int] = {
    Verdict.STARTING: 0,
    Verdict.ALIVE: 0,
    Verdict.PROGRESSING: 0,
    Verdict.STALLED: 1,
    Verdict.SUSPECT: 2,
    Verdict.DEAD: 3,
}
"""How bad a non-terminal verdict is; for a silent worker it never decreases as time passes."""

_OUTCOME_VERDICT = {
    Outcome.FINISHED: Verdict.FINISHED,
    Outcome.FAILED: Verdict.FAILED,
    Outcome.CANCELLED: Verdict.CANCELLED,
    Outcome.RELEASED: Verdict.RELEASED,
}


def progress_changed_at(reports: Sequence[HeartbeatReport]) -> int | None:
    """Since when the latest progress value has held, judged from the reports (oldest first)."""
    if not reports or reports[-1].progress is None:
        return None
    latest = reports[-1]
    since = latest.progress_changed_at if latest.progress_changed_at is not None else latest.received_at
    if len(reports) == 1:
        return since
    for report in reversed(reports[:-1]):
        if report.progress != latest.progress:
            break
        since = min(since, report.progress_changed_at or report.received_at)
    return since


def current_reports(task: Task, reports: Sequence[HeartbeatReport]) -> list[HeartbeatReport]:
    """The reports sent by the task's current run (reports that name no attempt are trusted)."""
    return [r for r in reports if from_current_run(task, r)]


def from_current_run(task: Task, report: HeartbeatReport) -> bool:
    """False for a late report of an earlier attempt, which must not decide the current one."""
    return report.attempt is None or report.attempt == task.attempt


def interpret(task: Task, reports: Sequence[HeartbeatReport], now: int, policy: HeartbeatPolicy) -> Verdict:
    """The verdict on ``task`` at ``now`` from its recent heartbeat reports (oldest first)."""
    if not reports:
        started = task.started_at or task.assigned_at or task.update_date_time
        waited = now - started
        if waited <= policy.first_heartbeat_grace_ms:
            return Verdict.STARTING
        if waited <= policy.first_heartbeat_grace_ms + policy.dead_after_ms:
            return Verdict.SUSPECT
        return Verdict.DEAD
    latest = reports[-1]
    if latest.outcome is not None:
        return _OUTCOME_VERDICT[latest.outcome]
    silence = now - latest.received_at
    if silence > policy.dead_after_ms:
        return Verdict.DEAD
    if silence > policy.suspect_after_ms:
        return Verdict.SUSPECT
    if latest.progress is None:
        return Verdict.ALIVE
    paused = latest.paused or task.lifecycle_status is TaskStatus.PAUSED
    since = progress_changed_at(reports)
    stall_after = policy.stall_after_ms
    if stall_after is not None and not paused and since is not None and now - since > stall_after:
        return Verdict.STALLED
    return Verdict.PROGRESSING
