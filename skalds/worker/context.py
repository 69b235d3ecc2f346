"""What a running worker can ask of the runtime: report progress and errors, honour cancel and pause,
save a checkpoint and read the one an earlier attempt saved.

Thread-safe: the worker's own code runs in the main thread, the runtime's control thread sets the flags.
Cancellation raises ``TaskCancelled``, a BaseException, so a broad ``except Exception`` in user code cannot
swallow it.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

DEFAULT_CHECKPOINT_BYTES = 256 * 1024


class TaskCancelled(BaseException):
    """Raised inside a worker at a checkpoint (or by SIGTERM) once its task was cancelled."""


@dataclass(frozen=True, slots=True)
class WorkerSnapshot:
    progress: float | None
    error: str | None
    paused: bool
    total: float | None = None
    unit: str | None = None
    message: str | None = None


def progress_scale(
    total: float | None, unit: str | None, message: str | None
) -> tuple[float | None, str | None, str | None]:
    """``report_progress``'s scale, checked: a total above zero, short texts (they go with every beat)."""
    if total is not None and not (float(total) > 0):
        raise ValueError(f"a progress total must be above 0, got {total!r}")
    return (
        None if total is None else float(total),
        None if unit is None else str(unit)[:40],
        None if message is None else str(message)[:200],
    )


class WorkerContext:
    def __init__(
        self,
        task_id: str,
        attempt: int = 1,
        *,
        saved_checkpoint: str | None = None,
        checkpoint_limit_bytes: int = DEFAULT_CHECKPOINT_BYTES,
    ) -> None:
        self.task_id = task_id
        self.attempt = attempt
        self.checkpoint_model: type[BaseModel] | None = None  # set by the worker class (checkpoint_model)
        self._saved = saved_checkpoint
        self._checkpoint_limit = checkpoint_limit_bytes
        self._pending: tuple[int, str] | None = None
        self._checkpoint_sequence = 0
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._running = threading.Event()  # cleared while a pause is requested
        self._running.set()
        self._progress: float | None = None
        self._scale: tuple[float | None, str | None, str | None] = (None, None, None)
        self._error: str | None = None
        self._paused = False

    # --- for worker code ---------------------------------------------------------------------------

    def report_progress(
        self, progress: float, total: float | None = None, unit: str | None = None, message: str | None = None
    ) -> None:
        """Any number that moves while the work advances; stalls are judged on it. With ``total`` (and a
        ``unit``) people see "37 / 120 frames" and a percentage; without, 0-100 reads as a percentage.
        ``message`` is a word on where the work is. Each call replaces the whole scale."""
        scale = progress_scale(total, unit, message)
        with self._lock:
            self._progress = float(progress)
            self._scale = scale

    def report_error(self, message: str) -> None:
        """A non-fatal error the operator should see; the worker goes on."""
        with self._lock:
            self._error = message[:4_000]

    def save_checkpoint(self, value: Any) -> None:
        """Keep ``value`` (JSON-able, or an instance of the worker's ``checkpoint_model``) as the point a
        later attempt of this task resumes from. Cheap: it is sent with the next heartbeat and stored by the
        node, the worker never waits for a database; only the latest save counts."""
        model = self.checkpoint_model
        if model is not None:
            value = model.model_validate(value).model_dump(mode="json")
        try:
            text = json.dumps(value, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as error:
            raise ValueError(f"a checkpoint must be JSON: {error}") from None
        size = len(text.encode())
        if size > self._checkpoint_limit:
            raise ValueError(
                f"a checkpoint may be at most {self._checkpoint_limit} bytes as JSON, got {size}"
            )
        with self._lock:
            self._checkpoint_sequence += 1
            self._pending = (self._checkpoint_sequence, text)
            self._saved = text

    @property
    def saved_checkpoint(self) -> Any:
        """The latest checkpoint of this task (an earlier attempt's, or this one's), or None: read it before
        starting the work to resume there. An instance of ``checkpoint_model`` when the worker has one.
        (``checkpoint()`` is the cancel and pause point, not this.)"""
        with self._lock:
            text = self._saved
        if text is None:
            return None
        value = json.loads(text)
        model = self.checkpoint_model
        return model.model_validate(value) if model is not None else value

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

    def take_checkpoint(self) -> tuple[int, str] | None:
        """The save not yet sent to the node, as (sequence, JSON text), once."""
        with self._lock:
            pending, self._pending = self._pending, None
            return pending

    def snapshot(self) -> WorkerSnapshot:
        with self._lock:
            total, unit, message = self._scale
            return WorkerSnapshot(
                progress=self._progress,
                error=self._error,
                paused=self._paused,
                total=total,
                unit=unit,
                message=message,
            )
