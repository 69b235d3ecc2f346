"""The operator scenario, shared by bench/operator_scenario.py (timings, real defaults) and
tests/integration/test_operator_scenario.py (invariants only, short thresholds).

One controller in dispatcher mode and nodes run by ``tests/integration/cluster.py``; the load goes in over
the HTTP API: tasks of ``JournalWorker`` (bench/workers.py) with seeded random durations and priorities,
some updated, paused and resumed, cancelled while they run, some that fail, and one node SIGKILLed half-way.

What happened is read from three sources, never from the processes' own logs:

- **the journal**, written by the workers themselves (one JSON line per start, update, pause, resume, end,
  release; wall time, pid, task, attempt, node). A *run* is one worker process running one task.
- **the live stream** ``/api/events/tasks`` (SSE), stamped with ``time.time()`` as each frame arrives: when
  the API showed each status change.
- **/proc**: the pids of the journal's workers and of the killed node's process tree, polled every tick, so a
  run without an ``end`` line still has an end (the moment its process was seen gone).

``analyse(record)`` turns a ``Record`` into the measurements and the violations; both callers use it.
"""

from __future__ import annotations

import bisect
import contextlib
import heapq
import itertools
import json
import random
import statistics
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.integration.cluster import (
    Cluster,
    Controller,
    ProcessId,
    SkaldsProcess,
    all_tasks,
    heartbeat_history,
)

WORKER = "bench.workers:JournalWorker"
WORKER_CLASS = "JournalWorker"
TERMINAL = frozenset({"Finished", "Failed", "Cancelled"})
LIVE = frozenset({"Assigning", "Running", "Paused"})
OUTCOME_STATUS = {"finished": "Finished", "failed": "Failed", "cancelled": "Cancelled"}
TICK_S = 0.05
CHECK_EVERY_S = 1.0  # how often the driver asks the cluster whether a process died
CONFIRM_EVERY_S = 2.0  # at most this often it reads every task to confirm they are all terminal
POLL_ANYWAY_S = 20.0  # and this often even when the live stream says otherwise (a lost frame)
RETRY_ACTION_S = 0.25  # a refused control (409: the API does not show the task Running yet) is re-sent
CANCEL_SLACK_S = 2.0  # a worker may run this long after the API said Cancelled
UPDATE_SLACK_S = 1.0  # an update asked this close to the end of the run may rightly miss it ("moot")


# ---- the load -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Load:
    tasks: int = 400
    min_s: float = 3.0
    max_s: float = 8.0
    seed: int = 1
    update_share: float = 0.10
    pause_share: float = 0.05
    cancel_share: float = 0.05
    fail_share: float = 0.0
    act_after_s: float = 1.0  # a control goes out this long after the worker journaled its start
    pause_for_s: float = 2.0  # resume this long after the worker journaled its pause
    hold: bool = False  # tests: the worker keeps running until its control took effect
    prefix: str = "op"


@dataclass(frozen=True, slots=True)
class PlannedTask:
    id: str
    seconds: float
    priority: int
    action: str  # "", "update", "pause", "cancel", "fail"
    hold: bool

    def attachments(self, round_: int = 0) -> dict[str, Any]:
        hold = self.action if self.hold and self.action in {"update", "pause", "cancel"} else ""
        return {"seconds": self.seconds, "round": round_, "hold": hold, "fail": self.action == "fail"}


def plan_load(load: Load) -> list[PlannedTask]:
    """Seeded: the same load for the same arguments. Controls go to tasks long enough to still be running
    some seconds after the control is sent (any task when the worker holds)."""
    rng = random.Random(load.seed)
    seconds = [round(rng.uniform(load.min_s, load.max_s), 2) for _ in range(load.tasks)]
    priorities = [rng.randint(0, 10) for _ in range(load.tasks)]
    eligible = [i for i, s in enumerate(seconds) if load.hold or s >= load.act_after_s + 3.0]
    rng.shuffle(eligible)
    actions = [""] * load.tasks
    for action, share in (
        ("update", load.update_share),
        ("pause", load.pause_share),
        ("cancel", load.cancel_share),
        ("fail", load.fail_share),
    ):
        for _ in range(round(share * load.tasks)):
            if eligible:
                actions[eligible.pop()] = action
    return [
        PlannedTask(f"{load.prefix}-{i:03d}", seconds[i], priorities[i], actions[i], load.hold)
        for i in range(load.tasks)
    ]


# ---- the live stream ----------------------------------------------------------------------------------


