"""Upstream's clients, unchanged, against Skalds on real Kafka, Redis and FerretDB: a task document written
into MongoDB the way upstream's repository writes it, then a ``task.assign`` the way upstream's scripts send
it (snake_case ``task_ids``), is run by our node, on the node the document names; upstream's ``task.cancel``
stops a task. The intake reads each upstream-form request once and skips our own commands and junk."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from bson import ObjectId
from confluent_kafka import Producer
from pymongo import MongoClient

from skalds.adapters.kafka.topics import Topics
from skalds.domain.commands import AssignTask, CancelTask
from skalds.domain.upstream_requests import UpstreamRequest, UpstreamRequestKind
from tests.contracts.event_bus import receive
from tests.integration.cluster import Cluster, backends_env, cluster_fixture, wait_for
from tests.integration.test_kafka_event_bus import DELIVERY_TIMEOUT_S, open_bus

DAY_MS = 86_400_000


def settings_env(kafka_bootstrap: str, redis_url: str, mongo_url: str, name: str) -> dict[str, str]:
    return backends_env(kafka_bootstrap, redis_url, mongo_url, name) | {
        "SKALDS_MONITOR__INTERVAL_MS": "500",
        "SKALDS_DISPATCH__INTERVAL_MS": "1000",
        "SKALDS_NODE__ON_SHUTDOWN": "hand_back",
    }


cluster = cluster_fixture(settings_env)


def upstream_document(task_id: str, *, executor: str | None, seconds: int) -> dict[str, Any]:
    """``Task.model_dump(by_alias=True)`` as upstream's repository inserts it: ObjectId ``_id``, no version,
    none of our fields, attachments by alias, deadline at creation + 7 days."""
    now = int(time.time() * 1000)
    return {
        "_id": ObjectId(),
        "id": task_id,
        "className": "CountdownWorker",
        "source": "TestingScript",
        "name": None,
        "description": None,
        "executor": executor,
        "dependencies": None,
        "mode": "Passive",
        "isPersistent": True,
        "createDateTime": now,
        "updateDateTime": now,
        "deadlineDateTime": now + 7 * DAY_MS,
        "lifecycleStatus": "Created",
        "priority": 0,
        "attachments": {"seconds": seconds},
    }


def upstream_script_event(task_id: str) -> bytes:
    """What upstream's example scripts produce: ``TaskEvent(...).model_dump_json()``, field names."""
    now = int(time.time() * 1000)
    return json.dumps(
        {
            "id": task_id,
            "title": None,
            "initiator": None,
            "recipient": None,
            "create_date_time": now,
            "update_date_time": now,
            "task_ids": [task_id],
        }
    ).encode()


@pytest.fixture
def producer(kafka_bootstrap: str) -> Iterator[Producer]:
    made = Producer({"bootstrap.servers": kafka_bootstrap})
    yield made
    made.flush(10)


def send_until(
    producer: Producer, topic: str, task_id: str, *, api: httpx.Client, done: Any, cluster: Cluster
) -> dict[str, Any]:
    """Send the upstream message once a second until ``done(task)`` (upstream's clients resend freely: an
    assign of an assigned task, or a cancel of a cancelled one, changes nothing). The first send may come
    before the intake's new consumer group has its partitions, which starts at the end."""

    def sent_and_done() -> dict[str, Any] | None:
        producer.produce(topic, upstream_script_event(task_id), task_id)
        producer.flush(10)
        response = api.get(f"/api/tasks/{task_id}")
        task: dict[str, Any] = response.json() if response.status_code == 200 else {}
        return task if task and done(task) else None

    return wait_for(f"{task_id} after upstream's {topic}", sent_and_done, every_s=1.0, guard=cluster.check)


