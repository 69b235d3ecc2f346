"""A node's liveness never waits on the task database: renewal touches only the live-state store, and the
fence reads the node's own tasks by id, never with a list query."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence

import pytest

from skalds.adapters.memory.live_state import InMemoryLiveStateStore
from skalds.adapters.memory.repository import InMemoryTaskRepository
from skalds.adapters.memory.supervisor import InProcessWorkerContext, InProcessWorkerSupervisor
from skalds.application.node_runtime import NodeIdentity, NodeRuntime
from skalds.application.tasks import TaskDraft
from skalds.domain import lifecycle
from skalds.domain.lifecycle import TaskCommand
from skalds.domain.ports import TaskPage, TaskQuery
from skalds.domain.task import Task, TaskStatus, new_task
from tests.fakes import FakeClock
from tests.unit.application.harness import CLASS as HARNESS_CLASS
from tests.unit.application.harness import build_system

CLASS = "Forever"


class BusyDatabase(InMemoryTaskRepository):
    """A task database so loaded that no read returns while ``stalled``; counts each kind of read."""

    def __init__(self) -> None:
        super().__init__()
        self.stalled = False
        self._released = asyncio.Event()
        self.list_queries = 0
        self.reads_by_id = 0

    def release(self) -> None:
        self.stalled = False
        self._released.set()

    async def _wait(self) -> None:
        if self.stalled:
            await self._released.wait()

    async def get(self, task_id: str) -> Task:
        self.reads_by_id += 1
        await self._wait()
        return await super().get(task_id)

    async def get_many(self, task_ids: Sequence[str]) -> dict[str, Task]:
        self.reads_by_id += 1
        await self._wait()
        return await super().get_many(task_ids)

    async def list(self, query: TaskQuery) -> TaskPage:
        self.list_queries += 1
        await self._wait()
        return await super().list(query)


async def deaf(ctx: InProcessWorkerContext) -> None:
    """Never looks at its cancel: only the supervisor's escalation ends it."""
    await asyncio.Event().wait()


async def forever(ctx: InProcessWorkerContext) -> None:
    while True:
        await ctx.checkpoint()
        ctx.report_progress(1)
        await asyncio.sleep(0.001)


async def until(holds: Callable[[], bool]) -> None:
    """Until ``holds()``; the deadline bounds a hung test only."""
    async with asyncio.timeout(5):
        while not holds():  # noqa: ASYNC110 - the supervisor port reports by polling
            await asyncio.sleep(0.001)


class Node:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.database = BusyDatabase()
        self.live = InMemoryLiveStateStore(self.clock)
        self.supervisor = InProcessWorkerSupervisor({CLASS: forever, "Deaf": deaf}, cancel_grace_s=3_600)
        self.runtime = NodeRuntime(
            NodeIdentity(id="n1", supported_classes=frozenset({CLASS, "Deaf"})),
            self.database,
            self.live,
            self.clock,
            self.supervisor,
            lease_ms=5_000,
            stop_within_ms=50,
        )

    async def running_task(self, task_id: str, class_name: str = CLASS) -> Task:
        """A task assigned to n1 with its worker started and beating."""
        created = new_task(task_id=task_id, class_name=class_name, now=self.clock.now_ms())
        task, _ = lifecycle.apply(created, TaskCommand.ASSIGN, at=self.clock.now_ms(), executor="n1")
        await self.database.insert(task)
        await self.supervisor.start(task)
        await until(lambda: self.supervisor.states()[task_id].started)
        return task


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    built = Node()
    await built.runtime.register()
    # starting looks once for tasks a previous run left (node_runtime._release_previous_run); what these
    # tests count is what renewal and the fence read afterwards
    built.database.list_queries = built.database.reads_by_id = 0
    yield built
    built.database.release()
    await built.supervisor.shutdown()


