"""The violations, each one a list that should be empty: tasks not terminal at the end, the API's status
against the workers' journal, one task in two processes at once, cancels late or ignored, updates missed,
and runs Skalds stopped with nobody asking.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from tests.integration.scenario.evidence import Evidence
from tests.integration.scenario.statuses import TERMINAL

CANCEL_SLACK_S = 2.0  # a worker may run this long after the API said Cancelled
UPDATE_SLACK_S = 1.0  # an update asked this close to the end of the run may rightly miss it ("moot")


def not_terminal(evidence: Evidence) -> dict[str, dict[str, Any]]:
    """The tasks not terminal for good at the end, with what the API said of them."""
    keys = ("lifecycleStatus", "executor", "attempt", "desiredState", "pendingReason", "lastError")
    return {
        task_id: {key: evidence.record.final[task_id].get(key) for key in keys}
        for task_id in sorted(evidence.plan)
        if task_id in evidence.record.final and not evidence.settled(task_id)
    }


def counts(evidence: Evidence) -> dict[str, Any]:
    """The terminal statuses counted by the API and by the journal, and the tasks where the two differ."""
    journal = evidence.journal_final()
    api = Counter(
        evidence.status(task_id) for task_id in evidence.plan if evidence.status(task_id) in TERMINAL
    )
    disagreements = {
        task_id: {"api": evidence.status(task_id), "journal": journal[task_id]}
        for task_id in evidence.plan
        if evidence.status(task_id) in TERMINAL and evidence.status(task_id) != journal[task_id]
    }
    return {
        "api_counts": dict(api),
        "journal_counts": dict(Counter(status for status in journal.values() if status)),
        "disagreements": disagreements,
    }


def overlaps(evidence: Evidence) -> list[dict[str, Any]]:
    """Two runs of one task at the same time (a run without an end lasts to the end of the scenario)."""
    found = []
    for task_id, task_runs in evidence.runs.items():
        spans = sorted((r.start, r.end if r.end is not None else evidence.end_of_run, r) for r in task_runs)
        for index, (a_start, a_end, a) in enumerate(spans):
            for b_start, b_end, b in spans[index + 1 :]:
                shared = min(a_end, b_end) - max(a_start, b_start)
                if shared > 0:
                    found.append(
                        {
                            "task": task_id,
                            "runs": [f"{a.node}/{a.pid}", f"{b.node}/{b.pid}"],
                            "overlap_s": shared,
                            "second_start_s": b_start - evidence.t0,
                        }
                    )
    return found


def late_cancels(evidence: Evidence) -> list[dict[str, Any]]:
    """A worker that stopped more than ``CANCEL_SLACK_S`` after the API showed its task Cancelled, or
    never stopped."""
    found = []
    for task_id in evidence.plan:
        reported = next(
            (a for a, f in evidence.frames[task_id] if f["data"].get("lifecycleStatus") == "Cancelled"), None
        )
        if reported is None and evidence.status(task_id) == "Cancelled":
            reported = evidence.end_of_run
        if reported is None:
            continue
        for run in evidence.runs.get(task_id, []):
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


def ignored_cancels(evidence: Evidence) -> list[dict[str, Any]]:
    """A cancel the API accepted, for a task that ended Finished or Failed."""
    return [
        {"task": task_id, "status": evidence.status(task_id)}
        for task_id in evidence.plan
        if evidence.first_cancel(task_id) is not None and evidence.status(task_id) in {"Finished", "Failed"}
    ]


def missed_updates(evidence: Evidence) -> tuple[list[dict[str, Any]], int]:
    """An update the API accepted that no run of the task journaled (in its update hook, or in the
    attachments it started with); not counted ("moot") when every run going at the time ended within
    ``UPDATE_SLACK_S`` of it."""
    missed, moot = [], 0
    for task_id in evidence.plan:
        task_runs = evidence.runs.get(task_id, [])
        for when in evidence.asked[task_id]["update"]:
            if any(r >= 1 for run in task_runs for _, r in run.rounds) or any(
                run.start_round >= 1 for run in task_runs
            ):
                continue
            going = [r for r in task_runs if r.start <= when and (r.end is None or r.end > when)]
            if going and all(r.end is not None and r.end - when < UPDATE_SLACK_S for r in going):
                moot += 1
                continue
            missed.append({"task": task_id, "asked_s": when - evidence.t0})
    return missed, moot


def unasked_stops(evidence: Evidence) -> list[dict[str, Any]]:
    """Runs on a live node that ended cancelled while nobody had cancelled their task: Skalds stopped
    them on its own (a fence, a lost lease, a hand-back)."""
    found = []
    for run in evidence.all_runs:
        if run.outcome != "cancelled" or run.end is None:
            continue
        if evidence.kill_at is not None and run.node == evidence.killed and run.end >= evidence.kill_at:
            continue
        if any(when <= run.end for when in evidence.asked[run.task]["cancel"]):
            continue
        found.append(
            {
                "task": run.task,
                "node": run.node,
                "attempt": run.attempt,
                "started_s": run.start - evidence.t0,
                "ran_s": run.end - run.start,
                "cancel_requested": run.requested,
            }
        )
    return sorted(found, key=lambda stop: stop["started_s"])
