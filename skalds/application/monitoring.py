"""The monitor: turns heartbeats and node liveness into lifecycle changes and change events.

One cycle reads every node and the latest heartbeat of every live task in one batch each (the live tasks
themselves come from ``LiveTaskView``, kept current from task events), decides with the pure rules in
``reconciling``, writes all changes with one batched compare-and-set, and publishes an event
for every status, heartbeat, error and node change, so live views are pushed, not polled (a cycle's new
heartbeats go out as a few ``TaskHeartbeatsObserved`` batches, not one event per task). Its cost is linear
in the number of live tasks.

The live-state store forgets by design (Redis without persistence comes back empty after a restart), so an
entry missing from it is not taken for silence. The monitor remembers the last entry it saw of every node
and the last report of every live task's current run, and judges what the store lost from those: silence
counts from the last time anyone heard from the node or worker, so one that really died still goes suspect,
then offline or dead, on the usual thresholds. A node missing from the store whose workers' last heartbeats
are still there, none newer than the previous cycle saw, removed itself (a node handing its tasks back does
that), and its tasks are re-queued at once.

The monitor judges only silence it witnessed. What it never heard from (a freshly started monitor remembers
nothing) counts as silent from the first cycle that looked for it, and so does what it last saw before a
pause in its own cycles longer than ``dead_after_ms - suspect_after_ms`` (after that long, a node may have
beaten unseen): such a node is offline, and such a task dead, only ``dead_after_ms`` after that cycle. A task
no report speaks for, silent since well before the monitor first looked, is at worst suspect until then.
The rest of what it remembers (verdicts, sequences, errors) only suppresses duplicate events. Memory is kept
for live tasks, and for nodes until they are offline and no live task names them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from skalds.application.batch_writes import Change, write_changes
from skalds.application.live_tasks import LiveTaskView
from skalds.application.node_watch import NodeWatch
from skalds.application.operator_log import log_node_event
from skalds.application.reconciling import ReconcileRules, Step, decide
from skalds.domain import events as ev
from skalds.domain import lifecycle
from skalds.domain.commands import CancelTask, NodeCommand
from skalds.domain.errors import IllegalTransitionError
from skalds.domain.heartbeat import HeartbeatPolicy, HeartbeatReport, Verdict, from_current_run, interpret
from skalds.domain.nodes import NodeHealth
from skalds.domain.ports import (
    Clock,
    EventPublisher,
    EventSubscriber,
    LiveStateStore,
    Subscription,
    TaskRepository,
)
from skalds.domain.task import DesiredState, Task, TaskStatus

log = logging.getLogger(__name__)

T = TypeVar("T")
HEARTBEATS_PER_EVENT = 2_000  # a batch of heartbeat observations stays ~120 KB on the wire


@dataclass(frozen=True, slots=True, kw_only=True)
class CycleReport:
    live_tasks: int
    changed: int
    lost: int
    events: int


@dataclass(slots=True)
class MonitorCounters:
    cycles: int = 0
    changed: int = 0
    lost: int = 0
    last_cycle_ms: int = 0
    last_cycle_at: int | None = None
    heartbeats: int = 0  # new heartbeats seen (one per task per cycle at most)


class Monitor:
    def __init__(
        self,
        repository: TaskRepository,
        live: LiveStateStore,
        publisher: EventPublisher,
        clock: Clock,
        *,
        policy: HeartbeatPolicy,
        rules: ReconcileRules,
        cancel_grace_ms: int = 30_000,
        pause_grace_ms: int = 30_000,
        subscriber: EventSubscriber | None = None,
        resync_every_ms: int = 60_000,
    ) -> None:
        self._repository = repository
        self._subscriber = subscriber
        self._view = LiveTaskView(repository, clock, subscriber, resync_every_ms=resync_every_ms)
        self._live = live
        self._publisher = publisher
        self._clock = clock
        self._policy = policy
        self._rules = rules
        self._cancel_grace_ms = cancel_grace_ms
        self._pause_grace_ms = pause_grace_ms
        # What the store forgets is judged from memory, trusted across a pause in cycles of at most this long.
        self._trusted_pause_ms = policy.dead_after_ms - policy.suspect_after_ms
        self._looked_at: int | None = None  # the cycle that last refreshed the memory below
        self._nodes = NodeWatch(policy)
        self._memory: dict[str, TaskMemory] = {}  # one record per live task
        self.counters = MonitorCounters()

    async def run_cycle(self, only: Collection[str] | None = None) -> CycleReport:
        """Judge every live task and node; with ``only``, at once, just what the workers of those tasks
        reported (a node said they changed): tasks without a fresh report of their current run are left to
        the full cycle, and so is every judgement of silence or of a lost node (the reporting node is
        evidently alive)."""
        now = self._clock.now_ms()
        if only is None:
            nodes = await self._live.list_nodes()
            tasks = await self._view.tasks()
        else:
            found = await self._repository.get_many(sorted(only))
            tasks = [task for task in found.values() if task.is_live]
        stored = await self._live.latest_heartbeats([t.id for t in tasks])
        if only is not None:
            tasks = [task for task in tasks if self._fresh(task, stored.get(task.id))]
        paused = self._looked_at is None or now - self._looked_at > self._trusted_pause_ms
        cycle = _Cycle(now)
        if only is None:
            executors = self._nodes.observe(
                nodes, tasks, stored, self._judged, now=now, out=cycle.out, paused=paused
            )
        else:
            executors = dict.fromkeys((task.executor or "" for task in tasks), NodeHealth.ONLINE)
        memory = self._memory
        kept: dict[str, TaskMemory] = {}
        for task in tasks:
            kept[task.id] = remembered = memory.get(task.id) or TaskMemory()
            self._judge_task(task, remembered, stored.get(task.id), executors, cycle, paused=paused)
        if only is None:
            for remembered in kept.values():
                remembered.full_report = remembered.report
            self._memory, self._looked_at = kept, now  # only live tasks: memory cannot grow unbounded
        else:
            memory.update(kept)
        changes = cycle.changes
        for event in cycle.out:
            if isinstance(event, ev.NodeEvent):
                log_node_event(log, event)
        lost = await write_changes(
            self._repository,
            self._publisher,
            changes,
            logger=log,
            by="monitor",
            before=cycle.out,
            after=lambda lost: cycle.beats.events(now, lost),
        )
        self._view.lost(lost)
        for change in changes:
            if change.task.id not in lost:
                self._view.stored(change.task)
        elapsed = self._clock.now_ms() - now
        self.counters.cycles += 1
        self.counters.changed += len(changes) - len(lost)
        self.counters.lost += len(lost)
        self.counters.last_cycle_ms = elapsed
        if only is None:
            self.counters.last_cycle_at = now
        events = len(cycle.out) + sum(len(c.events) for c in changes if c.task.id not in lost)
        return CycleReport(
            live_tasks=len(tasks), changed=len(changes) - len(lost), lost=len(lost), events=events
        )

    def _judge_task(
        self,
        task: Task,
        memory: TaskMemory,
        held: HeartbeatReport | None,
        executors: Mapping[str, NodeHealth],
        cycle: _Cycle,
        *,
        paused: bool,
    ) -> None:
        """One live task: its verdict, the events it earns and the changes it needs, into ``cycle``, and what
        to remember of it, into ``memory``. Runs for every live task every cycle, so the usual case (a report
        of the current run, no older than the last one judged) takes the short way past ``_recall`` and
        ``_judge``."""
        now = cycle.now
        attempt = task.attempt
        if held is not None and not from_current_run(task, held):
            held = None  # a late report of an earlier attempt
        if held is not None and _newer(held, memory.report, attempt):
            report: HeartbeatReport | None = held  # a fresh report of the current run: no silence
            memory.report, memory.silence = (attempt, held), None
            verdict, unwitnessed = interpret(task, (held,), now, self._policy), False
        else:
            report, since = self._recall(task, memory, now, paused=paused)  # the previous cycle's memory
            memory.report = (attempt, report) if report is not None else None
            memory.silence = (attempt, since) if since is not None else None
            verdict, unwitnessed = self._judge(task, report, since, now)
        self._observe_task(task, memory, report, verdict, cycle)
        executor_health = executors[task.executor or ""]
        if unwitnessed and executor_health is not NodeHealth.OFFLINE:
            return  # silence it did not witness long enough to act on
        steps = decide(
            task, verdict=verdict, report=report, executor_health=executor_health, now=now, rules=self._rules
        )
        new, task_events = _apply_all(task, steps, now) if steps else (task, [])
        if task_events:
            cycle.changes.append(Change(new, task.version, task_events))
            cycle.beats.restate(task.id, new.lifecycle_status)  # a beat's frame tells the status it led to
        elif task.desired_state is not DesiredState.RUN or memory.wish is not None:
            self._nudge(task, memory, now, cycle.out)  # only a wish the worker has not met yet needs a nudge

    async def run(self, *, interval_s: float) -> None:
        """A full cycle every ``interval_s`` (sooner when a node's silence is about to cross a threshold),
        and, between them, a cycle for the tasks whose workers a node reported changed, the moment it does;
        until cancelled. A failing cycle is logged and retried."""
        reported: set[str] = set()
        heard = asyncio.Event()
        listener = None
        if self._subscriber is not None:
            subscription = self._subscriber.events()
            listener = asyncio.create_task(_listen(subscription, reported, heard), name="monitor-reports")
        loop = asyncio.get_running_loop()
        next_full = loop.time()
        try:
            while True:
                wait_s = next_full - loop.time()
                if wait_s > 0 and not heard.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait_s):  # not wait_for: on 3.11 it can swallow a cancel
                            await heard.wait()
                heard.clear()
                full = loop.time() >= next_full
                only = None if full else set(reported)
                reported.clear()  # a full cycle judges them too
                if only is not None and not only:
                    continue
                try:
                    await self.run_cycle(only)
                except Exception:
                    log.exception("monitor cycle failed")
                    reported.update(only or ())  # judged again soon, at the next full cycle at the latest
                if full:
                    due_in_s = self._nodes.next_change_in_ms(self._clock.now_ms()) / 1000
                    next_full = loop.time() + min(interval_s, max(due_in_s, 0.05))
        finally:
            if listener is not None:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)
                await subscription.close()
            await self.aclose()

    async def aclose(self) -> None:
        """Stop following task events (a later cycle follows them again, from a fresh read)."""
        await self._view.aclose()

    def node_health(self, node_id: str) -> NodeHealth | None:
        return self._nodes.health(node_id)

    def _judged(self, task_id: str) -> tuple[int, HeartbeatReport] | None:
        """The report the last full cycle judged of a task, with its attempt (what tells a node that left
        from one the store lost; reports judged between full cycles do not count)."""
        memory = self._memory.get(task_id)
        return None if memory is None else memory.full_report

    def _fresh(self, task: Task, held: HeartbeatReport | None) -> bool:
        """Whether ``held`` is a report of the task's current run newer than the last one judged."""
        if held is None or not from_current_run(task, held):
            return False
        memory = self._memory.get(task.id)
        return _newer(held, None if memory is None else memory.report, task.attempt)

    def _recall(
        self, task: Task, memory: TaskMemory, now: int, *, paused: bool
    ) -> tuple[HeartbeatReport | None, int | None]:
        """When the store holds no report of the task's current run newer than the last one judged (the
        usual case, a fresh report, is settled in ``_judge_task``): that last one, and since when the task has
        been silent to this monitor (fixed the first cycle the store lacked a fresh report)."""
        seen = memory.report
        remembered = seen[1] if seen is not None and seen[0] == task.attempt else None
        attempt, since = memory.silence or (task.attempt, None)
        if since is None or attempt != task.attempt:
            if remembered is not None:
                since = now if paused else remembered.received_at
            else:  # never heard of: silent since it started, unless that was well before this monitor looked
                started = _silent_since(task)
                since = now if now - started > self._trusted_pause_ms else started
        return remembered, since

    def _judge(
        self, task: Task, report: HeartbeatReport | None, since: int | None, now: int
    ) -> tuple[Verdict, bool]:
        """The verdict, and whether the task's silence began before this monitor could hear it and is still
        shorter than ``dead_after_ms`` to it, in which case nothing is decided from that silence."""
        if report is not None:
            if since is not None and since > report.received_at:
                report = dataclasses.replace(report, received_at=since)  # silent to this monitor since then
            return interpret(task, (report,), now, self._policy), False
        verdict = interpret(task, (), now, self._policy)
        if since is not None and since > _silent_since(task) and now - since <= self._policy.dead_after_ms:
            return (Verdict.SUSPECT if verdict is Verdict.DEAD else verdict), True
        return verdict, False

    def _observe_task(
        self,
        task: Task,
        memory: TaskMemory,
        report: HeartbeatReport | None,
        verdict: Verdict,
        cycle: _Cycle,
    ) -> None:
        now, out = cycle.now, cycle.out
        if report is not None and memory.sequence != report.sequence:
            memory.sequence = report.sequence
            self.counters.heartbeats += 1
            cycle.beats.rows.append(
                (
                    task.id,
                    report.sequence,
                    report.progress,
                    verdict,
                    task.lifecycle_status,
                    report.progress_total,
                    report.progress_unit,
                )
            )
        if report is not None and report.error and memory.error != report.error:
            memory.error = report.error
            out.append(
                ev.TaskErrorReported(
                    at=now, task_id=task.id, error=report.error, status=task.lifecycle_status
                )
            )
        previous, memory.verdict = memory.verdict, verdict
        if previous != verdict:
            out.append(ev.TaskVerdictChanged(at=now, task_id=task.id, previous=previous, verdict=verdict))

    def _nudge(
        self, task: Task, memory: TaskMemory, now: int, out: list[ev.DomainEvent | NodeCommand]
    ) -> None:
        """Re-send a cancel the worker has not honoured, and report a pause it ignores."""
        desired = task.desired_state
        waiting = desired is DesiredState.CANCEL or (
            desired is DesiredState.PAUSE and task.lifecycle_status is TaskStatus.RUNNING
        )
        if not waiting or task.executor is None:
            memory.wish, memory.pause_reported = None, False
            return
        wish, since = memory.wish or (desired, now)
        if wish is not desired:
            since = now
            memory.pause_reported = False
        if desired is DesiredState.CANCEL and now - since >= self._cancel_grace_ms:
            out.append(CancelTask(task_id=task.id, node_id=task.executor, version=task.version, at=now))
            since = now
        elif (
            desired is DesiredState.PAUSE
            and now - since >= self._pause_grace_ms
            and not memory.pause_reported
        ):
            memory.pause_reported = True
            out.append(ev.TaskPauseNotHonoured(at=now, task_id=task.id, requested_for_ms=now - since))
        memory.wish = (desired, since)


@dataclass(slots=True)
class TaskMemory:
    """What the monitor remembers of one live task between cycles."""

    report: tuple[int, HeartbeatReport] | None = None  # (attempt, the last report judged)
    full_report: tuple[int, HeartbeatReport] | None = None  # ... by the last full cycle
    silence: tuple[int, int] | None = None  # (attempt, silent since), while no fresh report is held
    verdict: Verdict | None = None
    sequence: int | None = None  # of the last heartbeat published
    error: str | None = None  # the last error published
    wish: tuple[DesiredState, int] | None = None  # a cancel or pause not yet honoured, since when
    pause_reported: bool = False  # TaskPauseNotHonoured sent for the current wish


class _Cycle:
    """What one cycle decided: the events and commands to send, and the changes to write."""

    __slots__ = ("beats", "changes", "now", "out")

    def __init__(self, now: int) -> None:
        self.now = now
        self.out: list[ev.DomainEvent | NodeCommand] = []
        self.beats = _Observations()
        self.changes: list[Change] = []  # their events are sent when their writes win


class _Observations:
    """A cycle's new heartbeats, one row per task, turned into the columns of ``TaskHeartbeatsObserved``."""

    __slots__ = ("rows",)

    def __init__(self) -> None:
        self.rows: list[tuple[str, int, float | None, str, TaskStatus, float | None, str | None]] = []

    def restate(self, task_id: str, status: TaskStatus) -> None:
        """The status the cycle's change gives the task whose beat was observed last."""
        if self.rows and self.rows[-1][0] == task_id:
            row = self.rows[-1]
            self.rows[-1] = (row[0], row[1], row[2], row[3], status, row[5], row[6])

    def events(self, now: int, lost: Collection[str]) -> list[ev.TaskHeartbeatsObserved]:
        """The beats, but none of a task whose change lost its write: another writer changed it, so the status
        the beat would carry may be one it never had; its next beat tells the status it has."""
        size = HEARTBEATS_PER_EVENT
        rows = [row for row in self.rows if row[0] not in lost] if lost else self.rows
        batches = []
        for start in range(0, len(rows), size):
            columns = zip(*rows[start : start + size], strict=True)
            task_ids, sequences, progress, verdicts, statuses, totals, units = columns
            scaled = any(total is not None for total in totals) or any(unit is not None for unit in units)
            batches.append(
                ev.TaskHeartbeatsObserved(
                    at=now,
                    task_ids=task_ids,
                    sequences=sequences,
                    progress=progress,
                    verdicts=verdicts,
                    statuses=statuses,
                    progress_totals=totals if scaled else (),
                    progress_units=units if scaled else (),
                )
            )
        return batches


async def _listen(
    subscription: Subscription[ev.DomainEvent], reported: set[str], heard: asyncio.Event
) -> None:
    """Collect the tasks nodes report changed, and wake the monitor. Should the subscription fail, the full
    cycles still judge every task; the failure is logged."""
    try:
        async for event in subscription:
            if isinstance(event, ev.WorkerChangesReported):
                reported.update(event.task_ids)
                heard.set()
    except Exception:
        log.exception("monitor stopped hearing worker changes; its full cycles still judge every task")


def _newer(held: HeartbeatReport, seen: tuple[int, HeartbeatReport] | None, attempt: int) -> bool:
    """Whether ``held``, a report of run ``attempt``, is no older than the last one judged (``seen``)."""
    return seen is None or seen[0] != attempt or held.received_at >= seen[1].received_at


def _silent_since(task: Task) -> int:
    """Since when a task no report speaks for has been silent, as ``interpret`` and ``decide`` count it."""
    return task.started_at or task.assigned_at or task.update_date_time


def _apply_all(task: Task, steps: Sequence[Step], now: int) -> tuple[Task, list[ev.TaskEvent]]:
    events: list[ev.TaskEvent] = []
    current = task
    for step in steps:
        try:
            current, event = lifecycle.apply(current, step.command, at=now, **step.args)
        except IllegalTransitionError as refused:
            log.warning("monitor skipped a change: %s", refused)
            break
        events.append(event)
    return current, events
