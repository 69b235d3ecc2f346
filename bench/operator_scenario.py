"""An operator's load on real services, with the product's default settings; prints a table (issue 15).

One ``skalds controller --mode dispatcher`` and two ``skalds node`` processes (``node-a``, ``node-b``,
capacity 12 each) on real Kafka, Redis and FerretDB, started with the real CLI by
tests/integration/cluster.py. Only addresses, unique topic / key / database prefixes, node ids, capacity and
log paths are set: heartbeat, monitor and dispatch settings are the defaults, because the defaults are what
an operator runs. The load (tests/integration/scenario.py, shared with tests/integration/test_operator_
scenario.py): 400 tasks of 3-8 s of active work (seeded), priority 0-10, created over ``POST /api/tasks``;
10 % updated, 5 % paused (resumed 2 s after the worker journaled the pause), 5 % cancelled, each 1 s after its
worker journaled its start (controls go only to tasks of 4 s or more, so they land while the task runs);
``node-a`` SIGKILLed (the node process only, as a crash) once half the tasks are terminal in the API (or
120 s in). The workers (``bench.workers:JournalWorker``) journal every start, update, pause, resume, end and
release; the live stream ``/api/events/tasks`` says when the API showed each change.

Measures (times from the first POST):

- **makespan**: first POST → the API showing the last task terminal. **Ideal**: the makespan of a perfect
  greedy scheduler (``scenario.ideal_makespan``) given the same releases (each task's POST answered), the
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
tests/integration/scenario.py into it, and run it from there with this venv's python; the table's "code"
line says which ``skalds`` the processes imported.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import machine, service_address
from bench.workers import JOURNAL_VARIABLE, NODE_VARIABLE
from skalds.config import HeartbeatSettings
from tests.integration.cluster import Cluster
from tests.integration.scenario import WORKER, Load, Options, Record, Scenario, analyse

NODES = ("node-a", "node-b")
CAPACITY = 12


def services_env(name: str, logs: Path) -> dict[str, str]:
    """Addresses, names of this run's own and a log folder; every other setting is the product's default."""
    inherited = {key: value for key, value in os.environ.items() if not key.startswith("SKALDS_")}
    return inherited | {
        "SKALDS_BACKENDS__EVENT_BUS": "kafka",
        "SKALDS_BACKENDS__LIVE_STATE": "redis",
        "SKALDS_BACKENDS__REPOSITORY": "mongo",
        "SKALDS_KAFKA_BOOTSTRAP": service_address("SKALDS_KAFKA_BOOTSTRAP", "Kafka"),
        "SKALDS_REDIS_URL": service_address("SKALDS_REDIS_URL", "Redis"),
        "SKALDS_MONGO_URL": service_address("SKALDS_MONGO_URL", "MongoDB-wire server"),
        "SKALDS_KAFKA__TOPIC_PREFIX": f"{name}.",
        "SKALDS_KAFKA__CONSUMER_GROUP_PREFIX": name,
        "SKALDS_REDIS__KEY_PREFIX": f"{name}:",
        "SKALDS_MONGO__DATABASE": name,
        "SKALDS_LOGGING__PATH": str(logs / "logs"),
        "PYTHONUNBUFFERED": "1",
    }


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
    cluster = Cluster(services_env(name, logs), logs)
    journal = logs / "journal.jsonl"
    try:
        origin = cluster.skalds_origin()
        controller = cluster.controller()
        nodes = {
            node_id: cluster.node(
                node_id,
                worker=WORKER,
                env={
                    "SKALDS_NODE__CAPACITY": str(CAPACITY),
                    NODE_VARIABLE: node_id,
                    JOURNAL_VARIABLE: str(journal),
                },
            )
            for node_id in NODES
        }
        cluster.wait_ready(controller)
        cluster.wait_online(controller, *NODES)
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


# ---- the table ----------------------------------------------------------------------------------------


def _s(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f} s"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value * 1000:.0f} ms"


def _verdict(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(measure, measured, target, pass/FAIL) for every line of the table."""
    dead_after = result["dead_after_s"]
    makespan, ideal, target = result["makespan_s"], result["ideal_s"], result["makespan_target_s"]
    if makespan is None:
        measured = f"not all terminal at {result['observed_s']:.0f} s (ideal {ideal:.1f} s)"
    else:
        measured = f"{makespan:.1f} s vs ideal {ideal:.1f} s ({makespan / ideal:.2f}x)"
    allowance = f" + {result['makespan_allowance_s']:g} s" if result["makespan_allowance_s"] else ""
    table = [
        (
            "makespan vs ideal",
            measured,
            f"≤ 1.15 x ideal{allowance} = {target:.1f} s",
            _verdict(makespan is not None and makespan <= target),
        )
    ]
    utilisation = result["utilisation"]
    table.append(
        (
            f"mean slot utilisation while work waits ({result['waited_s']:.0f} s of waiting)",
            "—" if utilisation is None else f"{100 * utilisation:.0f} %",
            "≥ 90 %",
            _verdict(utilisation is None or utilisation >= 0.9),
        )
    )
    gap = result["finish_to_next_start_s"]
    table.append(
        (
            f"finish → next start on the node while work waits, p50 / p95 (n={gap['count']}, "
            f"{result['never_refilled']} never refilled)",
            f"{_ms(gap['p50'])} / {_ms(gap['p95'])}",
            "p50 ≤ 200 ms",
            _verdict(gap["p50"] is not None and gap["p50"] <= 0.2),
        )
    )
    running = result["start_to_running_s"]
    table.append(
        (
            f"worker start → Running in the API, p50 / p95 (n={running['count']}, "
            f"{result['runs_never_running_in_api']} runs never shown Running)",
            f"{_ms(running['p50'])} / {_ms(running['p95'])}",
            "p50 ≤ 200 ms",
            _verdict(running["p50"] is not None and running["p50"] <= 0.2),
        )
    )
    if result["kill_s"] is not None:
        requeue, restart = result["requeue_s"], result["restart_s"]
        never = result["victims_never_requeued"]
        table.append(
            (
                f"re-queue after SIGKILL of {result['killed']}, min / p50 / max (n={requeue['count']} of "
                f"{len(result['requeue'])}; {len(never)} never)",
                f"{_s(requeue['min'])} / {_s(requeue['p50'])} / {_s(requeue['max'])}",
                f"≤ dead-after + 1 s = {dead_after + 1:g} s",
                _verdict(not never and (requeue["max"] is None or requeue["max"] <= dead_after + 1)),
            )
        )
        table.append(
            (
                f"SIGKILL → started on another node, min / p50 / max (n={restart['count']})",
                f"{_s(restart['min'])} / {_s(restart['p50'])} / {_s(restart['max'])}",
                "—",
                "",
            )
        )
        offline = result["offline_after_kill_s"]
        table.append((f"SIGKILL → {result['killed']} offline in the API", _s(offline), "—", ""))
        workers = sum(1 for orphan in result["orphans"] if orphan["worker"])
        table.append(
            (
                f"orphans: {result['killed']}'s processes alive {result['orphan_grace_s']:g} s after SIGKILL "
                "(journal lines after)",
                f"{len(result['orphans'])} ({workers} workers; {result['orphan_journal_lines']} lines)",
                "0",
                _verdict(not result["orphans"]),
            )
        )
    violations = [
        ("overlaps: one task in two processes at once", len(result["overlaps"])),
        ("late cancels (worker going > 2 s after Cancelled, or never stopped)", len(result["late_cancels"])),
        ("ignored cancels (accepted, yet Finished or Failed)", len(result["ignored_cancels"])),
        (
            f"missed updates (of {result['updates_accepted']} accepted; {result['moot_updates']} moot)",
            len(result["missed_updates"]),
        ),
        (f"not terminal at the end {result['not_terminal_by_status'] or ''}", len(result["not_terminal"])),
        ("API status ≠ the workers' journal", len(result["disagreements"])),
        ("runs Skalds stopped unasked (ended cancelled, no cancel)", len(result["unasked_stops"])),
    ]
    table += [(what, str(count), "0", _verdict(count == 0)) for what, count in violations]
    return table