class LiveFeed:
    """Follows ``/api/events/tasks`` in a thread; keeps each task_status / task_exception frame with its
    arrival time (``time.time()``) and the latest status and executor of every task. Reconnects with
    ``Last-Event-ID`` so nothing is lost across a dropped connection."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.connected = threading.Event()
        self.frames: list[tuple[float, dict[str, Any]]] = []
        self.state: dict[str, dict[str, Any]] = {}
        self.reconnects = 0
        self.dropped = 0
        self._response: httpx.Response | None = None
        self._thread = threading.Thread(target=self._follow, name="live-feed", daemon=True)

    def start(self, within_s: float = 30.0) -> None:
        self._thread.start()
        if not self.connected.wait(within_s):
            raise AssertionError(f"no connection to {self._url}/api/events/tasks within {within_s:g} s")

    def close(self) -> None:
        self._stop.set()
        response = self._response
        if response is not None:
            with contextlib.suppress(Exception):
                response.close()
        self._thread.join(timeout=5)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {task_id: dict(state) for task_id, state in self.state.items()}

    def _follow(self) -> None:
        last_id: str | None = None
        with httpx.Client(base_url=self._url, timeout=httpx.Timeout(10.0, read=60.0)) as client:
            while not self._stop.is_set():
                headers = {"Last-Event-ID": last_id} if last_id else {}
                try:
                    with client.stream("GET", "/api/events/tasks", headers=headers) as response:
                        self._response = response
                        last_id = self._read(response, last_id)
                except (httpx.HTTPError, OSError, ValueError):
                    pass
                if not self._stop.is_set():
                    self.reconnects += 1
                    time.sleep(0.2)

    def _read(self, response: httpx.Response, last_id: str | None) -> str | None:
        data: list[str] = []
        frame_id: str | None = None
        for line in response.iter_lines():
            if self._stop.is_set():
                break
            if line.startswith("id:"):
                frame_id = line[3:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
            elif not line and data:
                self._take(time.time(), "\n".join(data))
                data = []
                if frame_id:
                    last_id = frame_id
        return last_id

    def _take(self, arrived: float, text: str) -> None:
        frame = json.loads(text)
        kind = frame.get("type")
        if kind == "connection":
            self.connected.set()
            return
        if kind == "frames_dropped":
            self.dropped += 1
            return
        if kind not in {"task_status", "task_exception"}:
            return
        data = frame.get("data") or {}
        with self._lock:
            self.frames.append((arrived, frame))
            state = self.state.setdefault(frame["taskId"], {})
            state["status"] = data.get("lifecycleStatus")
            if data.get("executor"):
                state["executor"] = data["executor"]
            state["at"] = arrived


# ---- the journal --------------------------------------------------------------------------------------


class JournalTail:
    """Reads the journal file's new complete lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""
        self.lines: list[dict[str, Any]] = []

    def read(self) -> list[dict[str, Any]]:
        try:
            with self.path.open("rb") as journal:
                journal.seek(self._offset)
                chunk = journal.read()
        except FileNotFoundError:
            return []
        self._offset += len(chunk)
        *complete, self._partial = (self._partial + chunk).split(b"\n")
        new = [json.loads(line) for line in complete if line.strip()]
        self.lines.extend(new)
        return new


@dataclass(slots=True)
class Run:
    """One worker process running one task, from its journal lines (and /proc for a run without ``end``)."""

    task: str
    attempt: int
    node: str
    pid: int
    start: float
    start_round: int = 0
    end: float | None = None  # the journal's ``end``, else its ``release``, else the process seen gone
    outcome: str | None = None  # finished / failed / cancelled, from the journal; None: no ``end`` line
    requested: bool | None = None  # on a cancelled end: was a cancel requested (else SIGTERM)
    ended_by: str = "open"  # journal / death / open
    pauses: list[list[float | None]] = field(default_factory=list)  # [pause t, resume t or None]
    rounds: list[tuple[float, int]] = field(default_factory=list)  # (t, round) of each update seen
    skalds: str = ""


def runs_from(lines: Iterable[Mapping[str, Any]], deaths: Mapping[int, float]) -> dict[str, list[Run]]:
    """Each task's runs, oldest first. ``deaths``: when each worker pid was first seen gone."""
    open_runs: dict[tuple[int, str], Run] = {}
    runs: dict[str, list[Run]] = defaultdict(list)
    for line in sorted(lines, key=lambda item: item["t"]):
        key = (line["pid"], line["task"])
        event = line["event"]
        if event == "start":
            run = Run(
                task=line["task"],
                attempt=line["attempt"],
                node=line["node"],
                pid=line["pid"],
                start=line["t"],
                start_round=line.get("round", 0),
                skalds=line.get("skalds", ""),
            )
            open_runs[key] = run
            runs[run.task].append(run)
            continue
        current = open_runs.get(key)
        if current is None:
            continue
        if event == "update":
            current.rounds.append((line["t"], line["round"]))
        elif event == "pause":
            current.pauses.append([line["t"], None])
        elif event == "resume" and current.pauses and current.pauses[-1][1] is None:
            current.pauses[-1][1] = line["t"]
        elif event == "end":
            current.end, current.outcome, current.ended_by = line["t"], line["outcome"], "journal"
            current.requested = line.get("requested")
        elif event == "release" and current.end is None:
            current.end, current.ended_by = line["t"], "journal"
    for task_runs in runs.values():
        for run in task_runs:
            if run.end is None and run.pid in deaths:
                run.end, run.ended_by = deaths[run.pid], "death"
    return dict(runs)


# ---- the driver ---------------------------------------------------------------------------------------


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
    evidence: bool = True  # fetch the task and its heartbeats of every task not terminal at the end


@dataclass(slots=True)
class Control:
    """One control the driver sends (update, pause, resume, cancel) and what became of it."""

    task: str
    kind: str
    run_pid: int
    due: float
    sent: list[tuple[float, float, int]] = field(default_factory=list)  # (sent, answered, HTTP status)
    asked: float | None = None  # when the request the API accepted was sent
    accepted: float | None = None  # when its answer came back
    moot: bool = False  # the run ended before the API accepted it


