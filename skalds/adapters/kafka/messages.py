"""The wire codec: node commands and domain events as UTF-8 JSON, and back.

Commands keep upstream's ``TaskEvent`` envelope, so an upstream node still understands ``task.assign`` and
``task.cancel``: ``{"id", "title": "<CommandClass>", "initiator": "skalds", "recipient": nodeId,
"createDateTime", "updateDateTime", "taskIds": [taskId], "skalds": {version, attempt, attachments,
attachmentsVersion}}``. An envelope without ``recipient`` or ``skalds`` comes from upstream's client scripts
and is refused (the consumer parks it): tasks are created through the API now. Events are
``{"type": "<EventClass>", ...fields in camelCase}``, decoded by a registry of every ``DomainEvent``
subclass; pydantic restores enums and tuples. Anything malformed raises ``ValidationError`` naming the wire
field, so the consumer can say why it parked a message.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from operator import attrgetter
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from skalds.adapters.codecs import (
    UpstreamTaskEvent,
    UpstreamTaskWorkerUpdate,
    json_object,
    parse_upstream_task_event,
)
from skalds.domain.commands import NodeCommand, UpdateTaskAttachments
from skalds.domain.errors import ValidationError
from skalds.domain.events import DomainEvent
from skalds.domain.upstream_requests import UpstreamRequest, UpstreamRequestKind

UPSTREAM_FORM = (
    "an upstream-form TaskEvent (no 'recipient' and 'skalds' fields): a request for the control plane's "
    "upstream intake (docs/upstream.md), not a command a node obeys"
)


class UpstreamFormError(ValidationError):
    """A command topic's message in upstream's form: the controller's intake acts on it, nodes skip it."""


_ENVELOPE_WIRE_NAMES: Mapping[str, str] = MappingProxyType(
    {"task_id": "taskIds", "node_id": "recipient", "at": "createDateTime"}
)

M = TypeVar("M")


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _subclasses(base: type[M]) -> Iterator[type[M]]:
    """Every class below ``base`` that its module defines (``slots=True`` leaves a discarded twin behind)."""
    for subclass in base.__subclasses__():
        if vars(sys.modules[subclass.__module__]).get(subclass.__name__) is subclass:
            yield subclass
        yield from _subclasses(subclass)


@dataclass(frozen=True, slots=True)
class _Shape(Generic[M]):
    """One message class: its fields by wire name, and a validator that builds it."""

    cls: type[M]
    adapter: TypeAdapter[M]
    by_wire_name: Mapping[str, str]
    values: Callable[[M], tuple[Any, ...]]  # the field values, in ``by_wire_name`` order

    @classmethod
    def of(cls, message_class: type[M]) -> _Shape[M]:
        names = [f.name for f in fields(message_class)]  # type: ignore[arg-type]
        getter = attrgetter(*names)
        values = getter if len(names) > 1 else lambda message: (getter(message),)
        return cls(message_class, TypeAdapter(message_class), {camel(n): n for n in names}, values)

    def wire_values(self, message: M) -> dict[str, Any]:
        return dict(zip(self.by_wire_name, self.values(message), strict=True))

    def build(self, values: Mapping[str, Any], wire_name: Callable[[str], str]) -> M:
        try:
            return self.adapter.validate_python(values)
        except PydanticValidationError as error:
            problems = error.errors()
            loc = [str(part) for part in problems[0]["loc"]]
            field = ".".join([wire_name(loc[0]), *loc[1:]]) if loc else "payload"
            more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
            raise ValidationError(field, problems[0]["msg"] + more) from None


def _registry(base: type[M]) -> dict[str, _Shape[M]]:
    shapes: dict[str, _Shape[M]] = {}
    for subclass in _subclasses(base):
        if subclass.__name__ in shapes and shapes[subclass.__name__].cls is not subclass:
            raise ValueError(
                f"two {base.__name__} classes are named {subclass.__name__}; wire names must differ"
            )
        shapes[subclass.__name__] = _Shape.of(subclass)
    return shapes


