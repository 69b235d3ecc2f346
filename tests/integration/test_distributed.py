"""A distributed run on one machine: real controller and node processes on real Kafka, Redis and Mongo.

Every process is started with the CLI an operator uses (``skalds controller --mode dispatcher``, ``skalds
node --worker skalds.examples:CountdownWorker``) and driven only through the controller's HTTP API. The
evidence for what happened comes from outside the processes too: the Kafka topics hold every assignment
any dispatcher sent and every task event, and Redis holds each task's heartbeats as its worker sent them.
Short heartbeat thresholds keep it quick; waits have generous deadlines and nothing asserts a duration.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx
import pytest

from skalds.adapters.kafka.messages import WireCodec
from skalds.adapters.kafka.topics import Topics
from skalds.domain.commands import AssignTask
from skalds.domain.events import TaskAssigned, TaskEvent
from skalds.domain.task import TaskStatus
from tests.integration.cluster import (
    Cluster,
    Controller,
    ProcessId,
    all_tasks,
    backends_env,
    cluster_fixture,
    create_task,
    heartbeat_history,
    read_all,
    wait_for,
)

SUSPECT_AFTER_MS = 2_000
DEAD_AFTER_MS = 4_000
RUNNING = TaskStatus.RUNNING.value


def settings_env(kafka_bootstrap: str, redis_url: str, mongo_url: str, name: str) -> dict[str, str]:
    """The real backends, under names of this test's own, and thresholds short enough for a test."""
    return backends_env(kafka_bootstrap, redis_url, mongo_url, name) | {
        "SKALDS_HEARTBEAT__SUSPECT_AFTER_MS": str(SUSPECT_AFTER_MS),
        "SKALDS_HEARTBEAT__DEAD_AFTER_MS": str(DEAD_AFTER_MS),
        "SKALDS_MONITOR__INTERVAL_MS": "500",
        "SKALDS_MONITOR__HEARTBEAT_PERIOD_MS": "500",
        "SKALDS_DISPATCH__INTERVAL_MS": "1000",
        "SKALDS_DISPATCH__STRATEGY": "least_tasks",
        "SKALDS_NODE__ON_SHUTDOWN": "hand_back",  # so the teardown does not wait for tasks to finish
        "SKALDS_NODE__CANCEL_GRACE_MS": "3000",
    }


cluster = cluster_fixture(settings_env)


def topics(cluster: Cluster) -> Topics:
    return Topics(cluster.env["SKALDS_KAFKA__TOPIC_PREFIX"])


def running_tasks(api: httpx.Client, count: int) -> dict[str, dict[str, Any]] | None:
    """All tasks when there are ``count`` of them and every one runs, else None (not yet)."""
    tasks = all_tasks(api)
    if len(tasks) == count and all(t["lifecycleStatus"] == RUNNING for t in tasks.values()):
        return tasks
    return None


def _all_on(tasks: dict[str, dict[str, Any]] | None, node_id: str) -> dict[str, dict[str, Any]] | None:
    return tasks if tasks and all(t["executor"] == node_id for t in tasks.values()) else None


def _at_least(count: int, found: list[ProcessId]) -> list[ProcessId] | None:
    return found if len(found) >= count else None


def start_controller_and_nodes(cluster: Cluster, *node_ids: str) -> Controller:
    controller = cluster.controller()
    for node_id in node_ids:
        cluster.node(node_id)
    cluster.wait_ready(controller)
    cluster.wait_online(controller, *node_ids)
    return controller


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        # node-b joins while node-a runs 2 tasks; 4 more come: least-tasks evens the load (2+1 / 2+1),
        # round-robin alternates from where it stopped (b, a, b, a) whatever the load
        ("least_tasks", {"node-a": 3, "node-b": 3}),
        ("round_robin", {"node-a": 4, "node-b": 2}),
    ],
)
def test_tasks_spread_over_two_nodes_per_strategy(
    cluster: Cluster, strategy: str, expected: dict[str, int]
) -> None:
    controller = cluster.controller(env={"SKALDS_DISPATCH__STRATEGY": strategy})
    cluster.node("node-a")
    cluster.wait_ready(controller)
    assert controller.dispatcher()["strategy"] == strategy.upper()
    cluster.wait_online(controller, "node-a")
    for i in range(2):
        create_task(controller.api, f"early-{i}")
    early = wait_for("2 tasks running", lambda: running_tasks(controller.api, 2), guard=cluster.check)
    assert {t["executor"] for t in early.values()} == {"node-a"}

    cluster.node("node-b")
    cluster.wait_online(controller, "node-b")
    for i in range(4):
        create_task(controller.api, f"late-{i}")
    tasks = wait_for("6 tasks running", lambda: running_tasks(controller.api, 6), guard=cluster.check)

    assert Counter(str(t["executor"]) for t in tasks.values()) == expected
    assert {t["attempt"] for t in tasks.values()} == {1}