@dataclass(slots=True)
class Record:
    """Everything the driver observed; JSON-serialisable (``as_json``), and all ``analyse`` needs."""

    load: dict[str, Any]
    plan: list[dict[str, Any]]
    slots: dict[str, int]
    dead_after_s: float
    orphan_grace_s: float
    t0: float = 0.0
    created: dict[str, float] = field(default_factory=dict)  # task -> POST answered
    journal: list[dict[str, Any]] = field(default_factory=list)
    frames: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    controls: list[dict[str, Any]] = field(default_factory=list)
    worker_deaths: dict[int, float] = field(default_factory=dict)
    killed: str | None = None
    kill_at: float | None = None
    kill_reason: str = ""
    killed_below: list[dict[str, Any]] = field(default_factory=list)  # pid, started, command, died
    live_at_kill: dict[str, dict[str, Any]] = field(default_factory=dict)  # the stream's view at the kill
    offline_at: float | None = None  # when the API first showed the killed node offline
    final: dict[str, dict[str, Any]] = field(default_factory=dict)  # every task, read at the end
    final_at: float = 0.0
    deadline_hit: bool = False
    evidence: dict[str, Any] = field(default_factory=dict)
    skalds_origin: str = ""
    feed_reconnects: int = 0
    feed_dropped: int = 0

    def as_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["worker_deaths"] = {str(pid): t for pid, t in self.worker_deaths.items()}
        return body

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Record:
        """A record written by ``as_json``, to analyse again."""
        fields = dict(body)
        fields["worker_deaths"] = {int(pid): t for pid, t in body["worker_deaths"].items()}
        fields["frames"] = [(arrived, frame) for arrived, frame in body["frames"]]
        return cls(**fields)


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
        self.controller = controller
        self.api = controller.api
        self.nodes = dict(nodes)
        self.load = load
        self.options = options
        self.plan = plan_load(load)
        self.planned = {task.id: task for task in self.plan}
        self.record = Record(
            load=asdict(load),
            plan=[asdict(task) for task in self.plan],
            slots=dict(options.slots),
            dead_after_s=options.dead_after_s,
            orphan_grace_s=options.orphan_grace_s,
        )
        self.feed = LiveFeed(controller.url)
        self.journal = JournalTail(options.journal)
        self.controls: list[Control] = []
        self._pending: dict[int, tuple[Control, Future[tuple[float, int]]]] = {}
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="controls")
        self._client = httpx.Client(base_url=controller.url, timeout=30.0)
        self._workers: dict[int, ProcessId | None] = {}  # journal pid -> its process (None: gone at once)
        self._open: dict[int, str] = {}  # pid -> task, for runs with no end line yet
        self._node_of: dict[int, str] = {}  # pid -> node
        self._last_offline_poll = 0.0
        self._killed_below: list[ProcessId] = []
        self._below_deaths: dict[int, float] = {}
        self._done_controls: set[tuple[str, str]] = set()  # (task, kind) accepted once for good
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
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._client.close()
            record.journal = list(self.journal.lines)
            record.frames = list(self.feed.frames)
            record.controls = [asdict(control) for control in self.controls]
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
        for line in self.journal.read():
            self._journaled(line)
        self._collect_controls()
        self._send_due_controls(now)
        self._watch_processes(now)
        self._maybe_kill(now)
        self._watch_offline(now)

    # -- what the journal says -------------------------------------------------------------------------

    def _journaled(self, line: Mapping[str, Any]) -> None:
        pid, task_id, event = line["pid"], line["task"], line["event"]
        if event == "start":
            process = ProcessId.find(pid)
            self._workers[pid] = process
            if process is None:
                self.record.worker_deaths.setdefault(pid, time.time())
            self._open[pid] = task_id
            self._node_of[pid] = line["node"]
            self._plan_controls(task_id, pid, line["t"], line.get("round", 0))
        elif event == "pause":  # resume once the worker itself says it paused, as an operator would
            resume_at = line["t"] + self.load.pause_for_s
            self.controls.append(Control(task_id, "resume", pid, resume_at))
        elif event in {"end", "release"}:
            self._open.pop(pid, None)

    def _plan_controls(self, task_id: str, pid: int, started: float, start_round: int) -> None:
        planned = self.planned.get(task_id)
        if planned is None or planned.action in {"", "fail"}:
            return
        kind = planned.action
        if kind == "update" and start_round >= 1:
            return  # this run started with the update already in its attachments
        if kind in {"update", "cancel"} and (task_id, kind) in self._done_controls:
            return
        self.controls.append(Control(task_id, kind, pid, started + self.load.act_after_s))

    # -- controls --------------------------------------------------------------------------------------

    def _send_due_controls(self, now: float) -> None:
        for control in self.controls:
            if control.accepted is not None or control.moot or id(control) in self._pending:
                continue
            if control.due > now:
                continue
            if control.run_pid not in self._open or self._lost(control.run_pid):  # that run is over
                control.moot = True
                continue
            future = self._pool.submit(self._send, control)
            self._pending[id(control)] = (control, future)

    def _send(self, control: Control) -> tuple[float, int]:
        """(when it was sent, the HTTP status; 0 when there was no answer)."""
        task = self.planned[control.task]
        path = f"/api/tasks/{control.task}"
        sent = time.time()
        try:
            if control.kind == "update":
                body = {"attachments": task.attachments(1)}
                response = self._client.put(f"{path}/attachments", json=body)
            else:
                response = self._client.post(f"{path}/{control.kind}")
        except httpx.HTTPError:
            return sent, 0
        return sent, response.status_code

    def _collect_controls(self) -> None:
        for key, (control, future) in list(self._pending.items()):
            if not future.done():
                continue
            del self._pending[key]
            sent, status = future.result()
            now = time.time()
            control.sent.append((sent, now, status))
            if status == 200 or (
                control.kind == "cancel" and status == 409 and self._cancel_pending(control)
            ):
                control.asked, control.accepted = sent, now
                if control.kind in {"update", "cancel"}:
                    self._done_controls.add((control.task, control.kind))
            else:
                control.due = now + RETRY_ACTION_S

    def _cancel_pending(self, control: Control) -> bool:
        """A 409 to a cancel means done when the task is already cancelled or a cancel is pending."""
        try:
            task = self.api.get(f"/api/tasks/{control.task}").json()
        except (httpx.HTTPError, ValueError):
            return False
        return task.get("lifecycleStatus") == "Cancelled" or task.get("desiredState") == "cancel"

    # -- processes -------------------------------------------------------------------------------------

    def _watch_processes(self, now: float) -> None:
        for pid, process in self._workers.items():
            if pid in self.record.worker_deaths:
                continue
            if process is None or not process.alive():
                self.record.worker_deaths[pid] = now
        for process in self._killed_below:
            if process.pid not in self._below_deaths and not process.alive():
                self._below_deaths[process.pid] = now

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
        for line in self.journal.read():
            self._journaled(line)
        process = self.nodes[victim]
        self.record.live_at_kill = self.feed.snapshot()
        self.cluster.expect_dead(process)
        self._killed_below = process.sigkill()
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
        if self._pending or self._open_controls():
            return False
        states = self.feed.snapshot()
        says_done = all(states.get(t.id, {}).get("status") in TERMINAL for t in self.plan)
        overdue = now - self._last_confirm > POLL_ANYWAY_S
        if not (says_done or overdue) or now - self._last_confirm < CONFIRM_EVERY_S:
            return False
        self._last_confirm = now
        tasks = all_tasks(self.api)
        if not all(_settled(tasks.get(t.id)) for t in self.plan):
            return False
        # every run the journal shows on a live node is over (ended, or its process gone); the killed
        # node's are left to the orphan count
        return all(
            pid in record.worker_deaths for pid in self._open if self._node_of.get(pid) != record.killed
        )

    def _lost(self, pid: int) -> bool:
        """Whether the run of this worker was on the node the scenario killed, after the kill."""
        return self.record.kill_at is not None and self._node_of.get(pid) == self.record.killed

    def _open_controls(self) -> bool:
        """A resume still to send (its run still going) keeps the scenario going."""
        return any(
            c.accepted is None
            and not c.moot
            and c.kind == "resume"
            and c.run_pid in self._open
            and not self._lost(c.run_pid)
            for c in self.controls
        )

    def _wrap_up(self) -> None:
        record = self.record
        for line in self.journal.read():
            self._journaled(line)
        self._watch_processes(time.time())
        record.final = all_tasks(self.api)
        record.final_at = time.time()
        record.killed_below = [
            {
                "pid": p.pid,
                "started": p.started,
                "command": p.command() if p.alive() else "",
                "died": self._below_deaths.get(p.pid),
            }
            for p in self._killed_below
        ]
        if self.options.evidence:
            for task_id in sorted(t for t in record.final if not _settled(record.final[t])):
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    record.evidence[task_id] = {
                        "task": self.api.get(f"/api/tasks/{task_id}").json(),
                        "heartbeats": heartbeat_history(self.api, task_id)[-10:],
                    }


