"""Frames as upstream's dashboard reads them: unnamed frames only of upstream's kinds, with upstream's meaning
(``data.heartbeat`` its code, ``data.lifecycleStatus`` the status now); everything else is one of our own,
sent as ``event: skalds``."""

from __future__ import annotations

import pytest

from skalds.domain import events as ev
from skalds.domain.task import DesiredState, TaskStatus
from skalds.entrypoints.api.frames import Stream, frames_for

UPSTREAM_KINDS = {"task_heartbeat", "task_error", "task_exception", "skald_status", "skald_heartbeat"}
CODES = {TaskStatus.FINISHED: 200, TaskStatus.FAILED: -1, TaskStatus.CANCELLED: -2}


def change(to: TaskStatus) -> ev.TaskEvent:
    common = {"at": 5, "task_id": "t1", "version": 3, "from_status": TaskStatus.RUNNING, "to_status": to}
    if to is TaskStatus.FAILED:
        run = DesiredState.RUN
        return ev.TaskFailed(**common, desired_state=run, error="boom", attempt=1, attempts_left=0)
    return ev.TaskEvent(**common, desired_state=DesiredState.RUN)


@pytest.mark.parametrize("status", list(TaskStatus))
def test_a_change_tells_upstreams_page_the_new_status_and_its_code(status: TaskStatus) -> None:
    framed = frames_for(change(status))
    upstream = [f.frame for f in framed if not f.own]
    [beat] = [f for f in upstream if f["type"] == "task_heartbeat"]
    assert beat["data"]["lifecycleStatus"] == status.value
    assert beat["data"]["heartbeat"] == CODES.get(status, 0)
    assert {f["type"] for f in upstream} <= UPSTREAM_KINDS
    [own] = [f.frame for f in framed if f.own]
    assert own["type"] == "task_status" and own["data"]["version"] == 3


def test_a_failure_is_upstreams_task_exception_before_its_heartbeat_and_ours_carries_the_error() -> None:
    framed = frames_for(change(TaskStatus.FAILED))
    assert [(f.frame["type"], f.own) for f in framed] == [
        ("task_exception", False),
        ("task_heartbeat", False),
        ("task_status", True),
    ]
    assert framed[0].frame["data"] == {"exception": "boom", "lifecycleStatus": "Failed", "attemptsLeft": 0}
    assert framed[2].frame["data"]["exception"] == "boom"


@pytest.mark.parametrize(
    ("status", "code"), [(TaskStatus.RUNNING, 7), (TaskStatus.PAUSED, 7), (TaskStatus.FINISHED, 200)]
)
def test_a_beat_carries_upstreams_code_for_its_status(status: TaskStatus, code: int) -> None:
    beat = ev.TaskHeartbeatObserved(
        at=1, task_id="t1", sequence=207, progress=None, verdict="ok", status=status
    )
    [framed] = frames_for(beat)
    assert not framed.own and framed.frame["data"]["heartbeat"] == code


def test_our_own_kinds_are_named_so_upstreams_page_never_reads_them() -> None:
    own = [
        ev.TaskVerdictChanged(at=1, task_id="t1", previous=None, verdict="stalled"),
        ev.TaskPauseNotHonoured(at=1, task_id="t1", requested_for_ms=9),
        ev.AlertRaised(at=1, alert_id="a", rule="r", severity="critical", subject="n1", message="m"),
        ev.AlertResolved(at=1, alert_id="a", rule="r", subject="n1"),
    ]
    for event in own:
        [framed] = frames_for(event)
        assert framed.own and framed.stream is Stream.TASKS
    node = frames_for(ev.NodeWentOffline(at=1, node_id="n1", silent_for_ms=9))
    assert [(f.frame["type"], f.own, f.stream) for f in node] == [("skald_status", False, Stream.SKALDS)]


def beat_data(total: float | None = None, unit: str | None = None) -> dict[str, object]:
    event = ev.TaskHeartbeatObserved(
        at=1,
        task_id="t1",
        sequence=3,
        progress=37.0,
        verdict="progressing",
        status=TaskStatus.RUNNING,
        progress_total=total,
        progress_unit=unit,
    )
    [framed] = frames_for(event)
    data: dict[str, object] = framed.frame["data"]
    return data


def test_a_beat_with_a_scale_carries_it_and_one_without_does_not() -> None:
    scaled = beat_data(120.0, "frames")
    assert (scaled["progressTotal"], scaled["progressUnit"]) == (120.0, "frames")
    assert "progressTotal" not in beat_data()


def test_a_node_beat_carries_its_usage_when_the_node_measures_itself() -> None:
    measured = ev.NodeHeartbeatObserved(
        at=1, node_id="n1", tasks=(), health="online", cpu_percent=63.5, memory_percent=41.0
    )
    [framed] = frames_for(measured)
    assert (framed.frame["data"]["cpuPercent"], framed.frame["data"]["memoryPercent"]) == (63.5, 41.0)
    [plain] = frames_for(ev.NodeHeartbeatObserved(at=1, node_id="n1", tasks=(), health="online"))
    assert "cpuPercent" not in plain.frame["data"]
