"""The workers' journal: one JSON line per start, update, pause, resume, end and release, written by the
workers themselves. ``JournalTail`` reads it as it grows; ``runs_from`` turns the lines into runs (one worker
process running one task), the unit most measures are made of.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class JournalTail:
    """Reads the journal file's new complete lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""
        self.lines: list[dict[str, Any]] = []

    def read(self) -> list[dict[str, Any]]:
        try:
            with self.path.open("rb") as journal:
                journal.seek(self._offset)
                chunk = journal.read()
        except FileNotFoundError:
            return []
        self._offset += len(chunk)
        *complete, self._partial = (self._partial + chunk).split(b"\n")
        new = [json.loads(line) for line in complete if line.strip()]
        self.lines.extend(new)
        return new


@dataclass(slots=True)
class Run:
    """One worker process running one task, from its journal lines (and /proc for a run without ``end``)."""

    task: str
    attempt: int
    node: str
    pid: int
    start: float
    start_round: int = 0
    end: float | None = None  # the journal's ``end``, else its ``release``, else the process seen gone
    outcome: str | None = None  # finished / failed / cancelled, from the journal; None: no ``end`` line
    requested: bool | None = None  # on a cancelled end: was a cancel requested (else SIGTERM)
    ended_by: str = "open"  # journal / death / open
    pauses: list[list[float | None]] = field(default_factory=list)  # [pause t, resume t or None]
    rounds: list[tuple[float, int]] = field(default_factory=list)  # (t, round) of each update seen
    skalds: str = ""


def runs_from(lines: Iterable[Mapping[str, Any]], deaths: Mapping[int, float]) -> dict[str, list[Run]]:
    """Each task's runs, oldest first. ``deaths``: when each worker pid was first seen gone."""
    open_runs: dict[tuple[int, str], Run] = {}
    runs: dict[str, list[Run]] = defaultdict(list)
    for line in sorted(lines, key=lambda item: item["t"]):
        key = (line["pid"], line["task"])
        event = line["event"]
        if event == "start":
            run = Run(
                task=line["task"],
                attempt=line["attempt"],
                node=line["node"],
                pid=line["pid"],
                start=line["t"],
                start_round=line.get("round", 0),
                skalds=line.get("skalds", ""),
            )
            open_runs[key] = run
            runs[run.task].append(run)
            continue
        current = open_runs.get(key)
        if current is None:
            continue
        if event == "update":
            current.rounds.append((line["t"], line["round"]))
        elif event == "pause":
            current.pauses.append([line["t"], None])
        elif event == "resume" and current.pauses and current.pauses[-1][1] is None:
            current.pauses[-1][1] = line["t"]
        elif event == "end":
            current.end, current.outcome, current.ended_by = line["t"], line["outcome"], "journal"
            current.requested = line.get("requested")
        elif event == "release" and current.end is None:
            current.end, current.ended_by = line["t"], "journal"
    for task_runs in runs.values():
        for run in task_runs:
            if run.end is None and run.pid in deaths:
                run.end, run.ended_by = deaths[run.pid], "death"
    return dict(runs)
