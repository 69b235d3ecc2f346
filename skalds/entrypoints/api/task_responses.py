"""The task as the API sends it: upstream's TaskResponse (reference §2.6, §15) plus our fields.

A msgspec Struct rather than a dict: Litestar encodes it natively with field names it has encoded once, it
is the response schema in OpenAPI, and building 20 of them for a page costs less than half what 20 dicts
of 33 keys did (the hot path of ``GET /api/tasks``; see bench/api_load.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import msgspec

from skalds.domain.heartbeat import HeartbeatReport
from skalds.domain.task import DesiredState, Task, TaskMode, TaskStatus
from skalds.domain.upstream_codes import to_upstream_code


class TaskResponse(msgspec.Struct, rename="camel"):
    """``heartbeat`` is upstream's integer code; ``error`` the worker's last reported error while it
    runs; ``exception`` the error that failed the task (both as upstream).

    Built positionally in ``task_response``: with 32 fields a keyword call costs ~15x a positional one.
    tests/unit/api/test_task_responses.py pins every field to its source, so a reordering is caught.
    """

    id: str
    class_name: str
    lifecycle_status: TaskStatus
    executor: str | None
    create_date_time: int
    update_date_time: int
    mode: TaskMode
    attachments: dict[str, Any]
    heartbeat: int
    error: str | None
    exception: str | None
    priority: int
    source: str
    name: str | None
    description: str | None
    deadline_date_time: int | None
    dependencies: tuple[str, ...]
    required_labels: dict[str, str]
    is_persistent: bool
    desired_state: DesiredState
    version: int
    attempt: int
    max_attempts: int
    assigned_at: int | None
    started_at: int | None
    finished_at: int | None
    last_error: str | None
    retry_at: int | None
    attachments_version: int
    applied_attachments_version: int | None
    progress: float | None
    pending_reason: str | None
    progress_total: float | None
    progress_unit: str | None
    progress_message: str | None
    cpu_percent: float | None  # its worker process's, as its node last measured it (100 = one CPU)
    memory_bytes: int | None  # and its resident memory


class TaskPageResponse(msgspec.Struct, rename="camel", kw_only=True):
    """Upstream's page envelope."""

    items: list[TaskResponse]
    total: int
    page: int
    page_size: int


_FAILED = TaskStatus.FAILED  # an enum member lookup costs a descriptor call on 3.11; this is the hot path


def _plain(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """The domain's frozen mappings as dicts: ``copy()`` of a proxy is the dict's own, ~5x ``dict(...)``."""
    return mapping.copy() if isinstance(mapping, MappingProxyType) else dict(mapping)


def task_response(
    task: Task, report: HeartbeatReport | None = None, pending_reason: str | None = None
) -> TaskResponse:
    failed = task.lifecycle_status is _FAILED
    return TaskResponse(
        task.id,
        task.class_name,
        task.lifecycle_status,
        task.executor,
        task.create_date_time,
        task.update_date_time,
        task.mode,
        _plain(task.attachments),  # attachments
        to_upstream_code(report) if report is not None else 0,  # heartbeat
        report.error if report is not None and not failed else None,  # error
        task.last_error if failed else None,  # exception
        task.priority,
        task.source,
        task.name,
        task.description,
        task.deadline_date_time,
        task.dependencies,
        _plain(task.required_labels),  # required_labels
        task.is_persistent,
        task.desired_state,
        task.version,
        task.attempt,
        task.max_attempts,
        task.assigned_at,
        task.started_at,
        task.finished_at,
        task.last_error,
        task.retry_at,
        task.attachments_version,
        task.applied_attachments_version,
        report.progress if report is not None else None,  # progress
        pending_reason,  # pending_reason
        report.progress_total if report is not None else None,  # progress_total
        report.progress_unit if report is not None else None,  # progress_unit
        report.progress_message if report is not None else None,  # progress_message
        report.cpu_percent if report is not None else None,  # cpu_percent
        report.memory_bytes if report is not None else None,  # memory_bytes
    )
