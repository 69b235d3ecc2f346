"""Latency of real worker processes on the in-memory backend; prints a table.

create → the worker's main hook running (process start included), cancel → the process has exited
(cooperative path, no grace period spent), update → the worker's update handler called.
Targets (issue 4): p50 <= 150 ms, <= 100 ms, <= 20 ms. A benchmark, not a test.
Run: .venv/bin/python bench/worker_latency.py [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.workers import Stamps
from skalds.application.node_runtime import NodeIdentity
from skalds.application.tasks import TaskDraft
from skalds.bootstrap import build_container, build_process_node, start
from skalds.config import Settings


async def wait_for_file(path: Path, timeout: float = 10.0) -> float:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        if time.monotonic() > deadline:
            raise TimeoutError(path)
        await asyncio.sleep(0.001)
    return float(path.read_text())


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99


async def main(rounds: int) -> None:
    services = await start(build_container(Settings()))
    services.catalog.register("StampingWorker", Stamps)
    node, supervisor = build_process_node(
        services,
        NodeIdentity(id="bench-node", supported_classes=frozenset({"StampingWorker"})),
        {"StampingWorker": "bench.workers:StampingWorker"},
        heartbeat_period_s=1.0,
    )
    loops = [
        asyncio.create_task(node.run(services.subscriber, heartbeat_interval_s=1.0)),
        asyncio.create_task(services.dispatcher.run(services.subscriber, interval_s=3_600)),
    ]
    folder = Path(tempfile.mkdtemp(prefix="skalds-bench-"))
    create_ms, update_ms, cancel_ms = [], [], []
    try:
        await asyncio.sleep(0.2)
        draft = TaskDraft(class_name="StampingWorker", attachments={"folder": str(folder)})
        warm = await services.tasks.create(draft)
        await wait_for_file(folder / f"{warm.id}.main", timeout=60)  # the forkserver starts on first use
        await services.tasks.cancel(warm.id)
        for _ in range(rounds):
            began = time.time()
            task = await services.tasks.create(draft)
            create_ms.append((await wait_for_file(folder / f"{task.id}.main") - began) * 1000)
            began = time.time()
            await services.tasks.update_attachments(task.id, {"folder": str(folder), "round": 1})
            update_ms.append((await wait_for_file(folder / f"{task.id}.update1") - began) * 1000)
            pid = supervisor.pid(task.id)
            assert pid is not None
            began = time.time()
            await services.tasks.cancel(task.id)
            while alive(pid):
                await asyncio.sleep(0.001)
            cancel_ms.append((time.time() - began) * 1000)
    finally:
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        await supervisor.shutdown()
    print(f"# Worker-process latency — {os.cpu_count()} CPUs, {rounds} rounds, forkserver, in-memory backend")
    print()
    print("| path | p50 ms | p99 ms | target p50 |")
    print("|---|---:|---:|---:|")
    for name, samples, target in (
        ("create → worker main running", create_ms, "≤ 150"),
        ("cancel → process exited (cooperative)", cancel_ms, "≤ 100"),
        ("update → handler called", update_ms, "≤ 20"),
    ):
        p50, p99 = percentiles(samples)
        print(f"| {name} | {p50:.1f} | {p99:.1f} | {target} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=30)
    asyncio.run(main(parser.parse_args().rounds))
