"""A healthy node keeps its tasks while the controller serves heavy list reads (issue 15).

On real Kafka, Redis and FerretDB: a ``skalds controller --mode dispatcher`` and one ``skalds node`` hold a
few long countdowns; two large tasks (a description of about 1.9 MiB each) wait beside them, and 12 clients
read ``GET /api/tasks`` over and over, as a dashboard wall or a script would. The node's liveness must
not depend on how busy the task database is: at the end every task still runs on the same node, on its first
attempt, in the same worker process, and neither the store, the event bus nor the node's log knows of a
re-queue, a failure, a cancel or a lost lease.

The heartbeat thresholds are the product's defaults, set here explicitly so the test does not move with them.
How long the load lasts is a number of reads, not a time; nothing here asserts a duration.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections import Counter
from typing import Any

import httpx

from skalds.adapters.kafka.messages import WireCodec
from skalds.adapters.kafka.topics import Topics
from skalds.domain.events import TaskEvent
from skalds.domain.task import TaskStatus
from tests.integration.cluster import (
    WORKER_CLASS,
    Cluster,
    ProcessId,
    all_tasks,
    backends_env,
    cluster_fixture,
    create_task,
    heartbeat_history,
    read_all,
    wait_for,
)

SUSPECT_AFTER_MS = 5_000
DEAD_AFTER_MS = 10_000
NODE = "node-a"
LONG_TASKS = [f"long-{i}" for i in range(3)]
LARGE_TASKS = [f"large-{i}" for i in range(2)]
LARGE_DESCRIPTION_CHARS = 2_000_000  # about 1.9 MiB: the API takes request bodies up to 2 MiB
READERS = 12
READS_EACH = 40  # about half a minute of reads on a 2-core machine; a count, so the load bounds itself
RUNNING = TaskStatus.RUNNING.value
DISTURBED = {"TaskRequeued", "TaskFailed", "TaskCancelRequested", "TaskCancelled", "TaskRetried"}
LOST_WORK = re.compile(r"lost (its lease|contact)|the task is no longer assigned")  # the node's own words


def settings_env(kafka_bootstrap: str, redis_url: str, mongo_url: str, name: str) -> dict[str, str]:
    """The real backends under names of this test's own; the product's timings, heartbeat ones explicit."""
    return backends_env(kafka_bootstrap, redis_url, mongo_url, name) | {
        "SKALDS_HEARTBEAT__SUSPECT_AFTER_MS": str(SUSPECT_AFTER_MS),
        "SKALDS_HEARTBEAT__DEAD_AFTER_MS": str(DEAD_AFTER_MS),
        "SKALDS_NODE__ON_SHUTDOWN": "hand_back",  # so the teardown does not wait for the countdowns
        # the heavy pages this test wants: far over the default limit of a task's text fields
        "SKALDS_LIMITS__TEXT_CHARS": str(LARGE_DESCRIPTION_CHARS),
    }


cluster = cluster_fixture(settings_env)


def tasks_running(api: httpx.Client, task_ids: list[str]) -> dict[str, dict[str, Any]] | None:
    tasks = all_tasks(api)
    if all(tasks.get(task_id, {}).get("lifecycleStatus") == RUNNING for task_id in task_ids):
        return {task_id: tasks[task_id] for task_id in task_ids}
    return None


def store_large_task(api: httpx.Client, task_id: str) -> None:
    """A large task that stays stored, and in every list page, but runs nowhere: it asks for a label no node
    has, so it waits (and the dispatcher reads it every cycle)."""
    response = api.post(
        "/api/tasks",
        json={
            "className": WORKER_CLASS,
            "id": task_id,
            "description": "x" * LARGE_DESCRIPTION_CHARS,
            "requiredLabels": {"pool": "large"},
        },
        timeout=60,
    )
    assert response.status_code == 201, response.text[:500]


class ReadLoad:
    """``READERS`` clients, each reading the first page of ``GET /api/tasks`` ``READS_EACH`` times."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._lock = threading.Lock()
        self.answers: Counter[str] = Counter()
        self.biggest = 0

    def run(self) -> None:
        readers = [threading.Thread(target=self._read, name=f"reader-{i}") for i in range(READERS)]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join()

    def _read(self) -> None:
        with httpx.Client(base_url=self._url, timeout=120.0) as client:
            for _ in range(READS_EACH):
                try:
                    response = client.get("/api/tasks")
                    answer, size = str(response.status_code), len(response.content)
                except httpx.HTTPError as error:
                    answer, size = type(error).__name__, 0
                with self._lock:
                    self.answers[answer] += 1
                    self.biggest = max(self.biggest, size)


