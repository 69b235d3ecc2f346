"""One OS process per task, supervised from the node's event loop.

Processes start from a forkserver (preloaded with the worker modules, so a start costs milliseconds) or by
spawn; never by fork from the threaded node. The node reads each child's pipe and exit sentinel with
``loop.add_reader``, so no thread per child. Cancel is cooperative first (a message the worker sees at its
next checkpoint), then SIGTERM (the release hook still runs), then SIGKILL. A worker ends by itself, within
``orphan_grace_s``, when the node process is gone (see ``child``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from typing import Any

from skalds.adapters.logs import LogSetup
from skalds.adapters.process.child import NodeLifeline, WorkerSpec, run
from skalds.adapters.process.output_capture import CaptureSetup
from skalds.adapters.worker_changes import ChangeListener
from skalds.adapters.worker_output import WaitingLines
from skalds.domain.heartbeat import Outcome
from skalds.domain.ports import WorkerOutput, WorkerSupervisor
from skalds.domain.task import Task
from skalds.domain.task_logs import LogLine
from skalds.domain.workers import WorkerState
from skalds.worker.context import DEFAULT_CHECKPOINT_BYTES

log = logging.getLogger(__name__)

_START_ERRORS = (OSError, EOFError)  # what a process start raises when the forkserver is gone


@dataclass(slots=True)
class _Child:
    process: Any  # multiprocessing.process.BaseProcess
    conn: Connection
    state: WorkerState
    cancel_requested: bool = False
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    escalation: asyncio.Task[None] | None = None


class ProcessWorkerSupervisor(WorkerSupervisor, WorkerOutput):
    def __init__(
        self,
        worker_paths: Mapping[str, str],
        *,
        heartbeat_period_s: float = 1.0,
        cancel_grace_s: float = 10.0,
        kill_grace_s: float = 5.0,
        start_method: str = "forkserver",
        preload: Sequence[str] = (),
        warm_spare: bool = True,
        worker_logs: LogSetup | None = None,
        node_id: str = "",
        orphan_grace_s: float = 3.0,
        checkpoint_limit_bytes: int = DEFAULT_CHECKPOINT_BYTES,
        capture: CaptureSetup | None = None,
    ) -> None:
        """``worker_paths`` maps a class name to its import path, ``"package.module:ClassName"``.

        With ``warm_spare`` one idle worker process waits for the next task, so starting a task costs a
        pipe message rather than a process start (still one process per task: a spare is used once).
        With ``worker_logs`` each worker logs to its own file, ``<node_id>_<task_id>.log``. A worker whose
        node process is gone stops (cancel, then SIGTERM) and exits at the latest ``orphan_grace_s`` later:
        keep it well below the control plane's dead-after, which re-queues a dead node's tasks. With
        ``capture`` every worker's log records and prints wait here for the node to ship them
        (``WorkerOutput``)."""
        if orphan_grace_s <= 0:
            raise ValueError(f"orphan_grace_s must be > 0, got {orphan_grace_s}")
        self._orphan_grace_s = orphan_grace_s
        self._checkpoint_limit_bytes = checkpoint_limit_bytes
        self._capture = capture
        self.output = WaitingLines(node_id)
        self._changes = ChangeListener()
        self._notify = self._changes.notify
        self._paths = dict(worker_paths)
        self._worker_logs = worker_logs
        self._node_id = node_id
        self._period = heartbeat_period_s
        self._cancel_grace_s = cancel_grace_s
        self._kill_grace_s = kill_grace_s
        self._mp: Any = multiprocessing.get_context(start_method)
        if start_method == "forkserver":
            # The child re-runs the parent's main module (multiprocessing does, to unpickle what it defines);
            # with "__main__" preloaded the server has imported everything it needs once, so each start is a
            # fork plus a few dictionary lookups instead of a fresh import of the whole application.
            modules = {
                "__main__",
                "skalds.adapters.process.child",
                *preload,
                *(p.partition(":")[0] for p in self._paths.values()),
            }
            self._mp.set_forkserver_preload(sorted(modules))
        self._children: dict[str, _Child] = {}
        self._alive = 0  # worker processes given a task that have not exited, forgotten or not
        self._exit_seen = asyncio.Event()
        self._warm_spare = warm_spare
        self._spare: tuple[Any, Connection] | None = None
        self._spare_starting: asyncio.Task[None] | None = None

    async def start(self, task: Task, *, checkpoint: str | None = None) -> None:
        if task.id in self._children:
            return
        path = self._paths.get(task.class_name)
        if path is None:
            self._children[task.id] = _ended_child(task, f"no worker registered for {task.class_name!r}")
            # after start returns, as for a worker: the node has recorded the start when it hears of the end
            asyncio.get_running_loop().call_soon(self._notify, task.id)
            return
        spec = WorkerSpec(
            task_id=task.id,
            attempt=task.attempt,
            worker_path=path,
            attachments=dict(task.attachments),
            attachments_version=task.attachments_version,
            heartbeat_period_s=self._period,
            log=self._worker_logs,
            log_name=f"{self._node_id}_{task.id}" if self._node_id else task.id,  # upstream's file name
            checkpoint=checkpoint,
            checkpoint_limit_bytes=self._checkpoint_limit_bytes,
            capture=self._capture,
        )
        try:
            process, parent_conn = await self._process_for(spec)
        except _START_ERRORS as error:  # the forkserver failed twice: this task fails, the node goes on
            log.error(
                "node %s could not start a worker for task %s: %r",
                self._node_id,
                task.id,
                error,
                extra={"node": self._node_id, "task_id": task.id},
            )
            self._children[task.id] = _ended_child(task, f"its worker process could not start: {error!r}")
            asyncio.get_running_loop().call_soon(self._notify, task.id)
            return
        finally:
            self._keep_a_spare()
        child = _Child(
            process=process, conn=parent_conn, state=WorkerState(task_id=task.id, attempt=task.attempt)
        )
        self._children[task.id] = child
        self._alive += 1
        loop = asyncio.get_running_loop()
        # bound to the child itself, not its id: a forgotten child must still be reaped and unregistered
        loop.add_reader(parent_conn.fileno(), self._read, child)
        loop.add_reader(process.sentinel, self._exited, child)

    async def _process_for(self, spec: WorkerSpec) -> tuple[Any, Connection]:
        """The warm spare given ``spec``, else a new process. A start that fails (the forkserver died:
        killed, or out of memory) is tried once more, which starts a new forkserver."""
        if self._spare is None and self._spare_starting is not None and not self._spare_starting.done():
            await asyncio.gather(self._spare_starting, return_exceptions=True)  # half-way there already
        spare, self._spare = self._spare, None
        if spare is not None and spare[0].is_alive():
            try:
                spare[1].send(("spec", spec))
                return spare
            except (OSError, ValueError):  # it died just now: a new process instead
                spare[1].close()
        try:
            return await self._launch(spec)
        except _START_ERRORS as error:
            log.warning(
                "node %s: starting a worker for task %s failed (%r); starting the forkserver again",
                self._node_id,
                spec.task_id,
                error,
                extra={"node": self._node_id, "task_id": spec.task_id},
            )
            return await self._launch(spec)  # multiprocessing starts a dead forkserver anew

    async def _launch(self, spec: WorkerSpec | None) -> tuple[Any, Connection]:
        parent_conn, child_conn = self._mp.Pipe(duplex=True)
        name = f"skalds-worker-{spec.task_id}" if spec else "skalds-worker-spare"
        lifeline = NodeLifeline.of_this_process(grace_s=self._orphan_grace_s)
        process = self._mp.Process(target=run, args=(spec, child_conn, lifeline), name=name)
        await asyncio.get_running_loop().run_in_executor(None, process.start)
        child_conn.close()
        return process, parent_conn

    def _keep_a_spare(self) -> None:
        if not self._warm_spare or self._spare is not None:
            return
        if self._spare_starting is not None and not self._spare_starting.done():
            return

        async def make() -> None:
            try:
                self._spare = await self._launch(None)
            except _START_ERRORS as error:  # the next start launches its own process (and forkserver)
                log.warning("node %s could not start a spare worker process: %r", self._node_id, error)

        self._spare_starting = asyncio.create_task(make(), name="skalds-worker-spare")

    async def cancel(self, task_id: str, *, within_s: float | None = None) -> None:
        child = self._children.get(task_id)
        if child is None or child.ended.is_set() or (child.cancel_requested and within_s is None):
            return
        if not child.cancel_requested:
            child.cancel_requested = True
            self._send(child, ("cancel",))
        graces = (self._cancel_grace_s, self._kill_grace_s) if within_s is None else (within_s / 2,) * 2
        if child.escalation is not None:
            child.escalation.cancel()  # a sooner deadline replaces the one running
        child.escalation = asyncio.create_task(self._escalate(child, graces), name=f"cancel-{task_id}")

    async def pause(self, task_id: str) -> None:
        self._send(self._children.get(task_id), ("pause",))

    async def resume(self, task_id: str) -> None:
        self._send(self._children.get(task_id), ("resume",))

    async def update(self, task_id: str, attachments: Mapping[str, Any], version: int) -> None:
        self._send(self._children.get(task_id), ("update", dict(attachments), version))

    def states(self) -> Mapping[str, WorkerState]:
        return {task_id: child.state for task_id, child in self._children.items()}

    def pid(self, task_id: str) -> int | None:
        child = self._children.get(task_id)
        if child is None or child.process is None:  # unknown, or ended without a process (unknown class)
            return None
        return child.state.pid or child.process.pid

    def forget(self, task_id: str) -> None:
        child = self._children.get(task_id)
        if child is not None and child.state.outcome is not None:
            del self._children[task_id]

    async def room(self, slots: int, *, within_s: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while self._alive >= slots:
            self._exit_seen.clear()
            try:
                async with asyncio.timeout_at(deadline):  # not wait_for: on 3.11 it can swallow a cancel
                    await self._exit_seen.wait()
            except TimeoutError:
                return self._alive < slots
        return True

    def on_change(self, listener: Callable[[str], None]) -> None:
        self._changes.set(listener)

    def take_lines(self, limit: int) -> Sequence[LogLine]:
        return self.output.take_lines(limit)

    async def lines_waiting(self) -> None:
        await self.output.lines_waiting()

    async def shutdown(self) -> None:
        """Cancel every worker and wait until every process has exited (escalating as needed)."""
        if self._spare_starting is not None:
            await asyncio.gather(self._spare_starting, return_exceptions=True)
        spare, self._spare, self._warm_spare = self._spare, None, False
        if spare is not None:
            process, conn = spare
            with contextlib.suppress(OSError, ValueError):
                conn.send(("exit",))
            await asyncio.get_running_loop().run_in_executor(None, process.join, self._kill_grace_s)
            if process.is_alive():
                process.kill()
            conn.close()
        live = [child for child in self._children.values() if not child.ended.is_set()]
        for child in live:
            await self.cancel(child.state.task_id)
        for child in live:
            if child.escalation is not None:
                await asyncio.gather(child.escalation, return_exceptions=True)
            await child.ended.wait()

    async def _escalate(self, child: _Child, graces: tuple[float, float]) -> None:
        for sig, grace in zip((signal.SIGTERM, signal.SIGKILL), graces, strict=True):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(child.ended.wait(), grace)
                return
            log.warning("worker %s still running; sending %s", child.state.task_id, sig.name)
            with contextlib.suppress(ProcessLookupError, TypeError):
                os.kill(child.process.pid, sig)
        await child.ended.wait()

    def _send(self, child: _Child | None, message: tuple[Any, ...]) -> None:
        if child is None or child.ended.is_set():
            return
        try:
            child.conn.send(message)
        except (OSError, ValueError) as error:
            log.warning("could not reach worker %s: %s", child.state.task_id, error)

    def _read(self, child: _Child) -> None:
        try:
            while child.conn.poll():
                self._handle(child, child.conn.recv())
        except (EOFError, OSError):
            asyncio.get_running_loop().remove_reader(child.conn.fileno())

    def _handle(self, child: _Child, message: tuple[Any, ...]) -> None:
        """Fold one message into the child's state; notify the listener when it is a change."""
        state = child.state
        changed = True
        match message:
            case ("started", pid):
                child.state = replace(state, pid=pid, started=True)
            case ("beat", beats, progress, error, paused, (total, unit, text)):
                child.state = replace(
                    state,
                    beats=beats,
                    progress=progress,
                    error=error,
                    paused=paused,
                    progress_total=total,
                    progress_unit=unit,
                    progress_message=text,
                )
                changed = paused != state.paused  # a pause or resume took effect; else a plain beat
            case ("applied", version):
                child.state = replace(state, applied_attachments_version=version)
            case ("logs", lines):
                self.output.add(state.task_id, state.attempt or 0, lines)
                changed = False
            case ("checkpoint", sequence, text):
                child.state = replace(state, checkpoint=text, checkpoint_sequence=sequence)
                changed = False  # stored with the node's next beat, or before the outcome is reported
            case ("rejected", version, error):
                child.state = replace(
                    state, error=f"update to attachments version {version} rejected: {error}"
                )
            case ("outcome", outcome, error, progress, reported_error):
                child.state = replace(
                    state,
                    outcome=Outcome(outcome),
                    error=error or reported_error,
                    progress=progress,
                    beats=state.beats + 1,
                )
            case _:
                log.warning("unexpected message from worker %s: %r", state.task_id, message)
                changed = False
        if changed:
            self._notify(state.task_id)

    def _exited(self, child: _Child) -> None:
        if child.ended.is_set():
            return
        try:
            self._settle_exit(child)
        finally:  # whatever the settling raised, the slot is free and the waiters know
            self._alive -= 1
            self._exit_seen.set()
            child.ended.set()

    def _settle_exit(self, child: _Child) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(child.process.sentinel)
        self._read(child)  # whatever the child said last
        with contextlib.suppress(Exception):
            loop.remove_reader(child.conn.fileno())
        child.process.join(0)
        if child.state.outcome is None:
            code = child.process.exitcode
            if child.cancel_requested:
                outcome, error = Outcome.CANCELLED, None
            elif code is not None and code < 0:
                outcome, error = Outcome.FAILED, f"worker process killed by signal {_signal_name(-code)}"
            else:
                outcome, error = Outcome.FAILED, f"worker process exited with code {code} without an outcome"
            child.state = replace(child.state, outcome=outcome, error=error, beats=child.state.beats + 1)
            self._notify(child.state.task_id)
        with contextlib.suppress(Exception):
            child.conn.close()


def _signal_name(number: int) -> str:
    """SIGKILL, or the number for a signal Python has no name for (real-time signals such as 35)."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _ended_child(task: Task, error: str) -> _Child:
    child = _Child(
        process=None,
        conn=None,  # type: ignore[arg-type]
        state=WorkerState(
            task_id=task.id, attempt=task.attempt, outcome=Outcome.FAILED, error=error, beats=1
        ),
    )
    child.ended.set()
    return child
