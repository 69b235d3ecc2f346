"""What makes a client's new task (or new attachments) acceptable, checked before anything is stored.

Shared by single and batch creation, so both refuse the same things with the same words; a batch item's
refusal names the item (``tasks[3].className``), so one answer points at the line to fix.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from skalds.domain.errors import ValidationError
from skalds.domain.ports import WorkerCatalog
from skalds.domain.task import Task

MAX_ID_LENGTH = 200
MAX_ATTACHMENTS_BYTES = 1_048_576


@dataclass(frozen=True, slots=True, kw_only=True)
class DraftLimits:
    """How big a client's task may be: every list page, event and in-memory copy carries all of it, so a few
    unbounded tasks would make every page megabytes (``limits.*`` in the settings)."""

    text_chars: int = 10_000  # name, description, source, each
    dependencies: int = 1_000
    labels: int = 64
    label_chars: int = 200  # each required label's key and value, each dependency
    attachments_bytes: int = MAX_ATTACHMENTS_BYTES


def check_sizes(
    limits: DraftLimits,
    *,
    texts: Mapping[str, str | None],
    dependencies: Sequence[str],
    required_labels: Mapping[str, str],
) -> None:
    """ValidationError naming the first field over its limit, and the limit's setting."""
    for field, text in texts.items():
        if text is not None and len(text) > limits.text_chars:
            raise ValidationError(
                field, f"must be at most {limits.text_chars} characters (limits.text_chars), got {len(text)}"
            )
    if len(dependencies) > limits.dependencies:
        raise ValidationError(
            "dependencies",
            f"must list at most {limits.dependencies} tasks (limits.dependencies), got {len(dependencies)}",
        )
    for index, dependency in enumerate(dependencies):
        if len(dependency) > limits.label_chars:
            raise ValidationError(
                f"dependencies[{index}]",
                f"must be at most {limits.label_chars} characters (limits.label_chars)",
            )
    if len(required_labels) > limits.labels:
        raise ValidationError(
            "requiredLabels",
            f"must hold at most {limits.labels} labels (limits.labels), got {len(required_labels)}",
        )
    for key, value in required_labels.items():
        if len(key) > limits.label_chars or len(value) > limits.label_chars:
            raise ValidationError(
                f"requiredLabels.{key[:40]}",
                f"keys and values must be at most {limits.label_chars} characters (limits.label_chars)",
            )


MAX_ATTACHMENTS_DEPTH = 32  # objects and lists inside one another; deeper is no configuration, and it
# would exhaust the recursion of every encoder on the way to the store


ID_UNSAFE = frozenset("/?#%\\")  # would change what /api/tasks/{id} means, or needs escaping to mean it
RESERVED_IDS = frozenset({".", "..", "classnames"})  # a URL normaliser eats the dots; a route has the word


def checked_id(task_id: str) -> str:
    """An id that ``/api/tasks/{id}`` reaches as written (docs/api.md, "Task ids")."""
    if not task_id or len(task_id) > MAX_ID_LENGTH:
        raise ValidationError("id", f"must be 1 to {MAX_ID_LENGTH} characters, got {len(task_id)}")
    if any(ch.isspace() or ch in ID_UNSAFE for ch in task_id) or not task_id.isprintable():
        raise ValidationError(
            "id", f"must not contain whitespace, control characters or any of / ? # % \\: {task_id!r}"
        )
    if task_id in RESERVED_IDS:
        raise ValidationError("id", f"{task_id!r} is reserved: it cannot be reached as /api/tasks/{task_id}")
    return task_id


def _depth(value: Any) -> int:
    """How deep objects and lists nest in ``value`` (iterative: the value may be deeper than the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, Mapping) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_ATTACHMENTS_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def checked_attachments(
    catalog: WorkerCatalog,
    class_name: str,
    attachments: Mapping[str, Any],
    *,
    max_bytes: int = MAX_ATTACHMENTS_BYTES,
) -> Mapping[str, Any]:
    """The attachments as the class's model accepts them; a catalog that knows no class cannot judge."""
    if not isinstance(attachments, Mapping):
        raise ValidationError("attachments", f"must be a JSON object, got {type(attachments).__name__}")
    if _depth(attachments) > MAX_ATTACHMENTS_DEPTH:
        raise ValidationError(
            "attachments", f"must nest at most {MAX_ATTACHMENTS_DEPTH} objects or lists deep"
        )
    try:
        # dict(): a stored task's attachments are a read-only view of one
        size = len(json.dumps(dict(attachments), separators=(",", ":"), allow_nan=False))
    except (TypeError, ValueError) as error:
        raise ValidationError("attachments", f"must be JSON-serialisable: {error}") from error
    if size > max_bytes:
        raise ValidationError(
            "attachments", f"must be at most {max_bytes} bytes as JSON (limits.attachments_bytes), got {size}"
        )
    known = catalog.class_names()
    if not known:
        return attachments
    if class_name not in known:
        raise ValidationError(
            "className", f"unknown worker class {class_name!r}; known: {', '.join(sorted(known))}"
        )
    return catalog.validate_attachments(class_name, attachments)


@contextmanager
def batch_item(index: int) -> Iterator[None]:
    """A ValidationError raised inside names the batch item: ``className`` becomes ``tasks[3].className``."""
    try:
        yield
    except ValidationError as error:
        raise ValidationError(f"tasks[{index}].{error.field}", error.reason) from None


def check_unique_ids(tasks: Sequence[Task]) -> None:
    """Two items of one batch with the same id: the later one is named, and the earlier one in the reason."""
    first: dict[str, int] = {}
    for index, task in enumerate(tasks):
        earlier = first.setdefault(task.id, index)
        if earlier != index:
            raise ValidationError(
                f"tasks[{index}].id", f"{task.id!r} is already the id of tasks[{earlier}]; ids must differ"
            )
