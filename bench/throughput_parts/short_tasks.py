"""Part (c): ``tasks`` no-op tasks on two ``skalds node`` processes x 12 slots and one ``skalds controller
--mode dispatcher``, from the first submit to the API showing every one ``Finished``.

Submitted over the batch endpoint when the API has one, else by 8 concurrent single-create clients, in a
thread, while this one asks ``GET /api/tasks?lifecycleStatus=Finished&pageSize=1`` every 2 s until the live
stream has shown every task Finished, then every 0.25 s until the API agrees: the end is the API's answer.
(Each ask counts the Finished tasks, which FerretDB does by decoding each of them: asked every 0.5 s
throughout, the bench's own asks took ~30 % of the database's time and slowed what they measured.) Whether
each task finished exactly once and ran once comes from three sources: the API's final status of every
task, the ``Finished`` frames of the live stream ``/api/events/tasks``, and the workers' journal (one line
per run, ``bench.workers:NoopWorker``).
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.throughput_parts import client
from bench.throughput_parts.proc import tree_cpu_seconds
from bench.throughput_parts.rows import Row
from bench.workers import JOURNAL_VARIABLE, NODE_VARIABLE
from tests.integration.cluster import Cluster, Controller, all_tasks
from tests.integration.scenario.feed import LiveFeed

NODES = ("node-a", "node-b")
CAPACITY = 12
POLL_S = 2.0  # while the live stream has not shown every task Finished
CONFIRM_POLL_S = 0.25  # once it has, until the API agrees
TARGET = 200.0  # tasks/s
PHASES = (
    ("Created", "Assigning"),
    ("Assigning", "Running"),
    ("Running", "Finished"),
    ("Assigning", "Finished"),
    ("Created", "Finished"),
)


def start(cluster: Cluster, journal: Path) -> Controller:
    controller = cluster.controller()
    for node_id in NODES:
        env = {"SKALDS_NODE__CAPACITY": str(CAPACITY), JOURNAL_VARIABLE: str(journal), NODE_VARIABLE: node_id}
        cluster.node(node_id, worker=client.WORKER, env=env)
    cluster.wait_ready(controller)
    cluster.wait_online(controller, *NODES)
    return controller


def submit(controller: Controller, ids: list[str], stop: threading.Event, out: dict[str, Any]) -> None:
    """Every task created, by batches or by 8 clients; ``out`` gets how, and the timing."""
    try:
        timed = client.batch_creates(controller.api, ids, stop=stop)
        out["how"] = "batch"
        if timed is None:
            out["how"] = "8 clients, single creates"
            timed = client.single_creates(controller.url, ids, 8, stop)
        out["timed"] = timed
    except Exception as error:  # reported in the table, never a hang
        out["error"] = repr(error)


def watch(
    cluster: Cluster,
    controller: Controller,
    feed: LiveFeed,
    ids: list[str],
    *,
    started: float,
    deadline_s: float,
) -> dict[str, Any]:
    """Poll the Finished count until it reaches every task, a process dies, or the deadline passes; more
    often once the live stream has shown them all Finished."""
    total = len(ids)
    seen: list[tuple[float, int, float]] = []  # (s since the first submit, Finished, ms the count took)
    problem = ""
    while True:
        polled = time.monotonic()
        try:
            cluster.check()
            finished = client.count(controller.api, "Finished")
        except Exception as error:
            problem = str(error).splitlines()[0]
            break
        seen.append((round(polled - started, 3), finished, round((time.monotonic() - polled) * 1000)))
        if finished >= total:
            break
        if polled - started > deadline_s:
            problem = f"deadline: {finished} of {total} Finished after {deadline_s:g} s"
            break
        period = CONFIRM_POLL_S if streamed_all_finished(feed, ids) else POLL_S
        time.sleep(max(0.0, period - (time.monotonic() - polled)))
    return {"timeline": seen, "problem": problem}


def streamed_all_finished(feed: LiveFeed, ids: list[str]) -> bool:
    state = feed.snapshot()
    return all((state.get(task_id) or {}).get("status") == "Finished" for task_id in ids)


def cpu(cluster: Cluster) -> dict[str, float]:
    """CPU seconds so far of each Skalds process tree, and of this process (the HTTP clients)."""
    used = {process.name: tree_cpu_seconds(process) for process in cluster.processes}
    times = os.times()
    return used | {"bench": times.user + times.system}


def journal_runs(journal: Path) -> Counter[str]:
    try:
        lines = journal.read_text().splitlines()
    except FileNotFoundError:
        return Counter()
    return Counter(json.loads(line)["task"] for line in lines if line.strip())


def finished_frames(feed: LiveFeed) -> dict[str, list[int]]:
    """Task id -> the version of each ``Finished`` frame the live stream sent for it."""
    found: dict[str, list[int]] = {}
    for _, frame in list(feed.frames):
        data = frame.get("data") or {}
        if frame.get("type") == "task_status" and data.get("lifecycleStatus") == "Finished":
            found.setdefault(frame["taskId"], []).append(int(data.get("version") or 0))
    return found


def phases(feed: LiveFeed) -> dict[str, dict[str, float]]:
    """Per task, by the live stream's arrival times: Created -> Assigning -> Running -> Finished, ms (p50,
    p90, max over the tasks), to say where a short task's time goes."""
    first: dict[str, dict[str, float]] = {}
    for arrived, frame in list(feed.frames):
        status = (frame.get("data") or {}).get("lifecycleStatus")
        if frame.get("type") == "task_status" and status:
            first.setdefault(frame["taskId"], {}).setdefault(status, arrived)
    steps = (
        ("Created", "Assigning"),
        ("Assigning", "Running"),
        ("Running", "Finished"),
        ("Created", "Finished"),
    )
    found = {}
    for a, b in steps:
        gaps = sorted((seen[b] - seen[a]) * 1000 for seen in first.values() if a in seen and b in seen)
        if gaps:
            found[f"{a}->{b}"] = {
                "p50": round(statistics.median(gaps)),
                "p90": round(gaps[int(0.9 * (len(gaps) - 1))]),
                "max": round(gaps[-1]),
                "tasks": len(gaps),
            }
    return found


