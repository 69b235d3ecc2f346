"""Heartbeat reports and nodes as compact JSON, the values the Redis live-state store keeps.

Short keys and no nulls or defaults keep a 10,000-task ``MGET`` small. A stored report ends with
``"p":<progress>,"c":<progress changed at>,"w":<written at>}``, or just ``,"w":<written at>}`` when it has no
progress: the store's Lua script appends ``c`` and ``w`` to ``encode_report_body`` (which puts ``p`` last)
and reads the previous report's tail with one pattern instead of decoding it. A value that is not ours
raises ``ValueError``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, NamedTuple

import msgspec
from pydantic_core import from_json, to_json

from skalds.domain.errors import ValidationError
from skalds.domain.heartbeat import HeartbeatReport, Outcome
from skalds.domain.nodes import Node, NodeMode


class StoredReport(NamedTuple):
    """A report as stored, with the store-clock time it was written (what expiry is judged by)."""

    report: HeartbeatReport
    written_at: int


def report_fields(report: HeartbeatReport) -> dict[str, Any]:
    """The report's fields under their short keys, ``p`` last, without the ``c`` and ``w`` of the store."""
    fields: dict[str, Any] = {"r": report.received_at, "s": report.sequence}
    if report.outcome is not None:
        fields["o"] = report.outcome.value
    if report.error is not None:
        fields["e"] = report.error
    if report.paused:
        fields["z"] = True
    if report.applied_attachments_version is not None:
        fields["v"] = report.applied_attachments_version
    if report.attempt is not None:
        fields["a"] = report.attempt
    if report.progress_total is not None:
        fields["t"] = report.progress_total
    if report.progress_unit is not None:
        fields["u"] = report.progress_unit
    if report.progress_message is not None:
        fields["m"] = report.progress_message
    if report.cpu_percent is not None:
        fields["k"] = report.cpu_percent
    if report.memory_bytes is not None:
        fields["b"] = report.memory_bytes
    if report.progress is not None:
        fields["p"] = report.progress
    return fields


def encode_report(report: HeartbeatReport, *, written_at: int) -> bytes:
    fields = report_fields(report)
    if report.progress_changed_at is not None:
        fields["c"] = report.progress_changed_at
    fields["w"] = written_at
    return to_json(fields)


def encode_report_body(report: HeartbeatReport) -> bytes:
    """The JSON object left open (no closing brace) for the script to append ``c`` and ``w``."""
    return to_json(report_fields(report))[:-1]


_SHORT_KEYS = {
    "received_at": "r",
    "sequence": "s",
    "written_at": "w",
    "progress": "p",
    "progress_changed_at": "c",
    "outcome": "o",
    "error": "e",
    "paused": "z",
    "applied_attachments_version": "v",
    "attempt": "a",
    "progress_total": "t",
    "progress_unit": "u",
    "progress_message": "m",
    "cpu_percent": "k",
    "memory_bytes": "b",
}


class StoredFields(msgspec.Struct, rename=_SHORT_KEYS, gc=False):
    """A stored value as msgspec checks it: strict types (``true`` is no integer, nor is ``1.0``), unknown
    keys ignored, ``null`` read as absent. Untracked by the GC: no field holds a container, so no cycles."""

    received_at: int
    sequence: int
    written_at: int
    progress: int | float | None = None  # not float alone, which would read 3 as 3.0
    progress_changed_at: int | None = None
    outcome: Outcome | None = None
    error: str | None = None
    paused: bool | None = None
    applied_attachments_version: int | None = None
    attempt: int | None = None
    progress_total: int | float | None = None
    progress_unit: str | None = None
    progress_message: str | None = None
    cpu_percent: int | float | None = None
    memory_bytes: int | None = None


_REPORT_FIELDS = (
    "received_at",
    "sequence",
    "progress",
    "progress_changed_at",
    "outcome",
    "error",
    "paused",
    "applied_attachments_version",
    "attempt",
    "progress_total",
    "progress_unit",
    "progress_message",
    "cpu_percent",
    "memory_bytes",
)


