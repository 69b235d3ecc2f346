"""Part (d): controller and node resident memory with 0, 10,000 and 100,000 tasks stored on the Mongo backend.

The stored tasks go straight into the database (``insert_many`` of the documents the Mongo adapter itself
writes, ``task_to_document``), all terminal: 90 % Finished, 5 % Failed, 5 % Cancelled. Then a ``skalds
controller --mode dispatcher`` and one ``skalds node`` start on that database; once both are up, at least
3 s have passed and the dispatcher and the monitor have each run a cycle more, ``GET /api/tasks`` (the first
page, as the dashboard asks) and the dashboard summary are requested once, and VmRSS is read from /proc.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

from pymongo import MongoClient

from bench.throughput_parts import client
from bench.throughput_parts.proc import rss_bytes
from bench.throughput_parts.rows import Row
from skalds.adapters.mongo.documents import task_to_document
from skalds.domain.task import Task, TaskStatus, new_task
from tests.integration.cluster import Cluster, Controller, wait_for

SIZES = (0, 10_000, 100_000)
INSERT_CHUNK = 1_000
SETTLE_S = 3.0
TARGET_BYTES_PER_TASK = 1024
NODE_ID = "node-m"
MIB = 1024 * 1024
SCAN_TIMEOUT_S = 120.0
"""A page and a count filter every stored task: FerretDB 1.x (SQLite) scans, about 10 s per 100,000."""


def stored_tasks(count: int, now: int) -> Iterator[Task]:
    for i in range(count):
        status = (
            TaskStatus.FAILED if i % 20 == 0 else TaskStatus.CANCELLED if i % 20 == 1 else TaskStatus.FINISHED
        )
        task = new_task(
            task_id=f"d-{i:06d}",
            class_name=client.WORKER_CLASS,
            now=now - 86_400_000 + i,
            attachments={"path": f"/data/batch-7/file-{i:06d}.bin", "size": 4096 + i},
        )
        yield dataclasses.replace(
            task,
            lifecycle_status=status,
            executor="node-gone",
            version=4,
            attempt=1,
            assigned_at=task.create_date_time + 5,
            started_at=task.create_date_time + 10,
            finished_at=task.create_date_time + 20,
            update_date_time=task.create_date_time + 20,
            last_error="RuntimeError: planned" if status is TaskStatus.FAILED else None,
        )


def seed(mongo_url: str, database: str, count: int) -> float:
    """``count`` stored tasks in ``database``'s ``tasks`` collection; returns the seconds it took."""
    started = time.monotonic()
    with MongoClient(mongo_url, serverSelectionTimeoutMS=5_000) as mongo:
        tasks = mongo[database]["tasks"]
        chunk: list[dict[str, Any]] = []
        for task in stored_tasks(count, int(time.time() * 1000)):
            chunk.append({"_id": task.id, **task_to_document(task)})
            if len(chunk) == INSERT_CHUNK:
                tasks.insert_many(chunk, ordered=False)
                chunk = []
        if chunk:
            tasks.insert_many(chunk, ordered=False)
    return time.monotonic() - started


def cycles(controller: Controller) -> tuple[int, int]:
    components = {c["name"]: c["details"] for c in controller.status()["components"]}
    return components["Dispatcher"]["cycles"], components["Monitor"]["cycles"]


def settle(cluster: Cluster, controller: Controller, stored: int) -> dict[str, Any]:
    cluster.wait_ready(controller)
    cluster.wait_online(controller, NODE_ID)
    begun = time.monotonic()
    dispatched, monitored = cycles(controller)

    def settled() -> bool:
        d, m = cycles(controller)
        return time.monotonic() - begun >= SETTLE_S and d > dispatched and m > monitored

    wait_for("a dispatch and a monitor cycle", settled, within_s=120, every_s=0.5, guard=cluster.check)
    sent = time.perf_counter()
    page = controller.api.get("/api/tasks", timeout=SCAN_TIMEOUT_S)
    page.raise_for_status()
    page_ms = (time.perf_counter() - sent) * 1000
    sent = time.perf_counter()
    controller.api.get("/api/system/dashboard/summary", timeout=SCAN_TIMEOUT_S).raise_for_status()
    summary_ms = (time.perf_counter() - sent) * 1000
    total = int(page.json()["total"])
    if total != stored:
        raise RuntimeError(f"the API lists {total} tasks; {stored} were stored")
    time.sleep(0.5)
    return {
        "settleS": round(time.monotonic() - begun, 1),
        "listMs": round(page_ms),
        "summaryMs": round(summary_ms),
    }


def measure(cluster: Cluster, stored: int) -> dict[str, Any]:
    controller = cluster.controller()
    node = cluster.node(NODE_ID, worker=client.WORKER, env={"SKALDS_NODE__CAPACITY": "12"})
    started = time.monotonic()
    timings = settle(cluster, controller, stored)
    return {
        "stored": stored,
        "upS": round(time.monotonic() - started, 1),
        **timings,
        "controller": rss_bytes(controller.process.popen.pid),
        "node": rss_bytes(node.popen.pid),
        "nodeTree": sum(rss_bytes(p.pid).get("VmRSS", 0) for p in node.descendants() if p.alive()),
    }


def run_memory(
    open_cluster: Callable[[str], Any], new_name: Callable[[str], str], mongo_url: str
) -> tuple[list[Row], dict[str, Any]]:
    """``open_cluster(name)`` is a context manager giving a Cluster on database ``name``; ``new_name(tag)``
    a fresh unique name (the caller drops those databases at the end)."""
    measured: dict[int, dict[str, Any]] = {}
    for stored in SIZES:
        name = new_name(f"d{stored}")
        seeded_s = seed(mongo_url, name, stored)
        with open_cluster(name) as cluster:
            measured[stored] = measure(cluster, stored) | {"seedS": round(seeded_s, 1)}
    return rows(measured), {str(k): v for k, v in measured.items()}


def rows(measured: dict[int, dict[str, Any]]) -> list[Row]:
    out = []
    for who in ("controller", "node"):
        shown = " / ".join(f"{measured[s][who]['VmRSS'] / MIB:,.0f}" for s in SIZES) + " MiB"
        peaks = " / ".join(f"{measured[s][who]['VmHWM'] / MIB:,.0f}" for s in SIZES)
        note = f"peak (VmHWM) {peaks} MiB"
        if who == "controller":
            note += "; first GET /api/tasks " + " / ".join(f"{measured[s]['listMs']} ms" for s in SIZES)
        out.append(Row("d", f"{who} RSS with 0 / 10,000 / 100,000 stored", shown, note=note))
    low, high = measured[SIZES[1]]["controller"]["VmRSS"], measured[SIZES[2]]["controller"]["VmRSS"]
    per_task = (high - low) / (SIZES[2] - SIZES[1])
    budget = TARGET_BYTES_PER_TASK * (SIZES[2] - SIZES[1])
    out.append(
        Row(
            "d",
            f"controller growth {SIZES[1]:,} -> {SIZES[2]:,} stored, per stored task",
            f"{per_task:,.0f} B ({(high - low) / MIB:,.1f} MiB)",
            f"<= {TARGET_BYTES_PER_TASK} B (<= {budget / MIB:,.0f} MiB)",
            per_task <= TARGET_BYTES_PER_TASK,
            value=per_task,
            unit="bytes/task",
            note="startup to settled: " + " / ".join(f"{measured[s]['upS']} s" for s in SIZES),
        )
    )
    return out
