"""The worker process: imports the worker class, runs its hooks, and reports to its node over a pipe.

Started with forkserver or spawn, never fork, so it inherits no threads or sockets of the node. Its own
heartbeat thread beats at a fixed period (user code cannot forget to), and at once when a pause or resume
takes effect. SIGTERM cancels (the release hook runs); SIGINT is ignored, so a Ctrl+C in the node's terminal
does not cancel every task.

No worker outlives its node, however the node ends (SIGKILL included). A watchdog thread checks the node's
pid and start time every ``NodeLifeline.poll_s`` and hears at once when the pipe breaks; when the node is
gone it cancels the worker, sends it SIGTERM, and ends the process with ``os._exit`` after
``NodeLifeline.grace_s``, whatever the worker does meanwhile. ``os.getppid()`` cannot tell: under forkserver
the parent is the server, not the node. For the same reason the child closes the server's "alive" fd it
inherits (while any process holds it, the server keeps running), so the server exits with the node and
``PR_SET_PDEATHSIG`` fires in every worker at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing import forkserver
from multiprocessing.connection import Connection
from typing import Any

import setproctitle

from skalds.adapters.logs import LogSetup, configure
from skalds.adapters.process.output_capture import CaptureSetup, OutputCapture
from skalds.domain.heartbeat import Outcome
from skalds.worker.base import BaseTaskWorker, WorkerResult, describe_error
from skalds.worker.context import DEFAULT_CHECKPOINT_BYTES, TaskCancelled, WorkerContext

EXIT_CODES = {Outcome.FINISHED: 0, Outcome.FAILED: 1, Outcome.CANCELLED: 2}
ORPHANED_EXIT_CODE = 3  # the node was gone, and the worker had not ended within the grace
PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
FIRST_LOOK_S = 0.005  # after a pause or resume request, how soon the heartbeat first looks for the flip

log = logging.getLogger(__name__)


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
    checkpoint: str | None = None  # what an earlier attempt saved (JSON text)
    checkpoint_limit_bytes: int = DEFAULT_CHECKPOINT_BYTES
    capture: CaptureSetup | None = None  # set: the task's log records and prints go to the node, numbered


@dataclass(frozen=True, slots=True)
class NodeLifeline:
    """The node process a worker must not outlive, and how soon the worker ends once the node is gone.

    The worker is cancelled at once, sent SIGTERM half ``grace_s`` later, and ended with ``os._exit`` at
    ``grace_s``: keep it well below the control plane's dead-after, which re-queues the node's tasks and
    relies on the old workers being gone."""

    pid: int
    started: int | None  # the node's start time in /proc (Linux), so a recycled pid is not taken for it
    grace_s: float = 3.0
    poll_s: float = 0.2

    @classmethod
    def of_this_process(cls, *, grace_s: float = 3.0, poll_s: float = 0.2) -> NodeLifeline:
        pid = os.getpid()
        try:
            identity = _process_identity(pid)
        except OSError:
            identity = None
        return cls(pid, None if identity is None else identity[1], grace_s, poll_s)

    def node_alive(self) -> bool:
        """False only when the node is known to be gone; a look that fails for another reason (out of file
        descriptors, say) is no reason to stop a worker."""
        try:
            if self.started is None:  # no /proc: the pid alone (a recycled pid would pass for the node)
                os.kill(self.pid, 0)
                return True
            identity = _process_identity(self.pid)
        except ProcessLookupError:
            return False
        except OSError:
            return True
        return identity is not None and identity[1] == self.started and identity[0] not in ("Z", "X")


def _process_identity(pid: int) -> tuple[str, int] | None:
    """A process's state letter and start time (clock ticks since boot) from /proc; None if there is none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(b")") + 2 :].split()  # the name may hold spaces and parentheses
    return fields[0].decode(), int(fields[19])


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


