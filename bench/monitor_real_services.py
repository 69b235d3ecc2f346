"""One monitor cycle over 10k running tasks on the real services (MongoDB-wire, Redis, Kafka); prints a table.

Target (issue 5): <= 100 ms per cycle at 10k running tasks. Two cases: *steady* (no new heartbeat since the
last cycle, so nothing to publish) and *all beating* (every task beat since the last cycle, so the cycle
publishes 10k heartbeat observations on the event bus). A benchmark, not a test: it reports, it asserts
nothing. Needs SKALDS_MONGO_URL, SKALDS_REDIS_URL and SKALDS_KAFKA_BOOTSTRAP (``make bench`` sets them).
Run: .venv/bin/python ci/services.py run -- .venv/bin/python bench/monitor_real_services.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid

from skalds.bootstrap import Services, build_container, start, stop, tune_garbage_collector
from skalds.config import load_settings
from skalds.domain import lifecycle
from skalds.domain.heartbeat import HeartbeatReport
from skalds.domain.lifecycle import TaskCommand
from skalds.domain.nodes import Node
from skalds.domain.task import new_task

CLASS = "BenchWorker"
NEEDED = ("SKALDS_MONGO_URL", "SKALDS_REDIS_URL", "SKALDS_KAFKA_BOOTSTRAP")


async def beat_nodes(services: Services, nodes: int) -> None:
    """What the nodes' own heartbeats do every second."""
    now = services.clock.now_ms()
    for i in range(nodes):
        node = Node(
            id=f"node-{i:03d}", supported_classes=frozenset({CLASS}), registered_at=now, last_heartbeat_at=now
        )
        await services.live_state.put_node(node)


async def seed(services: Services, running: int, nodes: int) -> list[str]:
    now = services.clock.now_ms()
    await beat_nodes(services, nodes)
    ids = [f"r{i:06d}" for i in range(running)]
    batch: list[tuple[str, int]] = []
    for i, task_id in enumerate(ids):
        task = new_task(task_id=task_id, class_name=CLASS, now=now)
        task, _ = lifecycle.apply(task, TaskCommand.ASSIGN, at=now, executor=f"node-{i % nodes:03d}")
        task, _ = lifecycle.apply(task, TaskCommand.START, at=now)
        await services.repository.insert(task)
        batch.append((task_id, task.attempt))
    await beat_all(services, batch, sequence=1)
    return ids


async def beat_all(services: Services, tasks: list[tuple[str, int]], sequence: int) -> None:
    now = services.clock.now_ms()
    for offset in range(0, len(tasks), 1_000):
        await asyncio.gather(
            *(
                services.live_state.record_heartbeat(
                    task_id,
                    HeartbeatReport(
                        received_at=now, sequence=sequence, progress=float(sequence), attempt=attempt
                    ),
                )
                for task_id, attempt in tasks[offset : offset + 1_000]
            )
        )


async def bench(running: int, nodes: int, cycles: int) -> tuple[list[float], list[float]]:
    name = "bench" + uuid.uuid4().hex[:8]
    settings = load_settings(
        environ={
            **os.environ,
            "SKALDS_BACKENDS__REPOSITORY": "mongo",
            "SKALDS_BACKENDS__LIVE_STATE": "redis",
            "SKALDS_BACKENDS__EVENT_BUS": "kafka",
            "SKALDS_MONGO__DATABASE": name,
            "SKALDS_REDIS__KEY_PREFIX": f"{name}:",
            "SKALDS_KAFKA__TOPIC_PREFIX": f"{name}.",
            # Seeding 10k tasks into FerretDB takes minutes: keep what was seeded from going silent meanwhile.
            "SKALDS_HEARTBEAT__SUSPECT_AFTER_MS": "1800000",
            "SKALDS_HEARTBEAT__DEAD_AFTER_MS": "3600000",
            "SKALDS_HEARTBEAT__STALL_AFTER_MS": "3600000",
        }
    )
    container = build_container(settings)
    services = await start(container)
    try:
        ids = await seed(services, running, nodes)
        tasks = [(task_id, 1) for task_id in ids]
        await services.monitor.run_cycle()  # the first cycle publishes the initial observations
        steady = []
        for _ in range(cycles):
            await beat_nodes(services, nodes)
            started = time.perf_counter()
            await services.monitor.run_cycle()
            steady.append((time.perf_counter() - started) * 1000)
        beating = []
        for sequence in range(2, cycles + 2):
            await beat_all(services, tasks, sequence)
            await beat_nodes(services, nodes)
            started = time.perf_counter()
            report = await services.monitor.run_cycle()
            beating.append((time.perf_counter() - started) * 1000)
            assert report.live_tasks == running, report
        return steady, beating
    finally:
        await stop(container)


async def main(quick: bool) -> None:
    tune_garbage_collector()  # as the controller process does
    missing = [name for name in NEEDED if not os.environ.get(name)]
    if missing:
        sys.exit(f"{', '.join(missing)} not set: run it under `ci/services.py run --` (make bench does)")
    print(f"# Monitor cycle on real services (FerretDB/MongoDB, Redis, Kafka) — {os.cpu_count()} CPUs")
    print()
    print("| running tasks | cycles | steady median ms | steady max ms | all beating median ms | max ms |")
    print("|---:|---:|---:|---:|---:|---:|")
    for size in (1_000,) if quick else (1_000, 10_000):
        cycles = 5
        steady, beating = await bench(size, 50, cycles)
        print(
            f"| {size:,} | {cycles} | {statistics.median(steady):.1f} | {max(steady):.1f} "
            f"| {statistics.median(beating):.1f} | {max(beating):.1f} |"
        )
    print()
    print("Target: <= 100 ms per cycle at 10,000 running tasks.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 tasks only, for a smoke run")
    asyncio.run(main(parser.parse_args().quick))
