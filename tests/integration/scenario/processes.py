"""/proc, the scenario's third source: when each worker process and each process of the killed node was
first seen gone. A run the journal never ended (its node was killed) still gets an end this way, and a
process of the killed node still alive afterwards is an orphan.
"""

from __future__ import annotations

import time
from typing import Any

from tests.integration.cluster import ProcessId


class ProcessWatch:
    """Polled every tick by the driver; ``worker_deaths`` is worker pid -> first seen gone."""

    def __init__(self) -> None:
        self.worker_deaths: dict[int, float] = {}
        self._workers: dict[int, ProcessId | None] = {}  # journal pid -> its process (None: gone at once)
        self._killed_below: list[ProcessId] = []
        self._below_deaths: dict[int, float] = {}

    def worker_started(self, pid: int) -> None:
        """A worker journaled its start: from now on its process is watched."""
        process = ProcessId.find(pid)
        self._workers[pid] = process
        if process is None:
            self.worker_deaths.setdefault(pid, time.time())

    def node_killed(self, below: list[ProcessId]) -> None:
        """The processes the killed node had below it, as they were just before the kill."""
        self._killed_below = below

    def watch(self, now: float) -> None:
        for pid, process in self._workers.items():
            if pid in self.worker_deaths:
                continue
            if process is None or not process.alive():
                self.worker_deaths[pid] = now
        for process in self._killed_below:
            if process.pid not in self._below_deaths and not process.alive():
                self._below_deaths[process.pid] = now

    def killed_below(self) -> list[dict[str, Any]]:
        """The killed node's processes: pid, start time, command line if still alive, when seen gone."""
        return [
            {
                "pid": p.pid,
                "started": p.started,
                "command": p.command() if p.alive() else "",
                "died": self._below_deaths.get(p.pid),
            }
            for p in self._killed_below
        ]