def test_an_upstream_document_and_task_assign_run_on_the_node_it_names_and_task_cancel_stops_one(
    cluster: Cluster, mongo_url: str, producer: Producer
) -> None:
    controller = cluster.controller()
    cluster.node("node-a")
    cluster.node("node-b")
    cluster.wait_ready(controller)
    cluster.wait_online(controller, "node-a", "node-b")
    topics = Topics(cluster.env["SKALDS_KAFKA__TOPIC_PREFIX"])
    with MongoClient(mongo_url) as client:
        tasks = client[cluster.env["SKALDS_MONGO__DATABASE"]]["tasks"]
        tasks.insert_one(upstream_document("up-short", executor="node-b", seconds=2))
        tasks.insert_one(upstream_document("up-long", executor="node-a", seconds=600))

    assign = topics.for_command_class(AssignTask)
    api = controller.api
    started = send_until(
        producer,
        assign,
        "up-short",
        api=api,
        done=lambda t: t["lifecycleStatus"] != "Created",
        cluster=cluster,
    )
    assert started["executor"] == "node-b"
    finished = wait_for(
        "up-short finished",
        lambda: (
            (t := controller.api.get("/api/tasks/up-short").json())["lifecycleStatus"] == "Finished" and t
        ),
        guard=cluster.check,
    )
    assert finished["executor"] == "node-b" and finished["heartbeat"] == 200

    running = send_until(
        producer,
        assign,
        "up-long",
        api=api,
        done=lambda t: t["lifecycleStatus"] == "Running",
        cluster=cluster,
    )
    assert running["executor"] == "node-a"
    cancel = topics.for_command_class(CancelTask)
    cancelled = send_until(
        producer,
        cancel,
        "up-long",
        api=api,
        done=lambda t: t["lifecycleStatus"] == "Cancelled",
        cluster=cluster,
    )
    assert cancelled["executor"] == "node-a"


async def test_the_intake_reads_upstream_requests_once_and_skips_our_commands_and_junk(
    kafka_bootstrap: str, unique: str, producer: Producer
) -> None:
    async with open_bus(kafka_bootstrap, unique) as bus:
        requests = bus.upstream_requests()
        assign, cancel = bus.topics.for_command_class(AssignTask), bus.topics.for_command_class(CancelTask)

        async def probed() -> None:  # a new group starts at the end: until it has its partitions
            for _ in range(30):
                producer.produce(assign, upstream_script_event("probe"), "probe")
                producer.flush(10)
                with contextlib.suppress(TimeoutError):
                    await receive(requests, 1, 2.0)
                    return
            raise AssertionError("the intake read no upstream-form request within 60 s")

        await probed()
        await bus.publish(CancelTask(task_id="ours", node_id="n1", version=2, at=1))
        producer.produce(cancel, b"{not json", "junk")
        by_alias = {"id": "t2", "createDateTime": 5, "taskIds": ["t2", "t3"]}  # upstream's controller
        producer.produce(cancel, json.dumps(by_alias).encode(), "t2")
        producer.produce(assign, upstream_script_event("t1"), "t1")
        producer.flush(10)
        got = await receive(requests, 2, DELIVERY_TIMEOUT_S)
        kinds = sorted((r.kind, r.task_ids) for r in got)
        assert kinds == [
            (UpstreamRequestKind.ASSIGN, ("t1",)),
            (UpstreamRequestKind.CANCEL, ("t2", "t3")),
        ]
        assert all(isinstance(r, UpstreamRequest) for r in got)
        await requests.close()


async def test_a_request_handled_before_the_intake_closes_is_not_handed_over_again(
    kafka_bootstrap: str, unique: str, producer: Producer
) -> None:
    """A replayed old cancel could stop a task retried since: what was acted on is committed on close."""
    async with open_bus(kafka_bootstrap, unique) as bus:
        assign = bus.topics.for_command_class(AssignTask)
        first = bus.upstream_requests()
        handled = -1
        for n in range(30):  # a new group starts at the end: until it has its partitions
            producer.produce(assign, upstream_script_event(f"probe-{n}"), "probe")
            producer.flush(10)
            with contextlib.suppress(TimeoutError):
                [got] = await receive(first, 1, 2.0)
                handled = int(got.task_ids[0].removeprefix("probe-"))
                break
        assert handled >= 0, "the intake read no request within 60 s"
        await first.close()
        second = bus.upstream_requests()
        producer.produce(assign, upstream_script_event("after"), "probe")  # same key, same partition
        producer.flush(10)
        seen: list[str] = []
        while "after" not in seen:
            [got] = await receive(second, 1, DELIVERY_TIMEOUT_S)
            seen.append(got.task_ids[0])
        # only probes sent after the handled one (never read) may come again; the handled one and those
        # before it on its partition are committed
        assert all(int(t.removeprefix("probe-")) > handled for t in seen[:-1]), (handled, seen)
        await second.close()