def render(result: dict[str, Any], header: str) -> str:
    table = rows(result)
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    lines = [header, ""]
    titles = ("measure", "measured", "target", "")
    lines.append("| " + " | ".join(t.ljust(w) for t, w in zip(titles, widths, strict=True)) + " |")
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in table]
    lines.append("")
    lines.append(
        f"API counts {result['api_counts']}; journal {result['journal_counts']}; "
        f"{result['runs']} runs; {result['cancels_accepted']} cancels and {len(result['pauses'])} pauses "
        f"journaled; last worker end at {result['last_worker_end_s']:.1f} s"
    )
    for title, key, limit in (
        ("not terminal", "not_terminal", 15),
        ("stopped unasked", "unasked_stops", 15),
        ("overlaps", "overlaps", 10),
        ("late cancels", "late_cancels", 10),
        ("missed updates", "missed_updates", 10),
        ("API ≠ journal", "disagreements", 10),
    ):
        items = result[key]
        if not items:
            continue
        listed = list(items.items()) if isinstance(items, dict) else items
        lines.append(f"{title} ({len(listed)}):")
        lines += [f"  {json.dumps(item, default=str)}" for item in listed[:limit]]
        if len(listed) > limit:
            lines.append(f"  … {len(listed) - limit} more in the JSON")
    return "\n".join(lines)


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
