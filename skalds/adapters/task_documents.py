"""Task <-> a camelCase document: upstream Skalds' task document plus the fields it lacked, the one form
the MongoDB and SQLite repositories store.

Upstream wrote ``Task.model_dump(by_alias=True)`` with no ``version``; such documents load with the Task
defaults for whatever is missing or null. ``requiredLabels`` is stored as ``[{"key", "value"}]`` pairs, so
label keys such as ``kubernetes.io/arch`` are fine.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, TypeVar

from skalds.domain.errors import ValidationError
from skalds.domain.task import DEFAULT_MAX_ATTEMPTS, DesiredState, Task, TaskMode, TaskStatus

_Enum = TypeVar("_Enum", bound=StrEnum)


def task_to_document(task: Task) -> dict[str, Any]:
    """Every field, by its camelCase wire name; attachments as a plain dict, unchecked (each store checks
    what it cannot hold)."""
    return {
        "id": task.id,
        "className": task.class_name,
        "source": task.source,
        "name": task.name,
        "description": task.description,
        "executor": task.executor,
        "dependencies": list(task.dependencies),
        "mode": task.mode.value,
        "isPersistent": task.is_persistent,
        "createDateTime": task.create_date_time,
        "updateDateTime": task.update_date_time,
        "deadlineDateTime": task.deadline_date_time,
        "lifecycleStatus": task.lifecycle_status.value,
        "priority": task.priority,
        "attachments": dict(task.attachments),
        "version": task.version,
        "attempt": task.attempt,
        "maxAttempts": task.max_attempts,
        "desiredState": task.desired_state.value,
        "lastError": task.last_error,
        "retryAt": task.retry_at,
        "attachmentsVersion": task.attachments_version,
        "appliedAttachmentsVersion": task.applied_attachments_version,
        "assignedAt": task.assigned_at,
        "startedAt": task.started_at,
        "finishedAt": task.finished_at,
        "requiredLabels": [{"key": k, "value": v} for k, v in sorted(task.required_labels.items())],
    }


def task_from_document(doc: Mapping[str, Any]) -> Task:
    """The stored task; missing or null fields take the Task defaults (upstream documents lack many).

    Raises ValidationError naming the field when a stored value cannot be a Task field at all."""
    task_id = doc.get("id")
    if not isinstance(task_id, str):
        raise ValidationError("id", f"stored document {doc.get('_id')!r} has no string id: {task_id!r}")
    try:
        return Task(
            id=task_id,
            class_name=str(doc.get("className") or ""),
            source=str(_or(doc, "source", "api")),
            name=doc.get("name"),
            description=doc.get("description"),
            executor=doc.get("executor"),
            mode=_enum(TaskMode, doc, "mode", TaskMode.PASSIVE),
            priority=int(_or(doc, "priority", 0)),
            attachments=_mapping(doc, "attachments"),
            attachments_version=int(_or(doc, "attachmentsVersion", 1)),
            applied_attachments_version=_int_or_none(doc, "appliedAttachmentsVersion"),
            create_date_time=int(_or(doc, "createDateTime", 0)),
            update_date_time=int(_or(doc, "updateDateTime", 0)),
            deadline_date_time=_int_or_none(doc, "deadlineDateTime"),
            dependencies=tuple(str(d) for d in _or(doc, "dependencies", ())),
            required_labels=_labels(doc.get("requiredLabels")),
            is_persistent=bool(_or(doc, "isPersistent", True)),
            lifecycle_status=_enum(TaskStatus, doc, "lifecycleStatus", TaskStatus.CREATED),
            desired_state=_enum(DesiredState, doc, "desiredState", DesiredState.RUN),
            version=int(_or(doc, "version", 1)),
            attempt=int(_or(doc, "attempt", 0)),
            max_attempts=int(_or(doc, "maxAttempts", DEFAULT_MAX_ATTEMPTS)),
            assigned_at=_int_or_none(doc, "assignedAt"),
            started_at=_int_or_none(doc, "startedAt"),
            finished_at=_int_or_none(doc, "finishedAt"),
            last_error=doc.get("lastError"),
            retry_at=_int_or_none(doc, "retryAt"),
        )
    except (TypeError, ValueError) as error:
        raise ValidationError("document", f"stored task {task_id!r} is malformed: {error}") from None


def _or(doc: Mapping[str, Any], key: str, default: Any) -> Any:
    value = doc.get(key)
    return default if value is None else value


def _int_or_none(doc: Mapping[str, Any], key: str) -> int | None:
    value = doc.get(key)
    return None if value is None else int(value)


def _enum(kind: type[_Enum], doc: Mapping[str, Any], key: str, default: _Enum) -> _Enum:
    value = doc.get(key)
    if value is None:
        return default
    try:
        return kind(value)
    except ValueError:
        valid = ", ".join(member.value for member in kind)
        raise ValidationError(key, f"stored value {value!r} is not one of {valid}") from None


def _mapping(doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = doc.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(key, f"stored value must be an object or null, got {type(value).__name__}")
    return value


def _labels(value: Any) -> dict[str, str]:
    """Our ``[{"key", "value"}]`` pairs; a plain object (hand-written documents) is accepted too."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    try:
        return {str(pair["key"]): str(pair["value"]) for pair in value}
    except (KeyError, TypeError):
        raise ValidationError(
            "requiredLabels", f"stored value {value!r} is not a list of key/value pairs"
        ) from None
