"""The worker process: imports the worker class, runs its hooks, and reports to its node over a pipe.

Started with forkserver or spawn, never fork, so it inherits no threads or sockets of the node. Its own
heartbeat thread beats at a fixed period (user code cannot forget to), and doubles as the watchdog: when the
node's end of the pipe is gone, the worker cancels itself, so no orphan outlives its node. SIGTERM cancels
(the release hook runs); SIGINT is ignored, so a Ctrl+C in the node's terminal does not cancel every task.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import os
import signal
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from skalds.adapters.logs import LogSetup, configure
from skalds.domain.heartbeat import Outcome
from skalds.worker.base import BaseTaskWorker, WorkerResult, describe_error
from skalds.worker.context import TaskCancelled, WorkerContext

EXIT_CODES = {Outcome.FINISHED: 0, Outcome.FAILED: 1, Outcome.CANCELLED: 2}
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """Everything the child needs, picklable: no live objects cross the process boundary."""

    task_id: str
    attempt: int
    worker_path: str  # "package.module:ClassName"
    attachments: Mapping[str, Any]
    attachments_version: int
    heartbeat_period_s: float
    log: LogSetup | None = None  # set: the worker logs to its own file, ``log_name``.log
    log_name: str = ""


def load_worker_class(path: str) -> type[BaseTaskWorker[Any]]:
    module_name, _, qualname = path.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    if not (isinstance(target, type) and issubclass(target, BaseTaskWorker)):
        raise TypeError(f"{path} is not a BaseTaskWorker subclass")
    return target


class _Link:
    """The child's end of the pipe, safe to use from the main, control and heartbeat threads."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self.broken = threading.Event()

    def send(self, message: tuple[Any, ...]) -> None:
        if self.broken.is_set():
            return
        try:
            with self._lock:
                self._conn.send(message)
        except (OSError, EOFError, ValueError):
            self.broken.set()


def _die_with_parent() -> None:
    """Linux: get SIGTERM when the parent process ends (best effort; the watchdog covers the rest)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _cancel_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def _heartbeats(context: WorkerContext, link: _Link, period: float, done: threading.Event) -> None:
    beats = 0
    while not done.wait(period):
        beats += 1
        snap = context.snapshot()
        link.send(("beat", beats, snap.progress, snap.error, snap.paused))
        if link.broken.is_set():  # the node is gone: stop, do not run unsupervised
            context.request_cancel()
            _cancel_self()
            return


def _control(worker: BaseTaskWorker[Any], conn: Connection, link: _Link, done: threading.Event) -> None:
    context = worker.context
    while not done.is_set():
        try:
            message = conn.recv()
        except (EOFError, OSError):
            link.broken.set()
            context.request_cancel()
            _cancel_self()
            return
        match message:
            case ("cancel",):
                context.request_cancel()
            case ("pause",):
                context.request_pause()
                _report_hook_error(worker, worker.notify_pause, "pause hook")
            case ("resume",):
                context.request_resume()
                _report_hook_error(worker, worker.notify_resume, "resume hook")
            case ("update", attachments, version):
                try:
                    worker.apply_update(attachments)
                except Exception as error:
                    context.report_error(f"update to attachments version {version} rejected: {error}")
                    link.send(("rejected", version, describe_error(error)))
                else:
                    link.send(("applied", version))
            case _:
                pass


def _report_hook_error(worker: BaseTaskWorker[Any], hook: Any, name: str) -> None:
    try:
        hook()
    except Exception as error:
        worker.context.report_error(f"{name} failed: {describe_error(error)}")


def run(spec: WorkerSpec | None, conn: Connection) -> None:
    """The child's entry point. Without a spec it is a warm spare: it waits for one, so a task starts
    without paying for a process start."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # first: a waiting spare must not die of a Ctrl+C either
    if spec is None:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the node is gone before this spare was needed
        if not (isinstance(message, tuple) and message[:1] == ("spec",)):
            return  # ("exit",): the node is shutting down
        spec = message[1]
        assert isinstance(spec, WorkerSpec)
    if spec.log is not None:  # upstream's LOG_SPLIT_WITH_WORKER_ID: one file per worker, not on the console
        configure(spec.log, spec.log_name or spec.task_id, console=False)
    releasing = threading.Event()

    def on_sigterm(signum: int, frame: object) -> None:
        if not releasing.is_set():
            releasing.set()
            raise TaskCancelled(spec.task_id)

    signal.signal(signal.SIGTERM, on_sigterm)
    link = _Link(conn)
    done = threading.Event()
    context = WorkerContext(spec.task_id, spec.attempt)
    result: WorkerResult
    try:
        worker_class = load_worker_class(spec.worker_path)
        worker = worker_class(spec.task_id, attempt=spec.attempt, context=context)
        threading.Thread(
            target=_heartbeats, args=(context, link, spec.heartbeat_period_s, done), daemon=True
        ).start()
        link.send(("started", os.getpid()))
        worker.initialize(worker_class.get_data_model().model_validate(spec.attachments))
        link.send(("applied", spec.attachments_version))
        # commands wait in the pipe until the worker is initialised: no hook runs before initialize
        threading.Thread(target=_control, args=(worker, conn, link, done), daemon=True).start()
        result = worker.execute()
    except TaskCancelled:
        result = WorkerResult(Outcome.CANCELLED)
    except Exception as error:
        result = WorkerResult(Outcome.FAILED, describe_error(error))
    releasing.set()
    done.set()
    snap = context.snapshot()
    link.send(("outcome", result.outcome.value, result.error, snap.progress, snap.error))
    with contextlib.suppress(Exception):
        conn.close()
    sys.exit(EXIT_CODES[result.outcome])