def _plain(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _dumps(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=_plain).encode()


class WireCodec:
    """Built once per bus: walking the class hierarchy is start-up work, not import-time work."""

    def __init__(self) -> None:
        self._events = _registry(DomainEvent)
        self._commands = _registry(NodeCommand)

    def encode_event(self, event: DomainEvent) -> bytes:
        shape = self._shape(self._events, event)
        return _dumps({"type": type(event).__name__, **shape.wire_values(event)})

    def decode_event(self, value: bytes | None) -> DomainEvent:
        payload = json_object(value)
        kind = payload.get("type")
        if not isinstance(kind, str):
            raise ValidationError("type", "missing; expected an event class name such as 'TaskCreated'")
        shape = self._events.get(kind)
        if shape is None:
            raise ValidationError("type", f"{kind!r} is not a Skalds event")
        values = {shape.by_wire_name[k]: v for k, v in payload.items() if k in shape.by_wire_name}
        return shape.build(values, camel)

    def encode_command(self, command: NodeCommand) -> bytes:
        shape = self._shape(self._commands, command)
        extras = {
            wire: value
            for wire, value in shape.wire_values(command).items()
            if shape.by_wire_name[wire] not in _ENVELOPE_WIRE_NAMES
        }
        envelope = UpstreamTaskEvent.model_validate(
            {
                "id": command.task_id,
                "title": type(command).__name__,
                "initiator": "skalds",
                "recipient": command.node_id,
                "createDateTime": command.at,
                "updateDateTime": command.at,
                "taskIds": [command.task_id],
            }
        ).dump()
        return _dumps({**envelope, "skalds": extras})

    def decode_command(self, value: bytes | None) -> NodeCommand:
        payload = json_object(value)
        envelope = parse_upstream_task_event(payload)
        extras = payload.get("skalds")
        if envelope.recipient is None and extras is None and envelope.task_ids:
            raise UpstreamFormError("recipient", UPSTREAM_FORM)
        if envelope.recipient is None or extras is None:
            missing = "recipient" if envelope.recipient is None else "skalds"
            raise ValidationError(missing, "a Skalds command has both 'recipient' and 'skalds'")
        if not isinstance(extras, dict):
            raise ValidationError("skalds", f"expected a JSON object, got {type(extras).__name__}")
        shape = self._commands.get(envelope.title or "")
        if shape is None:
            known = ", ".join(sorted(self._commands))
            raise ValidationError(
                "title", f"{envelope.title!r} is not a Skalds command; expected one of {known}"
            )
        if len(envelope.task_ids) != 1:
            raise ValidationError(
                "taskIds", f"a command names exactly one task, got {len(envelope.task_ids)}"
            )
        task_id = envelope.task_ids[0]
        if envelope.id not in (None, task_id):
            raise ValidationError("id", f"{envelope.id!r} differs from taskIds[0] {task_id!r}")
        if envelope.create_date_time is None:
            raise ValidationError("createDateTime", "required (epoch milliseconds)")
        values = {shape.by_wire_name[k]: v for k, v in extras.items() if k in shape.by_wire_name}
        values.update(task_id=task_id, node_id=envelope.recipient, at=envelope.create_date_time)
        return shape.build(values, lambda name: _ENVELOPE_WIRE_NAMES.get(name) or f"skalds.{camel(name)}")

    def decode_upstream_request(
        self, kind: UpstreamRequestKind, value: bytes | None
    ) -> UpstreamRequest | None:
        """The request an upstream-form message makes, or None for one of our own commands; ValidationError
        for a message that is neither (the nodes park those)."""
        payload = json_object(value)
        if payload.get("skalds") is not None or payload.get("recipient") is not None:
            return None
        envelope = parse_upstream_task_event(payload)
        if not envelope.task_ids:
            raise ValidationError("taskIds", "names no task")
        return UpstreamRequest(kind=kind, task_ids=tuple(envelope.task_ids), at=envelope.create_date_time)

    def encode_worker_update(self, command: UpdateTaskAttachments) -> bytes:
        """Upstream's ``taskworker.update`` value, for upstream workers in a mixed deployment."""
        return _dumps(UpstreamTaskWorkerUpdate(attachments=dict(command.attachments)).dump())

    @staticmethod
    def _shape(registry: Mapping[str, _Shape[M]], message: object) -> _Shape[M]:
        shape = registry.get(type(message).__name__)
        if shape is None or shape.cls is not type(message):
            raise TypeError(
                f"{type(message).__qualname__} has no wire form; known: {', '.join(sorted(registry))}"
            )
        return shape
