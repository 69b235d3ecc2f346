"""The lifecycle table and its guards, rule by rule."""

from __future__ import annotations

import pytest

from skalds.domain import events as ev
from skalds.domain import lifecycle
from skalds.domain.errors import IllegalTransitionError, ValidationError
from skalds.domain.lifecycle import TRANSITIONS, TaskCommand
from skalds.domain.retry import RetryPolicy, retry_at
from skalds.domain.task import TERMINAL, DesiredState, TaskStatus
from tests.unit.domain.builders import a_task, running_task

C, S = TaskCommand, TaskStatus


def test_a_new_task_is_created_at_version_one_without_attempts() -> None:
    task = a_task()
    assert task.lifecycle_status is S.CREATED
    assert task.version == 1
    assert task.attempt == 0
    assert task.desired_state is DesiredState.RUN


def test_the_seven_wire_strings_are_upstreams() -> None:
    assert [s.value for s in TaskStatus] == [
        "Created", "Assigning", "Running", "Paused", "Finished", "Failed", "Cancelled",
    ]  # fmt: skip


def test_assign_records_executor_attempt_and_time_and_emits_task_assigned() -> None:
    task, event = lifecycle.apply(a_task(), C.ASSIGN, at=5_000, executor="n1")
    assert (task.lifecycle_status, task.executor, task.attempt, task.assigned_at) == (
        S.ASSIGNING,
        "n1",
        1,
        5_000,
    )
    assert task.version == 2
    assert task.update_date_time == 5_000
    assert isinstance(event, ev.TaskAssigned)
    assert (event.from_status, event.to_status, event.executor, event.version) == (
        S.CREATED,
        S.ASSIGNING,
        "n1",
        2,
    )


def test_assign_without_an_executor_is_refused() -> None:
    with pytest.raises(IllegalTransitionError, match="executor"):
        lifecycle.apply(a_task(), C.ASSIGN, at=5_000)


def test_an_illegal_change_names_the_task_and_both_statuses() -> None:
    with pytest.raises(IllegalTransitionError) as refused:
        lifecycle.apply(a_task("job-7"), C.FINISH, at=5_000)
    message = str(refused.value)
    assert "job-7" in message
    assert "Created" in message
    assert refused.value.from_status == S.CREATED
    assert refused.value.command == C.FINISH


def test_a_guard_refusal_names_the_target_status_too() -> None:
    task = running_task()
    task, _ = lifecycle.apply(task, C.CANCEL, at=3_000)
    with pytest.raises(IllegalTransitionError) as refused:
        lifecycle.apply(task, C.CANCEL, at=3_001)
    assert refused.value.to_status == S.RUNNING
    assert "already requested" in str(refused.value)


def test_cancelling_a_task_no_worker_owns_is_immediate() -> None:
    task, event = lifecycle.apply(a_task(), C.CANCEL, at=3_000)
    assert task.lifecycle_status is S.CANCELLED
    assert task.finished_at == 3_000
    assert isinstance(event, ev.TaskCancelled)


@pytest.mark.parametrize("status_command", [C.START, None])
def test_cancelling_a_task_a_worker_may_own_is_two_step(status_command: TaskCommand | None) -> None:
    task, _ = lifecycle.apply(a_task(), C.ASSIGN, at=2_000, executor="n1")
    if status_command:
        task, _ = lifecycle.apply(task, status_command, at=2_100)
    before = task.lifecycle_status
    task, event = lifecycle.apply(task, C.CANCEL, at=3_000)
    assert task.lifecycle_status is before
    assert task.desired_state is DesiredState.CANCEL
    assert isinstance(event, ev.TaskCancelRequested)
    assert event.executor == "n1"
    task, event = lifecycle.apply(task, C.CONFIRM_CANCEL, at=4_000)
    assert task.lifecycle_status is S.CANCELLED
    assert isinstance(event, ev.TaskCancelled)


