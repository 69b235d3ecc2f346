"""Upstream's payloads parse in both spellings and bad ones are refused naming the field."""

from __future__ import annotations

import json

import pytest

from skalds.adapters.codecs import parse_upstream_inventory, parse_upstream_task_event
from skalds.domain.errors import ValidationError


@pytest.mark.parametrize("key", ["taskIds", "task_ids"])
def test_both_spellings_of_task_ids_parse(key: str) -> None:
    event = parse_upstream_task_event(json.dumps({"id": "t1", key: ["t1"], "createDateTime": 5}).encode())
    assert event.task_ids == ["t1"]
    assert event.create_date_time == 5


def test_events_are_written_in_the_controllers_camel_case_form() -> None:
    dumped = parse_upstream_task_event({"task_ids": ["t1"], "id": "t1"}).dump()
    assert dumped == {
        "id": "t1", "title": None, "initiator": None, "recipient": None,
        "createDateTime": None, "updateDateTime": None, "taskIds": ["t1"],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"{not json", "payload"),
        (b"[1, 2]", "payload"),
        (b'{"id": "t1"}', "taskIds"),
        (b'{"taskIds": "t1"}', "taskIds"),
    ],
)
def test_malformed_events_name_the_field(raw: bytes, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        parse_upstream_task_event(raw)
    assert refused.value.field == field


def test_the_inventory_keeps_upstreams_snake_case_keys() -> None:
    raw = {"tasks": [{"id": "t1", "className": "Video"}], "existed_task_ids": ["t1"], "timestamp": 9}
    inventory = parse_upstream_inventory(raw)
    assert inventory.dump() == {
        "tasks": [{"id": "t1", "class_name": "Video"}],
        "existed_task_ids": ["t1"],
        "timestamp": 9,
    }
