"""Workers for the benchmarks: ``StampingWorker`` (bench/worker_latency.py) stamps a file when main starts
and when it is updated; ``JournalWorker`` (bench/operator_scenario.py and its integration test) journals
everything that happens to it."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from skalds.worker.base import (
    BaseTaskWorker,
    pause_handler,
    release_handler,
    resume_handler,
    run_main_handler,
    update_event_handler,
)
from skalds.worker.context import TaskCancelled


class Stamps(BaseModel):
    folder: str
    round: int = 0


class StampingWorker(BaseTaskWorker[Stamps]):
    def stamp(self, name: str) -> None:
        assert self.attachments is not None
        Path(self.attachments.folder, f"{self.task_id}.{name}").write_text(repr(time.time()))

    @run_main_handler
    def main(self) -> None:
        self.stamp("main")
        while True:
            self.context.sleep(0.005)

    @update_event_handler
    def updated(self, attachments: Stamps) -> None:
        self.attachments = attachments
        self.stamp(f"update{attachments.round}")


# ---- the operator scenario (bench/operator_scenario.py, tests/integration/test_operator_scenario.py) ------

JOURNAL_VARIABLE = "SKALDS_BENCH_JOURNAL"  # the journal file; set on the node process, workers inherit it
NODE_VARIABLE = "SKALDS_BENCH_NODE"  # the node's id, for the journal lines
STEP_S = 0.05  # active time advances in steps this long: a pause or cancel is noticed within one step
HOLD_LIMIT_S = 300.0  # a held task gives up waiting for its control this long after its work is done


class Journaled(BaseModel):
    """``seconds`` of active work; ``round`` is bumped by each update. ``hold`` (tests only) keeps the
    worker going after its work until the control named there took effect (``update``: round > 0 seen;
    ``pause``: paused and resumed; ``cancel``: cancelled), so that control always finds it running.
    ``fail`` raises at the end of the work."""

    seconds: float = Field(gt=0)
    round: int = Field(default=0, ge=0)
    hold: Literal["", "update", "pause", "cancel"] = ""
    fail: bool = False


class JournalWorker(BaseTaskWorker[Journaled]):
    """Appends one JSON line per event to the journal file: ``start``, ``update`` (with its round),
    ``pause``, ``resume``, ``end`` (with outcome and active seconds) and ``release``.

    Each line carries ``t`` (time.time()), ``pid``, ``task``, ``attempt`` and ``node``. The file is opened
    with O_APPEND and each line is one ``os.write``, so lines of concurrent processes never interleave.
    Active time does not advance while paused: it sleeps in steps of ``STEP_S`` with ``context.sleep``
    (which blocks while paused) and counts at most one step per call."""

    _fd: int | None = None
    _resumed = False

    def note(self, event: str, **fields: object) -> None:
        if self._fd is None:
            self._fd = os.open(os.environ[JOURNAL_VARIABLE], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        line = {
            "t": time.time(),
            "event": event,
            "task": self.task_id,
            "attempt": self.context.attempt,
            "node": os.environ.get(NODE_VARIABLE, ""),
            "pid": os.getpid(),
            **fields,
        }
        os.write(self._fd, (json.dumps(line, separators=(",", ":")) + "\n").encode())

    def _holding(self, plan: Journaled) -> bool:
        match plan.hold:
            case "update":
                return plan.round == 0
            case "pause":
                return not self._resumed
            case "cancel":
                return True  # until the cancel raises TaskCancelled out of context.sleep
        return False

    @run_main_handler
    def main(self) -> None:
        assert self.attachments is not None
        skalds_file = str(Path(sys.modules["skalds"].__file__ or "").resolve())
        self.note("start", seconds=self.attachments.seconds, round=self.attachments.round, skalds=skalds_file)
        active = 0.0
        held_since: float | None = None
        try:
            while True:
                plan = self.attachments  # an update replaces it
                if active >= plan.seconds:
                    if not self._holding(plan):
                        break
                    held_since = held_since or time.monotonic()
                    if time.monotonic() - held_since > HOLD_LIMIT_S:
                        self.note("hold_expired", hold=plan.hold)
                        break
                step = max(0.001, min(STEP_S, plan.seconds - active)) if active < plan.seconds else STEP_S
                before = time.monotonic()
                self.context.sleep(step)
                if active < plan.seconds:
                    active += min(time.monotonic() - before, step)
                    self.context.report_progress(100 * min(1.0, active / plan.seconds))
            if plan.fail:
                raise RuntimeError(f"{self.task_id} fails, as planned")
        except TaskCancelled:
            self.note("end", outcome="cancelled", active=active, requested=self.context.cancel_requested)
            raise
        except Exception as error:
            self.note("end", outcome="failed", active=active, error=str(error))
            raise
        self.note("end", outcome="finished", active=active)

    @update_event_handler
    def updated(self, attachments: Journaled) -> None:
        self.attachments = attachments
        self.note("update", round=attachments.round)

    @pause_handler
    def paused(self) -> None:
        self.note("pause")

    @resume_handler
    def resumed(self) -> None:
        self._resumed = True
        self.note("resume")

    @release_handler
    def released(self) -> None:
        self.note("release", cancel_requested=self.context.cancel_requested)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


# ---- short tasks (bench/throughput.py) ------------------------------------------------------------------


class Nothing(BaseModel):
    """No parameters: the task is only its trip through Skalds."""


class NoopWorker(BaseTaskWorker[Nothing]):
    """Returns at once. With ``SKALDS_BENCH_JOURNAL`` set, first appends one JSON line (``task``,
    ``attempt``, ``pid``, ``t``) to that file, one ``os.write`` on an O_APPEND descriptor, so counting the
    lines per task says whether any task ran twice."""

    @run_main_handler
    def main(self) -> None:
        journal = os.environ.get(JOURNAL_VARIABLE)
        if not journal:
            return
        line = {"task": self.task_id, "attempt": self.context.attempt, "pid": os.getpid(), "t": time.time()}
        fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (json.dumps(line, separators=(",", ":")) + "\n").encode())
        finally:
            os.close(fd)


# ---- chatty tasks (bench/chatty_task.py) -----------------------------------------------------------------


class Chatter(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    lines_per_s: int = Field(default=10_000, alias="linesPerS", ge=0)
    seconds: float = 20.0


class ChattyWorker(BaseTaskWorker[Chatter]):
    """Writes ``lines_per_s`` lines a second for ``seconds``, half as log records and half printed, in
    steps of 10 ms; its progress is the lines written, and its last line says how many."""

    @run_main_handler
    def main(self) -> None:
        assert self.attachments is not None
        logger = logging.getLogger("bench.chatty")
        per_step = self.attachments.lines_per_s / 100
        started = time.monotonic()
        written, owed = 0, 0.0
        while (elapsed := time.monotonic() - started) < self.attachments.seconds:
            owed += per_step
            while owed >= 1:
                if written % 2:
                    print(f"frame {written}: 3 objects, 12.5 ms")
                else:
                    logger.info("frame %d: detections=%d latency_ms=%.1f", written, 3, 12.5)
                written += 1
                owed -= 1
            self.context.report_progress(written)
            self.context.sleep(max(0.0, (int(elapsed * 100) + 1) / 100 - (time.monotonic() - started)))
        logger.warning("wrote %d lines", written)
