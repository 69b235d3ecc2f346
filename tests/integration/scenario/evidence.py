"""One record's evidence indexed for the measures: the runs by task, the live stream's frames by task, the
controls the API accepted, and the few derived facts several measures share (when a task was done, when it
waited, what its journal says it ended as). The measures themselves are functions of an ``Evidence``, one
module per kind (``timings``, ``requeue``, ``violations``); times they return are relative to ``t0``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from tests.integration.scenario.journal import Run, runs_from
from tests.integration.scenario.record import Record
from tests.integration.scenario.statuses import OUTCOME_STATUS
from tests.integration.scenario.statuses import settled as settled_for_good
from tests.integration.scenario.steps import Step, subtract


class Evidence:
    """A record's journal, live stream and controls indexed by task."""

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
        self.waiting = Step(self._waiting_changes())

    # -- helpers ---------------------------------------------------------------------------------------

    def status(self, task_id: str) -> str | None:
        task = self.record.final.get(task_id)
        return None if task is None else str(task["lifecycleStatus"])

    def settled(self, task_id: str) -> bool:
        return settled_for_good(self.record.final.get(task_id))

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
            for start, stop in subtract((created, max(created, self.done_at(task_id))), covers):
                changes += [(start, 1), (stop, -1)]
        return changes

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
