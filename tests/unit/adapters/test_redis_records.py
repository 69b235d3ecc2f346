"""The Redis values round-trip every field, and anything that is not one of them is refused as ValueError."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skalds.adapters.redis.records import (
    ReportDecoder,
    decode_node,
    encode_node,
    encode_report,
    encode_report_body,
)
from skalds.domain.heartbeat import HeartbeatReport, Outcome
from skalds.domain.nodes import Node, NodeMode

millis = st.integers(min_value=0, max_value=2**53 - 1)

reports = st.builds(
    HeartbeatReport,
    received_at=millis,
    sequence=st.integers(min_value=0, max_value=2**53 - 1),
    progress=st.none() | st.floats(allow_nan=False, allow_infinity=False) | st.integers(-1_000, 1_000),
    progress_changed_at=st.none() | millis,
    outcome=st.none() | st.sampled_from(Outcome),
    error=st.none() | st.text(),
    paused=st.booleans(),
    applied_attachments_version=st.none() | st.integers(min_value=0, max_value=2**31),
    attempt=st.none() | st.integers(min_value=0, max_value=1_000),
    progress_total=st.none() | st.floats(min_value=1e-3, max_value=1e12),
    progress_unit=st.none() | st.text(max_size=40),
    progress_message=st.none() | st.text(max_size=200),
    cpu_percent=st.none() | st.floats(0, 800),
    memory_bytes=st.none() | st.integers(min_value=0, max_value=2**48),
)

nodes = st.builds(
    Node,
    id=st.text(min_size=1).filter(str.strip),
    mode=st.sampled_from(NodeMode),
    supported_classes=st.frozensets(st.text()),
    current_tasks=st.frozensets(st.text()),
    capacity=st.none() | st.integers(min_value=0, max_value=10_000),
    labels=st.dictionaries(st.text(), st.text()),
    registered_at=millis,
    last_heartbeat_at=st.none() | millis,
    cpu_percent=st.none() | st.floats(0, 100),
    memory_percent=st.none() | st.floats(0, 100),
    draining=st.booleans(),
)


@given(reports, millis)
def test_reports_round_trip(report: HeartbeatReport, written_at: int) -> None:
    stored = ReportDecoder().decode(encode_report(report, written_at=written_at))
    assert (stored.report, stored.written_at) == (report, written_at)
    assert type(stored.report.progress) is type(report.progress)  # 3 stays 3, not 3.0


@given(reports)
def test_the_open_body_is_the_report_without_the_store_stamps(report: HeartbeatReport) -> None:
    completed = encode_report_body(report) + b',"c":5,"w":9}'
    stored = ReportDecoder().decode(completed)
    assert stored.report.progress_changed_at == 5
    assert stored.written_at == 9
    assert {**json.loads(encode_report(report, written_at=9)), "c": 5} == json.loads(completed)


@given(nodes)
def test_nodes_round_trip(node: Node) -> None:
    assert decode_node(encode_node(node)) == node


def test_defaults_are_left_out_to_keep_values_small() -> None:
    assert encode_report(HeartbeatReport(received_at=1, sequence=2), written_at=3) == b'{"r":1,"s":2,"w":3}'
    assert encode_node(Node(id="n1", registered_at=4)) == b'{"id":"n1","ra":4}'


@pytest.mark.parametrize(
    "raw",
    [
        b"\x80\x81",
        b"not json",
        b"[]",
        b'"a string"',
        b"{}",
        b'{"r": 1, "s": 2}',  # no written-at
        b'{"r": "1", "s": 2, "w": 3}',
        b'{"r": 1, "s": 2, "w": 3, "o": "exploded"}',
        b'{"r": 1, "s": 2, "w": 3, "p": "12"}',
        b'{"r": 1.5, "s": 2, "w": 3}',
        b'{"r": 1, "s": 2, "w": 3.0}',  # integral, but a float
        b'{"r": true, "s": 2, "w": 3}',  # a bool is no integer here, unlike in Python
        b'{"r": 1, "s": 2, "w": 3, "p": true}',
        b'{"r": NaN, "s": 2, "w": 3}',
        b'{"r": 1, "s": 2, "w": 3, "c": 1.5}',
        b'{"r": 1, "s": 2, "w": 3, "e": 5}',
        b'{"r": 1, "s": 2, "w": 3, "z": 1}',
        b'{"r": 1, "s": 2, "w": 3, "v": "2"}',
        b'{"r": 1, "s": 2, "w": 3, "a": [1]}',
        b'{"r": 1, "s": 2, "w": 3} {}',
    ],
)
def test_values_that_are_not_reports_are_refused(raw: bytes) -> None:
    with pytest.raises(ValueError, match=r".+"):
        ReportDecoder().decode(raw)


@pytest.mark.parametrize("progress", [math.inf, -math.inf, math.nan])
def test_a_progress_of_nan_or_infinity_is_read_back(progress: float) -> None:
    """to_json writes them as the literals NaN and Infinity, which JSON lacks; a worker may report either."""
    raw = encode_report(HeartbeatReport(received_at=1, progress=progress), written_at=2)
    read = ReportDecoder().decode(raw).report.progress
    assert read is not None
    assert read == progress or (math.isnan(read) and math.isnan(progress))


def test_nulls_read_as_absent_and_unknown_keys_are_ignored() -> None:
    raw = b'{"r": 1, "s": 2, "w": 3, "p": null, "c": null, "o": null, "e": null, "z": null, "x": [1]}'
    assert ReportDecoder().decode(raw) == (HeartbeatReport(received_at=1, sequence=2), 3)


def test_the_fields_read_alone_carry_the_written_at_that_expiry_is_judged_by() -> None:
    raw = encode_report(HeartbeatReport(received_at=1, sequence=2, paused=True), written_at=3)
    decoder = ReportDecoder()
    stored = decoder.read(raw)
    assert stored.written_at == 3
    assert decoder.report(stored) == HeartbeatReport(received_at=1, sequence=2, paused=True)


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"[1, 2]",
        b'{"ra": 1}',
        b'{"id": " ", "ra": 1}',
        b'{"id": "n", "ra": 1, "m": "robot"}',
        b'{"id": "n", "ra": 1, "sc": "Video"}',
        b'{"id": "n", "ra": 1, "l": [1]}',
        b'{"id": "n", "ra": 1, "cap": -1}',
    ],
)
def test_values_that_are_not_nodes_are_refused(raw: bytes) -> None:
    with pytest.raises(ValueError, match=r".+"):
        decode_node(raw)
