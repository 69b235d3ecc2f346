"""``skalds task watch``: follow one task live until it reaches Finished, Failed or Cancelled.

Race-free start: the task is read first (a task already done ends the watch at once), then the event
stream is opened and, once its greeting arrives, the task is read again, so a change made between the
first read and the subscription is not missed. Every frame carrying ``lifecycleStatus`` moves the status.
"""

from __future__ import annotations

import json
import shutil
import time
from typing import Any, Protocol, TextIO

from skalds.entrypoints.client.http import ApiClient
from skalds.entrypoints.client.render import bar, clip, first_line, progress_text, when
from skalds.entrypoints.client.sse import Frame

EXIT_BY_FINAL_STATUS = {"Finished": 0, "Failed": 1, "Cancelled": 2}
RECONNECT_AFTER_S = 1.0
_ACTIVE = ("Assigning", "Running", "Paused")


class View(Protocol):
    def task(self, task: dict[str, Any]) -> None: ...
    def frame(self, frame: Frame) -> None: ...
    def close(self) -> None: ...


class JsonView(View):
    """One JSON object a line: ``{"type": "task", "taskId", "data": <task>}`` for each read, then frames."""

    def __init__(self, out: TextIO):
        self.out = out

    def task(self, task: dict[str, Any]) -> None:
        self._line({"type": "task", "taskId": task.get("id"), "data": task})

    def frame(self, frame: Frame) -> None:
        self._line(frame.data)

    def _line(self, data: dict[str, Any]) -> None:
        self.out.write(json.dumps(data) + "\n")
        self.out.flush()

    def close(self) -> None:
        pass


class PeopleView(View):
    """A line per status change and per error; progress on one redrawn line when ``live`` (a terminal),
    else a plain line whenever the shown progress changes."""

    def __init__(self, out: TextIO, task_id: str, *, live: bool):
        self.out, self.task_id, self.live = out, task_id, live
        self.status: str | None = None
        self.desired: str | None = None
        self.executor: str | None = None
        self.progress: Any = None
        self.error = ""
        self.scale: tuple[Any, Any] = (None, None)  # the task's progress total and unit, as the API said
        self._drawn = False

    def task(self, task: dict[str, Any]) -> None:
        self.executor = task.get("executor") or self.executor
        status = task.get("lifecycleStatus")
        error = first_line(task.get("lastError")) if status == "Failed" else ""
        note = f": {error}" if error else ""
        self._state(status, task.get("desiredState"), task.get("updateDateTime"), note)
        self.scale = (task.get("progressTotal"), task.get("progressUnit"))  # live frames move only the count
        self._progress(task.get("progress"))

    def frame(self, frame: Frame) -> None:
        data: dict[str, Any] = frame.data.get("data") or {}
        at = frame.data.get("timestamp")
        self.executor = data.get("executor") or self.executor
        if frame.type == "task_error" and first_line(data.get("error")) != self.error:
            self.error = first_line(data.get("error"))
            self._say(at, f"error: {self.error}")
        note = ""
        if frame.type == "task_exception":
            left = data.get("attemptsLeft")
            note = f": {first_line(data.get('exception'))}" + (f" ({left} attempts left)" if left else "")
        self._state(data.get("lifecycleStatus"), data.get("desiredState"), at, note)
        if "progress" in data:
            self._progress(data["progress"])

    def _state(self, status: Any, desired: Any, at: Any, note: str = "") -> None:
        status = status or self.status
        desired = desired or self.desired
        if (status, desired) == (self.status, self.desired):
            return
        self.status, self.desired = status, desired
        text = f"{status}"
        if status in _ACTIVE and self.executor:
            text += f" on {self.executor}"
        if status in _ACTIVE and desired and desired != "run":
            text += f" ({desired} requested)"
        self._say(at, text + note)

    def _progress(self, progress: Any) -> None:
        if progress is None or progress_text(progress, *self.scale) == progress_text(
            self.progress, *self.scale
        ):
            return
        if self.status in EXIT_BY_FINAL_STATUS:  # the last heartbeat of a finished task says nothing new
            return
        self.progress = progress
        if not self.live:
            self._say(None, f"progress {progress_text(progress, *self.scale)}")
        self._draw()

    def _say(self, at: Any, text: str) -> None:
        stamp = when(at, short=True) if at is not None else time.strftime("%H:%M:%S")
        self._clear()
        self.out.write(f"{stamp}  {self.task_id}  {text}\n")
        self._draw()

    def _draw(self) -> None:
        if not self.live or self.status in EXIT_BY_FINAL_STATUS:
            self.out.flush()
            return
        columns = shutil.get_terminal_size((100, 24)).columns - 1
        shown = f"  {bar(self.progress, *self.scale)}" if self.progress is not None else ""
        self.out.write("\r\x1b[K" + clip(f"{self.task_id}  {self.status}{shown}", columns))
        self.out.flush()
        self._drawn = True

    def _clear(self) -> None:
        if self._drawn:
            self.out.write("\r\x1b[K")
            self._drawn = False

    def close(self) -> None:
        self._clear()
        self.out.flush()


def watch(client: ApiClient, task_id: str, view: View) -> int:
    """Exit code: 0 Finished, 1 Failed, 2 Cancelled. Errors of the API propagate (the caller reports)."""
    try:
        task = client.get_task(task_id)
        view.task(task)
        status = task.get("lifecycleStatus")
        while status not in EXIT_BY_FINAL_STATUS:
            for frame in client.task_events(task_id):
                if frame.type == "connection":
                    task = client.get_task(task_id)
                    view.task(task)
                    status = task.get("lifecycleStatus")
                elif frame.data.get("taskId") == task_id:
                    view.frame(frame)
                    status = (frame.data.get("data") or {}).get("lifecycleStatus") or status
                if status in EXIT_BY_FINAL_STATUS:
                    break
            else:  # the API closed the stream (stopping, or a proxy's timeout): read again, resubscribe
                time.sleep(RECONNECT_AFTER_S)
                task = client.get_task(task_id)
                view.task(task)
                status = task.get("lifecycleStatus")
        return EXIT_BY_FINAL_STATUS[str(status)]
    finally:
        view.close()
