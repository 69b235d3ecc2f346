"""The monitor's rules, one observation at a time."""

from __future__ import annotations

from skalds.application.reconciling import OfflineNodePolicy, ReconcileRules, decide
from skalds.domain import lifecycle
from skalds.domain.heartbeat import HeartbeatReport, Verdict
from skalds.domain.lifecycle import TaskCommand
from skalds.domain.nodes import NodeHealth
from skalds.domain.retry import RetryPolicy
from skalds.domain.task import Task
from tests.unit.domain.builders import a_task, running_task

C = TaskCommand
RULES = ReconcileRules(retry=RetryPolicy(base_delay_ms=1_000), assign_timeout_ms=10_000)
ONLINE, OFFLINE = NodeHealth.ONLINE, NodeHealth.OFFLINE


def commands(  # noqa: PLR0917 - a test helper read as a sentence
    task: Task,
    verdict: Verdict,
    report: HeartbeatReport | None = None,
    health: NodeHealth = ONLINE,
    now: int = 50_000,
    rules: ReconcileRules = RULES,
) -> list[TaskCommand]:
    return [
        s.command
        for s in decide(task, verdict=verdict, report=report, executor_health=health, now=now, rules=rules)
    ]


def beat(**fields: object) -> HeartbeatReport:
    return HeartbeatReport(received_at=49_000, **fields)  # type: ignore[arg-type]


def assigning() -> Task:
    task, _ = lifecycle.apply(a_task(), C.ASSIGN, at=45_000, executor="n1")
    return task


def test_reported_outcomes_settle_the_task() -> None:
    assert commands(running_task(), Verdict.FINISHED) == [C.FINISH]
    assert commands(running_task(), Verdict.FAILED, beat(error="boom")) == [C.FAIL]
    assert commands(running_task(), Verdict.CANCELLED) == [C.CONFIRM_CANCEL]


def test_a_task_its_node_released_is_requeued_at_once_or_its_cancel_confirmed() -> None:
    assert commands(running_task(max_attempts=3), Verdict.RELEASED, beat(error="lease lost")) == [C.REQUEUE]
    cancelling, _ = lifecycle.apply(running_task(), C.CANCEL, at=3_000)
    assert commands(cancelling, Verdict.RELEASED) == [C.CONFIRM_CANCEL]


def test_a_failure_schedules_a_retry_when_attempts_remain() -> None:
    [step] = decide(
        running_task(max_attempts=3),
        verdict=Verdict.FAILED,
        report=beat(error="boom"),
        executor_health=ONLINE,
        now=50_000,
        rules=RULES,
    )
    assert step.args == {"error": "boom", "retry_at": 51_000}


def test_the_first_heartbeat_starts_an_assigned_task() -> None:
    assert commands(assigning(), Verdict.ALIVE, beat()) == [C.START]


def test_an_assignment_without_heartbeats_waits_then_is_requeued() -> None:
    assert commands(assigning(), Verdict.STARTING, now=50_000) == []
    assert commands(assigning(), Verdict.DEAD, now=55_001) == [C.REQUEUE]


def test_a_dead_worker_on_a_live_node_fails_and_is_retried_later() -> None:
    assert commands(running_task(), Verdict.DEAD, beat()) == [C.FAIL]


def test_a_dead_worker_on_a_suspect_node_waits_for_the_nodes_verdict() -> None:
    """A node beats for its workers, and skips a worker that sent nothing new since its last beat, so a
    killed node's worker can go dead up to a beat before the node goes offline. Failing it then would
    cost a retry backoff and record a crash that never happened; the node's verdict decides."""
    assert commands(running_task(), Verdict.DEAD, beat(), health=NodeHealth.SUSPECT) == []
    assert commands(running_task(), Verdict.DEAD, beat(), health=OFFLINE) == [C.REQUEUE]


def test_a_suspect_worker_is_left_alone() -> None:
    assert commands(running_task(), Verdict.SUSPECT, beat()) == []


def test_an_offline_nodes_task_is_requeued_or_failed_per_policy() -> None:
    assert commands(running_task(), Verdict.SUSPECT, beat(), health=OFFLINE) == [C.REQUEUE]
    fail_policy = ReconcileRules(offline_node_policy=OfflineNodePolicy.FAIL)
    assert commands(running_task(), Verdict.SUSPECT, beat(), health=OFFLINE, rules=fail_policy) == [C.FAIL]
    assert commands(running_task(max_attempts=1), Verdict.SUSPECT, beat(), health=OFFLINE) == [C.FAIL]


def test_a_pending_cancel_completes_when_the_worker_is_gone() -> None:
    cancelling, _ = lifecycle.apply(running_task(), C.CANCEL, at=46_000)
    assert commands(cancelling, Verdict.DEAD, beat()) == [C.CONFIRM_CANCEL]
    assert commands(cancelling, Verdict.ALIVE, beat(), health=OFFLINE) == [C.CONFIRM_CANCEL]


def test_pause_and_resume_follow_the_worker() -> None:
    pausing, _ = lifecycle.apply(running_task(), C.PAUSE, at=46_000)
    assert commands(pausing, Verdict.ALIVE, beat(paused=False)) == []
    assert commands(pausing, Verdict.ALIVE, beat(paused=True)) == [C.CONFIRM_PAUSE]
    paused, _ = lifecycle.apply(pausing, C.CONFIRM_PAUSE, at=47_000)
    resuming, _ = lifecycle.apply(paused, C.RESUME, at=48_000)
    assert commands(resuming, Verdict.ALIVE, beat(paused=True)) == []
    assert commands(resuming, Verdict.ALIVE, beat(paused=False)) == [C.CONFIRM_RESUME]


def test_an_applied_attachments_version_is_acknowledged_once() -> None:
    task, _ = lifecycle.apply(running_task(), C.UPDATE_ATTACHMENTS, at=46_000, attachments={"a": 1})
    assert commands(task, Verdict.ALIVE, beat(applied_attachments_version=2)) == [C.ACK_ATTACHMENTS]
    acked, _ = lifecycle.apply(task, C.ACK_ATTACHMENTS, at=47_000, attachments_version=2)
    assert commands(acked, Verdict.ALIVE, beat(applied_attachments_version=2)) == []


def test_start_and_acknowledgement_can_happen_in_one_cycle() -> None:
    assert commands(assigning(), Verdict.PROGRESSING, beat(progress=1.0, applied_attachments_version=1)) == [
        C.START,
        C.ACK_ATTACHMENTS,
    ]
