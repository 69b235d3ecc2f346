"""The task document codec: every field survives a round trip, upstream's documents load with the Task
defaults, and attachments the server would refuse are refused here, naming the path."""

from __future__ import annotations

import math
from typing import Any

import pytest
from bson import ObjectId

from skalds.adapters.mongo.documents import task_from_document, task_to_document
from skalds.domain import lifecycle
from skalds.domain.errors import ValidationError
from skalds.domain.lifecycle import TaskCommand
from skalds.domain.task import DEFAULT_MAX_ATTEMPTS, DesiredState, Task, TaskMode, TaskStatus, new_task


def full_task() -> Task:
    task = new_task(
        task_id="cam-1",
        class_name="Video",
        now=1_000,
        source="yaml",
        name="Camera 1",
        description="front door",
        mode=TaskMode.PASSIVE_PROCESS,
        priority=7,
        attachments={"url": "rtsp://cam/1", "nested": {"fps": 10, "zones": [1, 2.5, None, True]}},
        deadline_date_time=99_000,
        dependencies=("t0", "t1"),
        required_labels={"gpu": "a100", "kubernetes.io/arch": "amd64"},
        max_attempts=5,
        is_persistent=False,
    )
    task = lifecycle.apply(task, TaskCommand.ASSIGN, at=2_000, executor="n1")[0]
    return lifecycle.apply(task, TaskCommand.FAIL, at=3_000, error="boom", retry_at=4_000)[0]


def test_a_task_survives_the_round_trip() -> None:
    task = full_task()
    assert task_from_document(task_to_document(task)) == task
    assert task_from_document({"_id": "cam-1", **task_to_document(task)}) == task


def test_the_document_is_upstreams_camel_case_shape_plus_the_new_fields() -> None:
    doc = task_to_document(full_task())
    assert list(doc)[:15] == [
        "id", "className", "source", "name", "description", "executor", "dependencies", "mode",
        "isPersistent", "createDateTime", "updateDateTime", "deadlineDateTime", "lifecycleStatus",
        "priority", "attachments",
    ]  # fmt: skip
    assert {k: doc[k] for k in ("mode", "lifecycleStatus", "desiredState", "version", "attempt")} == {
        "mode": "PassiveProcess",
        "lifecycleStatus": "Failed",
        "desiredState": "run",
        "version": 3,
        "attempt": 1,
    }
    assert (doc["lastError"], doc["retryAt"], doc["maxAttempts"], doc["dependencies"]) == (
        "boom",
        4_000,
        5,
        ["t0", "t1"],
    )
    assert doc["requiredLabels"] == [
        {"key": "gpu", "value": "a100"},
        {"key": "kubernetes.io/arch", "value": "amd64"},
    ]
    assert "_id" not in doc


def upstream_document(**fields: Any) -> dict[str, Any]:
    """Reference §7.2: ObjectId ``_id``, no ``version`` and none of the new fields."""
    return {
        "_id": ObjectId(),
        "id": "task_123",
        "className": "MySimpleWorker",
        "lifecycleStatus": "Running",
        "createDateTime": 1724131200000,
        **fields,
    }


def test_an_upstream_document_loads_with_the_task_defaults() -> None:
    task = task_from_document(upstream_document(attachments=None, dependencies=None))
    assert (task.id, task.class_name, task.lifecycle_status, task.create_date_time) == (
        "task_123",
        "MySimpleWorker",
        TaskStatus.RUNNING,
        1724131200000,
    )
    assert (task.version, task.attempt, task.max_attempts, task.attachments_version) == (
        1,
        0,
        DEFAULT_MAX_ATTEMPTS,
        1,
    )
    assert (task.mode, task.desired_state, task.source, task.priority, task.is_persistent) == (
        TaskMode.PASSIVE,
        DesiredState.RUN,
        "api",
        0,
        True,
    )
    assert (task.attachments, task.dependencies, task.required_labels, task.executor) == ({}, (), {}, None)
    full = upstream_document(
        source="TestingScript", executor="skald_1", mode="Active", priority=3, isPersistent=False,
        attachments={"rtspUrl": "rtsp://x", "fixFrame": 10}, dependencies=["a"], deadlineDateTime=0,
    )  # fmt: skip
    task = task_from_document(full)
    assert (task.source, task.executor, task.mode, task.priority, task.is_persistent) == (
        "TestingScript",
        "skald_1",
        TaskMode.ACTIVE,
        3,
        False,
    )
    assert (task.attachments, task.dependencies, task.deadline_date_time) == (
        {"rtspUrl": "rtsp://x", "fixFrame": 10},
        ("a",),
        0,
    )


def test_labels_written_by_hand_as_an_object_load_too() -> None:
    task = task_from_document(upstream_document(requiredLabels={"gpu": "a100"}))
    assert task.required_labels == {"gpu": "a100"}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"lifecycleStatus": "Exploded"}, "lifecycleStatus"),
        ({"mode": "Sideways"}, "mode"),
        ({"attachments": [1, 2]}, "attachments"),
        ({"requiredLabels": ["gpu"]}, "requiredLabels"),
        ({"priority": "high"}, "document"),
        ({"priority": 11}, "priority"),
        ({"id": None}, "id"),
    ],
)
def test_a_malformed_stored_document_names_the_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        task_from_document(upstream_document(**fields))
    assert refused.value.field == field


@pytest.mark.parametrize(
    ("attachments", "path"),
    [
        ({"a.b": 1}, "'a.b' at attachments"),
        ({"$where": "x"}, "'$where' at attachments"),
        ({"outer": {"in.ner": 1}}, "attachments.outer"),
        ({"list": [{"$x": 1}]}, "attachments.list[0]"),
        ({1: "x"}, "key 1"),
        ({"x": math.nan}, "attachments.x"),
        ({"x": [1, math.inf]}, "attachments.x[1]"),
        ({"x": 2**63}, "attachments.x"),
        ({"x": {1, 2}}, "attachments.x is a set"),
    ],
)
def test_attachments_the_server_would_refuse_are_refused_naming_the_path(
    attachments: dict[Any, Any], path: str
) -> None:
    task = new_task(task_id="t1", class_name="Video", now=0, attachments=attachments)
    with pytest.raises(ValidationError) as refused:
        task_to_document(task)
    assert refused.value.field == "attachments"
    assert path in refused.value.reason


def test_edge_values_that_the_server_accepts_are_kept() -> None:
    attachments = {"big": 2**63 - 1, "small": -(2**63), "empty": {}, "tuple": (1, 2), "unicode": "é€", "": 0}
    doc = task_to_document(new_task(task_id="t1", class_name="Video", now=0, attachments=attachments))
    assert doc["attachments"] == {**attachments, "tuple": [1, 2]}