def evidence(controller: Controller, ids: list[str], journal: Path, feed: LiveFeed) -> dict[str, Any]:
    statuses = {task_id: item["lifecycleStatus"] for task_id, item in all_tasks(controller.api).items()}
    runs = journal_runs(journal)
    frames = finished_frames(feed)
    mine = set(ids)
    return {
        "apiStatuses": dict(Counter(statuses.get(task_id, "missing") for task_id in ids)),
        "journalRuns": sum(runs[task_id] for task_id in ids),
        "ranTwice": sorted(task_id for task_id in ids if runs[task_id] > 1),
        "neverRanButFinished": sorted(t for t in ids if statuses.get(t) == "Finished" and not runs[t]),
        "finishedTwice": sorted(t for t, versions in frames.items() if t in mine and len(set(versions)) > 1),
        "repeatedFrames": sorted(t for t, v in frames.items() if t in mine and len(v) > len(set(v))),
        "withFinishedFrame": sum(1 for t in frames if t in mine),
        "framesDropped": feed.dropped,
        "feedReconnects": feed.reconnects,
        "phasesMs": phases(feed),
    }


def run_short_tasks(
    cluster: Cluster, logs: Path, tasks: int, deadline_s: float
) -> tuple[list[Row], dict[str, Any]]:
    journal = logs / "noop-journal.jsonl"
    controller = start(cluster, journal)
    cpu_before = cpu(cluster)
    feed = LiveFeed(controller.url)
    feed.start()
    ids = [f"c-{i:05d}" for i in range(tasks)]
    stop, submitted = threading.Event(), {}
    submitter = threading.Thread(target=submit, args=(controller, ids, stop, submitted), daemon=True)
    started = time.monotonic()
    submitter.start()
    try:
        watched = watch(cluster, controller, feed, ids, started=started, deadline_s=deadline_s)
    finally:
        stop.set()
        submitter.join(timeout=client.TIMEOUT_S)
    cpu_used = {name: round(s - cpu_before.get(name, 0.0), 1) for name, s in cpu(cluster).items()}
    time.sleep(1.0)  # the last frames reach the live stream
    feed.close()
    found = evidence(controller, ids, journal, feed)
    timed = submitted.get("timed")
    details = {
        "cpuSeconds": cpu_used,
        **watched,
        **found,
        "submit": {"how": submitted.get("how"), "error": submitted.get("error")}
        | (timed.summary() if timed else {}),
    }
    return rows(tasks, watched, found, details), details


def rows(tasks: int, watched: dict[str, Any], found: dict[str, Any], details: dict[str, Any]) -> list[Row]:
    last_s, finished, _ = watched["timeline"][-1] if watched["timeline"] else (0.0, 0, 0)
    rate = finished / last_s if last_s > 0 else 0.0
    done = finished >= tasks
    submit = details["submit"]
    note = f"{finished:,} Finished after {last_s:.1f} s; submit by {submit.get('how')}"
    if submit.get("perSecond"):
        note += f" at {submit['perSecond']:,.0f}/s"
    if failed := submit.get("firstErrors") or ([submit["error"]] if submit.get("error") else []):
        note += f" (submit failed: {failed[0][:160]})"
    polls = sorted(ms for _, _, ms in watched["timeline"])
    if polls:
        note += f"; Finished count answered in p50 {statistics.median(polls):.0f} ms, max {polls[-1]} ms"
    shown_phases = [
        f"{name} {phase['p50']:,} ms ({phase['tasks']:,} tasks)"
        for name, phase in found["phasesMs"].items()
        if name in {"Created->Assigning", "Assigning->Finished"}
    ]
    if shown_phases:
        note += "; live stream p50 " + ", ".join(shown_phases)
    note += "; CPU s " + ", ".join(f"{name} {s:g}" for name, s in details["cpuSeconds"].items())
    if watched["problem"]:
        note += f"; stopped: {watched['problem'][:160]}"
    shown = f"{rate:,.1f} tasks/s" + ("" if done else f" ({finished:,}/{tasks:,} done)")
    api_finished = found["apiStatuses"].get("Finished", 0)
    once_ok = api_finished == tasks and not found["finishedTwice"]
    once = (
        f"API: {api_finished:,}/{tasks:,} Finished; live stream: {found['withFinishedFrame']:,} with a "
        f"Finished frame, {len(found['finishedTwice'])} twice"
    )
    once_note = f"final statuses {found['apiStatuses']}; {found['framesDropped']} frames_dropped notices"
    if found["repeatedFrames"]:
        once_note += f"; {len(found['repeatedFrames'])} with the same Finished frame repeated"
    ran_ok = not found["ranTwice"] and not found["neverRanButFinished"]
    ran = (
        f"{found['journalRuns']:,} runs; {len(found['ranTwice'])} ran twice, "
        f"{len(found['neverRanButFinished'])} Finished without a run"
    )
    return [
        Row(
            "c",
            f"{tasks:,} no-op tasks, {len(NODES)} nodes x {CAPACITY}, submit -> all Finished",
            shown,
            f">= {TARGET:,.0f} tasks/s",
            done and rate >= TARGET,
            value=rate,
            unit="tasks/s",
            note=note,
        ),
        Row("c", "each task Finished exactly once", once, "all, once", once_ok, note=once_note),
        Row("c", "no task run twice (workers' journal)", ran, "0", ran_ok),
    ]
