"""Dispatch throughput and monitor cycle time on the in-memory backend; prints a table.

Targets (issue 3, one core): >= 20,000 assignments/s dispatching 10k queued tasks over 50 nodes, and
<= 50 ms per monitor cycle at 10k running tasks. A benchmark, not a test: it reports, it does not assert.
Run: .venv/bin/python bench/dispatch_and_monitor.py  [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import time

from skalds.application.node_runtime import NodeIdentity
from skalds.application.tasks import TaskDraft
from skalds.bootstrap import Services, build_container, start, tune_garbage_collector
from skalds.config import Settings
from skalds.domain import lifecycle
from skalds.domain.dispatch import DispatchStrategy, assign_batch
from skalds.domain.heartbeat import HeartbeatPolicy, HeartbeatReport
from skalds.domain.lifecycle import TaskCommand
from skalds.domain.nodes import Node
from skalds.domain.task import new_task

CLASS = "BenchWorker"


async def fresh_services(strategy: DispatchStrategy) -> Services:
    settings = Settings.model_validate({"dispatch": {"strategy": strategy.value, "batch_size": 10_000}})
    return await start(build_container(settings))


async def register_nodes(services: Services, count: int, capacity: int | None = None) -> None:
    now = services.clock.now_ms()
    for i in range(count):
        identity = NodeIdentity(id=f"node-{i:03d}", supported_classes=frozenset({CLASS}), capacity=capacity)
        await services.live_state.put_node(
            Node(
                id=identity.id,
                supported_classes=identity.supported_classes,
                capacity=capacity,
                registered_at=now,
                last_heartbeat_at=now,
            )
        )


async def bench_dispatch(strategy: DispatchStrategy, tasks: int, nodes: int) -> tuple[float, int]:
    services = await fresh_services(strategy)
    await register_nodes(services, nodes)
    for i in range(tasks):
        await services.tasks.create(TaskDraft(id=f"t{i:06d}", class_name=CLASS, priority=i % 11))
    started = time.perf_counter()
    report = await services.dispatcher.dispatch_once()
    elapsed = time.perf_counter() - started
    return elapsed, report.assigned


def bench_pure_assign(strategy: DispatchStrategy, tasks: int, nodes: int) -> float:
    pending = [new_task(task_id=f"t{i}", class_name=CLASS, now=i, priority=i % 11) for i in range(tasks)]
    node_list = [
        Node(id=f"n{i}", supported_classes=frozenset({CLASS}), registered_at=0, last_heartbeat_at=0)
        for i in range(nodes)
    ]
    started = time.perf_counter()
    plan = assign_batch(
        pending, node_list, strategy=strategy, now=0, policy=HeartbeatPolicy(), rng=random.Random(1)
    )
    elapsed = time.perf_counter() - started
    assert len(plan.assignments) == tasks
    return elapsed


async def bench_monitor(running: int, nodes: int, cycles: int) -> list[float]:
    services = await fresh_services(DispatchStrategy.LEAST_TASKS)
    await register_nodes(services, nodes)
    now = services.clock.now_ms()
    for i in range(running):
        task = new_task(task_id=f"r{i:06d}", class_name=CLASS, now=now)
        task, _ = lifecycle.apply(task, TaskCommand.ASSIGN, at=now, executor=f"node-{i % nodes:03d}")
        task, _ = lifecycle.apply(task, TaskCommand.START, at=now)
        await services.repository.insert(task)
        await services.live_state.record_heartbeat(
            task.id, HeartbeatReport(received_at=now, sequence=1, progress=1.0, attempt=task.attempt)
        )
    await services.monitor.run_cycle()  # first cycle publishes the initial observations
    timings = []
    for _ in range(cycles):
        started = time.perf_counter()
        await services.monitor.run_cycle()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def machine() -> str:
    cpus = os.cpu_count()
    return (
        f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}, {cpus} CPUs"
    )


async def main(quick: bool) -> None:
    tune_garbage_collector()  # as the controller process does
    tasks, nodes = (2_000, 50) if quick else (10_000, 50)
    print(f"# Skalds in-memory benchmark — {machine()}")
    print()
    print(f"## Dispatch: {tasks} queued tasks over {nodes} nodes (target >= 20,000 assignments/s)")
    print()
    await bench_dispatch(DispatchStrategy.LEAST_TASKS, 1_000, nodes)  # warm-up, not reported
    print("| strategy | assigned | seconds | assignments/s | pure assign_batch/s |")
    print("|---|---:|---:|---:|---:|")
    for strategy in DispatchStrategy:
        elapsed, assigned = await bench_dispatch(strategy, tasks, nodes)
        pure = bench_pure_assign(strategy, tasks, nodes)
        print(
            f"| {strategy.value} | {assigned} | {elapsed:.3f} "
            f"| {assigned / elapsed:,.0f} | {tasks / pure:,.0f} |"
        )
    print()
    print("## Monitor cycle, steady state (target <= 50 ms at 10k running tasks)")
    print()
    print("| running tasks | cycles | median ms | max ms |")
    print("|---:|---:|---:|---:|")
    sizes = (1_000, 10_000) if quick else (1_000, 10_000, 100_000)
    for size in sizes:
        cycles = 3 if size >= 100_000 else 10
        timings = await bench_monitor(size, nodes, cycles)
        print(f"| {size:,} | {cycles} | {statistics.median(timings):.1f} | {max(timings):.1f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    asyncio.run(main(parser.parse_args().quick))
