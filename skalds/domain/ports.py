"""Ports: what the core needs from the outside world, named by capability.

Each port's docstring is its contract; one abstract test suite per port pins it, and every adapter (the
in-memory twin and the real one) must pass that suite.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from skalds.domain.alerts import Alert
from skalds.domain.checkpoints import Checkpoint
from skalds.domain.commands import NodeCommand
from skalds.domain.events import DomainEvent
from skalds.domain.heartbeat import HeartbeatReport
from skalds.domain.nodes import Node
from skalds.domain.resources import ResourceReading
from skalds.domain.task import Task, TaskMode, TaskStatus
from skalds.domain.task_history import MinuteCounts, ProgressPoint, TaskTimeline, TimelineEntry
from skalds.domain.task_logs import LogLine, LogPage, LogQuery
from skalds.domain.upstream_requests import UpstreamRequest
from skalds.domain.workers import WorkerState


class Clock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the epoch."""
        ...


class IdGenerator(Protocol):
    def new_id(self) -> str:
        """A fresh, unique, URL-safe id."""
        ...


class TaskOrder(StrEnum):
    NEWEST_FIRST = "newest_first"  # createDateTime descending: what people browse
    DISPATCH = "dispatch"  # priority descending, then createDateTime ascending: what the dispatcher takes
    ANY = "any"  # no particular order: for scans that look at every match anyway


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskQuery:
    """Filters combine with AND. ``id_contains`` is plain text, never a pattern."""

    statuses: frozenset[TaskStatus] | None = None
    class_name: str | None = None
    id_contains: str | None = None
    executor: str | None = None
    modes: frozenset[TaskMode] | None = None
    retry_due_by: int | None = None  # only failed tasks whose automatic retry is due by then
    offset: int = 0
    limit: int | None = 50
    order: TaskOrder = TaskOrder.NEWEST_FIRST
    with_total: bool = True  # False: the caller needs no total, and TaskPage.total is only a lower bound


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskPage:
    items: Sequence[Task]
    total: int


class TaskRepository(Protocol):
    """Durable task storage with compare-and-set on ``Task.version``.

    ``update(task, expected_version)`` stores ``task`` only if the stored version is still
    ``expected_version``; otherwise it raises ConflictError and stores nothing.
    """

    async def get(self, task_id: str) -> Task:
        """The task, or TaskNotFoundError."""
        ...

    async def get_many(self, task_ids: Sequence[str]) -> Mapping[str, Task]:
        """The tasks of these ids in one read; ids not stored are absent."""
        ...

    async def list(self, query: TaskQuery) -> TaskPage: ...

    async def insert(self, task: Task) -> None:
        """Store a new task, or TaskAlreadyExistsError when the id is taken."""
        ...

    async def insert_many(self, tasks: Sequence[Task]) -> None:
        """Store new tasks in one write, in order. An id already taken before the call (or twice in
        ``tasks``) raises TaskAlreadyExistsError naming it and stores none of them. Only a writer taking an
        id during the call may leave the tasks before it stored (MongoDB's ordered insert); the error still
        names that id."""
        ...

    async def update(self, task: Task, expected_version: int) -> None: ...

    async def update_many(self, updates: Sequence[tuple[Task, int]]) -> Sequence[str]:
        """Compare-and-set each (task, expected version); returns the ids that lost and were not stored."""
        ...

    async def delete(self, task_id: str, expected_version: int) -> None:
        """Remove the task if its version still matches; ConflictError or TaskNotFoundError otherwise."""
        ...

    async def class_names(self) -> Sequence[str]:
        """Distinct class names of stored tasks, sorted."""
        ...

    async def count_by_status(self) -> Mapping[TaskStatus, int]: ...

    async def count_by_executor(self, statuses: frozenset[TaskStatus]) -> Mapping[str, int]:
        """How many tasks in ``statuses`` each executor holds (tasks without an executor are left out)."""
        ...

    async def ping(self) -> None:
        """Return once the backing service answers; BackendUnavailableError otherwise (the health check)."""
        ...