def test_sigkill_of_a_node_moves_its_tasks_to_the_other(cluster: Cluster, kafka_bootstrap: str) -> None:
    controller = start_controller_and_nodes(cluster, "node-a", "node-b")
    for i in range(6):
        create_task(controller.api, f"task-{i}")
    before = wait_for("6 tasks running", lambda: running_tasks(controller.api, 6), guard=cluster.check)
    placed = {task_id: str(t["executor"]) for task_id, t in before.items()}
    assert Counter(placed.values()) == {"node-a": 3, "node-b": 3}
    victims = sorted(task_id for task_id, node in placed.items() if node == "node-a")
    [node_a] = [p for p in cluster.processes if p.name == "node-a"]
    workers = wait_for(  # the forkserver and resource tracker, a worker per task, a warm spare
        "node-a's worker processes", lambda: _at_least(5, node_a.descendants())
    )

    cluster.expect_dead(node_a)
    killed_at = time.monotonic()
    node_a.sigkill()
    after = wait_for(
        "node-a's tasks running on node-b",
        lambda: _all_on(running_tasks(controller.api, 6), "node-b"),
        within_s=DEAD_AFTER_MS / 1000 + 60,
        guard=cluster.check,
    )
    moved_after_s = time.monotonic() - killed_at
    print(f"node-a's tasks ran on node-b {moved_after_s:.1f} s after SIGKILL (dead after {DEAD_AFTER_MS} ms)")

    for task_id, task in after.items():
        if task_id in victims:
            assert task["attempt"] == 2, task  # a lost run counts as an attempt
            assert task["lastError"] is None, task  # re-queued because its node went offline, not failed
        else:
            assert (task["attempt"], task["startedAt"]) == (1, before[task_id]["startedAt"]), task
    skalds = {n["id"]: n["health"] for n in controller.api.get("/api/skalds").json()["items"]}
    assert skalds == {"node-a": "offline", "node-b": "online"}

    # What the bus recorded: each victim went Running -> Created (re-queued) -> Assigning -> Running.
    codec = WireCodec()
    events = [codec.decode_event(v) for v in read_all(kafka_bootstrap, topics(cluster).task_events)]
    for task_id in victims:
        path = [
            (e.from_status, e.to_status, type(e).__name__)
            for e in events
            if isinstance(e, TaskEvent) and e.task_id == task_id and e.from_status != e.to_status
        ]
        assert path == [
            (None, TaskStatus.CREATED, "TaskCreated"),
            (TaskStatus.CREATED, TaskStatus.ASSIGNING, "TaskAssigned"),
            (TaskStatus.ASSIGNING, TaskStatus.RUNNING, "TaskStarted"),
            (TaskStatus.RUNNING, TaskStatus.CREATED, "TaskRequeued"),
            (TaskStatus.CREATED, TaskStatus.ASSIGNING, "TaskAssigned"),
            (TaskStatus.ASSIGNING, TaskStatus.RUNNING, "TaskStarted"),
        ], task_id

    # No worker process outlives its node: they watch their parent (the pipe, and PR_SET_PDEATHSIG).
    wait_for(
        f"node-a's {len(workers)} worker processes gone",
        lambda: not any(w.alive() for w in workers),
        within_s=30,
    )


def test_a_second_controller_beside_the_first_assigns_no_task_twice(
    cluster: Cluster, kafka_bootstrap: str
) -> None:
    first = start_controller_and_nodes(cluster, "node-a", "node-b")
    second = cluster.controller("controller-2")  # starts while tasks are being created
    targets = [first]
    created: list[str] = []
    created_beside_it = 0
    deadline = time.monotonic() + 90
    while created_beside_it < 20:
        cluster.check()
        assert time.monotonic() < deadline, "controller-2 did not start within 90 s"
        task_id = f"task-{len(created):03d}"
        create_task(targets[len(created) % len(targets)].api, task_id)  # alternate once both answer
        created.append(task_id)
        if len(targets) == 1 and second.dispatching():
            targets.append(second)
        elif len(targets) == 2:
            created_beside_it += 1
        time.sleep(0.1)
    tasks = wait_for(
        f"{len(created)} tasks running", lambda: running_tasks(first.api, len(created)), guard=cluster.check
    )

    # The store: every task assigned once, to one of the nodes, on its first attempt.
    assert set(tasks) == set(created)
    assert {t["attempt"] for t in tasks.values()} == {1}
    assert {t["executor"] for t in tasks.values()} <= {"node-a", "node-b"}
    # The dispatchers: each claim won once in all (a compare-and-set per task); both took part.
    counters = [first.dispatcher(), second.dispatcher()]
    print("dispatchers (assigned, lost):", [(c["assigned"], c["lost"]) for c in counters])
    assert all(c["running"] and c["cycles"] > 0 for c in counters)
    assert sum(c["assigned"] for c in counters) == len(created)
    # The bus: one assignment command per task ever sent, to the node the store names; one event.
    codec = WireCodec()
    names = topics(cluster)
    commands = [
        codec.decode_command(v) for v in read_all(kafka_bootstrap, names.for_command_class(AssignTask))
    ]
    sent = Counter((c.task_id, c.node_id) for c in commands if isinstance(c, AssignTask))
    assert sent == Counter((task_id, t["executor"]) for task_id, t in tasks.items())
    events = [codec.decode_event(v) for v in read_all(kafka_bootstrap, names.task_events)]
    assigned = Counter(e.task_id for e in events if isinstance(e, TaskAssigned))
    assert assigned == Counter(created)
    # The nodes: each task's heartbeats come from one run (one sequence, attempt 1, progress only grows).
    for task_id in created:
        history = heartbeat_history(first.api, task_id)
        assert history, task_id
        assert {beat["attempt"] for beat in history} == {1}, (task_id, history)
        sequences = [beat["sequence"] for beat in history]
        assert sequences == sorted(set(sequences)), (task_id, sequences)
        progress = [beat["progress"] or 0 for beat in history]
        assert progress == sorted(progress), (task_id, progress)


