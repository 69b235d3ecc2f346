"""Small builders so tests state only what matters to them."""

from __future__ import annotations

from typing import Any

from skalds.domain import lifecycle
from skalds.domain.lifecycle import TaskCommand
from skalds.domain.nodes import Node, NodeMode
from skalds.domain.task import Task, new_task


def a_task(task_id: str = "t1", **overrides: Any) -> Task:
    fields: dict[str, Any] = {"task_id": task_id, "class_name": "VideoWorker", "now": 1_000}
    fields.update(overrides)
    return new_task(**fields)


def running_task(task_id: str = "t1", executor: str = "n1", at: int = 2_000, **overrides: Any) -> Task:
    task, _ = lifecycle.apply(a_task(task_id, **overrides), TaskCommand.ASSIGN, at=at, executor=executor)
    task, _ = lifecycle.apply(task, TaskCommand.START, at=at + 100)
    return task


def a_node(node_id: str = "n1", *, now: int = 10_000, **overrides: Any) -> Node:
    fields: dict[str, Any] = {
        "id": node_id,
        "mode": NodeMode.NODE,
        "supported_classes": frozenset({"VideoWorker"}),
        "registered_at": now,
        "last_heartbeat_at": now,
    }
    fields.update(overrides)
    return Node(**fields)
