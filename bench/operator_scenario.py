"""An operator's load on real services, with the product's default settings; prints a table (issue 15).

One ``skalds controller --mode dispatcher`` and two ``skalds node`` processes (``node-a``, ``node-b``,
capacity 12 each) on real Kafka, Redis and FerretDB, started with the real CLI by
tests/integration/cluster.py. Only addresses, unique topic / key / database prefixes, node ids, capacity and
log paths are set: heartbeat, monitor and dispatch settings are the defaults, because the defaults are what
an operator runs. The load (tests/integration/scenario/, shared with tests/integration/test_operator_
scenario.py): 400 tasks of 3-8 s of active work (seeded), priority 0-10, created over ``POST /api/tasks``;
10 % updated, 5 % paused (resumed 2 s after the worker journaled the pause), 5 % cancelled, each 1 s after its
worker journaled its start (controls go only to tasks of 4 s or more, so they land while the task runs);
``node-a`` SIGKILLed (the node process only, as a crash) once half the tasks are terminal in the API (or
120 s in). The workers (``bench.workers:JournalWorker``) journal every start, update, pause, resume, end and
release; the live stream ``/api/events/tasks`` says when the API showed each change.

Measures (times from the first POST):

- **makespan**: first POST → the API showing the last task terminal. **Ideal**: the makespan of a perfect
  greedy scheduler (``scenario/ideal.py``) given the same releases (each task's POST answered), the
  slot time each task needed by the journal (its final run's start → end, pauses included since a paused
  worker holds its slot; for a cancelled task, start → the cancel request the API accepted) and the slots
  actually there: 24 until the kill, 12 after, with the killed node's tasks starting over at the kill. It
  starts the highest priority, then oldest, task the instant a slot is free, on the node with the fewest
  tasks. Target ≤ 1.15 x ideal, + ``dead_after`` when a node is killed (detection cannot be instant).
- **utilisation while work waits**: busy slots / slots of live nodes (a killed node's slots and workers
  leave at the kill), integrated over the time at least one task was waiting: created, not done (cancel
  accepted, final run ended) and no worker of a live node running it. Target ≥ 90 %.
- **finish → next start**: each worker end on a live node while a task waited → the next worker start on
  that node (each start paired with one end). Target p50 ≤ 200 ms.
- **start → Running**: a worker's journaled start → the live stream's ``Running`` (from Assigning) for that
  run. Target p50 ≤ 200 ms.
- **re-queue after SIGKILL**: kill → each of the killed node's tasks (live there in the API or running
  there by the journal at the kill, or assigned to it after the kill) shown re-queued in the API (Created,
  or assigned elsewhere); also kill → a worker elsewhere started it. Target: every one ≤ ``dead_after`` + 1 s.
- **violations** (target 0 each): overlaps (one task in two worker processes at once, by the journal and
  /proc), orphans (processes of the killed node alive 5 s after the kill), late cancels (a worker still
  going 2 s after the API said Cancelled, or never stopping) and ignored cancels (accepted, yet Finished),
  missed updates, tasks not terminal at the end, API status ≠ the workers' journal, and runs Skalds
  stopped on its own (ended cancelled with no cancel asked: a fence, a lost lease).

The run always ends: after ``--deadline`` seconds (default 360) it reports what was not terminal, with each
such task and its last heartbeats in the JSON. Every process is reaped (``Cluster.close``).

Run: ``set -a; . .services/env; set +a; .venv/bin/python bench/operator_scenario.py [--tasks N] [--seed N]
[--no-kill] [--json PATH] [--deadline S]``. To measure another checkout (e.g. a commit before a change):
``git worktree add /tmp/before <commit>``, copy this file, bench/workers.py, tests/integration/cluster.py and
tests/integration/scenario/ into it, and run it from there with this venv's python; the table's "code"
line says which ``skalds`` the processes imported.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import machine, service_address
from skalds.config import HeartbeatSettings
from tests.integration.cluster import Cluster, backends_env, process_env
from tests.integration.scenario import Load, Options, Record, Scenario, analyse, start_journaled_cluster
from tests.integration.scenario.table import render

NODES = ("node-a", "node-b")
CAPACITY = 12


def services_env(name: str) -> dict[str, str]:
    """Addresses and names of this run's own; every other setting is the product's default."""
    return backends_env(
        service_address("SKALDS_KAFKA_BOOTSTRAP", "Kafka"),
        service_address("SKALDS_REDIS_URL", "Redis"),
        service_address("SKALDS_MONGO_URL", "MongoDB-wire server"),
        name,
    )


def code_under_test(origin: Path) -> str:
    checkout = origin.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(checkout), "status", "--porcelain", "--", "skalds"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return str(checkout)
    return f"{checkout} at {commit}" + (" with uncommitted changes under skalds/" if dirty else "")


def run(load: Load, *, kill: bool, deadline_s: float, logs: Path) -> tuple[Record, str]:
    name = "op" + uuid.uuid4().hex[:10]
    cluster = Cluster(process_env(services_env(name), logs), logs)
    journal = logs / "journal.jsonl"
    try:
        origin = cluster.skalds_origin()
        controller, nodes = start_journaled_cluster(cluster, NODES, CAPACITY, journal)
        options = Options(
            journal=journal,
            slots=dict.fromkeys(NODES, CAPACITY),
            kill=NODES[0] if kill else None,
            deadline_s=deadline_s,
            dead_after_s=HeartbeatSettings().dead_after_ms / 1000,
        )
        record = Scenario(cluster, controller, nodes, load, options).run()
        record.skalds_origin = str(origin)
        return record, code_under_test(origin)
    finally:
        with (logs / "stopping.txt").open("w") as out, contextlib.redirect_stdout(out):
            cluster.close()  # it prints each process's exit and log tail: kept with the logs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-kill", action="store_true", help="do not SIGKILL node-a half-way")
    parser.add_argument("--deadline", type=float, default=360.0, help="seconds for the whole run")
    parser.add_argument("--json", type=Path, default=ROOT / "artifacts" / "operator_scenario.json")
    parser.add_argument("--logs", type=Path, help="folder for the processes' logs and the journal")
    parser.add_argument("--reanalyse", type=Path, help="analyse a JSON written before instead of running")
    args = parser.parse_args()
    if args.reanalyse:
        saved = json.loads(args.reanalyse.read_text())
        record, header = Record.from_json(saved["record"]), saved["header"]
    else:
        logs = args.logs or Path(tempfile.mkdtemp(prefix="operator-scenario-"))
        logs.mkdir(parents=True, exist_ok=True)
        load = Load(tasks=args.tasks, seed=args.seed)
        started = time.strftime("%Y-%m-%d %H:%M")
        record, code = run(load, kill=not args.no_kill, deadline_s=args.deadline, logs=logs)
        kill = "SIGKILL of node-a half-way" if not args.no_kill else "no kill"
        header = (
            f"Operator scenario ({started}): {load.tasks} tasks of {load.min_s:g}-{load.max_s:g} s "
            f"(seed {load.seed}), {len(NODES)} nodes x {CAPACITY}, {kill}, default settings "
            f"(dead-after {record.dead_after_s:g} s); {machine()}\ncode: {code}\nlogs: {logs}"
        )
    result = analyse(record)
    print(render(result, header))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps({"header": header, "result": result, "record": record.as_json()}, default=str)
    )
    print(f"\nJSON: {args.json}")


if __name__ == "__main__":
    main()
