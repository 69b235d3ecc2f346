"""``POST /api/tasks/batch``'s wire shapes: a body of many create bodies in, the ids out.

Each item is read exactly as ``POST /api/tasks`` reads its body, and a refusal names the item
(``tasks[3].className``) so a client can point at the line it came from. The request's OpenAPI schema is
the single create's model, listed; the body itself is validated here, not by Litestar, so every refusal
has the API's one error shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, TypeAlias

import msgspec
from litestar.enums import RequestEncodingType
from litestar.params import Body
from pydantic import ValidationError as PydanticValidationError

from skalds.application.tasks import TaskDraft
from skalds.domain.errors import ValidationError
from skalds.domain.task import Task
from skalds.entrypoints.api.schemas import CreateTaskRequest

BATCH_DESCRIPTION = """\
Request: `{"tasks": [<a POST /api/tasks body>, ...]}`, 1 to `controller.max_batch_tasks` items (default
1,000). All or none: every item is checked first, as a single create checks its body.

201: `{"success": true, "message": "N tasks created", "data": {"ids": [...]}}`, the ids in item order (the
SuccessResponse envelope of the other mutations).

422 `VALIDATION_ERROR`, nothing created: `field` names the first bad item and its field, and `message`
starts with it: `tasks[3].className: unknown worker class 'X'; known: ...`, `tasks[0]: must be an object`,
`tasks[2].id: task 'a' already exists` (or `'a' is already the id of tasks[0]`). An empty list or more
than the limit is a 422 on `tasks`.

413 `TOO_LARGE`: a body over `limits.batch_body_bytes` (16 MiB). 409 `ALREADY_EXISTS`: another writer
took an id during the insert; on MongoDB the tasks before it in the list were created.
"""

_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}

BatchBody: TypeAlias = Annotated[
    dict[str, Any],
    Body(
        media_type=RequestEncodingType.JSON,
        title="CreateTaskBatchRequest",
        description="1 to controller.max_batch_tasks (default 1,000) create bodies, as POST /api/tasks takes",
        schema_extra={
            "required": ["tasks"],
            "additional_properties": False,
            "properties": {
                "tasks": {
                    "type": "array",
                    "minItems": 1,
                    "items": CreateTaskRequest.model_json_schema(by_alias=True),
                }
            },
        },
    ),
]
"""The body as a plain object; the OpenAPI schema shows what ``batch_drafts`` accepts."""


class CreatedIds(msgspec.Struct):
    ids: list[str]


class BatchCreatedResponse(msgspec.Struct):
    """Upstream's SuccessResponse envelope, as the other mutations answer: ``data.ids`` in item order."""

    success: bool
    message: str
    data: CreatedIds


def batch_drafts(body: dict[str, Any], limit: int) -> list[TaskDraft]:
    """Every item read, or the first refusal; the count is checked first, so a huge batch costs nothing."""
    extra = sorted(set(body) - {"tasks"})
    if extra:
        raise ValidationError(extra[0], 'is not a field of a batch; send {"tasks": [<create body>, ...]}')
    items = body.get("tasks")
    if not isinstance(items, list):
        raise ValidationError("tasks", f"must be an array of create bodies, got {_json_type(items)}")
    if not items:
        raise ValidationError("tasks", "must list at least one task")
    if len(items) > limit:
        raise ValidationError(
            "tasks", f"at most {limit} tasks per request (controller.max_batch_tasks), got {len(items)}"
        )
    return [_draft(index, item) for index, item in enumerate(items)]


def batch_created(tasks: Sequence[Task]) -> BatchCreatedResponse:
    count = len(tasks)
    message = f"{count} task{'' if count == 1 else 's'} created"
    return BatchCreatedResponse(success=True, message=message, data=CreatedIds(ids=[t.id for t in tasks]))


def _draft(index: int, item: Any) -> TaskDraft:
    if not isinstance(item, dict):
        raise ValidationError(
            f"tasks[{index}]", f"must be an object (a POST /api/tasks body), got {_json_type(item)}"
        )
    try:
        return CreateTaskRequest.model_validate(item).draft()
    except PydanticValidationError as error:
        problem = error.errors()[0]
        where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in problem["loc"])
        raise ValidationError(f"tasks[{index}]{where}", problem["msg"]) from None


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), "a number" if isinstance(value, int | float) else "an unknown type")
