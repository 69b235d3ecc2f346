"""A worker for the latency benchmark: it stamps in a file when main starts and when it is updated."""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import BaseModel

from skalds.worker.base import BaseTaskWorker, run_main_handler, update_event_handler


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
