"""The Kafka wire codec: every event and command round-trips, upstream's forms are kept or refused by name."""

from __future__ import annotations

import dataclasses
import json
import sys
import typing
from collections.abc import Iterator, Mapping
from enum import Enum
from types import NoneType, UnionType
from typing import Any

import pytest

from skalds.adapters.codecs import parse_upstream_task_event, parse_upstream_taskworker_update
from skalds.adapters.kafka.messages import UPSTREAM_FORM, UpstreamFormError, WireCodec
from skalds.adapters.kafka.topics import HEARTBEAT_BATCH_KEY, Topics, event_key
from skalds.domain import events as ev
from skalds.domain.commands import AssignTask, CancelTask, NodeCommand, UpdateTaskAttachments
from skalds.domain.errors import ValidationError
from skalds.domain.events import DomainEvent
from skalds.domain.task import DesiredState, TaskStatus
from skalds.domain.upstream_requests import UpstreamRequest, UpstreamRequestKind
from tests.contracts.event_bus import heartbeats


def subclasses(base: type[Any]) -> Iterator[type[Any]]:
    """Classes as their modules define them (``slots=True`` dataclasses leave a discarded twin behind)."""
    for subclass in base.__subclasses__():
        if vars(sys.modules[subclass.__module__]).get(subclass.__name__) is subclass:
            yield subclass
        yield from subclasses(subclass)


def sample(annotation: Any, name: str, *, optional_as_none: bool) -> Any:
    """A value of ``annotation`` that is not its default, so a lost field would show."""
    if isinstance(annotation, UnionType) or typing.get_origin(annotation) is typing.Union:
        options = [a for a in typing.get_args(annotation) if a is not NoneType]
        return None if optional_as_none else sample(options[0], name, optional_as_none=False)
    origin = typing.get_origin(annotation)
    if origin is tuple:  # ``tuple[X, ...]``: two of X, so the columns of a batch event agree in length
        item = typing.get_args(annotation)[0]
        return tuple(sample(item, name, optional_as_none=optional_as_none) for _ in range(2))
    if origin is not None and issubclass(origin, Mapping):
        return {"fps": 5, "camera": {"url": "rtsp://x", "zones": [1, 2]}}
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return list(annotation)[-1]
    return {bool: True, int: 7, float: 0.25, str: f"{name}-value"}[annotation]


def instance(cls: type[Any], *, optional_as_none: bool = False) -> Any:
    hints = typing.get_type_hints(cls)
    values = {
        f.name: sample(hints[f.name], f.name, optional_as_none=optional_as_none)
        for f in dataclasses.fields(cls)
    }
    return cls(**values)


EVENT_CLASSES = sorted(subclasses(DomainEvent), key=lambda c: c.__name__)
COMMAND_CLASSES = sorted(subclasses(NodeCommand), key=lambda c: c.__name__)


@pytest.fixture(scope="module")
def codec() -> WireCodec:
    return WireCodec()


@pytest.mark.parametrize("optional_as_none", [False, True])
@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda c: c.__name__)
def test_every_event_round_trips(codec: WireCodec, cls: type[DomainEvent], optional_as_none: bool) -> None:
    event = instance(cls, optional_as_none=optional_as_none)
    decoded = codec.decode_event(codec.encode_event(event))
    assert decoded == event and type(decoded) is cls


@pytest.mark.parametrize("cls", COMMAND_CLASSES, ids=lambda c: c.__name__)
def test_every_command_round_trips(codec: WireCodec, cls: type[NodeCommand]) -> None:
    command = instance(cls)
    decoded = codec.decode_command(codec.encode_command(command))
    assert decoded == command and type(decoded) is cls


def test_events_are_camel_case_json_with_their_type_and_enums_come_back_as_enums(codec: WireCodec) -> None:
    event = ev.TaskFailed(
        at=5,
        task_id="t1",
        version=4,
        from_status=TaskStatus.RUNNING,
        to_status=TaskStatus.FAILED,
        desired_state=DesiredState.RUN,
        error="boom",
        attempt=1,
        attempts_left=2,
    )
    wire = json.loads(codec.encode_event(event))
    assert wire == {
        "type": "TaskFailed", "at": 5, "taskId": "t1", "version": 4, "fromStatus": "Running",
        "toStatus": "Failed", "desiredState": "run", "error": "boom", "attempt": 1, "attemptsLeft": 2,
    }  # fmt: skip
    decoded = codec.decode_event(json.dumps(wire).encode())
    assert isinstance(decoded, ev.TaskFailed) and decoded.to_status is TaskStatus.FAILED


