"""Task <-> MongoDB document: the shared camelCase document (adapters/task_documents.py), checked for
what BSON and the server refuse.

We write ``_id = id`` so the server finds our documents by its primary key, and never rely on it for
upstream's (an ObjectId). Attachments are user data, checked here before any write: a key or value the
server would refuse (a key with "." or a leading "$", NaN, an integer beyond 64 bits, a type BSON has no
form for) raises ValidationError naming its path, instead of a driver error halfway through a batch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from skalds.adapters import task_documents
from skalds.adapters.task_documents import task_from_document
from skalds.domain.errors import ValidationError
from skalds.domain.task import Task

__all__ = ["checked_attachments", "task_from_document", "task_to_document"]

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def task_to_document(task: Task) -> dict[str, Any]:
    """The fields to store, without ``_id`` (set once, on insert); ValidationError for bad attachments."""
    document = task_documents.task_to_document(task)
    document["attachments"] = checked_attachments(task.attachments)
    return document


def checked_attachments(attachments: Mapping[str, Any]) -> dict[str, Any]:
    """A plain copy the server accepts on MongoDB and FerretDB alike, or ValidationError naming the path."""
    return _checked_mapping(attachments, "attachments")


def _checked_mapping(mapping: Mapping[Any, Any], path: str) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    for key, value in mapping.items():
        if not isinstance(key, str):
            raise ValidationError("attachments", f"key {key!r} at {path} must be a string")
        if "." in key or key.startswith("$") or "\x00" in key:
            raise ValidationError(
                "attachments",
                f"key {key!r} at {path} cannot be stored: keys must not contain '.' or NUL "
                "or start with '$' (MongoDB field-name rules)",
            )
        checked[key] = _checked_value(value, f"{path}.{key}")
    return checked


def _checked_value(value: Any, path: str) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValidationError("attachments", f"{path} = {value} does not fit in a 64-bit integer")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError("attachments", f"{path} = {value} cannot be stored: use a finite number")
        return value
    if isinstance(value, Mapping):
        return _checked_mapping(value, path)
    if isinstance(value, list | tuple):
        return [_checked_value(item, f"{path}[{i}]") for i, item in enumerate(value)]
    raise ValidationError(
        "attachments",
        f"{path} is a {type(value).__name__}; expected JSON values (object, array, string, number, "
        "true/false, null)",
    )