def _settled(task: Mapping[str, Any] | None) -> bool:
    """Terminal for good: Finished, Cancelled, or Failed with no attempt left."""
    if task is None or task["lifecycleStatus"] not in TERMINAL:
        return False
    return task["lifecycleStatus"] != "Failed" or task["attempt"] >= task["maxAttempts"]


# ---- the ideal ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class Job:
    release: float
    priority: int
    id: str
    duration: float


def ideal_makespan(
    jobs: Sequence[Job], slots: Mapping[str, int], kill: tuple[str, float] | None = None
) -> float:
    """The makespan of a perfect greedy scheduler: whenever a slot is free and a task is released and not
    done, the highest-priority (then oldest) task starts at once on the node with the fewest running tasks
    (ties by node id), as LEAST_TASKS does. At ``kill`` = (node, t) that node's slots vanish and the tasks
    it was running start over at once elsewhere (their work so far is lost, as with any crash). Times are
    relative to the first creation."""
    if not jobs:
        return 0.0
    releases = sorted(jobs)
    capacity = dict(slots)
    running: dict[str, list[tuple[float, Job]]] = {node: [] for node in capacity}
    queue: list[tuple[int, float, str, Job]] = []
    now, done, next_release, last_end = 0.0, 0, 0, 0.0
    kill_pending = kill is not None
    while done < len(jobs):
        candidates = [end for node in running for end, _ in running[node]]
        if next_release < len(releases):
            candidates.append(releases[next_release].release)
        if kill_pending and kill is not None:
            candidates.append(kill[1])
        if not candidates:
            raise AssertionError("ideal schedule stuck: jobs left but no slot (every node killed?)")
        now = max(now, min(candidates))
        for node, tasks in running.items():
            still = [(end, job) for end, job in tasks if end > now]
            ended = len(tasks) - len(still)
            done += ended
            if ended:
                last_end = max(last_end, now)
            running[node] = still
        if kill_pending and kill is not None and kill[1] <= now:
            kill_pending = False
            for _, job in running.pop(kill[0], []):
                heapq.heappush(queue, (-job.priority, job.release, job.id, job))
            capacity.pop(kill[0], None)
        while next_release < len(releases) and releases[next_release].release <= now:
            job = releases[next_release]
            heapq.heappush(queue, (-job.priority, job.release, job.id, job))
            next_release += 1
        while queue:
            free = [node for node in sorted(running) if len(running[node]) < capacity[node]]
            if not free:
                break
            node = min(free, key=lambda n: (len(running[n]), n))
            *_, job = heapq.heappop(queue)
            if job.duration <= 0:
                done += 1
                last_end = max(last_end, now)
                continue
            running[node].append((now + job.duration, job))
    return last_end


