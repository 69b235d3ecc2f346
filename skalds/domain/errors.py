"""One error root for everything Skalds raises on purpose.

The API maps these classes to HTTP status codes in one place; services never choose a status code.
"""

from __future__ import annotations


class SkaldsError(Exception):
    """Root of every error Skalds raises deliberately."""


class DomainError(SkaldsError):
    """A rule of the domain refused a change."""


class IllegalTransitionError(DomainError):
    """A lifecycle change the transition table (or one of its guards) does not allow."""

    def __init__(self, task_id: str, from_status: str, command: str, to_status: str | None, reason: str):
        self.task_id = task_id
        self.from_status = from_status
        self.command = command
        self.to_status = to_status
        self.reason = reason
        target = f" to {to_status}" if to_status else ""
        super().__init__(f"task {task_id!r}: cannot {command} from {from_status}{target}: {reason}")


class ValidationError(DomainError):
    """A value is out of its allowed range; names the field and what would have been valid."""

    def __init__(self, field: str, reason: str):
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class TaskNotFoundError(SkaldsError):
    """No task has this id."""

    def __init__(self, task_id: str):
        self.task_id = task_id
        super().__init__(f"task {task_id!r} not found")


class TaskAlreadyExistsError(SkaldsError):
    """A task with this id is already stored."""

    def __init__(self, task_id: str):
        self.task_id = task_id
        super().__init__(f"task {task_id!r} already exists")


class ConflictError(SkaldsError):
    """A compare-and-set lost: someone else changed the task since it was read."""

    def __init__(self, task_id: str, expected_version: int, actual_version: int | None):
        self.task_id = task_id
        self.expected_version = expected_version
        self.actual_version = actual_version
        found = "it no longer exists" if actual_version is None else f"found version {actual_version}"
        super().__init__(
            f"task {task_id!r} was changed concurrently: expected version {expected_version}, {found}"
        )


class NodeNotFoundError(SkaldsError):
    """No skald node has this id."""

    def __init__(self, node_id: str):
        self.node_id = node_id
        super().__init__(f"skald {node_id!r} not found")


class BackendUnavailableError(SkaldsError):
    """A backing service (Kafka, Redis, MongoDB) did not answer; the operation may be retried later.

    Adapters raise this instead of their driver's exceptions, so callers can tell "down" from "missing"."""

    def __init__(self, backend: str, detail: str):
        self.backend = backend
        self.detail = detail
        super().__init__(f"{backend} is unavailable: {detail}")


class AlertNotFoundError(SkaldsError):
    """No alert or silence has this id (``kind`` says which was looked for)."""

    def __init__(self, kind: str, item_id: str):
        self.kind = kind
        self.item_id = item_id
        super().__init__(f"{kind} {item_id!r} not found")


class AlertStateError(DomainError):
    """An alert or silence is in a state that does not allow the change (ack a resolved alert, expire an
    expired silence): a 409 that names what it is and what was asked."""

    def __init__(self, kind: str, item_id: str, status: str, command: str, reason: str):
        self.kind = kind
        self.item_id = item_id
        self.status = status
        self.command = command
        self.reason = reason
        super().__init__(f"{kind} {item_id!r}: cannot {command} while {status}: {reason}")
