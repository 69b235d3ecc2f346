"""The operator's controls (update, pause, resume, cancel): when each is due, sending it off the driver's
thread, and re-sending one the API refused because it does not show the task Running yet. Each is timed
from the worker's own journal, so it lands while the run it is meant for is going.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from tests.integration.scenario.load import Load, PlannedTask

RETRY_ACTION_S = 0.25  # a refused control (409: the API does not show the task Running yet) is re-sent


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


class Controls:
    """Every control of one run. ``going(pid)``, given by the driver, says whether a worker's run is still
    going on a live node: a control for a run that is over is moot."""

    def __init__(
        self,
        url: str,
        api: httpx.Client,
        planned: Mapping[str, PlannedTask],
        load: Load,
        going: Callable[[int], bool],
    ) -> None:
        self.api = api
        self.planned = planned
        self.load = load
        self.going = going
        self.controls: list[Control] = []
        self._pending: dict[int, tuple[Control, Future[tuple[float, int]]]] = {}
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="controls")
        self._client = httpx.Client(base_url=url, timeout=30.0)
        self._done: set[tuple[str, str]] = set()  # (task, kind) accepted once for good

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()

    def as_json(self) -> list[dict[str, Any]]:
        return [asdict(control) for control in self.controls]

    # -- what the journal says -------------------------------------------------------------------------

    def started(self, task_id: str, pid: int, started: float, start_round: int) -> None:
        """A worker journaled its start: its task's planned control is due ``act_after_s`` later."""
        planned = self.planned.get(task_id)
        if planned is None or planned.action in {"", "fail"}:
            return
        kind = planned.action
        if kind == "update" and start_round >= 1:
            return  # this run started with the update already in its attachments
        if kind in {"update", "cancel"} and (task_id, kind) in self._done:
            return
        self.controls.append(Control(task_id, kind, pid, started + self.load.act_after_s))

    def paused(self, task_id: str, pid: int, paused: float) -> None:
        """Resume once the worker itself says it paused, as an operator would."""
        self.controls.append(Control(task_id, "resume", pid, paused + self.load.pause_for_s))

    # -- sending ---------------------------------------------------------------------------------------

    def busy(self) -> bool:
        """An answer still to come, or a resume still to send (its run still going)."""
        return bool(self._pending) or any(
            c.accepted is None and not c.moot and c.kind == "resume" and self.going(c.run_pid)
            for c in self.controls
        )

    def send_due(self, now: float) -> None:
        for control in self.controls:
            if control.accepted is not None or control.moot or id(control) in self._pending:
                continue
            if control.due > now:
                continue
            if not self.going(control.run_pid):  # that run is over
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

    def collect(self) -> None:
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
                    self._done.add((control.task, control.kind))
            else:
                control.due = now + RETRY_ACTION_S

    def _cancel_pending(self, control: Control) -> bool:
        """A 409 to a cancel means done when the task is already cancelled or a cancel is pending."""
        try:
            task = self.api.get(f"/api/tasks/{control.task}").json()
        except (httpx.HTTPError, ValueError):
            return False
        return task.get("lifecycleStatus") == "Cancelled" or task.get("desiredState") == "cancel"