def test_pause_and_resume_are_requested_then_confirmed() -> None:
    task = running_task()
    task, event = lifecycle.apply(task, C.PAUSE, at=3_000)
    assert (task.lifecycle_status, task.desired_state) == (S.RUNNING, DesiredState.PAUSE)
    assert isinstance(event, ev.TaskPauseRequested)
    task, event = lifecycle.apply(task, C.CONFIRM_PAUSE, at=3_100)
    assert task.lifecycle_status is S.PAUSED
    assert isinstance(event, ev.TaskPaused)
    task, event = lifecycle.apply(task, C.RESUME, at=4_000)
    assert (task.lifecycle_status, task.desired_state) == (S.PAUSED, DesiredState.RUN)
    task, event = lifecycle.apply(task, C.CONFIRM_RESUME, at=4_100)
    assert task.lifecycle_status is S.RUNNING
    assert isinstance(event, ev.TaskResumed)


def test_resume_withdraws_a_pause_the_worker_has_not_confirmed() -> None:
    task, _ = lifecycle.apply(running_task(), C.PAUSE, at=3_000)
    task, _ = lifecycle.apply(task, C.RESUME, at=3_050)
    assert (task.lifecycle_status, task.desired_state) == (S.RUNNING, DesiredState.RUN)
    with pytest.raises(IllegalTransitionError):
        lifecycle.apply(task, C.CONFIRM_PAUSE, at=3_100)


def test_a_pause_nobody_asked_for_cannot_be_confirmed() -> None:
    with pytest.raises(IllegalTransitionError, match="no pause was requested"):
        lifecycle.apply(running_task(), C.CONFIRM_PAUSE, at=3_000)


def test_pausing_a_queued_task_is_refused() -> None:
    with pytest.raises(IllegalTransitionError):
        lifecycle.apply(a_task(), C.PAUSE, at=3_000)


@pytest.mark.parametrize("terminal", sorted(TERMINAL))
def test_terminal_statuses_only_leave_through_retry(terminal: TaskStatus) -> None:
    leaving = {cmd for (status, cmd) in TRANSITIONS if status is terminal}
    assert leaving <= {C.RETRY, C.AUTO_RETRY}
    assert all(TRANSITIONS[(terminal, cmd)] is S.CREATED for cmd in leaving)


def test_failing_records_the_error_and_the_attempts_left() -> None:
    task, event = lifecycle.apply(
        running_task(max_attempts=3), C.FAIL, at=9_000, error="ValueError: bad frame"
    )
    assert task.lifecycle_status is S.FAILED
    assert task.last_error == "ValueError: bad frame"
    assert task.finished_at == 9_000
    assert isinstance(event, ev.TaskFailed)
    assert (event.attempt, event.attempts_left) == (1, 2)


def test_automatic_retry_stops_at_max_attempts() -> None:
    task, _ = lifecycle.apply(running_task(max_attempts=1), C.FAIL, at=9_000, error="boom", retry_at=9_500)
    assert task.retry_at is None
    with pytest.raises(IllegalTransitionError, match="no automatic retry"):
        lifecycle.apply(task, C.AUTO_RETRY, at=10_000)


def test_automatic_retry_waits_for_its_backoff() -> None:
    task, _ = lifecycle.apply(running_task(max_attempts=2), C.FAIL, at=9_000, error="boom", retry_at=14_000)
    with pytest.raises(IllegalTransitionError, match="not due before 14000"):
        lifecycle.apply(task, C.AUTO_RETRY, at=13_999)
    task, event = lifecycle.apply(task, C.AUTO_RETRY, at=14_000)
    assert (task.lifecycle_status, task.retry_at, task.attempt) == (S.CREATED, None, 1)
    assert isinstance(event, ev.TaskRetried)
    assert event.automatic


def test_an_operator_retry_always_grants_one_more_attempt() -> None:
    task, _ = lifecycle.apply(running_task(max_attempts=1), C.FAIL, at=9_000, error="boom")
    task, event = lifecycle.apply(task, C.RETRY, at=10_000)
    assert (task.lifecycle_status, task.executor, task.finished_at) == (S.CREATED, None, None)
    assert task.attempts_left == 1
    assert isinstance(event, ev.TaskRetried)
    assert event.automatic is False


