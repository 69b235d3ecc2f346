"""What the operator reads: a line per lifecycle change and per node health change, the facts as fields."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from skalds.adapters.logs import JsonLines
from skalds.application.operator_log import (
    CHANGE_NAMES,
    MAX_ERROR_CHARS,
    change_name,
    log_node_event,
    log_task_change,
    log_task_changes,
)
from skalds.application.tasks import TaskDraft
from skalds.domain import events as ev
from skalds.domain import lifecycle
from skalds.domain.lifecycle import TaskCommand as C
from skalds.domain.task import DesiredState, Task, TaskStatus, new_task
from tests.unit.application.harness import CLASS, System, build_system

LOGGER = "skalds.test.operator"
Change = tuple[Task, ev.TaskEvent]


@pytest.fixture
def caplog(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    return caplog


def log() -> logging.Logger:
    return logging.getLogger(LOGGER)


def the_line(caplog: pytest.LogCaptureFixture) -> logging.LogRecord:
    [record] = caplog.records
    return record


def fields(record: logging.LogRecord, *names: str) -> dict[str, Any]:
    return {name: getattr(record, name) for name in names}


def created(task_id: str = "t1", *, max_attempts: int = 3) -> Task:
    return new_task(task_id=task_id, class_name="CountdownWorker", now=0, max_attempts=max_attempts)


def running(task_id: str = "t1", *, node: str = "node-a", max_attempts: int = 3) -> Task:
    task, _ = lifecycle.apply(created(task_id, max_attempts=max_attempts), C.ASSIGN, at=10, executor=node)
    task, _ = lifecycle.apply(task, C.START, at=20, executor=node)
    return task


# ---- task changes --------------------------------------------------------------------------------------


def test_an_assignment_names_the_task_the_change_its_class_node_attempt_and_who(
    caplog: pytest.LogCaptureFixture,
) -> None:
    task, event = lifecycle.apply(created(), C.ASSIGN, at=10, executor="node-a")
    log_task_change(log(), task, event, by="dispatcher")
    record = the_line(caplog)
    assert record.levelno == logging.INFO
    assert record.getMessage() == (
        "task t1 assigned (Created -> Assigning): class CountdownWorker, node node-a, attempt 1; "
        "by dispatcher"
    )
    assert fields(
        record, "task_id", "change", "from_status", "to_status", "class_name", "node", "attempt", "by"
    ) == {
        "task_id": "t1",
        "change": "assigned",
        "from_status": "Created",
        "to_status": "Assigning",
        "class_name": "CountdownWorker",
        "node": "node-a",
        "attempt": 1,
        "by": "dispatcher",
    }


def test_a_requeue_names_the_node_that_lost_the_task_and_why(caplog: pytest.LogCaptureFixture) -> None:
    task, event = lifecycle.apply(running(), C.REQUEUE, at=30, reason="node node-a went offline")
    assert task.executor is None  # the queued task has no node any more; the line still names the old one
    log_task_change(log(), task, event, by="monitor")
    record = the_line(caplog)
    assert record.getMessage() == (
        "task t1 requeued (Running -> Created): class CountdownWorker, node node-a, attempt 1, "
        "reason: node node-a went offline; by monitor"
    )
    assert fields(record, "node", "reason", "attempt") == {
        "node": "node-a",
        "reason": "node node-a went offline",
        "attempt": 1,
    }


def test_a_failure_shows_the_first_line_of_its_error_and_when_it_is_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    error = "ValueError: bad frame\nTraceback (most recent call last):\n  File 'w.py', line 3"
    task, event = lifecycle.apply(running(), C.FAIL, at=1_000, error=error, retry_at=6_000)
    log_task_change(log(), task, event, by="monitor")
    record = the_line(caplog)
    assert record.getMessage() == (
        "task t1 failed (Running -> Failed): class CountdownWorker, node node-a, attempt 1, "
        "2 attempts left, retry in 5000 ms, error: ValueError: bad frame; by monitor"
    )
    assert fields(record, "error", "attempts_left", "retry_at") == {
        "error": "ValueError: bad frame",
        "attempts_left": 2,
        "retry_at": 6_000,
    }


def test_a_long_error_is_cut_short_and_a_last_failure_says_no_attempts_are_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    task, event = lifecycle.apply(running(max_attempts=1), C.FAIL, at=1_000, error="x" * 5_000)
    log_task_change(log(), task, event, by="monitor")
    record = the_line(caplog)
    assert len(record.error) == MAX_ERROR_CHARS
    assert record.error.endswith("…")
    assert "no attempts left, error: xxx" in record.getMessage()
    assert record.attempts_left == 0


def test_a_failure_with_attempts_left_but_nothing_scheduled_says_so(caplog: pytest.LogCaptureFixture) -> None:
    task, event = lifecycle.apply(running(max_attempts=2), C.FAIL, at=1_000, error="boom")
    log_task_change(log(), task, event, by="monitor")
    assert "1 attempt left, no automatic retry, error: boom" in the_line(caplog).getMessage()


def test_a_request_that_leaves_the_status_alone_shows_the_one_status(
    caplog: pytest.LogCaptureFixture,
) -> None:
    task, event = lifecycle.apply(running(), C.PAUSE, at=30)
    assert task.desired_state is DesiredState.PAUSE
    log_task_change(log(), task, event, by="api")
    record = the_line(caplog)
    assert record.getMessage() == (
        "task t1 pause requested (Running): class CountdownWorker, node node-a, attempt 1; by api"
    )
    assert fields(record, "from_status", "to_status", "desired_state") == {
        "from_status": "Running",
        "to_status": "Running",
        "desired_state": "pause",
    }


def test_a_cancel_of_a_queued_task_gives_its_reason(caplog: pytest.LogCaptureFixture) -> None:
    task, event = lifecycle.apply(created(), C.CANCEL, at=30)
    log_task_change(log(), task, event, by="api")
    record = the_line(caplog)
    assert record.getMessage() == (
        "task t1 cancelled (Created -> Cancelled): class CountdownWorker, attempt 0, "
        "reason: cancelled before it was assigned; by api"
    )
    assert record.node is None


def test_creation_deletion_and_retries_read_as_words(caplog: pytest.LogCaptureFixture) -> None:
    task = created()
    finished, _ = lifecycle.apply(running(), C.FINISH, at=40)
    failed, _ = lifecycle.apply(running(), C.FAIL, at=40, error="boom", retry_at=50)
    retried = lifecycle.apply(finished, C.RETRY, at=60)
    automatic = lifecycle.apply(failed, C.AUTO_RETRY, at=60)
    log_task_changes(
        log(),
        [
            (task, lifecycle.created(task)),
            (finished, lifecycle.deleted(finished, at=50)),
            retried,
            automatic,
        ],
        by="api",
    )
    assert [record.getMessage().split(":")[0] for record in caplog.records] == [
        "task t1 created (Created)",
        "task t1 deleted (Finished)",
        "task t1 retried (Finished -> Created)",
        "task t1 retried automatically (Failed -> Created)",
    ]


def test_attachment_changes_give_the_version(caplog: pytest.LogCaptureFixture) -> None:
    updated, event = lifecycle.apply(running(), C.UPDATE_ATTACHMENTS, at=30, attachments={"seconds": 9})
    applied = lifecycle.apply(updated, C.ACK_ATTACHMENTS, at=40, attachments_version=2)
    log_task_changes(log(), [(updated, event), applied], by="node")
    assert [(r.change, r.attachments_version) for r in caplog.records] == [
        ("attachments updated", 2),
        ("attachments applied", 2),
    ]
    assert "attachments version 2" in caplog.records[0].getMessage()


def test_every_task_event_has_a_name_and_an_unlisted_one_reads_as_its_class_name() -> None:
    task_events = {
        cls for cls in vars(ev).values() if isinstance(cls, type) and issubclass(cls, ev.TaskEvent)
    }
    assert task_events - {ev.TaskEvent} <= set(CHANGE_NAMES)

    class TaskWentSideways(ev.TaskEvent):
        pass

    event = TaskWentSideways(
        at=0,
        task_id="t1",
        version=2,
        from_status=None,
        to_status=TaskStatus.CREATED,
        desired_state=DesiredState.RUN,
    )
    assert change_name(event) == "went sideways"


def test_nothing_is_formatted_when_info_is_off(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    task, event = lifecycle.apply(created(), C.ASSIGN, at=10, executor="node-a")
    log_task_change(log(), task, event, by="dispatcher")
    assert caplog.records == []


def test_as_json_lines_the_fields_are_keys_of_their_own(caplog: pytest.LogCaptureFixture) -> None:
    task, event = lifecycle.apply(running(), C.REQUEUE, at=30, reason="node node-a went offline")
    log_task_change(log(), task, event, by="monitor")
    line = json.loads(JsonLines().format(the_line(caplog)))
    assert line["message"].startswith("task t1 requeued")
    assert (line["level"], line["logger"]) == ("INFO", LOGGER)
    assert {key: line[key] for key in ("task_id", "class_name", "node", "attempt", "reason", "by")} == {
        "task_id": "t1",
        "class_name": "CountdownWorker",
        "node": "node-a",
        "attempt": 1,
        "reason": "node node-a went offline",
        "by": "monitor",
    }
    assert (line["from_status"], line["to_status"], line["change"]) == ("Running", "Created", "requeued")
    assert "msg" not in line and "args" not in line  # the record's own attributes stay out


# ---- nodes ---------------------------------------------------------------------------------------------


def test_a_node_online_is_info_and_suspect_or_offline_are_warnings(caplog: pytest.LogCaptureFixture) -> None:
    for event in (
        ev.NodeCameOnline(at=0, node_id="node-a"),
        ev.NodeHeartbeatObserved(at=1, node_id="node-a", tasks=("t1",), health="online"),
        ev.NodeWentSuspect(at=5_000, node_id="node-a", silent_for_ms=5_012),
        ev.NodeWentOffline(at=10_000, node_id="node-a", silent_for_ms=10_020),
        ev.NodeWentOffline(at=10_000, node_id="node-b", silent_for_ms=-1),
    ):
        log_node_event(log(), event)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "node node-a online"),
        ("WARNING", "node node-a suspect: silent for 5012 ms"),
        ("WARNING", "node node-a offline: silent for 10020 ms"),
        ("WARNING", "node node-b offline: it left (removed itself)"),
    ]
    assert [(r.node, r.change) for r in caplog.records] == [
        ("node-a", "online"),
        ("node-a", "suspect"),
        ("node-a", "offline"),
        ("node-b", "offline"),
    ]
    assert [getattr(r, "silent_for_ms", None) for r in caplog.records] == [None, 5_012, 10_020, None]


# ---- through the task service --------------------------------------------------------------------------


@pytest.fixture
async def system() -> AsyncIterator[System]:
    built = await build_system()
    yield built
    await built.close()


async def test_what_the_api_changes_is_logged_by_api(
    system: System, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="skalds.application")
    tasks = system.services.tasks
    task = await tasks.create(TaskDraft(class_name=CLASS, id="t1"))
    await tasks.update_attachments(task.id, {"fps": 5})
    await tasks.cancel(task.id)
    await tasks.retry(task.id)
    await tasks.cancel(task.id)
    await tasks.delete(task.id)
    lines = [r for r in caplog.records if getattr(r, "task_id", None) == "t1"]
    assert [(r.change, r.by) for r in lines] == [
        ("created", "api"),
        ("attachments updated", "api"),
        ("cancelled", "api"),
        ("retried", "api"),
        ("cancelled", "api"),
        ("deleted", "api"),
    ]
    assert {r.name for r in lines} <= {"skalds.application.tasks", "skalds.application.changes"}
