"""Runs workers as asyncio tasks inside the node's own process: the embedded mode and the tests use it.

Workers are ``async def worker(ctx)`` callables. Cancel is cooperative first (``ctx.cancel_requested``,
``ctx.checkpoint()``, ``ctx.sleep()``), then the asyncio task is cancelled after ``cancel_grace_s``.
The OS-process supervisor gives the same guarantees to workers in their own processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from skalds.adapters.worker_changes import ChangeListener
from skalds.domain.heartbeat import Outcome
from skalds.domain.ports import WorkerSupervisor
from skalds.domain.task import Task
from skalds.domain.workers import WorkerState
from skalds.worker.context import progress_scale

log = logging.getLogger(__name__)


class WorkerCancelledError(Exception):
    """Raised inside a worker by ``checkpoint()`` once a cancel was requested."""


UpdateHandler = Callable[[Mapping[str, Any], int], Awaitable[None] | None]


@dataclass(slots=True)
class InProcessWorkerContext:
    """What a worker sees: its task, its parameters, and the operator's wishes."""

    task_id: str
    attachments: Mapping[str, Any]
    attachments_version: int
    on_update: UpdateHandler | None = None
    saved_checkpoint: str | None = None  # what an earlier attempt saved (JSON text)
    _state: WorkerState = field(init=False)
    _changed: Callable[[], None] = field(default=lambda: None, repr=False)  # the supervisor's notice
    _cancel: asyncio.Event = field(default_factory=asyncio.Event)
    _resume: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._state = WorkerState(task_id=self.task_id)
        self._resume.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    @property
    def pause_requested(self) -> bool:
        return not self._resume.is_set()

    def report_progress(
        self, progress: float, total: float | None = None, unit: str | None = None, message: str | None = None
    ) -> None:
        total, unit, message = progress_scale(total, unit, message)
        self._state = replace(
            self._state, progress=progress, progress_total=total, progress_unit=unit, progress_message=message
        )

    def report_error(self, message: str) -> None:
        """A non-fatal error: the worker goes on, the operator sees it."""
        self._state = replace(self._state, error=message)

    def save_checkpoint(self, text: str) -> None:
        """Keep ``text`` (JSON) as the point a later attempt resumes from; the node stores it."""
        self.saved_checkpoint = text
        self._state = replace(
            self._state, checkpoint=text, checkpoint_sequence=self._state.checkpoint_sequence + 1
        )

    async def checkpoint(self) -> None:
        """Raise WorkerCancelledError if cancelled; wait here while paused."""
        if self.pause_requested and not self.cancel_requested:
            self._state = replace(self._state, paused=True)
            self._changed()
            cancel = asyncio.create_task(self._cancel.wait())
            resume = asyncio.create_task(self._resume.wait())
            try:
                await asyncio.wait({cancel, resume}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                cancel.cancel()
                resume.cancel()
                self._state = replace(self._state, paused=False)
                self._changed()
        if self.cancel_requested:
            raise WorkerCancelledError(self.task_id)

    async def sleep(self, seconds: float) -> None:
        """Sleep, but wake at once on cancel; then honour cancel and pause."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._cancel.wait(), timeout=seconds)
        await self.checkpoint()


WorkerFunction = Callable[[InProcessWorkerContext], Coroutine[Any, Any, None]]


@dataclass(slots=True)
class _Running:
    context: InProcessWorkerContext
    task: asyncio.Task[None]
    attempt: int
    outcome: Outcome | None = None
    error: str | None = None
    beats: int = 0


class InProcessWorkerSupervisor(WorkerSupervisor):
    def __init__(self, workers: Mapping[str, WorkerFunction], *, cancel_grace_s: float = 5.0) -> None:
        self._workers = dict(workers)
        self._cancel_grace_s = cancel_grace_s
        self._running: dict[str, _Running] = {}
        self._killers: set[asyncio.Task[None]] = set()
        self._changes = ChangeListener()
        self._notify = self._changes.notify

    @property
    def classes(self) -> frozenset[str]:
        return frozenset(self._workers)

    async def start(self, task: Task, *, checkpoint: str | None = None) -> None:
        if task.id in self._running:
            return
        function = self._workers.get(task.class_name)
        context = InProcessWorkerContext(
            task_id=task.id,
            attachments=dict(task.attachments),
            attachments_version=task.attachments_version,
            saved_checkpoint=checkpoint,
            _changed=functools.partial(self._notify, task.id),
        )
        if function is None:
            done: asyncio.Task[None] = asyncio.create_task(asyncio.sleep(0))
            self._running[task.id] = _Running(
                context, done, task.attempt, Outcome.FAILED, f"no worker registered for {task.class_name!r}"
            )
            asyncio.get_running_loop().call_soon(
                self._notify, task.id
            )  # after start returns, as for a worker
            return
        running = _Running(
            context, asyncio.create_task(self._run(function, context), name=f"worker-{task.id}"), task.attempt
        )
        running.task.add_done_callback(functools.partial(self._ended, running))
        self._running[task.id] = running

    async def _run(self, function: WorkerFunction, context: InProcessWorkerContext) -> None:
        context._state = replace(context._state, started=True)
        self._notify(context.task_id)
        await function(context)

    async def cancel(self, task_id: str, *, within_s: float | None = None) -> None:
        running = self._running.get(task_id)
        if running is None or running.task.done():
            return
        running.context._cancel.set()
        grace = self._cancel_grace_s if within_s is None else min(within_s, self._cancel_grace_s)
        killer = asyncio.create_task(self._kill_after_grace(running, grace))
        self._killers.add(killer)
        killer.add_done_callback(self._killers.discard)

    async def pause(self, task_id: str) -> None:
        running = self._running.get(task_id)
        if running is not None:
            running.context._resume.clear()

    async def resume(self, task_id: str) -> None:
        running = self._running.get(task_id)
        if running is not None:
            running.context._resume.set()

    async def update(self, task_id: str, attachments: Mapping[str, Any], version: int) -> None:
        running = self._running.get(task_id)
        if running is None or running.task.done():
            return
        context = running.context
        context.attachments, context.attachments_version = dict(attachments), version
        try:
            if context.on_update is not None:
                result = context.on_update(context.attachments, version)
                if result is not None:
                    await result
        except Exception as error:
            context.report_error(f"update to attachments version {version} rejected: {error}")
            self._notify(task_id)
            return
        context._state = replace(context._state, applied_attachments_version=version)
        self._notify(task_id)

    def states(self) -> Mapping[str, WorkerState]:
        """An asyncio worker that has not ended is alive: each look counts as one of its heartbeats."""
        for running in self._running.values():
            if running.outcome is None:
                running.beats += 1
        return {
            task_id: replace(
                r.context._state,
                attempt=r.attempt,
                outcome=r.outcome,
                error=r.error or r.context._state.error,
                beats=r.beats,
            )
            for task_id, r in self._running.items()
        }

    def forget(self, task_id: str) -> None:
        running = self._running.get(task_id)
        if running is not None and running.outcome is not None:
            del self._running[task_id]

    async def room(self, slots: int, *, within_s: float) -> bool:
        """An asyncio worker has exited when it has its outcome: there is nothing to wait for."""
        return sum(1 for r in self._running.values() if r.outcome is None) < slots

    def on_change(self, listener: Callable[[str], None]) -> None:
        self._changes.set(listener)

    async def shutdown(self) -> None:
        for task_id in list(self._running):
            await self.cancel(task_id)
        tasks = [r.task for r in self._running.values()]
        if tasks:
            await asyncio.wait(tasks, timeout=self._cancel_grace_s + 1)
        for killer in list(self._killers):
            killer.cancel()

    async def _kill_after_grace(self, running: _Running, grace_s: float) -> None:
        await asyncio.wait({running.task}, timeout=grace_s)
        if not running.task.done():
            log.warning("worker %s ignored cancel for %ss; stopping it", running.context.task_id, grace_s)
            running.task.cancel()

    def _ended(self, running: _Running, task: asyncio.Task[None]) -> None:
        cancelled = running.context.cancel_requested
        error = None if task.cancelled() else task.exception()
        if task.cancelled() or isinstance(error, WorkerCancelledError):
            running.outcome = Outcome.CANCELLED
        elif error is None:
            running.outcome = Outcome.CANCELLED if cancelled else Outcome.FINISHED
        else:
            running.outcome = Outcome.FAILED
            tb = "".join(traceback.format_exception(error, limit=-3))
            running.error = f"{type(error).__name__}: {error}\n{tb}"[:4_000]
        self._notify(running.context.task_id)
