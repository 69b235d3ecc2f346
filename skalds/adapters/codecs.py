"""Upstream Skalds' wire payloads, for the Kafka and Redis adapters in mixed deployments.

Upstream's controller wrote ``taskIds`` (by alias) while its examples wrote ``task_ids``; both are accepted.
Malformed payloads raise ``ValidationError`` naming the wire field, so a consumer can park the message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from skalds.domain.errors import ValidationError

_Model = TypeVar("_Model", bound=BaseModel)


class UpstreamTaskEvent(BaseModel):
    """Upstream's ``TaskEvent`` on ``task.assign``, ``task.cancel`` and ``task.update.attachment``."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    id: str | None = None
    title: str | None = None
    initiator: str | None = None
    recipient: str | None = None
    create_date_time: int | None = Field(default=None, alias="createDateTime")
    update_date_time: int | None = Field(default=None, alias="updateDateTime")
    task_ids: list[str] = Field(alias="taskIds", validation_alias=AliasChoices("taskIds", "task_ids"))

    def dump(self) -> dict[str, Any]:
        """The controller's form: camelCase aliases, nulls kept."""
        return self.model_dump(mode="json", by_alias=True)


class UpstreamTaskWorkerUpdate(BaseModel):
    """``taskworker.update``: new attachments for a running worker (upstream sent field names)."""

    attachments: dict[str, Any] | None = None

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class UpstreamInventoryEntry(BaseModel):
    """One running worker in a skald's inventory; upstream's monitor reads ``class_name``."""

    id: str
    class_name: str = Field(validation_alias=AliasChoices("class_name", "className"))


class UpstreamInventory(BaseModel):
    """``skalds:{id}:all-task``: upstream wrote and read snake_case keys; so do we (aliases accepted in)."""

    tasks: list[UpstreamInventoryEntry] = Field(default_factory=list)
    existed_task_ids: list[str] = Field(
        default_factory=list, validation_alias=AliasChoices("existed_task_ids", "existedTaskIds")
    )
    timestamp: int = 0

    def dump(self) -> dict[str, Any]:
        """Snake_case keys exactly as upstream's ``model_dump_json()`` wrote them."""
        return self.model_dump(mode="json")


def parse_upstream_task_event(raw: bytes | str | Mapping[str, Any]) -> UpstreamTaskEvent:
    return _parse(UpstreamTaskEvent, raw)


def parse_upstream_taskworker_update(raw: bytes | str | Mapping[str, Any]) -> UpstreamTaskWorkerUpdate:
    return _parse(UpstreamTaskWorkerUpdate, raw)


def parse_upstream_inventory(raw: bytes | str | Mapping[str, Any]) -> UpstreamInventory:
    return _parse(UpstreamInventory, raw)


def _parse(model: type[_Model], raw: bytes | str | Mapping[str, Any]) -> _Model:
    """The payload as ``model``, or ValidationError naming the first bad wire field ("payload": not JSON)."""
    try:
        return model.model_validate(json_object(raw))
    except PydanticValidationError as error:
        problems = error.errors()
        first = problems[0]
        field = ".".join(str(part) for part in first["loc"]) or "payload"
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise ValidationError(field, first["msg"] + more) from None


def json_object(raw: bytes | str | Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A message value as a JSON object, or ValidationError on "payload" saying why it is not one."""
    if raw is None:
        raise ValidationError("payload", "the message has no value")
    if isinstance(raw, Mapping):
        return raw
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise ValidationError("payload", f"not JSON: {error}") from None
    if not isinstance(value, Mapping):
        raise ValidationError("payload", f"expected a JSON object, got {type(value).__name__}")
    return value
