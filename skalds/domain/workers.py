"""What a node knows about the workers it supervises; the supervisor port reports it."""

from __future__ import annotations

from dataclasses import dataclass

from skalds.domain.heartbeat import Outcome


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerState:
    """A snapshot of one worker as its supervisor sees it.

    ``outcome`` is set once the worker has ended; the node records it and then forgets the worker.
    ``beats`` counts the worker runtime's own heartbeats: when it stops growing, the worker's process is
    wedged, and the node stops vouching for it. ``started`` turns true the moment the worker says it is up,
    before its first beat, so the node can report the start at once.
    """

    task_id: str
    attempt: int | None = None
    progress: float | None = None
    outcome: Outcome | None = None
    error: str | None = None
    paused: bool = False
    applied_attachments_version: int | None = None
    beats: int = 0
    pid: int | None = None  # the worker's OS process, once it has said it started (None in-process)
    started: bool = False  # the worker's runtime is up: the task runs, whether or not it has beaten yet
    progress_total: float | None = None  # report_progress's scale: what progress counts up to,
    progress_unit: str | None = None  # in what unit,
    progress_message: str | None = None  # and a word on where it is
    checkpoint: str | None = None  # the latest checkpoint the worker saved (JSON text), not yet stored
    checkpoint_sequence: int = 0  # grows with every save of this run; the node stores each one once