def test_a_heartbeat_batch_is_columns_of_camel_case_json_and_comes_back_equal(codec: WireCodec) -> None:
    batch = heartbeats("t1", "t2", "t3", at=9)
    wire = json.loads(codec.encode_event(batch))
    assert wire == {
        "type": "TaskHeartbeatsObserved", "at": 9, "taskIds": ["t1", "t2", "t3"], "sequences": [1, 2, 3],
        "progress": [None, 10.0, 20.0], "verdicts": ["progressing"] * 3, "statuses": ["Running"] * 3,
        "progressTotals": [], "progressUnits": [],  # no task of this batch gave its progress a scale
    }  # fmt: skip
    decoded = codec.decode_event(json.dumps(wire).encode())
    assert decoded == batch and isinstance(decoded, ev.TaskHeartbeatsObserved)
    assert decoded.statuses[0] is TaskStatus.RUNNING
    del wire["progressTotals"], wire["progressUnits"]  # as an earlier Skalds sent it
    assert codec.decode_event(json.dumps(wire).encode()) == batch


def test_a_heartbeat_batch_carries_the_scales_its_workers_gave(codec: WireCodec) -> None:
    batch = dataclasses.replace(
        heartbeats("t1", "t2", at=9), progress_totals=(None, 120.0), progress_units=(None, "frames")
    )
    decoded = codec.decode_event(codec.encode_event(batch))
    assert isinstance(decoded, ev.TaskHeartbeatsObserved)
    assert [(b.progress_total, b.progress_unit) for b in decoded.each()] == [(None, None), (120.0, "frames")]


def test_tuples_come_back_as_tuples(codec: WireCodec) -> None:
    event = ev.NodeHeartbeatObserved(at=1, node_id="n1", tasks=("t1", "t2"), health="online")
    decoded = codec.decode_event(codec.encode_event(event))
    assert isinstance(decoded, ev.NodeHeartbeatObserved) and decoded.tasks == ("t1", "t2")


def test_a_node_beat_carries_its_usage_and_an_earlier_one_without_it_still_reads(codec: WireCodec) -> None:
    event = ev.NodeHeartbeatObserved(
        at=1, node_id="n1", tasks=(), health="online", cpu_percent=63.5, memory_percent=41.0
    )
    assert codec.decode_event(codec.encode_event(event)) == event
    wire = json.loads(codec.encode_event(event))
    del wire["cpuPercent"], wire["memoryPercent"]  # as an earlier Skalds sent it
    earlier = codec.decode_event(json.dumps(wire).encode())
    assert isinstance(earlier, ev.NodeHeartbeatObserved) and earlier.cpu_percent is None


def test_commands_keep_upstreams_task_event_envelope(codec: WireCodec) -> None:
    wire = json.loads(
        codec.encode_command(AssignTask(task_id="t1", node_id="n1", version=2, at=9, attempt=1))
    )
    assert wire == {
        "id": "t1", "title": "AssignTask", "initiator": "skalds", "recipient": "n1",
        "createDateTime": 9, "updateDateTime": 9, "taskIds": ["t1"],
        "skalds": {"version": 2, "attempt": 1},
    }  # fmt: skip
    assert parse_upstream_task_event(json.dumps(wire)).task_ids == ["t1"]  # an upstream node understands it


def test_attachment_updates_carry_their_attachments_in_camel_case_and_upstreams_worker_form(
    codec: WireCodec,
) -> None:
    update = UpdateTaskAttachments(
        task_id="t1", node_id="n1", version=3, at=7, attachments={"rtsp_url": "x"}, attachments_version=2
    )
    assert json.loads(codec.encode_command(update))["skalds"] == {
        "version": 3, "attachments": {"rtsp_url": "x"}, "attachmentsVersion": 2,
    }  # fmt: skip
    assert parse_upstream_taskworker_update(codec.encode_worker_update(update)).attachments == {
        "rtsp_url": "x"
    }


@pytest.mark.parametrize(
    "payload",
    [
        {"id": "t1", "title": None, "initiator": None, "recipient": None, "createDateTime": 1,
         "updateDateTime": 1, "taskIds": ["t1"]},  # upstream's controller (by alias)
        {"id": "t1", "create_date_time": 1, "update_date_time": 1, "task_ids": ["t1"]},  # its client scripts
    ],
)  # fmt: skip
def test_upstream_form_commands_are_no_command_to_a_node_but_a_request_to_the_intake(
    codec: WireCodec, payload: dict[str, Any]
) -> None:
    with pytest.raises(UpstreamFormError) as caught:
        codec.decode_command(json.dumps(payload).encode())
    assert caught.value.reason == UPSTREAM_FORM and "intake" in str(caught.value)
    request = codec.decode_upstream_request(UpstreamRequestKind.ASSIGN, json.dumps(payload).encode())
    assert request == UpstreamRequest(kind=UpstreamRequestKind.ASSIGN, task_ids=("t1",), at=1)


def test_an_addressed_command_without_its_skalds_fields_is_malformed_not_upstream(codec: WireCodec) -> None:
    payload = {"id": "t1", "recipient": "n1", "createDateTime": 1, "taskIds": ["t1"]}
    with pytest.raises(ValidationError) as caught:
        codec.decode_command(json.dumps(payload).encode())
    assert not isinstance(caught.value, UpstreamFormError) and caught.value.field == "skalds"
    assert codec.decode_upstream_request(UpstreamRequestKind.ASSIGN, json.dumps(payload).encode()) is None