class ReportDecoder:
    """Reads stored reports, 10,000 per monitor cycle. ``read`` checks every type in one msgspec pass;
    ``report`` sets the new report's slots directly, under half the cost of ``HeartbeatReport(...)`` (a frozen
    dataclass's ``__init__`` calls ``object.__setattr__`` per field). That equals ``__init__`` only while the
    dataclass has exactly these fields and no ``__post_init__``, so building a decoder checks both."""

    def __init__(self) -> None:
        names = tuple(field.name for field in dataclasses.fields(HeartbeatReport))
        if names != _REPORT_FIELDS or hasattr(HeartbeatReport, "__post_init__"):
            raise TypeError(
                f"HeartbeatReport has fields {names} (expected {_REPORT_FIELDS}, and no __post_init__):"
                " ReportDecoder.report sets them one by one and must be updated"
            )
        self._json = msgspec.json.Decoder(StoredFields)
        self._slots = tuple(vars(HeartbeatReport)[name].__set__ for name in names)

    def read(self, raw: bytes | str) -> StoredFields:
        """Raises ``ValueError`` (msgspec's ``DecodeError`` is one) for a value that is not ours."""
        try:
            return self._json.decode(raw)
        except msgspec.ValidationError:
            raise
        except msgspec.DecodeError:
            # Not JSON to msgspec, but maybe ours: to_json writes a progress of NaN or infinity as the
            # literals NaN and Infinity, which from_json reads back.
            return msgspec.convert(from_json(raw), StoredFields)

    def report(self, stored: StoredFields) -> HeartbeatReport:
        report = object.__new__(HeartbeatReport)
        (
            received,
            sequence,
            progress,
            changed,
            outcome,
            error,
            paused,
            version,
            attempt,
            total,
            unit,
            message,
            cpu,
            rss,
        ) = self._slots
        received(report, stored.received_at)
        sequence(report, stored.sequence)
        progress(report, stored.progress)
        changed(report, stored.progress_changed_at)
        outcome(report, stored.outcome)
        error(report, stored.error)
        paused(report, stored.paused is True)
        version(report, stored.applied_attachments_version)
        attempt(report, stored.attempt)
        total(report, stored.progress_total)
        unit(report, stored.progress_unit)
        message(report, stored.progress_message)
        cpu(report, stored.cpu_percent)
        rss(report, stored.memory_bytes)
        return report

    def decode(self, raw: bytes | str) -> StoredReport:
        stored = self.read(raw)
        return StoredReport(self.report(stored), stored.written_at)


def encode_node(node: Node) -> bytes:
    fields: dict[str, Any] = {"id": node.id, "ra": node.registered_at}
    if node.mode is not NodeMode.NODE:
        fields["m"] = node.mode.value
    if node.supported_classes:
        fields["sc"] = sorted(node.supported_classes)
    if node.current_tasks:
        fields["ct"] = sorted(node.current_tasks)
    if node.capacity is not None:
        fields["cap"] = node.capacity
    if node.labels:
        fields["l"] = dict(node.labels)
    if node.last_heartbeat_at is not None:
        fields["lh"] = node.last_heartbeat_at
    if node.cpu_percent is not None:
        fields["cpu"] = node.cpu_percent
    if node.memory_percent is not None:
        fields["mem"] = node.memory_percent
    if node.draining:
        fields["d"] = True
    return to_json(fields)


def decode_node(raw: bytes | str) -> Node:
    try:
        data = from_json(raw)
        labels = data.get("l", {})
        if not isinstance(labels, Mapping):
            raise TypeError(f"labels must be an object, got {labels!r}")
        return Node(
            id=_text(data["id"]) or "",
            mode=NodeMode(data.get("m", NodeMode.NODE.value)),
            supported_classes=frozenset(_texts(data.get("sc", []))),
            current_tasks=frozenset(_texts(data.get("ct", []))),
            capacity=_int(data["cap"]) if "cap" in data else None,
            labels={str(k): str(v) for k, v in labels.items()},
            registered_at=_int(data["ra"]),
            last_heartbeat_at=_int(data["lh"]) if "lh" in data else None,
            cpu_percent=_number(data.get("cpu")),
            memory_percent=_number(data.get("mem")),
            draining=data.get("d") is True,
        )
    except (KeyError, TypeError, AttributeError, ValidationError) as error:
        raise ValueError(f"not a stored node: {error!r}") from error


def _int(value: object) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _number(value: object) -> float | None:
    if value is None or type(value) in (int, float):
        return value  # type: ignore[return-value]
    raise TypeError(f"expected a number, got {value!r}")


def _text(value: object) -> str | None:
    if value is None or type(value) is str:
        return value
    raise TypeError(f"expected a string, got {value!r}")


def _texts(values: object) -> list[str]:
    if not isinstance(values, list) or not all(type(v) is str for v in values):
        raise TypeError(f"expected a list of strings, got {values!r}")
    return values
