"""The application side of a skald node: register, heartbeat, obey commands addressed to this node only.

The node never writes a task's lifecycle status; it reports what its workers do and the monitor decides.
What the monitor acts on (a worker started, ended, paused, resumed, applied an update) is reported the moment
the supervisor sees it: the heartbeat is stored and a ``WorkerChangesReported`` event published, so the
monitor applies it at once; plain beats go out on the node's period.

Three loops, none waiting on another: the renewal (worker heartbeats and the node's own entry, on the
live-state store only, so a busy task database never makes a healthy node look dead), the change reporter,
and the fence. The node fences itself: before starting a worker it checks that the stored task is still
assigned to it, and every period it stops local workers whose task is no longer its own (one read by id),
so a re-queued task never runs twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from skalds.application.edge_adoption import EdgeAdoption, EdgeTask
from skalds.application.output_shipping import OutputShipper
from skalds.application.resource_watch import ResourceWatch
from skalds.domain.checkpoints import Checkpoint
from skalds.domain.commands import (
    AssignTask,
    CancelTask,
    NodeCommand,
    PauseTask,
    ResumeTask,
    UpdateTaskAttachments,
)
from skalds.domain.errors import TaskNotFoundError
from skalds.domain.events import WorkerChangesReported
from skalds.domain.heartbeat import HeartbeatReport, Outcome
from skalds.domain.nodes import Node, NodeMode
from skalds.domain.ports import (
    CheckpointStore,
    Clock,
    EventPublisher,
    EventSubscriber,
    LiveStateStore,
    ResourceMeter,
    TaskOrder,
    TaskQuery,
    TaskRepository,
    WorkerSupervisor,
)
from skalds.domain.task import DesiredState, Task, TaskStatus
from skalds.domain.workers import WorkerState

__all__ = ["EdgeTask", "NodeIdentity", "NodeRuntime"]

log = logging.getLogger(__name__)
_REMEMBERED_STARTS = 10_000  # far more tasks than a node starts between two monitor cycles
_PREVIOUS_RUN_LOOK_S = 2.0  # how long a starting node waits to learn what its previous run left
_EXIT_STORE_S = 5.0  # how long a stopping node waits to store its workers' last checkpoints
_COMMAND_BATCH = 200  # commands handled per read of the subscription (their assigned tasks read at once)
_READ_AHEAD_FRESH_MS = 1_000  # a batch's read of its assigned tasks serves the starts this long
_EXIT_WAIT_S = 2.0  # how long an assignment waits for an ended worker to exit before handing it back


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeIdentity:
    """What a node says about itself when it registers."""

    id: str
    mode: NodeMode = NodeMode.NODE
    supported_classes: frozenset[str] = frozenset()
    capacity: int | None = None
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


class NodeRuntime:
    def __init__(
        self,
        identity: NodeIdentity,
        repository: TaskRepository,
        live: LiveStateStore,
        clock: Clock,
        supervisor: WorkerSupervisor,
        *,
        publisher: EventPublisher | None = None,
        checkpoints: CheckpointStore | None = None,
        lease_ms: int | None = None,
        stop_within_ms: int | None = None,
        output: OutputShipper | None = None,
        meter: ResourceMeter | None = None,
    ) -> None:
        """``lease_ms``: after this long without a heartbeat reaching the live-state store, the node stops
        its own workers, because the monitor will soon give their tasks to other nodes; they are stopped
        within ``stop_within_ms`` (escalating sooner than a cancel's usual grace). Keep the sum below the
        monitor's dead-after, so a task is re-queued only once its old worker is gone. ``output`` ships the
        workers' output (a loop of its own beside the others; what waits at stop is shipped then). ``meter``:
        how the node measures its CPU and memory and its workers' (a beat publishes the reading the previous
        one began)."""
        self.identity = identity
        self._repository = repository
        self._live = live
        self._clock = clock
        self._supervisor = supervisor
        self._publisher = publisher
        self._output = output
        self._checkpoints = checkpoints  # None: workers' checkpoints are neither stored nor handed on
        # task -> (attempt, the worker's last save stored): a mark of an earlier run never hides a new one's
        self._checkpoints_stored: dict[str, tuple[int, int]] = {}
        self._checkpoint_base: dict[str, int] = {}  # task -> sequence its worker's saves count on from
        self._storing: asyncio.Task[None] | None = None
        self._checkpoint_store_failing = False
        self._resources = ResourceWatch(meter, identity.id) if meter is not None else None
        self._edges = EdgeAdoption(
            identity.id,
            repository,
            clock,
            supervisor,
            publisher,
            started=self._remember_start,
            checkpoint_of=self._saved_checkpoint,
        )
        self.draining = False
        self._registered_at: int | None = None
        self._looked_for_previous_run = False
        self._sequences: dict[str, int] = {}
        self._beats_seen: dict[str, int] = {}
        self._lease_ms = lease_ms
        self._stop_within_s = None if stop_within_ms is None else stop_within_ms / 1000
        self._last_contact: int | None = None
        self._fenced: set[str] = set()  # workers stopped because their task is no longer this node's
        self._released: dict[str, str] = {}  # of those, stopped by the lease -> why, reported once ended
        self._read_ahead: dict[str, Task] = {}  # the tasks of the assignments being handled, read at once
        self._read_ahead_at = 0
        self._read_ahead_checkpoints: dict[str, Checkpoint | None] = {}  # of those tasks, read with them
        self._changed: set[str] = set()  # workers the supervisor says changed, not yet reported
        self._change_seen = asyncio.Event()
        self._reporting = asyncio.Lock()  # one report at a time, so each task's sequence stays in order
        self._lives: dict[str, tuple[int, bool]] = {}  # task -> (since when, started) as last logged
        # Commands arrive at least once: remember what was obeyed, so a redelivery changes nothing.
        self._started_attempts: dict[str, int] = {}  # kept after the worker is forgotten, bounded
        self._updates_sent: dict[str, int] = {}  # attachments version last handed to the worker
        self._controls_obeyed: dict[str, int] = {}  # task version of the last pause / resume obeyed
        supervisor.on_change(self._worker_changed)

    @property
    def node_id(self) -> str:
        return self.identity.id

    async def register(self) -> None:
        self._registered_at = self._clock.now_ms()
        await self._publish_node(self._registered_at)
        self._last_contact = self._registered_at
        await self._release_previous_run()

    async def _release_previous_run(self) -> None:
        """Tasks the store says run here but no worker of this process runs: a previous run of this node
        (SIGKILLed, crashed, ``skalds up`` restarted) left them, and its workers died with it. Handed back
        now, they are re-queued at once instead of waiting out the silence of workers that are gone.
        Assigning tasks are left alone: their assignment may still be on its way to this run."""
        if self.identity.mode is not NodeMode.NODE or self._looked_for_previous_run:
            return  # an edge node adopts its own tasks (edge_adoption.py); a second register has no news
        self._looked_for_previous_run = True
        query = TaskQuery(
            statuses=frozenset({TaskStatus.RUNNING, TaskStatus.PAUSED}),
            executor=self.node_id,
            limit=None,
            order=TaskOrder.ANY,
            with_total=False,
        )
        try:  # bounded: a slow database must not hold back the node's first heartbeat
            left = (await asyncio.wait_for(self._repository.list(query), _PREVIOUS_RUN_LOOK_S)).items
        except Exception as error:  # the monitor settles them later by their silence
            log.warning("node %s could not look for tasks of its previous run: %r", self.node_id, error)
            return
        running = self._supervisor.states()
        for task in left:
            if task.id in running:
                continue
            reason = f"node {self.node_id} restarted: the worker of its previous run is gone"
            log.info(
                "node %s hands %s back: %s",
                self.node_id,
                task.id,
                reason,
                extra={"node": self.node_id, "task_id": task.id},
            )
            await self._report_outcome(task.id, task.attempt, Outcome.RELEASED, reason)

    async def handle_batch(self, commands: Sequence[NodeCommand]) -> None:
        """Act on commands in order. The tasks of the batch's assignments are read in one go first (a
        burst of short tasks must not cost one database round trip per start); that read is newer than
        every command of the batch, and serves a start only while it is recent (``_assigned``)."""
        assigned = [c.task_id for c in commands if isinstance(c, AssignTask) and c.node_id == self.node_id]
        if len(assigned) > 1 and not self.draining:
            try:
                self._read_ahead_at = self._clock.now_ms()
                self._read_ahead = dict(await self._repository.get_many(assigned))
                if self._checkpoints is not None:  # what earlier attempts saved, in the same go
                    found = await self._checkpoints.get_many(assigned)
                    self._read_ahead_checkpoints = {task_id: found.get(task_id) for task_id in assigned}
            except Exception as error:  # then each assignment reads its own task, as alone
                log.warning(
                    "node %s could not read %d assigned tasks at once: %s", self.node_id, len(assigned), error
                )
        try:
            for command in commands:
                try:
                    await self.handle(command)
                except Exception:
                    log.exception("node %s failed to handle %s", self.node_id, command)
        finally:
            self._read_ahead = {}
            self._read_ahead_checkpoints = {}

    async def handle(self, command: NodeCommand) -> None:
        """Act on one command; commands for other nodes and stale commands are ignored."""
        if command.node_id != self.node_id:
            return
        match command:
            case AssignTask():
                await self._start(command)
            case CancelTask():
                await self._cancel(command.task_id)
            case PauseTask() | ResumeTask():
                if command.version <= self._controls_obeyed.get(command.task_id, 0):
                    return  # a redelivery, or overtaken by a later pause / resume (another topic on Kafka)
                self._controls_obeyed[command.task_id] = command.version
                if isinstance(command, PauseTask):
                    await self._supervisor.pause(command.task_id)
                else:
                    await self._supervisor.resume(command.task_id)
            case UpdateTaskAttachments():
                if command.attachments_version <= self._updates_sent.get(command.task_id, 0):
                    return  # a redelivered (or older) update: the worker has it already
                self._updates_sent[command.task_id] = command.attachments_version
                await self._supervisor.update(
                    command.task_id, command.attachments, command.attachments_version
                )

    async def adopt_edge_tasks(self, tasks: Sequence[EdgeTask]) -> list[str]:
        """Store (first time) and start the tasks of an edge file; returns why any were not started."""
        return await self._edges.adopt(tasks)

    async def stop(self, *, drain: bool, drain_timeout_s: float) -> None:
        """Leave the cluster. Draining lets running tasks finish first (then cancels the rest); otherwise
        workers stop now and the node disappears, so the monitor hands their tasks to other nodes."""
        self.draining = True
        if drain:
            await self._publish_node(self._clock.now_ms())
            loop = asyncio.get_running_loop()
            deadline = loop.time() + drain_timeout_s
            while self._running() and loop.time() < deadline:  # noqa: ASYNC110 - the port reports by polling
                await asyncio.sleep(0.1)
            await self._supervisor.shutdown()
            await self._store_checkpoints_on_exit()
            await self._ship_output_on_exit()
            await self.beat()  # report the outcomes, so the monitor settles them at once
            return
        await self._supervisor.shutdown()
        await self._store_checkpoints_on_exit()
        await self._ship_output_on_exit()
        await self._live.remove_node(self.node_id)

    async def _ship_output_on_exit(self) -> None:
        """The workers' last lines (their release hooks' too) go before the node; bounded like the saves."""
        if self._output is None:
            return
        try:
            async with asyncio.timeout(_EXIT_STORE_S):
                await self._output.flush()
        except TimeoutError:
            log.warning("node %s: the bus did not take its workers' last output in time", self.node_id)

    async def _store_checkpoints_on_exit(self) -> None:
        """The saves since the last beat (those made while stopping too) are stored before the node goes:
        the next run of each task resumes from them. Bounded: a database that does not answer loses them."""
        if self._checkpoints is None:
            return
        if self._storing is not None:
            await asyncio.gather(self._storing, return_exceptions=True)
        try:
            async with asyncio.timeout(_EXIT_STORE_S):
                await self.store_checkpoints()
        except Exception as error:
            log.warning("node %s could not store its workers' last checkpoints: %r", self.node_id, error)

    async def check_lease(self) -> None:
        """Stop every worker if this node has been out of touch for longer than its lease (a partition,
        a stalled store): the control plane is about to hand their tasks to other nodes."""
        if self._lease_ms is None or self._last_contact is None:
            return
        silent = self._clock.now_ms() - self._last_contact
        if silent <= self._lease_ms:
            return
        for task_id in sorted(self._running() - self._fenced):
            log.warning(
                "node %s lost its lease (no contact with the live-state store for %d ms); stopping task %s",
                self.node_id,
                silent,
                task_id,
                extra={"node": self.node_id, "task_id": task_id, "reason": "lease lost"},
            )
            self._fenced.add(task_id)
            why = f"node {self.node_id} lost its lease ({silent} ms out of touch) and stopped it"
            self._released[task_id] = why
            await self._supervisor.cancel(task_id, within_s=self._stop_within_s)

    async def beat(self) -> None:
        """Renew this node's lease: report every worker's heartbeat and this node's own entry. Touches only
        the live-state store, never the task repository, so database load cannot starve it."""
        await self.check_lease()
        now = self._clock.now_ms()
        owed = set(self._released) | self._changed  # changes the monitor is to hear of at once
        reported = await self._report(self._due_beats, now)
        await self._publish_node(now)
        self._last_contact = now
        if self._resources is not None:  # the next beat's numbers, read beside the beats
            self._resources.start(self._worker_pids())
        if told := tuple(task_id for task_id in reported if task_id in owed):
            await self._tell_monitor(told)  # the change reporter may say it again: harmless
        if self._checkpoints is not None and (self._storing is None or self._storing.done()):
            # the repository write runs beside the beat, never in it: a slow database must not starve it
            self._storing = asyncio.create_task(self._store_checkpoints_logged(), name="store-checkpoints")

    async def measure_resources(self) -> None:
        """Take a resource reading now and wait for it (what each beat starts beside itself)."""
        if self._resources is not None:
            await self._resources.measure(self._worker_pids())

    def _worker_pids(self) -> dict[str, int]:
        states = self._supervisor.states().items()
        return {t: state.pid for t, state in states if state.pid is not None and state.outcome is None}

    async def _store_checkpoints_logged(self) -> None:
        try:
            await self.store_checkpoints()
        except Exception as error:  # kept in the worker states: stored by a later try
            self._checkpoint_store_failing = True
            log.warning("node %s could not store checkpoints: %s", self.node_id, error)
        else:
            self._checkpoint_store_failing = False

    def _unstored_checkpoint(self, task_id: str, state: WorkerState) -> bool:
        """Whether the worker saved something not stored yet, while storing works: an ended worker's outcome
        waits for it (a retry must resume from its last save), never for a store that is failing."""
        return (
            self._checkpoints is not None
            and not self._checkpoint_store_failing
            and state.checkpoint is not None
            and state.checkpoint_sequence > self._stored_sequence(task_id, state)
        )

    def _stored_sequence(self, task_id: str, state: WorkerState) -> int:
        mark = self._checkpoints_stored.get(task_id)
        return mark[1] if mark is not None and mark[0] == state.attempt else 0

    async def store_checkpoints(self, task_ids: Collection[str] | None = None) -> None:
        """Store the workers' saves not stored yet (of ``task_ids``, or all), in one write."""
        if self._checkpoints is None:
            return
        now = self._clock.now_ms()
        batch = [
            Checkpoint(
                task_id=task_id,
                attempt=state.attempt,
                sequence=self._checkpoint_base.get(task_id, 0) + state.checkpoint_sequence,
                value=state.checkpoint,
                saved_at=now,
            )
            for task_id, state in self._supervisor.states().items()
            if state.checkpoint is not None
            and state.attempt is not None  # every supervisor sets it; without it a save has no rank
            and state.checkpoint_sequence > self._stored_sequence(task_id, state)
            and (task_ids is None or task_id in task_ids)
        ]
        if not batch:
            return
        await self._checkpoints.save_many(batch)
        still_here = self._supervisor.states()  # a run forgotten meanwhile leaves nothing to remember
        for checkpoint in batch:
            current = still_here.get(checkpoint.task_id)
            if current is not None and current.attempt == checkpoint.attempt:
                base = self._checkpoint_base.get(checkpoint.task_id, 0)
                stored = (checkpoint.attempt, checkpoint.sequence - base)
                self._checkpoints_stored[checkpoint.task_id] = stored

    def _due_beats(self, states: Mapping[str, WorkerState]) -> list[tuple[str, WorkerState]]:
        due: list[tuple[str, WorkerState]] = []
        for task_id, state in states.items():
            if task_id in self._fenced:  # its task is no longer this node's: report nothing while it stops
                if state.outcome is not None and task_id in self._released:
                    due.append((task_id, _released(state, self._released[task_id])))  # hand it back
                elif state.outcome is not None:
                    self._forget(task_id)
                continue
            if state.outcome is not None and self._unstored_checkpoint(task_id, state):
                continue  # its last save is stored first (beside this beat, or by the change reporter)
            silent = not state.started or state.beats == self._beats_seen.get(task_id)
            if state.outcome is None and silent:
                continue  # not up yet, or its runtime sent nothing since the last report: do not vouch for it
            due.append((task_id, state))
        return due

    async def report_changes(self) -> None:
        """Report at once the workers the supervisor says changed (started, ended, paused, resumed, applied
        an update): their heartbeats, then one ``WorkerChangesReported`` event so the monitor acts now."""
        changed, self._changed = self._changed, set()
        self._change_seen.clear()

        def due(states: Mapping[str, WorkerState]) -> list[tuple[str, WorkerState]]:
            picked = []
            for task_id in sorted(changed - self._fenced):  # a fenced worker is no longer ours to report
                state = states.get(task_id)
                if state is not None and (state.started or state.outcome is not None):
                    picked.append((task_id, state))
            return picked

        ended = {t for t, state in self._supervisor.states().items() if t in changed and state.outcome}
        if ended:  # a worker's last save is stored before its end is judged (a retry resumes from it)
            try:
                await self.store_checkpoints(ended)
            except Exception as error:
                log.warning(
                    "node %s could not store the last checkpoints of %s: %s", self.node_id, ended, error
                )
        try:
            reported = await self._report(due, self._clock.now_ms())
        except BaseException:
            self._changed |= changed  # reported by the next try (or the next beat)
            self._change_seen.set()
            raise
        if reported:
            await self._tell_monitor(reported)

    async def _tell_monitor(self, task_ids: tuple[str, ...]) -> None:
        if self._publisher is not None:
            event = WorkerChangesReported(at=self._clock.now_ms(), node_id=self.node_id, task_ids=task_ids)
            await self._publisher.publish(event)

    async def reconcile_ownership(self) -> None:
        """Once a period, off the renewal path: stop workers whose task is no longer this node's, and take
        back the edge tasks an operator retried."""
        await self.fence()
        if not self.draining:
            await self._edges.adopt_retried()

    async def fence(self) -> None:
        """Stop local workers whose task is no longer this node's: re-queued, reassigned, or ended by an
        operator. One read by id of the tasks running here, never a list query."""
        running = {
            task_id: state for task_id, state in self._supervisor.states().items() if state.outcome is None
        }
        running = {task_id: state for task_id, state in running.items() if task_id not in self._fenced}
        if not running:
            return
        stored = await self._repository.get_many(sorted(running))
        now_running = self._supervisor.states()  # the read took a while: act only on the same live worker
        for task_id, state in running.items():
            current = now_running.get(task_id)
            if task_id in self._fenced or current is None or current.outcome is not None:
                continue
            if current.attempt != state.attempt:
                continue  # a later attempt started meanwhile: the next fence judges it
            task = stored.get(task_id)
            attempt_matches = task is not None and state.attempt in (None, task.attempt)
            if task is not None and task.executor == self.node_id and task.is_live and attempt_matches:
                continue
            if task is None:
                why = "it is gone"
            else:
                status, executor = task.lifecycle_status.value, task.executor or "no node"
                why = f"it is {status} on {executor}, attempt {task.attempt}"
            log.warning(
                "node %s stops task %s: the task is no longer assigned to it (%s)",
                self.node_id,
                task_id,
                why,
                extra={"node": self.node_id, "task_id": task_id, "reason": "fenced"},
            )
            self._fenced.add(task_id)
            # its task may already run elsewhere: stopped as surely as a lost lease stops it
            await self._supervisor.cancel(task_id, within_s=self._stop_within_s)

    def _forget(self, task_id: str) -> None:
        self._supervisor.forget(task_id)
        self._checkpoints_stored.pop(task_id, None)
        self._checkpoint_base.pop(task_id, None)
        self._sequences.pop(task_id, None)
        self._beats_seen.pop(task_id, None)
        self._fenced.discard(task_id)
        self._released.pop(task_id, None)
        self._updates_sent.pop(task_id, None)
        self._controls_obeyed.pop(task_id, None)
        self._lives.pop(task_id, None)

    async def run(self, subscriber: EventSubscriber, *, heartbeat_interval_s: float) -> None:
        """Register, then obey commands, report changes, renew, watch the lease and fence until cancelled."""
        await self.register()
        subscription = subscriber.commands(self.node_id)

        async def obey() -> None:
            async for commands in subscription.batches(_COMMAND_BATCH):
                await self.handle_batch(commands)

        async def report() -> None:
            while True:
                await self._change_seen.wait()
                try:
                    await self.report_changes()
                except Exception:
                    log.exception("node %s could not report its workers' changes", self.node_id)
                    await asyncio.sleep(heartbeat_interval_s)  # the renewal reports them meanwhile

        async def guard() -> None:
            while True:
                await asyncio.sleep(heartbeat_interval_s)
                try:
                    await self.reconcile_ownership()
                except Exception:
                    log.exception(
                        "node %s could not check which of its tasks are still its own", self.node_id
                    )

        async def lease() -> None:  # on its own timer: a renewal stuck on the store must not delay it
            while self._lease_ms is not None and self._last_contact is not None:
                due_s = (self._last_contact + self._lease_ms + 1 - self._clock.now_ms()) / 1000
                if due_s > 0:
                    await asyncio.sleep(min(due_s, heartbeat_interval_s))
                    continue
                try:
                    await self.check_lease()
                except Exception:
                    log.exception("node %s could not stop its workers after losing its lease", self.node_id)
                await asyncio.sleep(heartbeat_interval_s)

        helpers = [
            asyncio.create_task(lease(), name=f"node-{self.node_id}-lease"),
            asyncio.create_task(obey(), name=f"node-{self.node_id}-commands"),
            asyncio.create_task(report(), name=f"node-{self.node_id}-changes"),
            asyncio.create_task(guard(), name=f"node-{self.node_id}-fence"),
        ]
        helpers.append(asyncio.create_task(self.ship_output(), name=f"node-{self.node_id}-output"))
        try:
            while True:
                try:
                    await self.beat()
                except Exception:
                    log.exception("node %s heartbeat failed", self.node_id)
                    await self.check_lease()
                await asyncio.sleep(heartbeat_interval_s)
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            await subscription.close()

    async def ship_output(self) -> None:
        """Ship the workers' output until cancelled (part of ``run``); returns at once when not capturing."""
        if self._output is not None:
            await self._output.run()

    def _worker_changed(self, task_id: str) -> None:
        self._changed.add(task_id)
        self._change_seen.set()

    def _remember_start(self, task_id: str, attempt: int) -> None:
        self._started_attempts[task_id] = attempt
        if len(self._started_attempts) > _REMEMBERED_STARTS:
            del self._started_attempts[next(iter(self._started_attempts))]  # the oldest

    async def _start(self, command: AssignTask) -> None:
        if self.draining:
            log.info("node %s is draining and ignores the assignment of %s", self.node_id, command.task_id)
            return
        capacity = self.identity.capacity
        has_room = capacity is None or (
            len(self._running()) < capacity
            # a worker that just ended may still be exiting: its process holds the slot for that moment
            and await self._supervisor.room(capacity, within_s=_EXIT_WAIT_S)
        )
        task = await self._assigned(command.task_id)  # after that wait: the task as stored now
        if task is None:
            return
        mine = task.executor == self.node_id and task.lifecycle_status is TaskStatus.ASSIGNING
        if not mine or task.desired_state is not DesiredState.RUN or task.id in self._supervisor.states():
            log.info("node %s ignores a stale assignment of %s", self.node_id, task.id)
            return
        if self._started_attempts.get(task.id, 0) >= task.attempt:  # ended here, not yet settled
            log.info("node %s ignores a repeated assignment of %s", self.node_id, task.id)
            return
        if task.class_name not in self.identity.supported_classes:
            reason = f"node {self.node_id} cannot run {task.class_name}"
            await self._report_outcome(task.id, task.attempt, Outcome.FAILED, reason)
            return
        if not has_room:
            # the dispatcher counts slots from what is stored, so this takes two dispatchers or a stale
            # view; never more workers than slots, whatever arrives: the task goes back to the queue
            reason = f"node {self.node_id} has all {capacity} slots busy"
            log.warning(
                "node %s hands %s back: %s",
                self.node_id,
                task.id,
                reason,
                extra={"node": self.node_id, "task_id": task.id},
            )
            await self._report_outcome(task.id, task.attempt, Outcome.RELEASED, reason)
            return
        checkpoint = await self._saved_checkpoint(task)
        self._lives[task.id] = (self._clock.now_ms(), False)
        await self._supervisor.start(task, checkpoint=checkpoint)
        self._remember_start(task.id, task.attempt)

    async def _saved_checkpoint(self, task: Task) -> str | None:
        """What a starting worker of ``task`` resumes from. A worker numbers its saves from 1; one started
        again under the same attempt (an edge node taking its task back) continues after the stored save,
        or its saves would count as older than its predecessor's and be ignored."""
        checkpoint = await self._checkpoint_of(task.id)
        same_attempt = checkpoint is not None and checkpoint.attempt == task.attempt
        self._checkpoint_base[task.id] = checkpoint.sequence if checkpoint and same_attempt else 0
        return None if checkpoint is None else checkpoint.value

    async def _checkpoint_of(self, task_id: str) -> Checkpoint | None:
        """What earlier attempts of the task saved: from its batch's read when there was one."""
        if self._checkpoints is None:
            return None
        if task_id in self._read_ahead_checkpoints:
            return self._read_ahead_checkpoints.pop(task_id)
        return await self._checkpoints.get(task_id)

    async def _assigned(self, task_id: str) -> Task | None:
        """The assigned task as stored: from its batch's read while that is recent, else read now (a batch's
        later starts can come seconds after its read, and a stale copy could start a re-queued task)."""
        task = self._read_ahead.pop(task_id, None)
        if task is not None and self._clock.now_ms() - self._read_ahead_at <= _READ_AHEAD_FRESH_MS:
            return task
        try:
            return await self._repository.get(task_id)
        except TaskNotFoundError:
            return None

    def _running(self) -> set[str]:
        return {task_id for task_id, state in self._supervisor.states().items() if state.outcome is None}

    async def _cancel(self, task_id: str) -> None:
        if task_id in self._supervisor.states():
            await self._supervisor.cancel(task_id)
            return
        try:
            task = await self._repository.get(task_id)
        except TaskNotFoundError:
            return
        never_ran_here = self._started_attempts.get(task_id, 0) < task.attempt
        wanted = task.desired_state is DesiredState.CANCEL
        if task.executor == self.node_id and task.is_live and wanted and never_ran_here:
            # nothing ran here for this attempt (an ended one reported its own outcome): say so, so the
            # cancel completes
            await self._report_outcome(task_id, task.attempt, Outcome.CANCELLED, None)

    async def _report(
        self, pick: Callable[[Mapping[str, WorkerState]], list[tuple[str, WorkerState]]], now: int
    ) -> tuple[str, ...]:
        """Record one heartbeat per worker ``pick`` chooses from the current states, in one batch (a few
        round trips on Redis, however many workers); returns their task ids. One report at a time, the states
        read inside it, so a task's reports are stored in order and none overtakes its outcome. Only a stored
        report vouches for its worker's beats, and a worker that ended is forgotten once its outcome is
        stored; a failed batch stores nothing and is raised, and the next beat reports again."""
        async with self._reporting:
            due = pick(self._supervisor.states())
            if not due:
                return ()
            reports = []
            for task_id, state in due:
                sequence = self._sequences.get(task_id, 0) + 1
                self._sequences[task_id] = sequence
                usage = self._resources.task(task_id) if self._resources and state.outcome is None else None
                report = HeartbeatReport(
                    received_at=now,
                    sequence=sequence,
                    progress=state.progress,
                    outcome=state.outcome,
                    error=state.error,
                    paused=state.paused,
                    applied_attachments_version=state.applied_attachments_version,
                    attempt=state.attempt,
                    progress_total=state.progress_total,
                    progress_unit=state.progress_unit,
                    progress_message=state.progress_message,
                    cpu_percent=usage.cpu_percent if usage is not None else None,
                    memory_bytes=usage.memory_bytes if usage is not None else None,
                )
                reports.append((task_id, report))
            await self._live.record_heartbeats(reports)
            for task_id, state in due:
                self._log_life(task_id, state, now)
                self._beats_seen[task_id] = state.beats
                if state.outcome is not None:
                    self._forget(task_id)
            return tuple(task_id for task_id, _ in due)

    def _log_life(self, task_id: str, state: WorkerState, now: int) -> None:
        """INFO when a worker is first reported started (with its pid) and when it is reported ended."""
        since, logged_start = self._lives.get(task_id, (now, False))
        fields = {"node": self.node_id, "task_id": task_id, "attempt": state.attempt, "pid": state.pid}
        if not logged_start and (state.started or state.outcome is not None):
            log.info(
                "worker started: task %s attempt %s on node %s, pid %s",
                task_id,
                state.attempt,
                self.node_id,
                state.pid if state.pid is not None else "in-process",
                extra=fields,
            )
            self._lives[task_id] = (since, True)
        if state.outcome is not None:
            seconds = max(0, now - since) / 1000
            error = f": {state.error.splitlines()[0][:200]}" if state.error else ""
            log.info(
                "worker exited: task %s attempt %s on node %s %s after %.1f s%s",
                task_id,
                state.attempt,
                self.node_id,
                state.outcome.value,
                seconds,
                error,
                extra=fields | {"outcome": state.outcome.value, "duration_s": seconds},
            )

    async def _report_outcome(self, task_id: str, attempt: int, outcome: Outcome, error: str | None) -> None:
        report = HeartbeatReport(
            received_at=self._clock.now_ms(), outcome=outcome, error=error, attempt=attempt
        )
        await self._live.record_heartbeat(task_id, report)
        await self._tell_monitor((task_id,))

    async def _publish_node(self, now: int) -> None:
        identity = self.identity
        running = frozenset(self._running())
        usage = self._resources.node if self._resources is not None else None
        await self._live.put_node(
            Node(
                id=identity.id,
                mode=identity.mode,
                supported_classes=identity.supported_classes,
                current_tasks=running,
                capacity=identity.capacity,
                labels=identity.labels,
                registered_at=self._registered_at if self._registered_at is not None else now,
                last_heartbeat_at=now,
                cpu_percent=usage.cpu_percent if usage is not None else None,
                memory_percent=usage.memory_percent if usage is not None else None,
                draining=self.draining,
            )
        )


def _released(state: WorkerState, why: str) -> WorkerState:
    """How a worker the lease stopped is reported: finished if it got there, else handed back (whatever
    the stop made of it), so the monitor passes the task on at once instead of waiting out its silence."""
    if state.outcome is Outcome.FINISHED:
        return state
    return dataclasses.replace(state, outcome=Outcome.RELEASED, error=why)