# ---- the analysis -------------------------------------------------------------------------------------


def percentile(samples: Sequence[float], share: float) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def _summary(samples: Sequence[float]) -> dict[str, Any]:
    return {
        "count": len(samples),
        "min": min(samples) if samples else None,
        "p50": statistics.median(samples) if samples else None,
        "p95": percentile(samples, 0.95),
        "max": max(samples) if samples else None,
    }


class _Step:
    """A step function of time built from (t, delta) changes; ``at(t)`` is its value just after t."""

    def __init__(self, changes: Iterable[tuple[float, int]]) -> None:
        merged: dict[float, int] = defaultdict(int)
        for t, delta in changes:
            merged[t] += delta
        self.times = sorted(merged)
        self.values: list[int] = []
        value = 0
        for t in self.times:
            value += merged[t]
            self.values.append(value)

    def at(self, t: float) -> int:
        index = bisect.bisect_right(self.times, t) - 1
        return self.values[index] if index >= 0 else 0


def _subtract(span: tuple[float, float], covers: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """``span`` minus the union of ``covers``."""
    start, end = span
    left: list[tuple[float, float]] = []
    cursor = start
    for cover_start, cover_end in sorted(covers):
        if cover_end <= cursor or cover_start >= end:
            continue
        if cover_start > cursor:
            left.append((cursor, cover_start))
        cursor = max(cursor, cover_end)
    if cursor < end:
        left.append((cursor, end))
    return left


class Evidence:
    """A record's journal, live stream and controls indexed by task, and one method per measure; every time
    it returns is relative to the first creation (``t0``). ``analyse`` puts them together."""

    def __init__(self, record: Record) -> None:
        self.record = record
        self.t0, self.end_of_run = record.t0, record.final_at
        self.kill_at, self.killed = record.kill_at, record.killed
        self.plan = {task["id"]: task for task in record.plan}
        self.runs = runs_from(record.journal, record.worker_deaths)
        self.all_runs = [run for task_runs in self.runs.values() for run in task_runs]
        # task -> kind -> when each control the API accepted was sent
        self.asked: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for control in record.controls:
            if control["asked"] is not None:
                self.asked[control["task"]][control["kind"]].append(control["asked"])
        self.frames: dict[str, list[tuple[float, dict[str, Any]]]] = defaultdict(list)
        for arrived, frame in record.frames:
            self.frames[frame["taskId"]].append((arrived, frame))
        self.waiting = _Step(self._waiting_changes())

    # -- helpers ---------------------------------------------------------------------------------------

    def status(self, task_id: str) -> str | None:
        task = self.record.final.get(task_id)
        return None if task is None else str(task["lifecycleStatus"])

    def settled(self, task_id: str) -> bool:
        return _settled(self.record.final.get(task_id))

    def first_cancel(self, task_id: str) -> float | None:
        return min(self.asked[task_id]["cancel"], default=None)

    def live_end(self, run: Run) -> float:
        """When the run stopped holding a slot of a live node: the killed node's runs stop at the kill."""
        end = run.end if run.end is not None else self.end_of_run
        if run.node == self.killed and self.kill_at is not None:
            return min(end, self.kill_at)
        return end

    def terminal_seen(self, task_id: str) -> float | None:
        """When the live stream first showed the task in the terminal status it ended in."""
        if not self.settled(task_id):
            return None
        final = self.status(task_id)
        return next((a for a, f in self.frames[task_id] if f["data"].get("lifecycleStatus") == final), None)

    def done_at(self, task_id: str) -> float:
        """From when the task no longer needed a slot: a cancel asked (the request the API accepted was
        sent), its final run's end, or terminal in the API; the end of the scenario if never."""
        if not self.settled(task_id):
            return self.end_of_run
        cancelled = self.first_cancel(task_id)
        if cancelled is not None:
            return cancelled
        task_runs = self.runs.get(task_id, [])
        final = task_runs[-1] if task_runs else None
        if final is not None and final.end is not None and final.outcome in {"finished", "failed"}:
            return final.end
        return self.terminal_seen(task_id) or self.end_of_run

    def _waiting_changes(self) -> list[tuple[float, int]]:
        """A task waits while it is created, not done, and no worker on a live node runs it."""
        changes: list[tuple[float, int]] = []
        for task_id in self.plan:
            created = self.record.created.get(task_id)
            if created is None:
                continue
            covers = [(run.start, self.live_end(run)) for run in self.runs.get(task_id, [])]
            for start, stop in _subtract((created, max(created, self.done_at(task_id))), covers):
                changes += [(start, 1), (stop, -1)]
        return changes

    # -- the end state ---------------------------------------------------------------------------------

    def not_terminal(self) -> dict[str, dict[str, Any]]:
        keys = ("lifecycleStatus", "executor", "attempt", "desiredState", "pendingReason", "lastError")
        return {
            task_id: {key: self.record.final[task_id].get(key) for key in keys}
            for task_id in sorted(self.plan)
            if task_id in self.record.final and not self.settled(task_id)
        }

    def lost(self, run: Run) -> bool:
        """A run the kill took: on the killed node, going at the kill."""
        return run.node == self.killed and self.kill_at is not None and self.live_end(run) >= self.kill_at

    def journal_final(self) -> dict[str, str | None]:
        """Each task's status as its workers' journal tells it: the outcome of its last run. When the kill
        took the last run, the one right status is Cancelled if a cancel was asked, else Failed if that run
        was its last attempt (else it should have run again: None)."""
        finals: dict[str, str | None] = {}
        for task_id in self.plan:
            task_runs = self.runs.get(task_id, [])
            if not task_runs:
                finals[task_id] = None
                continue
            last = task_runs[-1]
            if self.lost(last):
                max_attempts = self.record.final.get(task_id, {}).get("maxAttempts")
                if self.first_cancel(task_id) is not None:
                    finals[task_id] = "Cancelled"
                elif max_attempts is not None and last.attempt >= max_attempts:
                    finals[task_id] = "Failed"
                else:
                    finals[task_id] = None
                continue
            finals[task_id] = OUTCOME_STATUS.get(last.outcome or "")
        return finals

    def counts(self) -> dict[str, Any]:
        journal = self.journal_final()
        api = Counter(self.status(task_id) for task_id in self.plan if self.status(task_id) in TERMINAL)
        disagreements = {
            task_id: {"api": self.status(task_id), "journal": journal[task_id]}
            for task_id in self.plan
            if self.status(task_id) in TERMINAL and self.status(task_id) != journal[task_id]
        }
        return {
            "api_counts": dict(api),
            "journal_counts": dict(Counter(status for status in journal.values() if status)),
            "disagreements": disagreements,
        }

    # -- makespan and the ideal ------------------------------------------------------------------------

    def makespan(self) -> float | None:
        """First creation → the API showing the last task terminal; None when not every task got there."""
        seen = [self.terminal_seen(task_id) for task_id in self.plan]
        if any(t is None for t in seen):
            return None
        return max(t for t in seen if t is not None) - self.t0

    def jobs(self) -> list[Job]:
        """What the ideal scheduler gets: each task's release (its POST answered) and the slot time it
        needed, from the journal: its final run's start → end (a paused worker holds its slot, so pauses
        are in it); for a cancelled task, start → cancel asked; for a task that never ran to its end,
        the planned seconds (plus the planned pause)."""
        jobs = []
        for task_id, task in self.plan.items():
            task_runs = self.runs.get(task_id, [])
            final = task_runs[-1] if task_runs else None
            cancelled = self.first_cancel(task_id)
            if final is not None and final.outcome in {"finished", "failed"} and final.end is not None:
                duration = final.end - final.start
            elif final is not None and cancelled is not None:
                duration = max(0.0, cancelled - final.start)
            else:
                duration = task["seconds"] + (
                    self.record.load["pause_for_s"] if task["action"] == "pause" else 0
                )
            release = self.record.created.get(task_id, self.end_of_run) - self.t0
            jobs.append(Job(release, task["priority"], task_id, duration))
        return jobs

    def ideal(self) -> float:
        kill = None
        if self.killed is not None and self.kill_at is not None:
            kill = (self.killed, self.kill_at - self.t0)
        return ideal_makespan(self.jobs(), self.record.slots, kill)

    # -- slots -----------------------------------------------------------------------------------------

    def utilisation(self) -> tuple[float | None, float]:
        """Busy slots / slots of live nodes, integrated over the time at least one task waited; and that
        time. A run holds a slot from its journaled start to its end (paused included)."""
        busy_changes: list[tuple[float, int]] = []
        for run in self.all_runs:
            stop = self.live_end(run)
            if stop > run.start:
                busy_changes += [(run.start, 1), (stop, -1)]
        slot_changes = [(self.t0, sum(self.record.slots.values()))]
        if self.killed is not None and self.kill_at is not None:
            slot_changes.append((self.kill_at, -self.record.slots[self.killed]))
        busy, slots, waiting = _Step(busy_changes), _Step(slot_changes), self.waiting
        edges = sorted({self.t0, self.end_of_run, *busy.times, *waiting.times, *slots.times})
        waited = used = 0.0
        for left, right in itertools.pairwise(edges):
            if right <= left or waiting.at(left) <= 0 or slots.at(left) <= 0:
                continue
            waited += right - left
            used += (right - left) * min(1.0, busy.at(left) / slots.at(left))
        return (used / waited if waited else None), waited

    def refill_gaps(self) -> tuple[list[float], int]:
        """For each worker end on a live node while a task waited: the time to the next worker start on
        that node (each start pairs with one end); and how many ends no start followed."""
        gaps: list[float] = []
        unfilled = 0
        for node in self.record.slots:
            node_runs = [run for run in self.all_runs if run.node == node]
            limit = self.kill_at if node == self.killed and self.kill_at is not None else self.end_of_run
            starts = sorted(run.start for run in node_runs)
            ends = sorted(
                run.end
                for run in node_runs
                if run.end is not None and run.ended_by == "journal" and run.end < limit
            )
            taken: set[int] = set()
            for end in ends:
                if self.waiting.at(end) <= 0:
                    continue
                index = bisect.bisect_left(starts, end)
                while index < len(starts) and index in taken:
                    index += 1
                if index < len(starts) and starts[index] < limit:
                    taken.add(index)
                    gaps.append(starts[index] - end)
                else:
                    unfilled += 1
        return gaps, unfilled

    def start_to_running(self) -> tuple[list[float], int]:
        """Each run's journaled start → the live stream's Running (from Assigning) nearest to it, between
        the previous run's and the next run's; and how many runs the API never showed Running."""
        delays: list[float] = []
        never = 0
        for task_id, task_runs in self.runs.items():
            shown = [
                arrived
                for arrived, frame in self.frames[task_id]
                if frame["type"] == "task_status"
                and frame["data"].get("lifecycleStatus") == "Running"
                and frame["data"].get("previousStatus") in {"Assigning", "Created"}
            ]
            floor = float("-inf")
            for index, run in enumerate(task_runs):
                ceiling = task_runs[index + 1].start if index + 1 < len(task_runs) else float("inf")
                candidates = [arrived for arrived in shown if floor < arrived < ceiling]
                if not candidates:
                    never += 1
                    continue
                floor = min(candidates, key=lambda arrived: abs(arrived - run.start))
                delays.append(floor - run.start)
        return delays, never

    # -- the kill --------------------------------------------------------------------------------------

    def victims(self) -> set[str]:
        """The killed node's tasks: live there in the API at the kill, running there by the journal at the
        kill, or assigned to it after the kill (the control plane did not know yet)."""
        if self.kill_at is None:
            return set()
        kill_at = self.kill_at
        shown = {
            task_id
            for task_id, state in self.record.live_at_kill.items()
            if state.get("executor") == self.killed and state.get("status") in LIVE
        }
        shown |= {
            task_id
            for task_id, task_frames in self.frames.items()
            for arrived, frame in task_frames
            if arrived >= kill_at
            and frame["data"].get("lifecycleStatus") == "Assigning"
            and frame["data"].get("executor") == self.killed
        }
        running = {
            run.task
            for run in self.all_runs
            if run.node == self.killed and run.start < kill_at and self.live_end(run) >= kill_at
        }
        return shown | running

    def requeues(self) -> dict[str, dict[str, float | None]]:
        """Kill → each victim re-queued in the API (Created, or assigned to another node), → started by a
        worker elsewhere, → terminal."""
        found: dict[str, dict[str, float | None]] = {}
        if self.kill_at is None:
            return found
        kill_at = self.kill_at
        for task_id in sorted(self.victims()):
            requeued = next(
                (
                    arrived
                    for arrived, frame in self.frames[task_id]
                    if arrived >= kill_at
                    and frame["type"] == "task_status"
                    and (
                        frame["data"].get("change") == "TaskRequeued"
                        or frame["data"].get("lifecycleStatus") == "Created"
                        or frame["data"].get("executor") not in {None, self.killed}
                    )
                ),
                None,
            )
            restarted = next(
                (r.start for r in self.runs.get(task_id, []) if r.start >= kill_at and r.node != self.killed),
                None,
            )
            ended = self.terminal_seen(task_id)
            found[task_id] = {
                "requeued_s": None if requeued is None else requeued - kill_at,
                "restarted_s": None if restarted is None else restarted - kill_at,
                "terminal_s": None if ended is None or ended < kill_at else ended - kill_at,
            }
        return found

    def orphans(self) -> tuple[list[dict[str, Any]], int]:
        """The killed node's processes (as they were just before the kill) still alive ``orphan_grace_s``
        after it; and the journal lines its workers wrote after that."""
        if self.kill_at is None:
            return [], 0
        kill_at, grace = self.kill_at, self.record.orphan_grace_s
        workers = {run.pid for run in self.all_runs if run.node == self.killed}
        orphans = [
            {**below, "worker": below["pid"] in workers, "lived_s": None if died is None else died - kill_at}
            for below in self.record.killed_below
            if (died := below["died"]) is None or died - kill_at > grace
        ]
        lines = sum(
            1 for line in self.record.journal if line["node"] == self.killed and line["t"] > kill_at + grace
        )
        return orphans, lines

    # -- violations ------------------------------------------------------------------------------------

    def overlaps(self) -> list[dict[str, Any]]:
        """Two runs of one task at the same time (a run without an end lasts to the end of the scenario)."""
        found = []
        for task_id, task_runs in self.runs.items():
            spans = sorted((r.start, r.end if r.end is not None else self.end_of_run, r) for r in task_runs)
            for index, (a_start, a_end, a) in enumerate(spans):
                for b_start, b_end, b in spans[index + 1 :]:
                    shared = min(a_end, b_end) - max(a_start, b_start)
                    if shared > 0:
                        found.append(
                            {
                                "task": task_id,
                                "runs": [f"{a.node}/{a.pid}", f"{b.node}/{b.pid}"],
                                "overlap_s": shared,
                                "second_start_s": b_start - self.t0,
                            }
                        )
        return found

    def late_cancels(self) -> list[dict[str, Any]]:
        """A worker that stopped more than ``CANCEL_SLACK_S`` after the API showed its task Cancelled, or
        never stopped."""
        found = []
        for task_id in self.plan:
            reported = next(
                (a for a, f in self.frames[task_id] if f["data"].get("lifecycleStatus") == "Cancelled"), None
            )
            if reported is None and self.status(task_id) == "Cancelled":
                reported = self.end_of_run
            if reported is None:
                continue
            for run in self.runs.get(task_id, []):
                if run.start > reported:
                    continue
                if run.end is None or run.end > reported + CANCEL_SLACK_S:
                    found.append(
                        {
                            "task": task_id,
                            "run": f"{run.node}/{run.pid}",
                            "stopped_after_s": None if run.end is None else run.end - reported,
                        }
                    )
        return found

    def ignored_cancels(self) -> list[dict[str, Any]]:
        """A cancel the API accepted, for a task that ended Finished or Failed."""
        return [
            {"task": task_id, "status": self.status(task_id)}
            for task_id in self.plan
            if self.first_cancel(task_id) is not None and self.status(task_id) in {"Finished", "Failed"}
        ]

    def missed_updates(self) -> tuple[list[dict[str, Any]], int]:
        """An update the API accepted that no run of the task journaled (in its update hook, or in the
        attachments it started with); not counted ("moot") when every run going at the time ended within
        ``UPDATE_SLACK_S`` of it."""
        missed, moot = [], 0
        for task_id in self.plan:
            task_runs = self.runs.get(task_id, [])
            for when in self.asked[task_id]["update"]:
                if any(r >= 1 for run in task_runs for _, r in run.rounds) or any(
                    run.start_round >= 1 for run in task_runs
                ):
                    continue
                going = [r for r in task_runs if r.start <= when and (r.end is None or r.end > when)]
                if going and all(r.end is not None and r.end - when < UPDATE_SLACK_S for r in going):
                    moot += 1
                    continue
                missed.append({"task": task_id, "asked_s": when - self.t0})
        return missed, moot

    def unasked_stops(self) -> list[dict[str, Any]]:
        """Runs on a live node that ended cancelled while nobody had cancelled their task: Skalds stopped
        them on its own (a fence, a lost lease, a hand-back)."""
        found = []
        for run in self.all_runs:
            if run.outcome != "cancelled" or run.end is None:
                continue
            if self.kill_at is not None and run.node == self.killed and run.end >= self.kill_at:
                continue
            if any(when <= run.end for when in self.asked[run.task]["cancel"]):
                continue
            found.append(
                {
                    "task": run.task,
                    "node": run.node,
                    "attempt": run.attempt,
                    "started_s": run.start - self.t0,
                    "ran_s": run.end - run.start,
                    "cancel_requested": run.requested,
                }
            )
        return sorted(found, key=lambda stop: stop["started_s"])

    def pauses(self) -> list[dict[str, Any]]:
        return [
            {"task": run.task, "pause_s": p - self.t0, "paused_for_s": None if q is None else q - p}
            for run in self.all_runs
            for p, q in run.pauses
            if p is not None
        ]


def analyse(record: Record) -> dict[str, Any]:
    """The measurements and the violations of one run, as plain JSON."""
    evidence = Evidence(record)
    kill_at = record.kill_at
    not_terminal = evidence.not_terminal()
    missing = sorted(set(evidence.plan) - set(record.final))
    ideal = evidence.ideal()
    allowance = record.dead_after_s if kill_at is not None else 0.0
    utilisation, waited = evidence.utilisation()
    gaps, unfilled = evidence.refill_gaps()
    to_running, never_running = evidence.start_to_running()
    requeues = evidence.requeues()
    orphans, orphan_lines = evidence.orphans()
    missed_updates, moot_updates = evidence.missed_updates()
    last_end = max((r.end for r in evidence.all_runs if r.end is not None), default=record.t0)
    return {
        "tasks": len(evidence.plan),
        "runs": len(evidence.all_runs),
        "skalds_seen_by_workers": sorted({run.skalds for run in evidence.all_runs}),
        "all_terminal": not not_terminal and not missing,
        "deadline_hit": record.deadline_hit,
        "makespan_s": evidence.makespan(),
        "last_worker_end_s": last_end - record.t0,
        "observed_s": record.final_at - record.t0,
        "ideal_s": ideal,
        "makespan_allowance_s": allowance,
        "makespan_target_s": 1.15 * ideal + allowance,
        "killed": record.killed,
        "kill_s": None if kill_at is None else kill_at - record.t0,
        "kill_reason": record.kill_reason,
        "offline_after_kill_s": None
        if record.offline_at is None or kill_at is None
        else record.offline_at - kill_at,
        "utilisation": utilisation,
        "waited_s": waited,
        "finish_to_next_start_s": _summary(gaps),
        "never_refilled": unfilled,
        "start_to_running_s": _summary(to_running),
        "runs_never_running_in_api": never_running,
        "dead_after_s": record.dead_after_s,
        "orphan_grace_s": record.orphan_grace_s,
        "requeue": requeues,
        "requeue_s": _summary([v["requeued_s"] for v in requeues.values() if v["requeued_s"] is not None]),
        "restart_s": _summary([v["restarted_s"] for v in requeues.values() if v["restarted_s"] is not None]),
        "victims_never_requeued": sorted(
            t for t, v in requeues.items() if v["requeued_s"] is None and v["terminal_s"] is None
        ),
        "orphans": orphans,
        "orphan_journal_lines": orphan_lines,
        "overlaps": evidence.overlaps(),
        "late_cancels": evidence.late_cancels(),
        "ignored_cancels": evidence.ignored_cancels(),
        "cancels_accepted": sum(len(a["cancel"]) for a in evidence.asked.values()),
        "missed_updates": missed_updates,
        "moot_updates": moot_updates,
        "updates_accepted": sum(len(a["update"]) for a in evidence.asked.values()),
        "pauses": evidence.pauses(),
        "not_terminal": not_terminal,
        "not_terminal_by_status": dict(Counter(t["lifecycleStatus"] for t in not_terminal.values())),
        "missing": missing,
        **evidence.counts(),
        "unasked_stops": evidence.unasked_stops(),
        "feed_reconnects": record.feed_reconnects,
        "feed_dropped": record.feed_dropped,
    }
