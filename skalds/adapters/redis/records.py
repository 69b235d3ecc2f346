"""Heartbeat reports and nodes as compact JSON, the values the Redis live-state store keeps.

Short keys and no nulls or defaults keep a 10,000-task ``MGET`` small. A stored report ends with
``"p":<progress>,"c":<progress changed at>,"w":<written at>}``, or just ``,"w":<written at>}`` when it has no
progress: the store's Lua script appends ``c`` and ``w`` to ``encode_report_body`` (which puts ``p`` last)
and reads the previous report's tail with one pattern instead of decoding it. A value that is not ours
raises ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

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


def decode_report(raw: bytes | str) -> StoredReport:
    """Checks every type, so a value with our keys but not our types is refused too (10k per monitor cycle:
    the checks are inline on purpose)."""
    try:
        data = from_json(raw)
        received, sequence, written = data["r"], data["s"], data["w"]
        if type(received) is not int or type(sequence) is not int or type(written) is not int:
            raise TypeError(f"r, s and w must be integers, got {received!r}, {sequence!r}, {written!r}")
        outcome, error = data.get("o"), data.get("e")
        report = HeartbeatReport(
            received_at=received,
            sequence=sequence,
            progress=_number(data.get("p")),
            progress_changed_at=_optional_int(data.get("c")),
            outcome=None if outcome is None else Outcome(outcome),
            error=error if error is None or type(error) is str else _text(error),
            paused=data.get("z") is True,
            applied_attachments_version=_optional_int(data.get("v")),
            attempt=_optional_int(data.get("a")),
        )
        return StoredReport(report, written)
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"not a stored heartbeat report: {error!r}") from error


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


def _optional_int(value: object) -> int | None:
    if value is None or type(value) is int:
        return value
    raise TypeError(f"expected an integer, got {value!r}")


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
