"""What the SIGKILL left: the killed node's tasks (its victims), how soon each was re-queued, restarted
elsewhere and ended, and the node's processes that outlived it (orphans).
"""

from __future__ import annotations

from typing import Any

from tests.integration.scenario.evidence import Evidence
from tests.integration.scenario.statuses import LIVE


def victims(evidence: Evidence) -> set[str]:
    """The killed node's tasks: live there in the API at the kill, running there by the journal at the
    kill, or assigned to it after the kill (the control plane did not know yet)."""
    if evidence.kill_at is None:
        return set()
    kill_at = evidence.kill_at
    shown = {
        task_id
        for task_id, state in evidence.record.live_at_kill.items()
        if state.get("executor") == evidence.killed and state.get("status") in LIVE
    }
    shown |= {
        task_id
        for task_id, task_frames in evidence.frames.items()
        for arrived, frame in task_frames
        if arrived >= kill_at
        and frame["data"].get("lifecycleStatus") == "Assigning"
        and frame["data"].get("executor") == evidence.killed
    }
    running = {
        run.task
        for run in evidence.all_runs
        if run.node == evidence.killed and run.start < kill_at and evidence.live_end(run) >= kill_at
    }
    return shown | running


def requeues(evidence: Evidence) -> dict[str, dict[str, float | None]]:
    """Kill → each victim re-queued in the API (Created, or assigned to another node), → started by a
    worker elsewhere, → terminal."""
    found: dict[str, dict[str, float | None]] = {}
    if evidence.kill_at is None:
        return found
    kill_at = evidence.kill_at
    for task_id in sorted(victims(evidence)):
        requeued = next(
            (
                arrived
                for arrived, frame in evidence.frames[task_id]
                if arrived >= kill_at
                and frame["type"] == "task_status"
                and (
                    frame["data"].get("change") == "TaskRequeued"
                    or frame["data"].get("lifecycleStatus") == "Created"
                    or frame["data"].get("executor") not in {None, evidence.killed}
                )
            ),
            None,
        )
        restarted = next(
            (
                r.start
                for r in evidence.runs.get(task_id, [])
                if r.start >= kill_at and r.node != evidence.killed
            ),
            None,
        )
        ended = evidence.terminal_seen(task_id)
        found[task_id] = {
            "requeued_s": None if requeued is None else requeued - kill_at,
            "restarted_s": None if restarted is None else restarted - kill_at,
            "terminal_s": None if ended is None or ended < kill_at else ended - kill_at,
        }
    return found


def orphans(evidence: Evidence) -> tuple[list[dict[str, Any]], int]:
    """The killed node's processes (as they were just before the kill) still alive ``orphan_grace_s``
    after it; and the journal lines its workers wrote after that."""
    if evidence.kill_at is None:
        return [], 0
    kill_at, grace = evidence.kill_at, evidence.record.orphan_grace_s
    workers = {run.pid for run in evidence.all_runs if run.node == evidence.killed}
    orphans = [
        {**below, "worker": below["pid"] in workers, "lived_s": None if died is None else died - kill_at}
        for below in evidence.record.killed_below
        if (died := below["died"]) is None or died - kill_at > grace
    ]
    lines = sum(
        1
        for line in evidence.record.journal
        if line["node"] == evidence.killed and line["t"] > kill_at + grace
    )
    return orphans, lines