class _NodeWatch:
    """Ends this process when its node is gone, as the supervisor would have: cancel, then SIGTERM (a worker
    deaf to the cancel still runs its release hook), then ``os._exit``, whatever the worker does with the
    first two. A spare just exits."""

    def __init__(self, lifeline: NodeLifeline) -> None:
        self._lifeline = lifeline
        self._gone = threading.Event()
        self.context: WorkerContext | None = None  # set once a task's worker is being built

    def start(self) -> None:
        threading.Thread(target=self._watch, name="skalds-node-watch", daemon=True).start()

    def node_gone(self) -> None:
        """The pipe to the node broke: the node is gone, or can no longer supervise this worker."""
        self._gone.set()

    def _watch(self) -> None:
        lifeline = self._lifeline
        while not self._gone.wait(lifeline.poll_s):
            if not lifeline.node_alive():
                break
        context = self.context
        if context is None:
            os._exit(ORPHANED_EXIT_CODE)  # a spare, or a worker not yet built: nothing to release
        log.warning("node %d is gone; stopping task %s", lifeline.pid, context.task_id)
        context.request_cancel()
        time.sleep(lifeline.grace_s / 2)  # a worker that honours the cancel ends the process meanwhile
        with contextlib.suppress(OSError):
            os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(lifeline.grace_s / 2)
        os._exit(ORPHANED_EXIT_CODE)


class _Heartbeat:
    """Beats every ``period``, and as soon as the worker's paused flag flips after a pause or resume
    request, so the node hears of the confirmation at once rather than at the next beat."""

    def __init__(self, context: WorkerContext, link: _Link, period: float, watch: _NodeWatch) -> None:
        self._context = context
        self._link = link
        self._period = period
        self._watch = watch
        self._wake = threading.Event()
        self._stopped = False

    def start(self) -> None:
        threading.Thread(target=self._run, name="skalds-heartbeat", daemon=True).start()

    def expect_flip(self) -> None:
        """A pause or resume was requested: look for the flag to flip, soon and then less often."""
        self._wake.set()

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()

    def send_checkpoint(self) -> None:
        """The latest save, if there is a new one: with a beat (batched), and once more before the outcome."""
        pending = self._context.take_checkpoint()
        if pending is not None:
            self._link.send(("checkpoint", *pending))

    def _run(self) -> None:
        beats, reported_paused = 0, False
        next_beat = time.monotonic() + self._period
        look: float | None = None  # while a pause or resume is pending: how soon to look again
        while not self._stopped:
            timeout = max(0.0, next_beat - time.monotonic())
            if self._wake.wait(timeout if look is None else min(timeout, look)):
                self._wake.clear()
                look = FIRST_LOOK_S
                continue
            snap = self._context.snapshot()
            flipped = snap.paused != reported_paused
            if not flipped and time.monotonic() < next_beat:
                look = None if look is None else min(look * 2, self._period)
                continue
            if flipped:
                look = None
            beats += 1
            reported_paused = snap.paused
            next_beat = time.monotonic() + self._period
            self.send_checkpoint()
            scale = (snap.total, snap.unit, snap.message)
            self._link.send(("beat", beats, snap.progress, snap.error, snap.paused, scale))
            if self._link.broken.is_set():  # the node is gone: stop, do not run unsupervised
                self._watch.node_gone()
                return


def _control(
    worker: BaseTaskWorker[Any], conn: Connection, link: _Link, heartbeat: _Heartbeat, watch: _NodeWatch
) -> None:
    context = worker.context
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            link.broken.set()
            watch.node_gone()
            return
        match message:
            case ("cancel",):
                context.request_cancel()
            case ("pause",):
                context.request_pause()
                heartbeat.expect_flip()
                _report_hook_error(worker, worker.notify_pause, "pause hook")
            case ("resume",):
                context.request_resume()
                heartbeat.expect_flip()
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