async def test_renewal_completes_while_the_task_database_answers_nothing(node: Node) -> None:
    await node.running_task("t1")
    node.database.stalled = True
    node.clock.advance(1_000)
    await asyncio.wait_for(node.runtime.beat(), timeout=5)  # bounds a hung test only
    listed = {n.id: n for n in await node.live.list_nodes()}
    assert listed["n1"].last_heartbeat_at == node.clock.now_ms()
    assert listed["n1"].current_tasks == frozenset({"t1"})
    assert "t1" in await node.live.latest_heartbeats(["t1"])
    assert node.database.list_queries == 0 and node.database.reads_by_id == 0


async def test_a_renewed_node_never_loses_its_lease_however_long_the_database_stalls(node: Node) -> None:
    await node.running_task("t1")
    node.database.stalled = True
    fencing = asyncio.create_task(node.runtime.fence())  # stuck on the database
    for _ in range(30):  # 30 s of beats, six leases
        node.clock.advance(1_000)
        await node.runtime.beat()
    assert node.supervisor.states()["t1"].outcome is None
    node.database.release()
    await fencing
    assert node.supervisor.states()["t1"].outcome is None  # still its own: nothing to stop


async def test_the_fence_reads_by_id_and_stops_a_worker_whose_task_moved(node: Node) -> None:
    task = await node.running_task("t1")
    await node.running_task("t2")
    moved, _ = lifecycle.apply(
        task, TaskCommand.REQUEUE, at=node.clock.now_ms(), reason="node n1 went offline"
    )
    await node.database.update(moved, task.version)
    await node.runtime.fence()
    assert (node.database.list_queries, node.database.reads_by_id) == (0, 1)
    await until(lambda: node.supervisor.states()["t1"].outcome is not None)
    assert node.supervisor.states()["t2"].outcome is None


async def test_a_worker_of_an_earlier_attempt_is_stopped(node: Node) -> None:
    task = await node.running_task("t1")
    requeued, _ = lifecycle.apply(task, TaskCommand.REQUEUE, at=node.clock.now_ms(), reason="test")
    again, _ = lifecycle.apply(requeued, TaskCommand.ASSIGN, at=node.clock.now_ms(), executor="n1")
    await node.database.update(again, task.version)
    assert again.attempt == task.attempt + 1 and again.lifecycle_status is TaskStatus.ASSIGNING
    await node.runtime.fence()
    await until(lambda: node.supervisor.states()["t1"].outcome is not None)


async def test_a_node_out_of_touch_past_its_lease_stops_even_a_deaf_worker_at_once(node: Node) -> None:
    await node.running_task("t1", "Deaf")
    node.clock.advance(5_001)  # no renewal reached the store for longer than the lease
    await node.runtime.check_lease()
    await until(lambda: node.supervisor.states()["t1"].outcome is not None)  # not after the hour's grace


async def test_a_node_that_lost_its_lease_hands_its_tasks_back_and_takes_work_again() -> None:
    """Regression (issue 15): a node whose renewal stalled past its lease stopped every worker at once and
    reported nothing, so its tasks stayed Running on it until their silence failed them, and the node,
    counted full, got no work meanwhile. Now the stopped workers are reported released, the tasks are
    re-queued at once, and the node runs them again."""
    system = await build_system()
    try:
        await system.add_node("n1", capacity=2)
        first = await system.services.tasks.create(TaskDraft(class_name=HARNESS_CLASS))
        second = await system.services.tasks.create(TaskDraft(class_name=HARNESS_CLASS))
        await system.cycle()
        await system.cycle(advance_ms=6_000, beating=())  # n1's renewals do not reach the store: > lease
        for _ in range(5):  # n1 is back in touch: it stops its workers, hands them back, gets them again
            await system.cycle(advance_ms=100)
        for task_id in (first.id, second.id):
            task = await system.services.tasks.get(task_id)
            assert (task.lifecycle_status, task.executor, task.attempt) == (TaskStatus.RUNNING, "n1", 2)
            assert task.last_error is None
    finally:
        await system.close()
