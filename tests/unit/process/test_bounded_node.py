"""A node is bounded: its capacity defaults to the CPU count, and a node with capacity 4 given 50 tasks never
has more than 4 worker processes (from the process table) nor more than 4 tasks assigned to it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from skalds.config import NodeSettings, load_settings, usable_cpus
from skalds.entrypoints.cli import _node_settings, _up_settings, build_parser
from skalds.entrypoints.embedded import EXAMPLE_TASKS, embedded_settings
from tests.unit.process.test_controller_process import ROOT, free_port, get
from tests.unit.process.test_embedded_up import wait_for

LIVE = {"Assigning", "Running", "Paused"}


def test_the_default_capacity_is_the_cpu_count_and_unlimited_is_only_ever_explicit() -> None:
    assert usable_cpus() == len(os.sched_getaffinity(0))
    assert load_settings(None, {}).node.slots() == usable_cpus()
    for unlimited in ("unlimited", "0", "UNLIMITED"):
        assert load_settings(None, {"SKALDS_NODE__CAPACITY": unlimited}).node.slots() is None
    assert NodeSettings(capacity=None).slots() is None  # ``capacity: null`` in YAML, said on purpose
    assert load_settings(None, {"SKALDS_NODE__CAPACITY": "12"}).node.slots() == 12


def test_skalds_up_adds_a_slot_per_example_task_unless_told_a_capacity() -> None:
    defaults = load_settings(None, {})
    assert embedded_settings(defaults).node.slots() == usable_cpus() + len(EXAMPLE_TASKS)
    assert embedded_settings(defaults, examples=False).node.slots() == usable_cpus()
    told = _up_settings(build_parser().parse_args(["up", "--capacity", "3"]))
    assert embedded_settings(told).node.slots() == 3


def test_skalds_node_takes_capacity_and_labels_on_the_command_line() -> None:
    args = build_parser().parse_args(["node", "--capacity", "6", "--labels", "zone=eu, gpu=yes"])
    node = _node_settings(args).node
    assert node.slots() == 6
    assert node.labels == {"zone": "eu", "gpu": "yes"}


def test_a_bad_capacity_on_the_command_line_is_one_clear_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "skalds", "node", "--capacity", "lots"],
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 78
    assert "--capacity: must be a number of tasks" in done.stderr
    assert "Traceback" not in done.stderr


def descendants(root: int) -> list[int]:
    """Every process below ``root``, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    below, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        below.extend(children)
        frontier.extend(children)
    return below


def running_workers(root: int) -> int:
    """Processes below ``root`` named ``skalds-worker``: a worker with a task (the idle spare is
    ``skalds-spare``, the forkserver keeps Python's name)."""
    count = 0
    for pid in descendants(root):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "skalds-worker":
                count += 1
        except OSError:
            continue
    return count


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def test_a_node_with_capacity_4_given_50_tasks_never_runs_or_holds_more_than_4(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [
        *(sys.executable, "-m", "skalds", "up", "--port", str(port), "--no-examples", "--capacity", "4"),
        *("--data-dir", str(tmp_path / "data")),
    ]
    # The log goes to a file: 50 tasks log more than a pipe holds, and a full pipe would stop the process.
    log = (tmp_path / "up.log").open("w")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log, text=True)
    try:
        wait_for(lambda: get(f"{base}/api/skalds")["items"], process)
        [node] = get(f"{base}/api/skalds")["items"]  # type: ignore[misc]
        assert node["capacity"] == 4
        body = {"className": "StreamWorker", "attachments": {"fps": 20, "frames": 4}}
        ids = [post(f"{base}/api/tasks", body)["id"] for _ in range(50)]
        most_workers = most_held = 0

        def all_finished() -> bool:
            nonlocal most_workers, most_held
            most_workers = max(most_workers, running_workers(process.pid))
            items = get(f"{base}/api/tasks?pageSize=100")["items"]
            mine = [t for t in items if t["id"] in ids]  # type: ignore[union-attr,index]
            most_held = max(most_held, sum(1 for t in mine if t["lifecycleStatus"] in LIVE))
            assert most_workers <= 4 and most_held <= 4, (most_workers, most_held)
            return len(mine) == 50 and all(t["lifecycleStatus"] == "Finished" for t in mine)

        wait_for(all_finished, process, within_s=300)
        assert most_workers >= 1 and most_held >= 1  # the watch saw the work happen
    finally:
        process.kill()
        process.wait(timeout=30)
        log.close()
