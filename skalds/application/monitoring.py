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
import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from skalds.application.live_tasks import LiveTaskView
from skalds.application.node_watch import NodeWatch
from skalds.application.reconciling import ReconcileRules, Step, decide
from skalds.domain import events as ev
from skalds.domain import lifecycle
from skalds.domain.commands import CancelTask, NodeCommand
from skalds.domain.errors import IllegalTransitionError
from skalds.domain.heartbeat import HeartbeatPolicy, HeartbeatReport, Verdict, from_current_run, interpret
from skalds.domain.nodes import NodeHealth
from skalds.domain.ports import Clock, EventPublisher, EventSubscriber, LiveStateStore, TaskRepository
from skalds.domain.task import DesiredState, Task, TaskStatus

log = logging.getLogger(__name__)

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
        self._reports: dict[str, tuple[int, HeartbeatReport]] = {}  # task -> (attempt, last report judged)
        self._task_since: dict[str, tuple[int, int]] = {}  # task, no report held -> (attempt, silent since)
        self._verdicts: dict[str, Verdict] = {}
        self._sequences: dict[str, int] = {}
        self._errors: dict[str, str] = {}
        self._waiting: dict[str, tuple[DesiredState, int]] = {}  # task -> (wish, since when)
        self._pause_reported: set[str] = set()
        self.counters = MonitorCounters()

    async def run_cycle(self) -> CycleReport:
        now = self._clock.now_ms()
        nodes = await self._live.list_nodes()
        tasks = await self._view.tasks()
        stored = await self._live.latest_heartbeats([t.id for t in tasks])
        paused = self._looked_at is None or now - self._looked_at > self._trusted_pause_ms
        cycle = _Cycle(now)
        executors = self._nodes.observe(
            nodes, tasks, stored, self._reports, now=now, out=cycle.out, paused=paused
        )
        for task in tasks:
            self._judge_task(task, stored.get(task.id), executors, cycle, paused=paused)
        self._reports, self._task_since, self._looked_at = cycle.reports, cycle.silences, now
        updates = cycle.updates
        lost = set(await self._repository.update_many(updates)) if updates else set()
        self._view.lost(lost)
        out = cycle.out
        for (new, _), task_events in zip(updates, cycle.pending_events, strict=True):
            if new.id not in lost:
                self._view.stored(new)
                out.extend(task_events)
        self._forget_missing(cycle.verdicts)
        out.extend(cycle.beats.events(now))
        await self._publisher.publish_many(out)
        elapsed = self._clock.now_ms() - now
        self.counters.cycles += 1
        self.counters.changed += len(updates) - len(lost)
        self.counters.lost += len(lost)
        self.counters.last_cycle_ms = elapsed
        self.counters.last_cycle_at = now
        return CycleReport(
            live_tasks=len(tasks), changed=len(updates) - len(lost), lost=len(lost), events=len(out)
        )

    def _judge_task(
        self,
        task: Task,
        held: HeartbeatReport | None,
        executors: Mapping[str, NodeHealth],
        cycle: _Cycle,
        *,
        paused: bool,
    ) -> None:
        """One live task: its verdict, the events it earns and the changes it needs, into ``cycle``. Runs for
        every live task every cycle, so the usual case (a report of the current run, no older than the last
        one judged) takes the short way through ``_recall`` and ``_judge``."""
        now = cycle.now
        task_id, attempt = task.id, task.attempt
        if held is not None and not from_current_run(task, held):
            held = None  # a late report of an earlier attempt
        seen = self._reports.get(task_id)
        if held is not None and (
            seen is None or seen[0] != attempt or held.received_at >= seen[1].received_at
        ):
            report: HeartbeatReport | None = held  # a fresh report of the current run: no silence
            cycle.reports[task_id] = (attempt, held)
            verdict, unwitnessed = interpret(task, (held,), now, self._policy), False
        else:
            report, since = self._recall(task, now, paused=paused)  # reads the previous cycle's memory
            if report is not None:
                cycle.reports[task_id] = (attempt, report)
            if since is not None:
                cycle.silences[task_id] = (attempt, since)
            verdict, unwitnessed = self._judge(task, report, since, now)
        cycle.verdicts[task_id] = verdict
        self._observe_task(task, report, verdict, cycle)
        executor_health = executors[task.executor or ""]
        if unwitnessed and executor_health is not NodeHealth.OFFLINE:
            return  # silence it did not witness long enough to act on
        steps = decide(
            task, verdict=verdict, report=report, executor_health=executor_health, now=now, rules=self._rules
        )
        new, task_events = _apply_all(task, steps, now) if steps else (task, [])
        if task_events:
            cycle.updates.append((new, task.version))
            cycle.pending_events.append(task_events)
        elif task.desired_state is not DesiredState.RUN or task_id in self._waiting:
            self._nudge(task, now, cycle.out)  # only a wish the worker has not met yet needs a nudge

    async def run(self, *, interval_s: float) -> None:
        """Run a cycle every ``interval_s`` until cancelled; a failing cycle is logged and retried."""
        try:
            while True:
                try:
                    await self.run_cycle()
                except Exception:
                    log.exception("monitor cycle failed")
                await asyncio.sleep(interval_s)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Stop following task events (a later cycle follows them again, from a fresh read)."""
        await self._view.aclose()

    def node_health(self, node_id: str) -> NodeHealth | None:
        return self._nodes.health(node_id)

    def _recall(self, task: Task, now: int, *, paused: bool) -> tuple[HeartbeatReport | None, int | None]:
        """When the store holds no report of the task's current run newer than the last one judged (the
        usual case, a fresh report, is settled in ``_judge_task``): that last one, and since when the task has
        been silent to this monitor (fixed the first cycle the store lacked a fresh report)."""
        seen = self._reports.get(task.id)
        remembered = seen[1] if seen is not None and seen[0] == task.attempt else None
        attempt, since = self._task_since.get(task.id, (task.attempt, None))
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
        self, task: Task, report: HeartbeatReport | None, verdict: Verdict, cycle: _Cycle
    ) -> None:
        now, out = cycle.now, cycle.out
        if report is not None and self._sequences.get(task.id) != report.sequence:
            self._sequences[task.id] = report.sequence
            self.counters.heartbeats += 1
            cycle.beats.rows.append(
                (task.id, report.sequence, report.progress, verdict, task.lifecycle_status)
            )
        if report is not None and report.error and self._errors.get(task.id) != report.error:
            self._errors[task.id] = report.error
            out.append(
                ev.TaskErrorReported(
                    at=now, task_id=task.id, error=report.error, status=task.lifecycle_status
                )
            )
        previous = self._verdicts.get(task.id)
        if previous != verdict:
            out.append(ev.TaskVerdictChanged(at=now, task_id=task.id, previous=previous, verdict=verdict))

    def _nudge(self, task: Task, now: int, out: list[ev.DomainEvent | NodeCommand]) -> None:
        """Re-send a cancel the worker has not honoured, and report a pause it ignores."""
        desired = task.desired_state
        waiting = desired is DesiredState.CANCEL or (
            desired is DesiredState.PAUSE and task.lifecycle_status is TaskStatus.RUNNING
        )
        if not waiting or task.executor is None:
            if self._waiting.pop(task.id, None) is not None:
                self._pause_reported.discard(task.id)
            return
        wish, since = self._waiting.get(task.id, (desired, now))
        if wish is not desired:
            since = now
            self._pause_reported.discard(task.id)
        if desired is DesiredState.CANCEL and now - since >= self._cancel_grace_ms:
            out.append(CancelTask(task_id=task.id, node_id=task.executor, version=task.version, at=now))
            since = now
        elif (
            desired is DesiredState.PAUSE
            and now - since >= self._pause_grace_ms
            and task.id not in self._pause_reported
        ):
            self._pause_reported.add(task.id)
            out.append(ev.TaskPauseNotHonoured(at=now, task_id=task.id, requested_for_ms=now - since))
        self._waiting[task.id] = (desired, since)

    def _forget_missing(self, verdicts: dict[str, Verdict]) -> None:
        """Keep per-task memory only for tasks that are still live, so it cannot grow without bound."""
        self._verdicts = verdicts
        self._sequences = {k: v for k, v in self._sequences.items() if k in verdicts}
        self._errors = {k: v for k, v in self._errors.items() if k in verdicts}
        self._waiting = {k: v for k, v in self._waiting.items() if k in verdicts}
        self._pause_reported &= verdicts.keys()


class _Cycle:
    """What one cycle decided: the events and commands to send, the changes to write, the memory to keep."""

    __slots__ = ("beats", "now", "out", "pending_events", "reports", "silences", "updates", "verdicts")

    def __init__(self, now: int) -> None:
        self.now = now
        self.out: list[ev.DomainEvent | NodeCommand] = []
        self.beats = _Observations()
        self.reports: dict[str, tuple[int, HeartbeatReport]] = {}  # the memory the next cycle recalls
        self.silences: dict[str, tuple[int, int]] = {}
        self.updates: list[tuple[Task, int]] = []
        self.pending_events: list[list[ev.TaskEvent]] = []  # per update, sent when it is won
        self.verdicts: dict[str, Verdict] = {}


class _Observations:
    """A cycle's new heartbeats, one row per task, turned into the columns of ``TaskHeartbeatsObserved``."""

    __slots__ = ("rows",)

    def __init__(self) -> None:
        self.rows: list[tuple[str, int, float | None, str, TaskStatus]] = []

    def events(self, now: int) -> list[ev.TaskHeartbeatsObserved]:
        size, rows = HEARTBEATS_PER_EVENT, self.rows
        batches = []
        for start in range(0, len(rows), size):
            task_ids, sequences, progress, verdicts, statuses = zip(*rows[start : start + size], strict=True)
            batches.append(
                ev.TaskHeartbeatsObserved(
                    at=now,
                    task_ids=task_ids,
                    sequences=sequences,
                    progress=progress,
                    verdicts=verdicts,
                    statuses=statuses,
                )
            )
        return batches


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
