"""Every field of the task response comes from the right place (the struct is built positionally)."""

from __future__ import annotations

import msgspec

from skalds.domain.heartbeat import HeartbeatReport
from skalds.domain.task import DesiredState, Task, TaskMode, TaskStatus
from skalds.entrypoints.api.task_responses import TaskResponse, task_response


def distinct_task(status: TaskStatus) -> Task:
    """No two fields share a value, so a field read from the wrong place shows."""
    return Task(
        id="t-1",
        class_name="Crawler",
        source="cli",
        name="crawl example.org",
        description="nightly",
        executor="n-7",
        mode=TaskMode.ACTIVE,
        priority=4,
        attachments={"depth": 3},
        attachments_version=5,
        applied_attachments_version=4,
        create_date_time=1_000,
        update_date_time=2_000,
        deadline_date_time=9_000,
        dependencies=("t-0",),
        required_labels={"gpu": "a100"},
        is_persistent=False,
        lifecycle_status=status,
        desired_state=DesiredState.PAUSE,
        version=11,
        attempt=2,
        max_attempts=6,
        assigned_at=3_000,
        started_at=3_500,
        finished_at=8_000,
        last_error="disk full",
        retry_at=8_500,
    )


def wire(response: TaskResponse) -> dict[str, object]:
    """What a client reads: the response encoded as JSON and decoded again."""
    decoded: dict[str, object] = msgspec.json.decode(msgspec.json.encode(response))
    return decoded


REPORT = HeartbeatReport(
    received_at=7_000,
    sequence=203,
    progress=42.5,
    error="slow upstream",
    progress_total=120.0,
    progress_unit="frames",
    progress_message="decoding",
    cpu_percent=97.5,
    memory_bytes=52_428_800,
)


def test_a_running_task_with_a_heartbeat_reads_every_field_from_its_source() -> None:
    encoded = wire(task_response(distinct_task(TaskStatus.RUNNING), REPORT, "no node fits"))
    assert encoded == {
        "id": "t-1",
        "className": "Crawler",
        "lifecycleStatus": "Running",
        "executor": "n-7",
        "createDateTime": 1_000,
        "updateDateTime": 2_000,
        "mode": "Active",
        "attachments": {"depth": 3},
        "heartbeat": 3,  # upstream's code: sequence modulo 200
        "error": "slow upstream",
        "exception": None,
        "priority": 4,
        "source": "cli",
        "name": "crawl example.org",
        "description": "nightly",
        "deadlineDateTime": 9_000,
        "dependencies": ["t-0"],
        "requiredLabels": {"gpu": "a100"},
        "isPersistent": False,
        "desiredState": "pause",
        "version": 11,
        "attempt": 2,
        "maxAttempts": 6,
        "assignedAt": 3_000,
        "startedAt": 3_500,
        "finishedAt": 8_000,
        "lastError": "disk full",
        "retryAt": 8_500,
        "attachmentsVersion": 5,
        "appliedAttachmentsVersion": 4,
        "progress": 42.5,
        "pendingReason": "no node fits",
        "progressTotal": 120.0,
        "progressUnit": "frames",
        "progressMessage": "decoding",
        "cpuPercent": 97.5,
        "memoryBytes": 52_428_800,
    }
    assert list(encoded) == [TaskResponse.__struct_encode_fields__[i] for i in range(len(encoded))]


def test_a_failed_task_shows_its_error_as_the_exception_and_no_worker_error() -> None:
    encoded = wire(task_response(distinct_task(TaskStatus.FAILED), REPORT))
    assert (encoded["exception"], encoded["error"]) == ("disk full", None)


def test_without_a_heartbeat_the_code_is_zero_and_progress_unknown() -> None:
    encoded = wire(task_response(distinct_task(TaskStatus.CREATED)))
    assert (encoded["heartbeat"], encoded["progress"], encoded["error"]) == (0, None, None)