def test_our_own_commands_are_no_upstream_request_and_junk_is_refused(codec: WireCodec) -> None:
    ours = codec.encode_command(CancelTask(task_id="t1", node_id="n1", version=2, at=3))
    assert codec.decode_upstream_request(UpstreamRequestKind.CANCEL, ours) is None
    for junk in (b"{not json", b'{"task_ids": []}', b'{"task_ids": "t1"}'):
        with pytest.raises(ValidationError):
            codec.decode_upstream_request(UpstreamRequestKind.CANCEL, junk)


def good_command(**changes: Any) -> bytes:
    wire = json.loads(WireCodec().encode_command(CancelTask(task_id="t1", node_id="n1", version=2, at=3)))
    wire.update(changes)
    return json.dumps(wire).encode()


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (None, "payload"),
        (b"{not json", "payload"),
        (b"\xff\xfe", "payload"),
        (b"[1]", "payload"),
        (good_command(taskIds="t1"), "taskIds"),
        (good_command(title="LaunchRocket"), "title"),
        (good_command(taskIds=["t1", "t2"]), "taskIds"),
        (good_command(id="t9"), "id"),
        (good_command(createDateTime=None), "createDateTime"),
        (good_command(skalds=[1]), "skalds"),
        (good_command(skalds={}), "skalds.version"),
        (good_command(skalds={"version": "two"}), "skalds.version"),
        (good_command(recipient=5), "recipient"),
    ],
)
def test_malformed_commands_name_the_wire_field(codec: WireCodec, raw: bytes | None, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        codec.decode_command(raw)
    assert caught.value.field == field


def good_event(**changes: Any) -> bytes:
    event = ev.TaskAssigned(
        at=1, task_id="t1", version=2, from_status=TaskStatus.CREATED, to_status=TaskStatus.ASSIGNING,
        desired_state=DesiredState.RUN, executor="n1", attempt=1,
    )  # fmt: skip
    wire = json.loads(WireCodec().encode_event(event))
    wire.update(changes)
    return json.dumps({k: v for k, v in wire.items() if v is not ...}).encode()


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (None, "payload"),
        (b"not json", "payload"),
        (b'"TaskAssigned"', "payload"),
        (good_event(type=...), "type"),
        (good_event(type="TaskExploded"), "type"),
        (good_event(executor=...), "executor"),
        (good_event(attempt="first"), "attempt"),
        (good_event(toStatus="Sleeping"), "toStatus"),
    ],
)
def test_malformed_events_name_the_wire_field(codec: WireCodec, raw: bytes | None, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        codec.decode_event(raw)
    assert caught.value.field == field


def heartbeats_wire(**changes: Any) -> bytes:
    wire = json.loads(WireCodec().encode_event(heartbeats("t1", "t2")))
    wire.update(changes)
    return json.dumps(wire).encode()


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (heartbeats_wire(sequences=[1]), "sequences"),
        (heartbeats_wire(progress=[None, 5.0, 6.0]), "progress"),
        (heartbeats_wire(verdicts=[]), "verdicts"),
        (heartbeats_wire(taskIds=["t1"]), "sequences"),  # the task ids set the length the others must have
        (heartbeats_wire(statuses=["Running", "Sleeping"]), "statuses.1"),
        (heartbeats_wire(sequences=[1, "second"]), "sequences.1"),
        (heartbeats_wire(taskIds="t1"), "taskIds"),
    ],
)
def test_malformed_heartbeat_batches_name_the_wire_column(codec: WireCodec, raw: bytes, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        codec.decode_event(raw)
    assert caught.value.field == field


def test_unknown_extra_fields_are_ignored_for_forward_compatibility(codec: WireCodec) -> None:
    assert isinstance(codec.decode_event(good_event(addedLater=1)), ev.TaskAssigned)
    assert isinstance(codec.decode_command(good_command(addedLater=1)), CancelTask)


def test_each_message_has_its_topic_and_key() -> None:
    topics = Topics("p.")
    created = instance(ev.TaskCreated)
    node = instance(ev.NodeWentOffline)
    alert = instance(ev.AlertRaised)
    assert (topics.for_event(created), event_key(created)) == ("p.skalds.task.events", created.task_id)
    assert (topics.for_event(node), event_key(node)) == ("p.skalds.node.events", node.node_id)
    assert (topics.for_event(alert), event_key(alert)) == ("p.skalds.system.events", alert.alert_id)
    assert topics.for_event(instance(ev.TaskHeartbeatObserved)) == "p.skalds.task.events"
    batch, other_batch = heartbeats("t1", "t2"), heartbeats("t9", at=5)
    assert (topics.for_event(batch), event_key(batch)) == ("p.skalds.task.events", HEARTBEAT_BATCH_KEY)
    assert event_key(other_batch) == event_key(batch)  # one partition: batches keep the monitor's order
    assert sorted(topics.for_command_class(c) for c in COMMAND_CLASSES) == sorted(topics.commands)
    assert topics.for_command(instance(AssignTask)) == "p.task.assign"
    assert topics.partitions_of(6, 1)["p.task.cancel"] == 6
    assert topics.partitions_of(6, 1)["p.skalds.dead-letter"] == 1