class LiveStateStore(Protocol):
    """Short-lived state: worker heartbeats and the node registry. Entries expire when no longer fed."""

    async def record_heartbeat(self, task_id: str, report: HeartbeatReport) -> HeartbeatReport:
        """Store a heartbeat; returns it with ``progress_changed_at`` stamped."""
        ...

    async def record_heartbeats(
        self, beats: Sequence[tuple[str, HeartbeatReport]]
    ) -> Sequence[HeartbeatReport]:
        """Many heartbeats at once (a node reporting all its workers), in order, each as ``record_heartbeat``
        stores it; returns them stamped, in the same order. All are stored, or the call raises."""
        ...

    async def latest_heartbeats(self, task_ids: Sequence[str]) -> Mapping[str, HeartbeatReport]:
        """Latest report per task, for many tasks in one call; tasks without one are absent."""
        ...

    async def heartbeat_history(self, task_id: str, limit: int) -> Sequence[HeartbeatReport]:
        """Up to ``limit`` most recent reports, oldest first."""
        ...

    async def forget_tasks(self, task_ids: Sequence[str]) -> None: ...

    async def put_node(self, node: Node) -> None:
        """Register a node or replace what is known about it (heartbeat, inventory, usage)."""
        ...

    async def get_node(self, node_id: str) -> Node | None: ...

    async def list_nodes(self) -> Sequence[Node]: ...

    async def remove_node(self, node_id: str) -> None: ...

    async def ping(self) -> None:
        """Return once the backing service answers; BackendUnavailableError otherwise (the health check)."""
        ...


class EventPublisher(Protocol):
    """Delivers domain events to every subscriber and node commands to the addressed node, at least once."""

    async def publish(self, message: DomainEvent | NodeCommand) -> None: ...

    async def publish_many(self, messages: Sequence[DomainEvent | NodeCommand]) -> None:
        """Publish each message as ``publish`` does, in order; returns once all are delivered.

        For the batches of the dispatcher and the monitor: a networked bus sends them together instead of
        waiting one round trip per message."""
        ...

    async def ping(self) -> None:
        """Return once the backing service answers; BackendUnavailableError otherwise (the health check)."""
        ...


T_co = TypeVar("T_co", covariant=True)


class Subscription(Protocol[T_co]):
    def __aiter__(self) -> AsyncIterator[T_co]: ...

    async def close(self) -> None: ...


class CommandSubscription(Subscription[NodeCommand], Protocol):
    """A node's commands, one at a time or in batches."""

    def batches(self, limit: int) -> AsyncIterator[Sequence[NodeCommand]]:
        """The commands already waiting, in order: at least one (waiting for it), at most ``limit``. A batch
        counts as handled when the next is asked for, as one command does when iterated one at a time, so a
        node can read the tasks of a burst of assignments at once without giving up at-least-once."""
        ...


class EventSubscriber(Protocol):
    """Streams of what was published after subscribing."""

    def events(self) -> Subscription[DomainEvent]: ...

    def commands(self, node_id: str) -> CommandSubscription:
        """Commands addressed to ``node_id`` only."""
        ...


class UpstreamRequestSource(Protocol):
    """Requests upstream's clients send in upstream's form, for the control plane to act on."""

    def upstream_requests(self) -> Subscription[UpstreamRequest]:
        """Each request once per control plane (several dispatchers would share them); at least once."""
        ...


