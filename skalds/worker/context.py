"""What a running worker can ask of the runtime: report progress and errors, honour cancel and pause.

Thread-safe: the worker's own code runs in the main thread, the runtime's control thread sets the flags.
Cancellation raises ``TaskCancelled``, a BaseException, so a broad ``except Exception`` in user code cannot
swallow it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


class TaskCancelled(BaseException):
    """Raised inside a worker at a checkpoint (or by SIGTERM) once its task was cancelled."""


@dataclass(frozen=True, slots=True)
class WorkerSnapshot:
    progress: float | None
    error: str | None
    paused: bool


class WorkerContext:
    def __init__(self, task_id: str, attempt: int = 1) -> None:
        self.task_id = task_id
        self.attempt = attempt
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._running = threading.Event()  # cleared while a pause is requested
        self._running.set()
        self._progress: float | None = None
        self._error: str | None = None
        self._paused = False

    # --- for worker code ---------------------------------------------------------------------------

    def report_progress(self, progress: float) -> None:
        """Any number that moves while the work advances (percent, frames, rows); stalls are judged on it."""
        with self._lock:
            self._progress = float(progress)

    def report_error(self, message: str) -> None:
        """A non-fatal error the operator should see; the worker goes on."""
        with self._lock:
            self._error = message[:4_000]

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    @property
    def pause_requested(self) -> bool:
        return not self._running.is_set()

    def checkpoint(self) -> None:
        """Call between units of work: raises TaskCancelled when cancelled, blocks here while paused."""
        if self.pause_requested and not self.cancel_requested:
            with self._lock:
                self._paused = True
            while not self._running.wait(0.05):
                if self._cancel.is_set():
                    break
            with self._lock:
                self._paused = False
        if self._cancel.is_set():
            raise TaskCancelled(self.task_id)

    def sleep(self, seconds: float) -> None:
        """Sleep that wakes at once on cancel, then honours cancel and pause."""
        self._cancel.wait(seconds)
        self.checkpoint()

    # --- for the runtime ---------------------------------------------------------------------------

    def request_cancel(self) -> None:
        self._cancel.set()

    def request_pause(self) -> None:
        self._running.clear()

    def request_resume(self) -> None:
        self._running.set()

    def snapshot(self) -> WorkerSnapshot:
        with self._lock:
            return WorkerSnapshot(progress=self._progress, error=self._error, paused=self._paused)
