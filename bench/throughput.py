"""High volume on real services (issue 23): creates, batch creates, short tasks, memory; prints a table.

Every part runs ``skalds controller`` / ``skalds node`` processes started with the real CLI by
tests/integration/cluster.py on real Kafka, Redis and FerretDB, under topic / key / database names of its
own; only addresses, names, node ids, capacity and log paths are set, the rest is the product's default.
The HTTP clients run in this process on the same machine, so every rate is a lower bound.

- **(a) batch create**: 2,000 tasks over ``POST /api/tasks/batch`` (``{"tasks": [<a create body>, ...]}``)
  in requests of 500, on a controller in dispatcher mode with no node. Target >= 1,000 tasks/s. Reported
  "n/a" while the API has no such endpoint (404/405).
- **(b) single creates**: 1,000 ``POST /api/tasks`` from 1 client and from 8 concurrent clients, with 0
  tasks waiting and with 10,000 waiting (same controller, no node, so nothing is assigned; each
  measurement's tasks are purged again so the next starts from the same backlog; the backlog is seeded by
  batch when there is one, else by 8 clients, and its create rate per 1,000 is in the JSON). Targets
  >= 500/s with 8 clients, and the rate with 10,000 waiting at least 80 % of the rate with none.
- **(c) short tasks**: ``--tasks`` (2,000) ``bench.workers:NoopWorker`` tasks on 2 ``skalds node`` x 12 slots
  and one controller in dispatcher mode: first submit -> the API showing every one ``Finished`` (asked
  every 2 s, then every 0.25 s once the live stream has shown them all Finished). Target >= 200 tasks/s;
  each task Finished exactly once (final API status, the live stream's ``Finished`` frames) and run once
  (the workers' journal). Stops at ``--deadline`` (600 s) and reports how many finished.
- **(d) memory**: controller and node VmRSS with 0, 10,000 and 100,000 terminal tasks stored on the Mongo
  backend (written straight into the database), once both are up and settled. Target: the controller
  grows by at most 1 KiB per stored task from 10,000 to 100,000.

Run: ``set -a; . .services/env; set +a; .venv/bin/python bench/throughput.py [--only a,b,c,d] [--tasks N]
[--deadline S] [--json PATH] [--logs DIR]``. The "code" line says which ``skalds`` the processes imported;
to measure another checkout, run it there as bench/operator_scenario.py explains. Every process is reaped
(``Cluster.close``) and the databases this run made are dropped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pymongo import MongoClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import machine, service_address
from bench.operator_scenario import code_under_test, services_env
from bench.throughput_parts.creates import run_creates
from bench.throughput_parts.memory import run_memory
from bench.throughput_parts.rows import Row, render
from bench.throughput_parts.short_tasks import run_short_tasks
from tests.integration.cluster import Cluster, process_env

PARTS = ("a", "b", "c", "d")


class Run:
    """This run's log folder and the unique names (databases, topics, keys) its clusters used."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.prefix = "tp" + uuid.uuid4().hex[:8]
        self.names: list[str] = []
        self.code = ""

    def new_name(self, tag: str) -> str:
        name = f"{self.prefix}{tag}"
        self.names.append(name)
        return name

    @contextlib.contextmanager
    def cluster(self, name: str) -> Iterator[Cluster]:
        """A Cluster on its own names; closed on the way out, its stop report kept with the logs."""
        logs = self.logs / name
        logs.mkdir(parents=True, exist_ok=True)
        started = Cluster(process_env(services_env(name), logs), logs)
        try:
            if not self.code:
                self.code = code_under_test(started.skalds_origin())
            yield started
        finally:
            with (logs / "stopping.txt").open("w") as out, contextlib.redirect_stdout(out):
                started.close()

    def drop_databases(self) -> None:
        with MongoClient(service_address("SKALDS_MONGO_URL", "MongoDB-wire server")) as mongo:
            for name in self.names:
                with contextlib.suppress(Exception):
                    mongo.drop_database(name)


def run_parts(run: Run, parts: set[str], args: argparse.Namespace) -> tuple[list[Row], dict[str, Any]]:
    rows: list[Row] = []
    details: dict[str, Any] = {}
    timings: dict[str, float] = {}

    def timed(part: str, started: float) -> None:
        timings[part] = round(time.monotonic() - started, 1)
        print(f"  ({part}) done in {timings[part]} s", flush=True)

    @contextlib.contextmanager
    def part(name: str) -> Iterator[None]:
        """A part that fails is a failed row with its error; the other parts' rows are kept."""
        started = time.monotonic()
        try:
            yield
        except Exception as error:  # reported in the table, with the traceback above it
            traceback.print_exc()
            rows.append(
                Row(
                    name,
                    "the part did not complete",
                    f"{type(error).__name__}",
                    ok=False,
                    note=str(error).splitlines()[0][:160] if str(error) else "",
                )
            )
            details.setdefault("errors", {})[name] = repr(error)
        timed(name, started)

    if parts & {"a", "b"}:
        with part("a,b"), run.cluster(run.new_name("ab")) as cluster:
            found, details["creates"] = run_creates(
                cluster, parts, per_measure=1_000, waiting=10_000, batch_tasks=2_000
            )
            rows += found
    if "c" in parts:
        with part("c"), run.cluster(run.new_name("c")) as cluster:
            found, details["shortTasks"] = run_short_tasks(cluster, cluster.logs, args.tasks, args.deadline)
            rows += found
    if "d" in parts:
        with part("d"):
            mongo = service_address("SKALDS_MONGO_URL", "MongoDB-wire server")
            found, details["memory"] = run_memory(run.cluster, run.new_name, mongo)
            rows += found
    details["seconds"] = timings
    return rows, details


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--only", default=",".join(PARTS), help="parts to run, e.g. a,b (default: all)")
    parser.add_argument("--tasks", type=int, default=2_000, help="no-op tasks for part c")
    parser.add_argument("--deadline", type=float, default=600.0, help="seconds part c may take")
    parser.add_argument("--json", type=Path, help="also write the rows and details here")
    parser.add_argument("--logs", type=Path, help="folder for the processes' logs and the journal")
    args = parser.parse_args()
    parts = {part.strip() for part in args.only.split(",") if part.strip()}
    if unknown := parts - set(PARTS):
        parser.error(f"--only: unknown parts {sorted(unknown)}; the parts are {', '.join(PARTS)}")
    for variable, service in (
        ("SKALDS_KAFKA_BOOTSTRAP", "Kafka"),
        ("SKALDS_REDIS_URL", "Redis"),
        ("SKALDS_MONGO_URL", "MongoDB-wire server"),
    ):
        service_address(variable, service)
    logs = args.logs or Path(tempfile.mkdtemp(prefix="throughput-"))
    logs.mkdir(parents=True, exist_ok=True)
    run = Run(logs)
    begun, started = time.monotonic(), time.strftime("%Y-%m-%d %H:%M")
    print(f"throughput: parts {','.join(sorted(parts))}; logs in {logs}", flush=True)
    try:
        rows, details = run_parts(run, parts, args)
    finally:
        run.drop_databases()
    header = (
        f"Throughput ({started}), parts {','.join(sorted(parts))}, real Kafka / Redis / FerretDB; "
        f"{machine()}\ncode: {run.code}\nlogs: {logs}\nrun took {time.monotonic() - begun:.0f} s"
    )
    print()
    print(header)
    print()
    print(render(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"header": header, "rows": [asdict(r) for r in rows], "details": details}
        args.json.write_text(json.dumps(payload, indent=1, default=str))
        print(f"\nJSON: {args.json}")


if __name__ == "__main__":
    main()