def _die_with_parent() -> None:
    """Linux: get SIGTERM when the parent process ends (the node under spawn, the forkserver under
    forkserver); best effort, the node watch covers the rest."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _name_process(name: bytes, title: str | None = None) -> None:
    """The name ``ps``, ``top`` and ``/proc/<pid>/comm`` show (15 bytes), so an operator can tell a worker
    running a task (``skalds-worker``) from the idle warm spare (``skalds-spare``); ``title`` becomes the
    whole command line (``ps -f``, ``top -c``): which class and task a hot process runs."""
    if title is not None:
        with contextlib.suppress(Exception):  # where the platform allows
            setproctitle.setproctitle(title)
    with contextlib.suppress(Exception):  # after the title, which may have set its own 15 bytes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_NAME, ctypes.c_char_p(name[:15]), 0, 0, 0)


def _let_the_forkserver_go() -> None:
    """Close the forkserver's "alive" fd this child inherited: the server exits once every holder has
    closed it, so while a worker held it the server outlived its node, and so did the worker, since its
    parent (the server) never died to fire PR_SET_PDEATHSIG."""
    with contextlib.suppress(Exception):
        server: Any = forkserver._forkserver
        if server._forkserver_pid is None and server._forkserver_alive_fd is not None:  # a server's child
            os.close(server._forkserver_alive_fd)
            server._forkserver_alive_fd = None  # a worker's own forkserver use starts a server of its own


def _capture_output(spec: WorkerSpec, link: _Link) -> OutputCapture | None:
    """Installed before the worker's module is imported: what it prints then counts too."""
    if spec.capture is None:
        return None
    capture = OutputCapture(spec.capture, lambda lines: link.send(("logs", lines)))
    capture.install()
    return capture


def _wait_as_spare(conn: Connection) -> WorkerSpec | None:
    """The task this warm spare is given, or None when the node is gone or shutting down."""
    _name_process(b"skalds-spare", "skalds-spare")
    try:
        message = conn.recv()
    except (EOFError, OSError):
        return None  # the node is gone before this spare was needed
    if not (isinstance(message, tuple) and message[:1] == ("spec",)):
        return None  # ("exit",): the node is shutting down
    spec = message[1]
    assert isinstance(spec, WorkerSpec)
    return spec


def run(spec: WorkerSpec | None, conn: Connection, lifeline: NodeLifeline) -> None:
    """The child's entry point. Without a spec it is a warm spare: it waits for one, so a task starts
    without paying for a process start."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # first: a waiting spare must not die of a Ctrl+C either
    _let_the_forkserver_go()
    _die_with_parent()
    watch = _NodeWatch(lifeline)
    watch.start()
    if spec is None:
        spec = _wait_as_spare(conn)
        if spec is None:
            return
    _name_process(b"skalds-worker", f"skalds-worker {spec.worker_path.rpartition(':')[2]} {spec.task_id}")
    if spec.log is not None:  # upstream's LOG_SPLIT_WITH_WORKER_ID: one file per worker, not on the console
        configure(spec.log, spec.log_name or spec.task_id, console=False)
    link = _Link(conn)
    capture = _capture_output(spec, link)
    releasing = threading.Event()

    def on_sigterm(signum: int, frame: object) -> None:
        if not releasing.is_set():
            releasing.set()
            raise TaskCancelled(spec.task_id)

    signal.signal(signal.SIGTERM, on_sigterm)
    context = WorkerContext(
        spec.task_id,
        spec.attempt,
        saved_checkpoint=spec.checkpoint,
        checkpoint_limit_bytes=spec.checkpoint_limit_bytes,
    )
    watch.context = context
    heartbeat = _Heartbeat(context, link, spec.heartbeat_period_s, watch)
    result: WorkerResult
    try:
        worker_class = load_worker_class(spec.worker_path)
        worker = worker_class(spec.task_id, attempt=spec.attempt, context=context)
        heartbeat.start()
        link.send(("started", os.getpid()))
        worker.initialize(worker_class.get_data_model().model_validate(spec.attachments))
        link.send(("applied", spec.attachments_version))
        # commands wait in the pipe until the worker is initialised: no hook runs before initialize
        threading.Thread(
            target=_control, args=(worker, conn, link, heartbeat, watch), name="skalds-control", daemon=True
        ).start()
        result = worker.execute()
    except TaskCancelled:
        result = WorkerResult(Outcome.CANCELLED)
    except Exception as error:
        log.error("task %s failed to start", spec.task_id, exc_info=True)  # in its output, whole
        result = WorkerResult(Outcome.FAILED, describe_error(error))
    releasing.set()
    heartbeat.stop()
    heartbeat.send_checkpoint()  # what was saved last is stored before the outcome is judged
    if capture is not None:
        capture.finish()  # the last lines before the outcome: a reader of a finished task has them all
    snap = context.snapshot()
    link.send(("outcome", result.outcome.value, result.error, snap.progress, snap.error))
    with contextlib.suppress(Exception):
        conn.close()
    sys.exit(EXIT_CODES[result.outcome])
