"""The monitor: turns heartbeats and node liveness into lifecycle changes and change events.

One cycle reads every node and the latest heartbeat of every live task in one batch each, decides with the
pure rules in ``reconciling``, writes all changes with one batched compare-and-set, and publishes an event
for every status, heartbeat, error and node change, so live views are pushed, not polled. Its cost is
linear in the number of live tasks. What it remembers between cycles (last verdicts, last sequences) only
suppresses duplicate events; decisions come from stored state, so a restarted monitor decides the same.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from skalds.application.reconciling import ReconcileRules, Step, decide
from skalds.domain import events as ev
from skalds.domain import lifecycle
from skalds.domain.commands import CancelTask, NodeCommand
from skalds.domain.errors import IllegalTransitionError
from skalds.domain.heartbeat import HeartbeatPolicy, HeartbeatReport, Verdict, from_current_run, interpret
from skalds.domain.nodes import Node, NodeHealth, node_health
from skalds.domain.ports import Clock, EventPublisher, LiveStateStore, TaskOrder, TaskQuery, TaskRepository
from skalds.domain.task import LIVE, DesiredState, Task, TaskStatus

log = logging.getLogger(__name__)


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
    ) -> None:
        self._repository = repository
        self._live = live
        self._publisher = publisher
        self._clock = clock
        self._policy = policy
        self._rules = rules
        self._cancel_grace_ms = cancel_grace_ms
        self._pause_grace_ms = pause_grace_ms
        self._node_health: dict[str, NodeHealth] = {}
        self._node_beats: dict[str, int] = {}
        self._verdicts: dict[str, Verdict] = {}
        self._sequences: dict[str, int] = {}
        self._errors: dict[str, str] = {}
        self._waiting: dict[str, tuple[DesiredState, int]] = {}  # task -> (wish, since when)
        self._pause_reported: set[str] = set()
        self.counters = MonitorCounters()

    async def run_cycle(self) -> CycleReport:
        now = self._clock.now_ms()
        out: list[ev.DomainEvent | NodeCommand] = []
        health = self._observe_nodes(await self._live.list_nodes(), now, out)
        tasks = (await self._repository.list(TaskQuery(statuses=LIVE, limit=None, order=TaskOrder.ANY))).items
        reports = await self._live.latest_heartbeats([t.id for t in tasks])
        updates: list[tuple[Task, int]] = []
        pending_events: list[list[ev.TaskEvent]] = []
        verdicts: dict[str, Verdict] = {}
        for task in tasks:
            report = reports.get(task.id)
            if report is not None and not from_current_run(task, report):
                report = None
            verdict = interpret(task, (report,) if report is not None else (), now, self._policy)
            verdicts[task.id] = verdict
            self._observe_task(task, report, verdict, now, out)
            executor_health = health.get(task.executor or "", NodeHealth.OFFLINE)
            steps = decide(
                task,
                verdict=verdict,
                report=report,
                executor_health=executor_health,
                now=now,
                rules=self._rules,
            )
            new, task_events = _apply_all(task, steps, now) if steps else (task, [])
            if task_events:
                updates.append((new, task.version))
                pending_events.append(task_events)
            else:
                self._nudge(task, now, out)
        lost = set(await self._repository.update_many(updates)) if updates else set()
        for (new, _), task_events in zip(updates, pending_events, strict=True):
            if new.id not in lost:
                out.extend(task_events)
        self._forget_missing(verdicts)
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

    async def run(self, *, interval_s: float) -> None:
        """Run a cycle every ``interval_s`` until cancelled; a failing cycle is logged and retried."""
        while True:
            try:
                await self.run_cycle()
            except Exception:
                log.exception("monitor cycle failed")
            await asyncio.sleep(interval_s)

    def node_health(self, node_id: str) -> NodeHealth | None:
        return self._node_health.get(node_id)

    def _observe_nodes(
        self, nodes: Sequence[Node], now: int, out: list[ev.DomainEvent | NodeCommand]
    ) -> Mapping[str, NodeHealth]:
        health = {node.id: node_health(node, now, self._policy) for node in nodes}
        for node in nodes:
            current, previous = health[node.id], self._node_health.get(node.id)
            if node.last_heartbeat_at is not None and self._node_beats.get(node.id) != node.last_heartbeat_at:
                self._node_beats[node.id] = node.last_heartbeat_at
                out.append(
                    ev.NodeHeartbeatObserved(
                        at=now, node_id=node.id, tasks=tuple(sorted(node.current_tasks)), health=current.value
                    )
                )
            if current is previous:
                continue
            silent = node.silent_for(now)
            if current is NodeHealth.ONLINE:
                out.append(ev.NodeCameOnline(at=now, node_id=node.id))
            elif current is NodeHealth.SUSPECT:
                out.append(ev.NodeWentSuspect(at=now, node_id=node.id, silent_for_ms=silent))
            else:
                out.append(ev.NodeWentOffline(at=now, node_id=node.id, silent_for_ms=silent))
        for gone in self._node_health.keys() - health.keys():
            if self._node_health[gone] is not NodeHealth.OFFLINE:
                out.append(ev.NodeWentOffline(at=now, node_id=gone, silent_for_ms=-1))
        self._node_health = dict(health)
        self._node_beats = {k: v for k, v in self._node_beats.items() if k in health}
        return health

    def _observe_task(
        self,
        task: Task,
        report: HeartbeatReport | None,
        verdict: Verdict,
        now: int,
        out: list[ev.DomainEvent | NodeCommand],
    ) -> None:
        if report is not None and self._sequences.get(task.id) != report.sequence:
            self._sequences[task.id] = report.sequence
            self.counters.heartbeats += 1
            out.append(
                ev.TaskHeartbeatObserved(
                    at=now,
                    task_id=task.id,
                    sequence=report.sequence,
                    progress=report.progress,
                    verdict=verdict,
                    status=task.lifecycle_status,
                )
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