class WorkerCatalog(Protocol):
    """The worker classes this process knows, and their attachment models."""

    def class_names(self) -> frozenset[str]:
        """Known class names; empty means the catalog knows none and cannot judge."""
        ...

    def validate_attachments(self, class_name: str, attachments: Mapping[str, Any]) -> Mapping[str, Any]:
        """The attachments as the class's model accepts them, or ValidationError naming the field (also a key
        the model does not have)."""
        ...

    def merged_attachments(
        self, class_name: str, current: Mapping[str, Any], changes: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        """``changes`` laid over ``current`` key by key, validated as a whole (PATCH); for a class the
        catalog does not know, merged as plain keys and left to the caller's rules."""
        ...


class CheckpointStore(Protocol):
    """The latest checkpoint of each task, kept as durably as the tasks (beside them in the repository)."""

    async def save_many(self, checkpoints: Sequence[Checkpoint]) -> None:
        """Store each unless its task's stored checkpoint is as new or newer (``Checkpoint.order``)."""
        ...

    async def get(self, task_id: str) -> Checkpoint | None: ...

    async def get_many(self, task_ids: Sequence[str]) -> Mapping[str, Checkpoint]:
        """Those of ``task_ids`` that have one."""
        ...

    async def delete(self, task_id: str) -> None:
        """Forget it (an operator forcing a fresh start); nothing to delete is fine."""
        ...


class TaskLogStore(Protocol):
    """The last lines of each task attempt's output (``limits.log_lines_per_attempt`` of them), for a while.

    Live state, not history: kept in the live-state service (Redis, or memory), bounded per attempt and
    forgotten after ``logs.retention``."""

    async def append(self, lines: Sequence[LogLine]) -> None:
        """Keep each line unless its attempt already holds one with that ``seq`` or a later one (a batch
        delivered again adds nothing); an attempt's oldest lines go once it holds more than its bound."""
        ...

    async def read(self, query: LogQuery) -> LogPage: ...

    async def attempts(self, task_id: str) -> Sequence[int]:
        """The attempts of the task that have lines stored, ascending."""
        ...

    async def forget_tasks(self, task_ids: Sequence[str]) -> None:
        """Drop every attempt's lines (a purged task)."""
        ...

    async def ping(self) -> None:
        """Return once the backing service answers; BackendUnavailableError otherwise."""
        ...


class TaskHistoryStore(Protocol):
    """Each task's timeline of changes and progress points, and the system's changes per minute.

    One port for both because the counts come from the entries: an entry kept again (same task, same
    version) is not counted again. Bounded per task (oldest go first) and forgotten after a retention."""

    async def record(self, changes: Sequence[TimelineEntry], progress: Sequence[ProgressPoint]) -> None:
        """Keep each change unless its task already holds one with that version, and add each newly kept
        one that has a ``counted`` name to its minute's count; keep each progress point."""
        ...

    async def record_status_counts(self, minute: int, counts: Mapping[TaskStatus, int]) -> None:
        """The tasks per status sampled in ``minute`` (the last sample of a minute wins)."""
        ...

    async def timeline(self, task_id: str) -> TaskTimeline:
        """Changes by version and progress by time, oldest first; empty for a task with none."""
        ...

    async def minutes(self, first: int, last: int) -> Sequence[MinuteCounts]:
        """Every minute from ``first`` to ``last`` (both minute starts), oldest first, zeros where nothing
        was counted."""
        ...

    async def forget_tasks(self, task_ids: Sequence[str]) -> None:
        """Drop the tasks' timelines (their counts stay: they happened)."""
        ...

    async def ping(self) -> None:
        """Return once the backing service answers; BackendUnavailableError otherwise."""
        ...


class WorkerOutput(Protocol):
    """The lines a node's workers wrote, waiting for the node to ship them (a supervisor that captures)."""

    def take_lines(self, limit: int) -> Sequence[LogLine]:
        """Up to ``limit`` waiting lines, oldest first, removed from the waiting ones."""
        ...

    async def lines_waiting(self) -> None:
        """Return once at least one line waits."""
        ...


class LogShipper(Protocol):
    """Carries task output from nodes to the control plane, at least once (the bus)."""

    async def ship(self, lines: Sequence[LogLine]) -> None:
        """Return once the bus has the lines; BackendUnavailableError when it cannot take them."""
        ...

    def log_batches(self) -> Subscription[Sequence[LogLine]]:
        """Every shipped batch once per control plane (several controllers share them); a batch counts as
        handled when the next is asked for."""
        ...


class WorkerSupervisor(Protocol):
    """Runs one worker per task on this node and reports on them; never raises for an unknown task id."""

    async def start(self, task: Task, *, checkpoint: str | None = None) -> None:
        """Start its worker; ``checkpoint`` (JSON text) is what an earlier attempt saved, if any."""
        ...

    async def cancel(self, task_id: str, *, within_s: float | None = None) -> None:
        """Ask the worker to stop cooperatively; the supervisor escalates after its grace periods, or so
        that the worker is stopped within ``within_s`` (a node that lost its lease must be sure its workers
        are gone before the control plane re-queues their tasks)."""
        ...

    async def pause(self, task_id: str) -> None: ...

    async def resume(self, task_id: str) -> None: ...

    async def update(self, task_id: str, attachments: Mapping[str, Any], version: int) -> None: ...

    def states(self) -> Mapping[str, WorkerState]:
        """Every worker not yet forgotten, including ended ones (with their outcome)."""
        ...

    def forget(self, task_id: str) -> None:
        """Drop an ended worker once its outcome is recorded."""
        ...

    async def room(self, slots: int, *, within_s: float) -> bool:
        """Whether fewer than ``slots`` workers are alive, waiting up to ``within_s`` for one to exit. A
        worker that reported its outcome holds its slot until its process has exited, so a node bounded to N
        slots never has more than N worker processes, even between one task's end and the next."""
        ...

    def on_change(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(task_id)``, on the event loop, the moment a worker changes in a way the control
        plane acts on: it started, ended (outcome set), confirmed a pause or resume, or applied or rejected an
        update. Plain beats are not changes (the node reports those on its own period). One listener; a
        later call replaces it."""
        ...

    async def shutdown(self) -> None:
        """Cancel every worker and wait for them to end."""
        ...


class ResourceMeter(Protocol):
    """Measures this node's machine and some of its processes. Blocking: callers run it off the event loop.

    A process's CPU is what it used since the previous ``measure`` that asked for it, so the first reading
    of a pid is 0; pids that are gone are left out of the reading. Raises nothing for an unknown pid."""

    def measure(self, pids: Collection[int]) -> ResourceReading: ...


class NotificationChannel(Protocol):
    """Where alerts go (webhook, chat, ...). A channel logs its own failures; they never stop the monitor."""

    async def notify(self, alert: Alert) -> None: ...