def test_a_checkpointing_task_resumes_on_the_other_node_after_a_sigkill(cluster: Cluster) -> None:
    """The worker saves after every row; its node is SIGKILLed; the next attempt, on the other node, starts
    at the row of the last save stored in FerretDB, not at zero."""
    controller = cluster.controller()
    cluster.node("node-a", worker="tests.workers:Resumable")
    cluster.wait_ready(controller)
    cluster.wait_online(controller, "node-a")
    body = {"className": "Resumable", "id": "rows", "attachments": {"rows": 100_000, "rowS": 0.01}}
    assert controller.api.post("/api/tasks", json=body).status_code == 201

    def saved() -> dict[str, Any] | None:
        found: dict[str, Any] | None = controller.api.get("/api/tasks/rows/checkpoint").json()["checkpoint"]
        return found

    reached = wait_for("a checkpoint past row 20", lambda: (c := saved()) and c["row"] >= 20 and c)
    cluster.node("node-b", worker="tests.workers:Resumable")
    cluster.wait_online(controller, "node-b")
    [node_a] = [p for p in cluster.processes if p.name == "node-a"]
    cluster.expect_dead(node_a)
    node_a.sigkill()
    resumed = wait_for(
        "the task resumed on node-b",
        lambda: (c := saved()) and len(c["starts"]) == 2 and c,
        within_s=DEAD_AFTER_MS / 1000 + 60,
        guard=cluster.check,
    )
    assert resumed["starts"][0] == 0 and resumed["starts"][1] >= reached["row"]
    task = controller.api.get("/api/tasks/rows").json()
    assert (task["executor"], task["attempt"]) == ("node-b", 2)


def test_a_tasks_output_reaches_the_api_from_its_node(cluster: Cluster) -> None:
    """A worker on a ``skalds node`` logs and prints; the lines travel over Kafka to the controller's log
    keeper, into Redis, and come back from ``/api/tasks/{id}/logs`` in order, and as a followed stream."""
    controller = cluster.controller()
    cluster.node("node-a", worker="tests.workers:Talker")
    cluster.wait_ready(controller)
    cluster.wait_online(controller, "node-a")
    body = {"className": "Talker", "id": "talker", "attachments": {"fps": 1}}
    assert controller.api.post("/api/tasks", json=body).status_code == 201

    def output() -> dict[str, Any] | None:
        found: dict[str, Any] = controller.api.get("/api/tasks/talker/logs").json()
        return found if len(found["lines"]) >= 7 else None

    logs = wait_for("the task's output in the API", output, guard=cluster.check)
    assert [line["message"] for line in logs["lines"][:5]] == [
        "starting talker",
        "to stdout",
        "to stderr",
        "in pieces",
        "careful: 3",
    ]
    assert [line["seq"] for line in logs["lines"]] == list(range(1, len(logs["lines"]) + 1))
    assert (logs["attempt"], logs["attempts"]) == (1, [1])
    assert "RuntimeError: the camera went away" in logs["lines"][-1]["message"]
    wait_for(
        "the task failed",
        lambda: controller.api.get("/api/tasks/talker").json()["lifecycleStatus"] == "Failed",
    )
    with controller.api.stream("GET", "/api/tasks/talker/logs/stream", params={"since": 3}) as stream:
        frames = [row for row in stream.iter_lines() if row.startswith(("event:", "id:"))]
    assert frames[:2] == ["id: 4", "event: task_log"] and frames[-1] == "event: task_log_end"
