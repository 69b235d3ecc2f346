"""2,000 short tasks on the real services: every one ends Finished exactly once, none runs twice.

A controller in dispatcher mode and two ``skalds node`` processes with 12 slots each, started with the CLI;
the tasks are created over the batch endpoint and do nothing but journal their run (bench.workers'
NoopWorker: one O_APPEND line per run). The evidence comes from three places: the API's final status of
every task, the live stream's Finished frames, and the workers' journal. How fast they go is
bench/throughput.py's business, not this test's; the deadline only bounds a hung run.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from bench.throughput_parts.client import WORKER, batch_creates, count
from bench.workers import JOURNAL_VARIABLE, NODE_VARIABLE
from tests.integration.cluster import Cluster, all_tasks, backends_env, cluster_fixture, wait_for
from tests.integration.scenario.feed import LiveFeed

TASKS = 2_000
NODES = ("node-a", "node-b")

cluster = cluster_fixture(backends_env)


def test_2000_short_tasks_all_end_finished_exactly_once(cluster: Cluster, tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    controller = cluster.controller()
    for node_id in NODES:
        env = {"SKALDS_NODE__CAPACITY": "12", JOURNAL_VARIABLE: str(journal), NODE_VARIABLE: node_id}
        cluster.node(node_id, worker=WORKER, env=env)
    cluster.wait_ready(controller)
    cluster.wait_online(controller, *NODES)
    feed = LiveFeed(controller.url)
    feed.start()
    try:
        ids = [f"short-{i:04d}" for i in range(TASKS)]
        created = batch_creates(controller.api, ids)
        assert created is not None and created.count == TASKS, created
        wait_for(
            "every task Finished",
            lambda: count(controller.api, "Finished") >= TASKS,
            within_s=900,
            every_s=2.0,
            guard=cluster.check,
        )
        wait_for(
            "the live stream shows every task Finished",
            lambda: all((feed.snapshot().get(i) or {}).get("status") == "Finished" for i in ids),
            within_s=60,
        )
    finally:
        feed.close()
    statuses = {task_id: item["lifecycleStatus"] for task_id, item in all_tasks(controller.api).items()}
    assert Counter(statuses[task_id] for task_id in ids) == Counter({"Finished": TASKS})
    runs = Counter(json.loads(line)["task"] for line in journal.read_text().splitlines() if line.strip())
    assert runs == Counter({task_id: 1 for task_id in ids})  # each ran, none twice
    finished_versions: dict[str, set[int]] = {}
    for _, frame in list(feed.frames):
        data = frame.get("data") or {}
        if frame.get("type") == "task_status" and data.get("lifecycleStatus") == "Finished":
            finished_versions.setdefault(frame["taskId"], set()).add(int(data.get("version") or 0))
    assert {task_id: len(finished_versions.get(task_id, ())) for task_id in ids} == {i: 1 for i in ids}
