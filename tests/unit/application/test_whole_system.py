"""Random interleavings of everything operators, nodes and workers do, against the whole application.

Two dispatchers, three nodes that may die and come back, workers that finish, fail or make progress,
operators who cancel, pause, resume, update, retry and delete, a live-state store that comes back empty, and
a monitor that restarts remembering nothing. After every step: at most one live worker per task, no lost
update, every task's history is a legal path, offline nodes get no new work, and nothing created disappears
unless it was deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import random
import shutil
import tempfile
from collections import defaultdict

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from skalds.application.dispatching import Dispatcher
from skalds.application.monitoring import Monitor
from skalds.application.reconciling import ReconcileRules
from skalds.application.tasks import TaskDraft
from skalds.bootstrap import stop
from skalds.config import Settings
from skalds.domain import events as ev
from skalds.domain.errors import ConflictError, IllegalTransitionError, TaskNotFoundError
from skalds.domain.lifecycle import TRANSITIONS
from skalds.domain.ports import Subscription
from tests.unit.application.harness import CLASS, System, build_system, settings_for_tests

LEGAL_STEPS = {(src, dst) for (src, _), dst in TRANSITIONS.items()}
NODES = ("n0", "n1", "n2")
REFUSALS = (IllegalTransitionError, ConflictError, TaskNotFoundError)


class WholeSystem(RuleBasedStateMachine):
    tasks = Bundle("tasks")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.system: System = self.run(build_system(self.system_settings()))
        services = self.system.services
        self.second = Dispatcher(
            services.repository,
            services.live_state,
            services.publisher,
            self.system.clock,
            strategy=services.dispatcher.strategy,
            policy=services.settings.heartbeat.policy(),
            rng=random.Random(3),
        )
        self.events: list[ev.DomainEvent] = []
        self.subscription: Subscription[ev.DomainEvent] = services.subscriber.events()
        self.collector = self.loop.create_task(self._collect())
        self.alive: set[str] = set()
        for node_id in NODES:
            self.run(self.system.add_node(node_id, capacity=2))
            self.alive.add(node_id)
        self.created: set[str] = set()
        self.deleted: set[str] = set()
        self.counter = 0

    def system_settings(self) -> Settings | None:
        """The system's settings (None: the in-memory defaults)."""
        return None

    def run(self, coroutine):  # type: ignore[no-untyped-def]
        return self.loop.run_until_complete(coroutine)

    async def _collect(self) -> None:
        async for event in self.subscription:
            self.events.append(event)

    def settle(self) -> None:
        self.run(asyncio.sleep(0.003))

    def teardown(self) -> None:
        self.collector.cancel()
        self.run(self.system.close())
        self.run(self._cancel_leftovers())
        self.loop.close()

    async def _cancel_leftovers(self) -> None:
        leftovers = asyncio.all_tasks() - {asyncio.current_task()}
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)

    # --- operators ---------------------------------------------------------------------------------

    @initialize(target=tasks, priorities=st.lists(st.integers(0, 10), min_size=3, max_size=6))
    def a_backlog(self, priorities: list[int]) -> MultipleResults[str]:
        return multiple(*(self.create(priority) for priority in priorities))

    @rule(target=tasks, priority=st.integers(0, 10))
    def create(self, priority: int) -> str:
        self.counter += 1
        task = self.run(
            self.system.services.tasks.create(
                TaskDraft(id=f"t{self.counter}", class_name=CLASS, priority=priority)
            )
        )
        self.created.add(task.id)
        self.settle()
        return task.id

    @rule(task_id=tasks, action=st.sampled_from(["cancel", "pause", "resume", "retry"]))
    def steer(self, task_id: str, action: str) -> None:
        with contextlib.suppress(REFUSALS):
            self.run(getattr(self.system.services.tasks, action)(task_id))
        self.settle()

    @rule(task_id=tasks, fps=st.integers(1, 60))
    def update(self, task_id: str, fps: int) -> None:
        with contextlib.suppress(REFUSALS):
            self.run(self.system.services.tasks.update_attachments(task_id, {"fps": fps}))
        self.settle()

    @rule(task_id=tasks)
    def delete(self, task_id: str) -> None:
        try:
            self.run(self.system.services.tasks.delete(task_id))
        except REFUSALS:
            return
        self.deleted.add(task_id)

    # --- control plane -----------------------------------------------------------------------------

    @rule(which=st.sampled_from([0, 1]))
    def dispatch(self, which: int) -> None:
        dispatcher = self.system.services.dispatcher if which == 0 else self.second
        before = len(self.events)
        self.run(dispatcher.retry_due())
        self.run(dispatcher.dispatch_once())
        self.settle()
        now = self.system.clock.now_ms()
        policy = self.system.services.settings.heartbeat.policy()
        for event in self.events[before:]:
            if isinstance(event, ev.TaskAssigned):
                node = self.run(self.system.services.live_state.get_node(event.executor))
                assert node is not None and node.silent_for(now) <= policy.suspect_after_ms, (
                    "offline node got work"
                )

    @rule(which=st.sampled_from([0, 1]))
    def a_healthy_second_passes(self, which: int) -> None:
        """Time moves on while every live node beats: what most of a real system's life looks like."""
        self.system.clock.advance(1_000)
        for node_id in sorted(self.alive):
            self.run(self.system.nodes[node_id].beat())
        self.dispatch(which)
        for node_id in sorted(self.alive):
            self.run(self.system.nodes[node_id].beat())
        self.monitor()

    @rule()
    def monitor(self) -> None:
        self.run(self.system.services.monitor.run_cycle())
        self.settle()

    @rule(ms=st.sampled_from([500, 2_000, 6_000, 16_000]))
    def time_passes(self, ms: int) -> None:
        """Time passes; every running node's own timer checks its lease, as its run loop would."""
        self.system.clock.advance(ms)
        for node_id in sorted(self.alive):
            self.run(self.system.nodes[node_id].check_lease())
        self.settle()

    @rule()
    def live_state_restarts_empty(self) -> None:
        """Redis restarts without persistence: every heartbeat and node entry is gone at once."""
        live = self.system.services.live_state
        self.run(live.forget_tasks(sorted(self.created)))
        for node in self.run(live.list_nodes()):
            self.run(live.remove_node(node.id))

    @rule()
    def controller_restarts(self) -> None:
        """A new monitor over the same stores, remembering nothing."""
        services = self.system.services
        monitor = Monitor(
            services.repository,
            services.live_state,
            services.publisher,
            self.system.clock,
            policy=services.settings.heartbeat.policy(),
            rules=ReconcileRules(
                retry=services.settings.retry.policy(),
                offline_node_policy=services.settings.dispatch.offline_node_policy,
                assign_timeout_ms=services.settings.dispatch.assign_timeout_ms,
            ),
            cancel_grace_ms=services.settings.monitor.cancel_grace_ms,
            pause_grace_ms=services.settings.monitor.pause_grace_ms,
        )
        self.system.services = dataclasses.replace(services, monitor=monitor)

    # --- nodes and workers -------------------------------------------------------------------------

    @rule(node_id=st.sampled_from(NODES))
    def beat(self, node_id: str) -> None:
        if node_id in self.alive:
            self.run(self.system.nodes[node_id].beat())
            self.settle()

    @precondition(lambda self: len(self.alive) > 1)
    @rule(node_id=st.sampled_from(NODES))
    def node_dies(self, node_id: str) -> None:
        if node_id in self.alive:
            self.alive.discard(node_id)
            self.run(self.system.nodes[node_id]._supervisor.shutdown())

    @rule(node_id=st.sampled_from(NODES))
    def node_comes_back(self, node_id: str) -> None:
        if node_id not in self.alive:
            self.alive.add(node_id)
            self.run(self.system.add_node(node_id, capacity=2))
            self.settle()

    @rule(task_id=tasks, outcome=st.sampled_from(["finish", "fail", "progress"]))
    def worker(self, task_id: str, outcome: str) -> None:
        control = self.system.workers.control(task_id)
        if outcome == "finish":
            control.finish = True
        elif outcome == "fail":
            control.fail = "scripted failure"
        else:
            control.progress += 1
        self.settle()

    # --- invariants --------------------------------------------------------------------------------

    @invariant()
    def at_most_one_live_worker_per_task(self) -> None:
        owners: dict[str, list[str]] = defaultdict(list)
        for node_id in self.alive:
            for task_id, state in self.system.nodes[node_id]._supervisor.states().items():
                if state.outcome is None:
                    owners[task_id].append(node_id)
        assert all(len(nodes) <= 1 for nodes in owners.values()), owners

    @invariant()
    def no_lost_update_and_every_history_is_legal(self) -> None:
        by_task: dict[str, list[ev.TaskEvent]] = defaultdict(list)
        for event in self.events:
            if isinstance(event, ev.TaskEvent) and not isinstance(event, ev.TaskDeleted):
                by_task[event.task_id].append(event)
        for task_id, history in by_task.items():
            versions = [e.version for e in history]
            assert versions == list(range(1, len(versions) + 1)), (task_id, versions)
            for previous, current in itertools.pairwise(history):
                assert current.from_status == previous.to_status, (task_id, previous, current)
                step = (current.from_status, current.to_status)
                assert current.from_status == current.to_status or step in LEGAL_STEPS, (task_id, step)
            if task_id not in self.deleted:
                stored = self.run(self.system.services.repository.get(task_id))
                assert stored.version == history[-1].version
                assert stored.lifecycle_status == history[-1].to_status

    @invariant()
    def nothing_created_is_silently_dropped(self) -> None:
        for task_id in self.created - self.deleted:
            self.run(self.system.services.repository.get(task_id))


WholeSystem.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestWholeSystem = WholeSystem.TestCase


class WholeSystemOnSqlite(WholeSystem):
    """The same interleavings with the tasks in a SQLite file: the embedded default of ``skalds up``."""

    def system_settings(self) -> Settings | None:
        self.folder = tempfile.mkdtemp(prefix="skalds-whole-system-")
        path = f"{self.folder}/tasks.sqlite3"
        return settings_for_tests(backends={"repository": "sqlite"}, sqlite={"path": path})

    def teardown(self) -> None:
        if self.system.container is not None:
            self.run(stop(self.system.container))
        super().teardown()
        shutil.rmtree(self.folder, ignore_errors=True)


WholeSystemOnSqlite.TestCase.settings = settings(
    max_examples=10,  # each step is a few file writes: a third of the memory run's examples
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestWholeSystemOnSqlite = WholeSystemOnSqlite.TestCase
