"""Example workers: what a Skalds worker looks like. ``skalds up`` runs these; so can any node:
``skalds node --worker skalds.examples:StreamWorker``.

``CountdownWorker`` is the smallest useful worker; it checkpoints every second, so a retried or restarted
countdown goes on from where it was. ``StreamWorker`` is shaped like a video-inference job: it
connects, processes frames for as long as it runs, reports progress, honours pause and cancel between
frames, and takes a new ``fps`` while running (hot update), without a restart.
"""

from __future__ import annotations

import logging
import time

from pydantic import BaseModel, ConfigDict, Field

from skalds import (
    BaseTaskWorker,
    release_handler,
    run_after_handler,
    run_before_handler,
    run_main_handler,
    update_event_handler,
)

log = logging.getLogger(__name__)


class Countdown(BaseModel):
    seconds: int = Field(default=10, ge=1, le=86_400)


class Counted(BaseModel):
    seconds: int = 0  # counted down so far


class CountdownWorker(BaseTaskWorker[Countdown]):
    checkpoint_model = Counted

    @run_main_handler
    def main(self) -> None:
        assert self.attachments is not None
        total = self.attachments.seconds
        counted = self.context.saved_checkpoint or Counted()  # an earlier attempt's last save
        log.info("counting from %d to %d s", counted.seconds, total)  # the task's output (docs/logs.md)
        for second in range(counted.seconds, total):
            print(f"{total - second} s to go")
            self.context.report_progress(second, total=total, unit="s")  # "37 / 120 s (31%)"
            self.context.sleep(1)  # wakes at once on cancel; waits here while paused
            self.context.save_checkpoint(Counted(seconds=second + 1))
        self.context.report_progress(total, total=total, unit="s")


class Stream(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    rtsp_url: str = Field(default="rtsp://camera.local/stream", alias="rtspUrl")
    fps: int = Field(default=5, ge=1, le=120)
    frames: int | None = Field(default=None, ge=1)  # stop after this many frames; None: until cancelled


class StreamWorker(BaseTaskWorker[Stream]):
    frames_done = 0
    connected_to: str | None = None

    @run_before_handler
    def connect(self) -> None:
        assert self.attachments is not None
        self.frames_done = 0
        self.connected_to = self.attachments.rtsp_url  # a real worker would open the stream here

    @run_main_handler
    def process(self) -> None:
        assert self.attachments is not None
        while self.attachments.frames is None or self.frames_done < self.attachments.frames:
            started = time.monotonic()
            self.frames_done += 1  # a real worker would run inference on one frame here
            self.context.report_progress(self.frames_done)
            self.context.sleep(max(0.0, 1 / self.attachments.fps - (time.monotonic() - started)))

    @update_event_handler
    def retune(self, attachments: Stream) -> None:
        """Called in the running process with the new, validated parameters; the loop picks up the new fps."""
        self.attachments = attachments

    @run_after_handler
    def summary(self) -> None:
        print(f"{self.task_id}: processed {self.frames_done} frames from {self.connected_to}")

    @release_handler
    def disconnect(self) -> None:
        self.connected_to = None  # runs on finish, failure and cancel alike
