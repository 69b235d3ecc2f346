"""The timing measures: the makespan and the ideal it is held to, slot utilisation while work waits,
worker end → next start on the node, and worker start → Running in the API. Each says how close Skalds came
to keeping every slot busy and the API current.
"""

from __future__ import annotations

import bisect
import itertools

from tests.integration.scenario.evidence import Evidence
from tests.integration.scenario.ideal import Job, ideal_makespan
from tests.integration.scenario.steps import Step


def makespan(evidence: Evidence) -> float | None:
    """First creation → the API showing the last task terminal; None when not every task got there."""
    seen = [evidence.terminal_seen(task_id) for task_id in evidence.plan]
    if any(t is None for t in seen):
        return None
    return max(t for t in seen if t is not None) - evidence.t0


def jobs(evidence: Evidence) -> list[Job]:
    """What the ideal scheduler gets: each task's release (its POST answered) and the slot time it
    needed, from the journal: its final run's start → end (a paused worker holds its slot, so pauses
    are in it); for a cancelled task, start → cancel asked; for a task that never ran to its end,
    the planned seconds (plus the planned pause)."""
    found = []
    for task_id, task in evidence.plan.items():
        task_runs = evidence.runs.get(task_id, [])
        final = task_runs[-1] if task_runs else None
        cancelled = evidence.first_cancel(task_id)
        if final is not None and final.outcome in {"finished", "failed"} and final.end is not None:
            duration = final.end - final.start
        elif final is not None and cancelled is not None:
            duration = max(0.0, cancelled - final.start)
        else:
            duration = task["seconds"] + (
                evidence.record.load["pause_for_s"] if task["action"] == "pause" else 0
            )
        release = evidence.record.created.get(task_id, evidence.end_of_run) - evidence.t0
        found.append(Job(release, task["priority"], task_id, duration))
    return found


def ideal(evidence: Evidence) -> float:
    kill = None
    if evidence.killed is not None and evidence.kill_at is not None:
        kill = (evidence.killed, evidence.kill_at - evidence.t0)
    return ideal_makespan(jobs(evidence), evidence.record.slots, kill)


def utilisation(evidence: Evidence) -> tuple[float | None, float]:
    """Busy slots / slots of live nodes, integrated over the time at least one task waited; and that
    time. A run holds a slot from its journaled start to its end (paused included)."""
    busy_changes: list[tuple[float, int]] = []
    for run in evidence.all_runs:
        stop = evidence.live_end(run)
        if stop > run.start:
            busy_changes += [(run.start, 1), (stop, -1)]
    slot_changes = [(evidence.t0, sum(evidence.record.slots.values()))]
    if evidence.killed is not None and evidence.kill_at is not None:
        slot_changes.append((evidence.kill_at, -evidence.record.slots[evidence.killed]))
    busy, slots, waiting = Step(busy_changes), Step(slot_changes), evidence.waiting
    edges = sorted({evidence.t0, evidence.end_of_run, *busy.times, *waiting.times, *slots.times})
    waited = used = 0.0
    for left, right in itertools.pairwise(edges):
        if right <= left or waiting.at(left) <= 0 or slots.at(left) <= 0:
            continue
        waited += right - left
        used += (right - left) * min(1.0, busy.at(left) / slots.at(left))
    return (used / waited if waited else None), waited


def refill_gaps(evidence: Evidence) -> tuple[list[float], int]:
    """For each worker end on a live node while a task waited: the time to the next worker start on
    that node (each start pairs with one end); and how many ends no start followed."""
    gaps: list[float] = []
    unfilled = 0
    for node in evidence.record.slots:
        node_runs = [run for run in evidence.all_runs if run.node == node]
        limit = (
            evidence.kill_at
            if node == evidence.killed and evidence.kill_at is not None
            else evidence.end_of_run
        )
        starts = sorted(run.start for run in node_runs)
        ends = sorted(
            run.end
            for run in node_runs
            if run.end is not None and run.ended_by == "journal" and run.end < limit
        )
        taken: set[int] = set()
        for end in ends:
            if evidence.waiting.at(end) <= 0:
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


def start_to_running(evidence: Evidence) -> tuple[list[float], int]:
    """Each run's journaled start → the live stream's Running (from Assigning) nearest to it, between
    the previous run's and the next run's; and how many runs the API never showed Running."""
    delays: list[float] = []
    never = 0
    for task_id, task_runs in evidence.runs.items():
        shown = [
            arrived
            for arrived, frame in evidence.frames[task_id]
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
