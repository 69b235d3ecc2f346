"""Upstream's payloads parse in both spellings and bad ones are refused naming the field."""

from __future__ import annotations

import json

import pytest

from skalds.adapters.codecs import (
    UpstreamInventory,
    UpstreamInventoryEntry,
    UpstreamTaskEvent,
    parse_upstream_inventory,
    parse_upstream_task_event,
    parse_upstream_taskworker_update,
)
from skalds.domain.errors import ValidationError


@pytest.mark.parametrize(
    ("key", "time_key"), [("taskIds", "createDateTime"), ("task_ids", "create_date_time")]
)
def test_both_spellings_parse(key: str, time_key: str) -> None:
    event = parse_upstream_task_event(json.dumps({"id": "t1", key: ["t1"], time_key: 5}).encode())
    assert event.task_ids == ["t1"]
    assert event.create_date_time == 5


def test_str_bytes_and_mappings_are_all_accepted() -> None:
    payload = {"taskIds": ["t1", "t2"]}
    parsed = {parse_upstream_task_event(raw).model_dump_json() for raw in
              (payload, json.dumps(payload), json.dumps(payload).encode())}  # fmt: skip
    assert len(parsed) == 1


def test_events_are_written_in_the_controllers_camel_case_form() -> None:
    dumped = parse_upstream_task_event({"task_ids": ["t1"], "id": "t1", "updateDateTime": 7}).dump()
    assert dumped == {
        "id": "t1", "title": None, "initiator": None, "recipient": None,
        "createDateTime": None, "updateDateTime": 7, "taskIds": ["t1"],
    }  # fmt: skip
    assert parse_upstream_task_event(json.dumps(dumped)) == parse_upstream_task_event(dumped)


def test_events_can_be_built_by_field_name() -> None:
    event = UpstreamTaskEvent(id="t1", task_ids=["t1"], create_date_time=1, update_date_time=2)
    assert event.dump()["taskIds"] == ["t1"]
    assert (event.dump()["createDateTime"], event.dump()["updateDateTime"]) == (1, 2)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"{not json", "payload"),
        (b"\xff\xfe\x00", "payload"),
        (b"[1, 2]", "payload"),
        (b'"t1"', "payload"),
        (b'{"id": "t1"}', "taskIds"),
        (b'{"taskIds": "t1"}', "taskIds"),
        (b'{"taskIds": ["t1", 2]}', "taskIds.1"),
        (b'{"task_ids": null}', "task_ids"),
        (b'{"taskIds": [], "createDateTime": "soon"}', "createDateTime"),
    ],
)
def test_malformed_events_name_the_wire_field(raw: bytes, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        parse_upstream_task_event(raw)
    assert refused.value.field == field
    assert str(refused.value).startswith(f"{field}: ")


def test_taskworker_updates_carry_attachments_or_null() -> None:
    update = parse_upstream_taskworker_update(b'{"attachments": {"rtsp_url": "rtsp://x", "fix_frame": 10}}')
    assert update.attachments == {"rtsp_url": "rtsp://x", "fix_frame": 10}
    assert update.dump() == {"attachments": {"rtsp_url": "rtsp://x", "fix_frame": 10}}
    assert parse_upstream_taskworker_update(b'{"attachments": null}').attachments is None
    with pytest.raises(ValidationError) as refused:
        parse_upstream_taskworker_update(b'{"attachments": [1]}')
    assert refused.value.field == "attachments"


def test_the_inventory_round_trips_with_upstreams_snake_case_keys() -> None:
    inventory = UpstreamInventory(
        tasks=[UpstreamInventoryEntry(id="t1", class_name="Video")], existed_task_ids=["t1"], timestamp=9
    )
    wire = json.dumps(inventory.dump())
    assert json.loads(wire) == {
        "tasks": [{"id": "t1", "class_name": "Video"}],
        "existed_task_ids": ["t1"],
        "timestamp": 9,
    }
    assert parse_upstream_inventory(wire.encode()) == inventory


def test_the_inventory_accepts_camel_case_on_input() -> None:
    raw = {"tasks": [{"id": "t1", "className": "Video"}], "existedTaskIds": ["t1"], "timestamp": 9}
    assert parse_upstream_inventory(raw).dump() == {
        "tasks": [{"id": "t1", "class_name": "Video"}],
        "existed_task_ids": ["t1"],
        "timestamp": 9,
    }


def test_a_malformed_inventory_names_the_field() -> None:
    with pytest.raises(ValidationError) as refused:
        parse_upstream_inventory(b'{"tasks": [{"id": "t1"}], "timestamp": 1}')
    assert refused.value.field == "tasks.0.class_name"