def test_requeue_forgets_the_old_owner_and_needs_a_reason() -> None:
    task = running_task()
    with pytest.raises(IllegalTransitionError, match="reason"):
        lifecycle.apply(task, C.REQUEUE, at=5_000)
    task, event = lifecycle.apply(task, C.REQUEUE, at=5_000, reason="node n1 offline")
    assert (task.lifecycle_status, task.executor, task.started_at) == (S.CREATED, None, None)
    assert isinstance(event, ev.TaskRequeued)
    assert event.previous_executor == "n1"


def test_a_task_being_cancelled_is_not_requeued() -> None:
    task, _ = lifecycle.apply(running_task(), C.CANCEL, at=3_000)
    with pytest.raises(IllegalTransitionError, match="cancel"):
        lifecycle.apply(task, C.REQUEUE, at=5_000, reason="node offline")


def test_start_reported_by_another_node_is_refused() -> None:
    task, _ = lifecycle.apply(a_task(), C.ASSIGN, at=2_000, executor="n1")
    with pytest.raises(IllegalTransitionError, match="'n2'"):
        lifecycle.apply(task, C.START, at=2_100, executor="n2")


def test_attachment_updates_are_versioned_and_acknowledged() -> None:
    task = running_task(attachments={"fps": 10})
    task, event = lifecycle.apply(task, C.UPDATE_ATTACHMENTS, at=3_000, attachments={"fps": 25})
    assert dict(task.attachments) == {"fps": 25}
    assert task.attachments_version == 2
    assert task.lifecycle_status is S.RUNNING
    assert isinstance(event, ev.TaskAttachmentsUpdated)
    task, event = lifecycle.apply(task, C.ACK_ATTACHMENTS, at=3_100, attachments_version=2)
    assert task.applied_attachments_version == 2
    with pytest.raises(IllegalTransitionError, match="already applied"):
        lifecycle.apply(task, C.ACK_ATTACHMENTS, at=3_200, attachments_version=2)
    with pytest.raises(IllegalTransitionError, match="between 1 and 2"):
        lifecycle.apply(task, C.ACK_ATTACHMENTS, at=3_200, attachments_version=3)


def test_attachments_of_a_finished_task_cannot_change() -> None:
    task, _ = lifecycle.apply(running_task(), C.FINISH, at=5_000)
    with pytest.raises(IllegalTransitionError):
        lifecycle.apply(task, C.UPDATE_ATTACHMENTS, at=6_000, attachments={})


def test_a_task_a_worker_may_own_cannot_be_deleted() -> None:
    with pytest.raises(IllegalTransitionError, match="cancel it first"):
        lifecycle.deleted(running_task(), at=5_000)
    assert lifecycle.deleted(a_task(), at=5_000).task_id == "t1"


@pytest.mark.parametrize(
    ("field", "overrides"),
    [
        ("priority", {"priority": 11}),
        ("priority", {"priority": -1}),
        ("maxAttempts", {"max_attempts": 0}),
        ("className", {"class_name": " "}),
        ("id", {"task_id": ""}),
    ],
)
def test_invalid_task_fields_are_named(field: str, overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError) as refused:
        a_task(**overrides)  # type: ignore[arg-type]
    assert refused.value.field == field


def test_tasks_do_not_share_mutable_attachments_with_their_caller() -> None:
    source = {"fps": 10}
    task = a_task(attachments=source)
    source["fps"] = 99
    assert task.attachments["fps"] == 10
    with pytest.raises(TypeError):
        task.attachments["fps"] = 1  # type: ignore[index]


def test_a_lost_run_counts_as_an_attempt_so_a_poison_task_cannot_requeue_forever() -> None:
    task = running_task(max_attempts=1)
    with pytest.raises(IllegalTransitionError, match="no attempts left"):
        lifecycle.apply(task, C.REQUEUE, at=5_000, reason="node n1 offline")


def test_backoff_grows_exponentially_up_to_its_cap() -> None:
    policy = RetryPolicy(base_delay_ms=1_000, factor=2, max_delay_ms=5_000)
    assert [policy.delay_ms(n) for n in (1, 2, 3, 4)] == [1_000, 2_000, 4_000, 5_000]
    task = running_task(max_attempts=2)
    assert retry_at(task, failed_at=10_000, policy=policy) == 11_000
    assert retry_at(running_task(max_attempts=1), failed_at=10_000, policy=policy) is None
