"""A chatty task must not slow its node's heartbeats or the controller (issue 18, part 1); prints a table.

One ``skalds controller --mode dispatcher`` and one ``skalds node`` on real Kafka, Redis and FerretDB (the
product's default settings), started with the real CLI by tests/integration/cluster.py. Two phases of
``--seconds`` each: a quiet task (``bench.workers:ChattyWorker`` writing nothing), then a chatty one writing
``--rate`` lines a second (half log records, half prints). Meanwhile the bench reads, four times a second:
the node's last heartbeat in ``/api/skalds`` (its age is how stale the node's liveness looks) and
``GET /api/tasks`` (the controller's answer time). Afterwards it reads the task's heartbeat history (the
gaps between its beats as stored) and its output: lines stored of lines written, how soon after the task
ended the last line was readable, and the stored rate.

Run: ``set -a; . .services/env; set +a; .venv/bin/python bench/chatty_task.py [--rate N] [--seconds S]
[--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import uuid
from itertools import pairwise
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import machine, service_address
from tests.integration.cluster import Cluster, Controller, backends_env, process_env, wait_for

WORKER = "bench.workers:ChattyWorker"


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Sampler(threading.Thread):
    """The node's heartbeat age and the API's answer time, four times a second, until stopped."""

    def __init__(self, controller: Controller) -> None:
        super().__init__(daemon=True)
        self._api = controller.api
        self._stopping = threading.Event()
        self.node_ages_ms: list[float] = []
        self.api_ms: list[float] = []

    def run(self) -> None:
        while not self._stopping.wait(0.25):
            started = time.perf_counter()
            self._api.get("/api/tasks", params={"pageSize": 20})
            self.api_ms.append((time.perf_counter() - started) * 1000)
            nodes = self._api.get("/api/skalds").json()["items"]
            now_ms = time.time() * 1000
            for node in nodes:
                if node.get("lastHeartbeat"):  # upstream's string of epoch milliseconds
                    self.node_ages_ms.append(now_ms - int(node["lastHeartbeat"]))

    def stop(self) -> None:
        self._stopping.set()
        self.join()


def phase(controller: Controller, task_id: str, rate: int, seconds: float) -> dict[str, Any]:
    api = controller.api
    sampler = Sampler(controller)
    sampler.start()
    body = {
        "className": "ChattyWorker",
        "id": task_id,
        "attachments": {"linesPerS": rate, "seconds": seconds},
    }
    assert api.post("/api/tasks", json=body).status_code == 201

    def finished() -> bool:
        return bool(api.get(f"/api/tasks/{task_id}").json()["lifecycleStatus"] == "Finished")

    wait_for(f"{task_id} finished", finished, within_s=seconds + 120, every_s=0.05)
    ended = time.monotonic()
    sampler.stop()
    task = api.get(f"/api/tasks/{task_id}").json()
    written = int(task["progress"] or 0)
    expected = written + 1 if rate else 1  # the worker's last line says how many it wrote

    def stored() -> int | None:
        last = int(api.get(f"/api/tasks/{task_id}/logs", params={"limit": 1}).json()["lastSeq"])
        return last if last >= expected else None

    last = wait_for(f"{task_id}'s output stored", stored, within_s=120, every_s=0.05)
    caught_up_s = time.monotonic() - ended
    beats = api.get(f"/api/tasks/{task_id}/heartbeat", params={"limit": 200}).json()["heartbeatHistory"]
    times = sorted(b["receivedAt"] for b in beats)
    gaps = [b - a for a, b in pairwise(times)]
    return {
        "rate": rate,
        "written": written,
        "stored_last_seq": last,
        "lines_per_s": written / seconds,
        "caught_up_after_end_s": caught_up_s,
        "task_beat_gap_ms": {"p50": pct(gaps, 0.5), "max": max(gaps, default=float("nan"))},
        "node_beat_age_ms": {"p50": pct(sampler.node_ages_ms, 0.5), "max": max(sampler.node_ages_ms)},
        "api_ms": {"p50": pct(sampler.api_ms, 0.5), "p99": pct(sampler.api_ms, 0.99)},
        "api_samples": len(sampler.api_ms),
    }


def render(results: list[dict[str, Any]], seconds: float) -> str:
    rows = [
        "| phase | lines written (per s) | lines stored | output readable after the end "
        "| task beat gap p50 / max | node beat age p50 / max | GET /api/tasks p50 / p99 |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        name = "quiet" if r["rate"] == 0 else f"chatty ({r['rate']:,}/s asked)"
        rows.append(
            f"| {name} | {r['written']:,} ({r['lines_per_s']:,.0f}/s) | {r['stored_last_seq']:,} "
            f"| {r['caught_up_after_end_s']:.2f} s "
            f"| {r['task_beat_gap_ms']['p50']:.0f} / {r['task_beat_gap_ms']['max']:.0f} ms "
            f"| {r['node_beat_age_ms']['p50']:.0f} / {r['node_beat_age_ms']['max']:.0f} ms "
            f"| {r['api_ms']['p50']:.1f} / {r['api_ms']['p99']:.1f} ms |"
        )
    rows.append(f"\n{seconds:g} s per phase; {machine()}")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    name = "chatty" + uuid.uuid4().hex[:8]
    env = backends_env(
        service_address("SKALDS_KAFKA_BOOTSTRAP", "Kafka"),
        service_address("SKALDS_REDIS_URL", "Redis"),
        service_address("SKALDS_MONGO_URL", "MongoDB-wire server"),
        name,
    )
    logs = Path(tempfile.mkdtemp(prefix="skalds-chatty-"))
    cluster = Cluster(process_env(env, logs), logs)
    try:
        controller = cluster.controller()
        cluster.node("node-a", worker=WORKER)
        cluster.wait_ready(controller)
        cluster.wait_online(controller, "node-a")
        results = [
            phase(controller, "quiet", 0, args.seconds),
            phase(controller, "chatty", args.rate, args.seconds),
        ]
    finally:
        cluster.close()
    print(render(results, args.seconds))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