def more_than(count: int, found: list[ProcessId]) -> list[ProcessId] | None:
    return found if len(found) > count else None


def lost_work_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if LOST_WORK.search(line)]


def test_a_node_keeps_its_tasks_while_the_controller_serves_heavy_list_reads(
    cluster: Cluster, kafka_bootstrap: str
) -> None:
    controller = cluster.controller()
    node = cluster.node(NODE)
    cluster.wait_ready(controller)
    cluster.wait_online(controller, NODE)
    for task_id in LONG_TASKS:
        create_task(controller.api, task_id, seconds=86_400)
    before = wait_for(
        "the long tasks running", lambda: tasks_running(controller.api, LONG_TASKS), guard=cluster.check
    )
    assert {(t["executor"], t["attempt"]) for t in before.values()} == {(NODE, 1)}
    workers: list[ProcessId] = wait_for(  # the forkserver and a worker process per task, at least
        "the node's worker processes",
        lambda: more_than(len(LONG_TASKS), node.descendants()),
        guard=cluster.check,
    )
    for task_id in LARGE_TASKS:
        store_large_task(controller.api, task_id)

    load = ReadLoad(controller.url)
    started = time.monotonic()
    load.run()
    print(
        f"{sum(load.answers.values())} list reads by {READERS} clients in {time.monotonic() - started:.1f} s "
        f"(answers {dict(load.answers)}, largest {load.biggest / 1e6:.1f} MB)"
    )
    assert load.answers["200"] > 0, (
        load.answers
    )  # the load was real: the pages with the large tasks came back
    # Give the monitor a full dead-after to act on anything it saw during the load (not a timed assertion:
    # a node that lost its tasks keeps them lost).
    time.sleep(DEAD_AFTER_MS / 1000 + 2)
    cluster.check()

    node_log = node.log.read_text(errors="replace")
    troubles = lost_work_lines(node_log)
    after = all_tasks(controller.api)
    codec = WireCodec()
    events = [
        codec.decode_event(value)
        for value in read_all(kafka_bootstrap, Topics(cluster.env["SKALDS_KAFKA__TOPIC_PREFIX"]).task_events)
    ]
    history = {
        task_id: [
            f"{type(e).__name__} {e.from_status} -> {e.to_status}"
            for e in events
            if isinstance(e, TaskEvent) and e.task_id == task_id
        ]
        for task_id in LONG_TASKS
    }
    evidence = f"node log lines about lost work: {troubles}\nevents per task: {history}"
    beats = [b["receivedAt"] for b in heartbeat_history(controller.api, LONG_TASKS[0])]
    gaps = [later - earlier for earlier, later in itertools.pairwise(beats)]
    print(f"{LONG_TASKS[0]}: {len(beats)} heartbeats, longest gap {max(gaps, default=0)} ms; {evidence}")

    # The store: each long task still runs where it ran, on the same attempt, started at the same time.
    for task_id in LONG_TASKS:
        task, was = after[task_id], before[task_id]
        kept = (task["lifecycleStatus"], task["executor"], task["attempt"], task["startedAt"])
        assert kept == (RUNNING, NODE, 1, was["startedAt"]), f"{task_id}: {kept}\n{evidence}"
        assert (task["desiredState"], task["lastError"]) == ("run", None), f"{task_id}\n{evidence}"
    assert {after[task_id]["lifecycleStatus"] for task_id in LARGE_TASKS} == {TaskStatus.CREATED.value}
    # The bus: assigned once, started once, and no re-queue, failure or cancel.
    for task_id, seen in history.items():
        kinds = Counter(line.split()[0] for line in seen)
        assert (kinds["TaskAssigned"], kinds["TaskStarted"]) == (1, 1), f"{task_id}: {seen}\n{evidence}"
        assert not DISTURBED & set(kinds), f"{task_id}: {seen}\n{evidence}"
    # The node: no lease lost, nothing stopped; the worker processes are the ones that ran before the load.
    assert troubles == [], evidence
    gone = [worker for worker in workers if not worker.alive()]
    assert gone == [], f"worker processes gone: {gone}\n{evidence}"
    skalds = {n["id"]: n["health"] for n in controller.api.get("/api/skalds").json()["items"]}
    assert skalds == {NODE: "online"}, evidence
