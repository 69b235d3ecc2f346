"""Worker classes for tests that run real worker processes; importable by path as ``tests.workers:Name``."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from skalds.worker.base import (
    BaseTaskWorker,
    pause_handler,
    release_handler,
    resume_handler,
    run_before_handler,
    run_main_handler,
    update_event_handler,
)


class Settings(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    fps: int = 10
    fail_in: str | None = Field(default=None, alias="failIn")  # "before" or "main"
    steps: int = 1_000_000
    ignore_cancel: bool = Field(default=False, alias="ignoreCancel")
    marker_dir: str | None = Field(default=None, alias="markerDir")


class Steady(BaseTaskWorker[Settings]):
    """Counts steps, reports progress, honours cancel and pause, records hook calls as marker files."""

    def mark(self, name: str, text: str = "") -> None:
        folder = self.attachments.marker_dir if self.attachments else None
        if folder:
            Path(folder, f"{self.task_id}.{name}").write_text(text or str(os.getpid()))

    @run_before_handler
    def before(self) -> None:
        assert self.attachments is not None
        if self.attachments.fail_in == "before":
            raise ValueError("camera URL is unreachable")
        self.mark("before")

    @run_main_handler
    def main(self) -> None:
        assert self.attachments is not None
        for step in range(self.attachments.steps):
            if self.attachments.fail_in == "main" and step >= 3:  # also after a hot update asks for it
                raise RuntimeError("decoder crashed at frame 3")
            self.context.report_progress(step)
            if self.attachments.ignore_cancel:
                time.sleep(0.01)
            else:
                self.context.sleep(0.01)

    @update_event_handler
    def on_update(self, attachments: Settings) -> None:
        self.mark("update", f"{type(attachments).__name__}:{attachments.fps}")

    @pause_handler
    def on_pause(self) -> None:
        self.mark("pause")

    @resume_handler
    def on_resume(self) -> None:
        self.mark("resume")

    @release_handler
    def release(self) -> None:
        self.mark("release")


class Quick(BaseTaskWorker[Settings]):
    """Finishes after a few steps."""

    @run_main_handler
    def main(self) -> None:
        for step in range(3):
            self.context.report_progress(step)
            self.context.sleep(0.01)


class Stubborn(BaseTaskWorker[Settings]):
    """Ignores SIGTERM too (a worker stuck in native code): only SIGKILL ends it."""

    @run_main_handler
    def main(self) -> None:
        import signal

        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True:
            time.sleep(0.01)


class Lingering(BaseTaskWorker[Settings]):
    """Finishes at once, but its process stays until ``<markerDir>/<task id>.go`` exists: a worker whose
    outcome is reported while its process is still exiting (a non-daemon thread flushing, say)."""

    @run_main_handler
    def main(self) -> None:
        assert self.attachments is not None and self.attachments.marker_dir is not None
        go = Path(self.attachments.marker_dir, f"{self.task_id}.go")

        def wait_for_go() -> None:
            while not go.exists():
                time.sleep(0.01)

        threading.Thread(target=wait_for_go, daemon=False).start()  # the process exits after it


WORKERS = {
    "Steady": "tests.workers:Steady",
    "Quick": "tests.workers:Quick",
    "Stubborn": "tests.workers:Stubborn",
    "Lingering": "tests.workers:Lingering",
}


class Chatty(BaseTaskWorker[Settings]):
    """Logs one line through the standard logging module and finishes."""

    @run_main_handler
    def main(self) -> None:
        logging.getLogger("tests.chatty").info("processing %s", self.task_id)


class SlowRelease(BaseTaskWorker[Settings]):
    """Honours cancel, then hangs in its release hook (a stuck disconnect); only a hard exit ends it."""

    @run_main_handler
    def main(self) -> None:
        while True:
            self.context.sleep(0.01)

    @release_handler
    def release(self) -> None:
        while True:
            try:
                time.sleep(0.01)
            except BaseException:  # deliberately deaf to every cancel
                continue


class Defiant(BaseTaskWorker[Settings]):
    """Swallows every cancel, by checkpoint or by SIGTERM, and goes on."""

    @run_main_handler
    def main(self) -> None:
        while True:
            try:
                self.context.sleep(0.01)
            except BaseException:  # deliberately deaf to every cancel
                continue


class Rows(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    rows: int = 40
    fail_at: int | None = Field(default=None, alias="failAt")  # the first attempt fails at this row
    row_s: float = Field(default=0.02, alias="rowS")


class RowsDone(BaseModel):
    row: int = 0
    starts: list[int] = Field(default_factory=list)  # the row each attempt started at


class Resumable(BaseTaskWorker[Rows]):
    """Works through rows, checkpointing after each; an attempt resumes where the last save says."""

    checkpoint_model = RowsDone

    @run_main_handler
    def main(self) -> None:
        assert self.attachments is not None
        saved = self.context.saved_checkpoint or RowsDone()
        starts = [*saved.starts, saved.row]
        for row in range(saved.row, self.attachments.rows):
            if row == self.attachments.fail_at and self.context.attempt == 1:
                raise RuntimeError(f"failing at row {row}, as told")
            self.context.save_checkpoint(RowsDone(row=row + 1, starts=starts))
            self.context.report_progress(row + 1)
            self.context.sleep(self.attachments.row_s)


class Talker(BaseTaskWorker[Settings]):
    """Writes every kind of output a task writes, then fails (or finishes with ``fps`` 0): log records of
    each level, prints to stdout and stderr, a line printed in pieces, and a traceback."""

    @run_main_handler
    def main(self) -> None:
        logger = logging.getLogger("tests.talker")
        logger.debug("not captured at the default level")
        logger.info("starting %s", self.task_id)
        print("to stdout")
        print("to stderr", file=sys.stderr)
        print("in ", end="")
        print("pieces")
        logger.warning("careful: %d", 3)
        try:
            raise KeyError("inner")
        except KeyError:
            logger.exception("handled")
        assert self.attachments is not None
        if self.attachments.fps:
            raise RuntimeError("the camera went away")


class Spin(BaseTaskWorker[Settings]):
    """Keeps one CPU busy (and holds some memory) until cancelled: the load resource use is measured by."""

    @run_main_handler
    def main(self) -> None:
        ballast = bytearray(32 * 1024 * 1024)  # touched, so it is resident
        for offset in range(0, len(ballast), 4096):
            ballast[offset] = 1
        spins = 0
        while True:
            spins += 1
            if spins % 100_000 == 0:
                self.context.checkpoint()  # honours cancel and pause
                self.context.report_progress(spins)


SPIN = {"Spin": "tests.workers:Spin"}
