"""The driver of one run: it creates the load over the HTTP API, hands the journal's lines to the controls
and the process watch, SIGKILLs a node half-way, and stops when every task is terminal for good (or at the
deadline). What it saw goes into a ``Record``; it judges nothing itself.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.workers import JOURNAL_VARIABLE, NODE_VARIABLE
from tests.integration.cluster import Cluster, Controller, SkaldsProcess, all_tasks, heartbeat_history
from tests.integration.scenario.controls import Controls
from tests.integration.scenario.feed import LiveFeed
from tests.integration.scenario.journal import JournalTail
from tests.integration.scenario.load import WORKER, WORKER_CLASS, Load, plan_load
from tests.integration.scenario.processes import ProcessWatch
from tests.integration.scenario.record import Record
from tests.integration.scenario.statuses import TERMINAL, settled

TICK_S = 0.05
CHECK_EVERY_S = 1.0  # how often the driver asks the cluster whether a process died
CONFIRM_EVERY_S = 2.0  # at most this often it reads every task to confirm they are all terminal
POLL_ANYWAY_S = 20.0  # and this often even when the live stream says otherwise (a lost frame)


def start_journaled_cluster(
    cluster: Cluster, node_ids: tuple[str, ...], capacity: int, journal: Path
) -> tuple[Controller, dict[str, SkaldsProcess]]:
    """A controller in dispatcher mode and one node per id running the journaling worker, each with
    ``capacity`` slots, up and online."""
    controller = cluster.controller()
    nodes = {
        node_id: cluster.node(
            node_id,
            worker=WORKER,
            env={
                "SKALDS_NODE__CAPACITY": str(capacity),
                NODE_VARIABLE: node_id,
                JOURNAL_VARIABLE: str(journal),
            },
        )
        for node_id in node_ids
    }
    cluster.wait_ready(controller)
    cluster.wait_online(controller, *node_ids)
    return controller, nodes


@dataclass(frozen=True, slots=True)
class Options:
    journal: Path
    slots: Mapping[str, int]  # node id -> capacity, as the nodes were started
    kill: str | None = None  # the node to SIGKILL half-way, or None
    kill_at_terminal: float = 0.5  # ... once this share of the tasks is terminal in the API
    kill_latest_s: float = 120.0  # ... or this long after the first task was created, whichever is first
    deadline_s: float = 360.0  # the whole run; then it reports what was not terminal
    orphan_grace_s: float = 5.0  # a process of the killed node alive this long after the kill is an orphan
    dead_after_s: float = 30.0  # the controller's heartbeat.dead_after_ms, for the targets


class Scenario:
    """Drives one run: creates the load, sends the controls when workers journal their starts, kills a
    node half-way, watches processes, and stops when every task is terminal (or at the deadline)."""

    def __init__(
        self,
        cluster: Cluster,
        controller: Controller,
        nodes: Mapping[str, SkaldsProcess],
        load: Load,
        options: Options,
    ) -> None:
        self.cluster = cluster
        self.api = controller.api
        self.nodes = dict(nodes)
        self.options = options
        self.plan = plan_load(load)
        self.record = Record(
            load=asdict(load),
            plan=[asdict(task) for task in self.plan],
            slots=dict(options.slots),
            dead_after_s=options.dead_after_s,
            orphan_grace_s=options.orphan_grace_s,
        )
        self.feed = LiveFeed(controller.url)
        self.journal = JournalTail(options.journal)
        planned = {task.id: task for task in self.plan}
        self.controls = Controls(controller.url, self.api, planned, load, self._going)
        self.processes = ProcessWatch()
        self._open: dict[int, str] = {}  # pid -> task, for runs with no end line yet
        self._node_of: dict[int, str] = {}  # pid -> node
        self._last_offline_poll = 0.0
        self._last_check = 0.0
        self._last_confirm = 0.0

    # -- the run ---------------------------------------------------------------------------------------

    def run(self) -> Record:
        record = self.record
        try:
            self.feed.start()
            record.t0 = time.time()
            self._create_all()
            while True:
                now = time.time()
                self._tick(now)
                if now - record.t0 > self.options.deadline_s:
                    record.deadline_hit = True
                    break
                if self._finished(now):
                    break
                time.sleep(TICK_S)
            self._wrap_up()
        finally:
            self.feed.close()
            self.controls.close()
            record.journal = list(self.journal.lines)
            record.frames = list(self.feed.frames)
            record.controls = self.controls.as_json()
            record.worker_deaths = self.processes.worker_deaths
            record.feed_reconnects = self.feed.reconnects
            record.feed_dropped = self.feed.dropped
        return record

    def _create_all(self) -> None:
        for index, task in enumerate(self.plan):
            body: dict[str, Any] = {
                "className": WORKER_CLASS,
                "id": task.id,
                "priority": task.priority,
                "attachments": task.attachments(),
            }
            if task.action == "fail":
                body["maxAttempts"] = 1
            response = self.api.post("/api/tasks", json=body)
            if response.status_code != 201:
                raise AssertionError(f"creating {task.id}: {response.status_code} {response.text}")
            self.record.created[task.id] = time.time()
            if index % 25 == 0:
                self._tick(time.time())

    def _tick(self, now: float) -> None:
        if now - self._last_check > CHECK_EVERY_S:
            self._last_check = now
            self.cluster.check()
        self._read_journal()
        self.controls.collect()
        self.controls.send_due(now)
        self.processes.watch(now)
        self._maybe_kill(now)
        self._watch_offline(now)

    def _read_journal(self) -> None:
        for line in self.journal.read():
            pid, task_id, event = line["pid"], line["task"], line["event"]
            if event == "start":
                self.processes.worker_started(pid)
                self._open[pid] = task_id
                self._node_of[pid] = line["node"]
                self.controls.started(task_id, pid, line["t"], line.get("round", 0))
            elif event == "pause":
                self.controls.paused(task_id, pid, line["t"])
            elif event in {"end", "release"}:
                self._open.pop(pid, None)

    def _going(self, pid: int) -> bool:
        """Whether this worker's run is still going: no end line yet, and not on the node that was killed."""
        lost = self.record.kill_at is not None and self._node_of.get(pid) == self.record.killed
        return pid in self._open and not lost

    # -- the kill --------------------------------------------------------------------------------------

    def _maybe_kill(self, now: float) -> None:
        victim = self.options.kill
        if victim is None or self.record.kill_at is not None or not self.record.created:
            return
        terminal = sum(1 for s in self.feed.snapshot().values() if s.get("status") in TERMINAL)
        if terminal >= self.options.kill_at_terminal * len(self.plan):
            reason = f"{terminal} of {len(self.plan)} tasks terminal"
        elif now - self.record.t0 >= self.options.kill_latest_s:
            reason = f"{self.options.kill_latest_s:g} s passed with {terminal} tasks terminal"
        else:
            return
        self._read_journal()
        process = self.nodes[victim]
        self.record.live_at_kill = self.feed.snapshot()
        self.cluster.expect_dead(process)
        self.processes.node_killed(process.sigkill())
        self.record.kill_at = process.killed_at
        self.record.killed = victim
        self.record.kill_reason = reason

    def _watch_offline(self, now: float) -> None:
        record = self.record
        if record.kill_at is None or record.offline_at is not None or now - self._last_offline_poll < 0.5:
            return
        self._last_offline_poll = now
        try:
            nodes = {n["id"]: n["health"] for n in self.api.get("/api/skalds").json()["items"]}
        except (httpx.HTTPError, ValueError, KeyError):
            return
        if nodes.get(record.killed) == "offline" or record.killed not in nodes:
            record.offline_at = time.time()

    # -- the end ---------------------------------------------------------------------------------------

    def _finished(self, now: float) -> bool:
        record = self.record
        if len(record.created) < len(self.plan):
            return False
        if record.kill_at is None and self.options.kill is not None:
            return False
        if record.kill_at is not None and now < record.kill_at + self.options.orphan_grace_s:
            return False
        if self.controls.busy():
            return False
        states = self.feed.snapshot()
        says_done = all(states.get(t.id, {}).get("status") in TERMINAL for t in self.plan)
        overdue = now - self._last_confirm > POLL_ANYWAY_S
        if not (says_done or overdue) or now - self._last_confirm < CONFIRM_EVERY_S:
            return False
        self._last_confirm = now
        tasks = all_tasks(self.api)
        if not all(settled(tasks.get(t.id)) for t in self.plan):
            return False
        # every run the journal shows on a live node is over (ended, or its process gone); the killed
        # node's are left to the orphan count
        deaths = self.processes.worker_deaths
        return all(pid in deaths for pid in self._open if self._node_of.get(pid) != record.killed)

    def _wrap_up(self) -> None:
        record = self.record
        self._read_journal()
        self.processes.watch(time.time())
        record.final = all_tasks(self.api)
        record.final_at = time.time()
        record.killed_below = self.processes.killed_below()
        for task_id in sorted(t for t in record.final if not settled(record.final[t])):
            with contextlib.suppress(httpx.HTTPError, ValueError):
                record.evidence[task_id] = {
                    "task": self.api.get(f"/api/tasks/{task_id}").json(),
                    "heartbeats": heartbeat_history(self.api, task_id)[-10:],
                }
