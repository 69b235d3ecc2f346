"""Compare-and-set transitions and reads of the MongoDB task repository on a real server, and of the SQLite
repository (``skalds up``'s default) on a file beside it, on the same work; prints a table for each.

Target (issue 5): >= 2,000 batched transitions/s (``update_many``, what the dispatcher and the monitor
use). Every transition is a full compare-and-set (claim, read, write, release; see the repository's
docstring) of the next version of a stored task. FerretDB 1.x runs every update statement as a scan of the
whole collection, so its numbers depend on the collection size, printed with the table. A benchmark, not a
test: it reports, it does not assert. It uses a throwaway database and file, dropped at the end.
Run: SKALDS_MONGO_URL=mongodb://127.0.0.1:27017 .venv/bin/python bench/mongo_transitions.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import machine, service_address, timed_ms
from skalds.adapters.mongo.repository import MongoClient, MongoTaskRepository, mongo_client, redacted
from skalds.adapters.sqlite.repository import sqlite_task_repository
from skalds.domain.ports import TaskOrder, TaskQuery, TaskRepository
from skalds.domain.task import Task, TaskMode, TaskStatus, evolve, new_task

CLASS = "BenchWorker"


def next_version(task: Task, now: int) -> Task:
    """The task as a transition stores it: every field written again, the version one up."""
    return evolve(task, {"version": task.version + 1, "update_date_time": now})


async def fill(repository: TaskRepository, count: int) -> list[Task]:
    tasks = [
        new_task(task_id=f"t{i:06d}", class_name=CLASS, now=1_000 + i, priority=i % 11, attachments={"i": i})
        for i in range(count)
    ]
    for start in range(0, count, 100):
        await asyncio.gather(*(repository.insert(task) for task in tasks[start : start + 100]))
    return tasks


@dataclass
class Run:
    transitions: int = 0
    lost: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)  # per call: one transition, or one batch

    @property
    def rate(self) -> float:
        return self.transitions / self.seconds if self.seconds else 0.0


async def transitions(
    repository: TaskRepository, tasks: list[Task], *, mode: str, size: int, most: int, budget_s: float
) -> Run:
    """Rounds of ``size`` transitions of distinct tasks, one at a time ("sequential"), all at once
    ("concurrent") or as one ``update_many`` ("batched"), until ``most`` are done or the budget is spent."""
    run, cursor = Run(), 0
    deadline = time.perf_counter() + budget_s
    while run.transitions < most and time.perf_counter() < deadline:
        positions = [(cursor + i) % len(tasks) for i in range(size)]
        cursor += size
        updates = [(next_version(tasks[p], cursor), tasks[p].version) for p in positions]
        began = time.perf_counter()
        if mode == "batched":
            lost = set(await repository.update_many(updates))
        elif mode == "concurrent":
            await asyncio.gather(*(repository.update(task, expected) for task, expected in updates))
            lost = set()
        else:
            for task, expected in updates:
                one = time.perf_counter()
                await repository.update(task, expected)
                run.latencies_ms.append((time.perf_counter() - one) * 1000)
            lost = set()
        elapsed = time.perf_counter() - began
        if mode != "sequential":
            run.latencies_ms.append(elapsed * 1000)
        run.seconds += elapsed
        run.transitions += size
        run.lost += len(lost)
        for p, (task, _) in zip(positions, updates, strict=True):
            if task.id not in lost:
                tasks[p] = task
    return run


def p99(values: list[float]) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * 0.99))]


async def server(client: MongoClient) -> str:
    info = await client.admin.command("buildInfo")
    ferret = info.get("ferretdbVersion")
    return (
        f"FerretDB {ferret} (reports MongoDB {info.get('version')})"
        if ferret
        else f"MongoDB {info.get('version')}"
    )


async def measure(repository: TaskRepository, what: str, stored: int, quick: bool) -> None:
    budget_s, most, repeats = (3.0, 2_000, 10) if quick else (10.0, 20_000, 20)
    tasks = await fill(repository, stored)
    print(f"## {what}: compare-and-set transitions on {stored:,} stored tasks (target >= 2,000/s batched)")
    print()
    print(f"Each mode runs for up to {budget_s:g} s, and at least one round.")
    print()
    print("| mode | transitions | lost | transitions/s | median ms per call | p99 ms per call |")
    print("|---|---:|---:|---:|---:|---:|")
    modes = [
        ("update, sequential", "sequential", 1, most),
        ("update, 50 concurrent", "concurrent", 50, most),
        ("update_many, batches of 100", "batched", 100, most),
        ("update_many, batches of 1,000", "batched", 1_000, most),
    ]
    for label, mode, round_size, limit in modes:
        run = await transitions(repository, tasks, mode=mode, size=round_size, most=limit, budget_s=budget_s)
        median, worst = statistics.median(run.latencies_ms), p99(run.latencies_ms)
        counts = f"{run.transitions:,} | {run.lost} | {run.rate:,.0f}"
        print(f"| {label} | {counts} | {median:.1f} | {worst:.1f} |")
    print()
    print(f"## {what}: reads on {stored:,} stored tasks")
    print()
    ids = [task.id for task in tasks]
    rng = random.Random(1)
    get = await timed_ms(lambda: repository.get(rng.choice(ids)), repeats * 5)
    browse = await timed_ms(lambda: repository.list(TaskQuery(limit=50)), repeats)
    filtered = await timed_ms(lambda: repository.list(TaskQuery(id_contains="t0001", limit=50)), repeats)
    queue = TaskQuery(
        statuses=frozenset({TaskStatus.CREATED}),
        modes=frozenset({TaskMode.PASSIVE}),
        order=TaskOrder.DISPATCH,
        limit=1_000,
    )
    dispatch = await timed_ms(lambda: repository.list(queue), repeats)
    by_status = await timed_ms(repository.count_by_status, repeats)
    print("| call | calls | median ms | p99 ms |")
    print("|---|---:|---:|---:|")
    rows = [
        ("get by id", get),
        ("list, newest first, page of 50, with total", browse),
        ("list, id contains, page of 50, with total", filtered),
        ("list, dispatch order, page of 1,000, with total", dispatch),
        ("count_by_status", by_status),
    ]
    for label, timings in rows:
        print(f"| {label} | {len(timings)} | {statistics.median(timings):.1f} | {p99(timings):.1f} |")
    print()


async def main(url: str, quick: bool, size: int | None) -> None:
    stored = max(size or 1_000, 1_000)  # a batch of 1,000 needs as many distinct tasks
    database = f"bench{uuid.uuid4().hex[:8]}"
    client = mongo_client(url)
    repository = MongoTaskRepository(client, database=database)
    try:
        where = f"{await server(client)} at {redacted(url)}"
        print(f"# Skalds task repository benchmark — {machine()}; {where}; SQLite {sqlite3.sqlite_version}")
        print()
        await repository.prepare()
        await measure(repository, "MongoDB-wire", stored, quick)
    finally:
        await client.drop_database(database)
        await client.close()
    with tempfile.TemporaryDirectory(prefix="skalds-bench-") as folder:
        async for sqlite in sqlite_task_repository(Path(folder) / "tasks.sqlite3"):
            await measure(sqlite, "SQLite (WAL, synchronous=NORMAL)", stored, quick)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 s per mode instead of 10, fewer reads")
    parser.add_argument("--tasks", type=int, help="stored tasks, at least 1,000 (the default)")
    args = parser.parse_args()
    mongo_url = service_address("SKALDS_MONGO_URL", "MongoDB-wire server")
    asyncio.run(main(mongo_url, args.quick, args.tasks))
