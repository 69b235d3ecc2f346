"""A node handles a batch of commands as it would handle them one by one: in order, each start judged on
its task as stored (read for the whole batch at once), a cancel later in the batch obeyed after the start."""

from __future__ import annotations

import asyncio

from skalds.adapters.memory.live_state import InMemoryLiveStateStore
from skalds.adapters.memory.repository import InMemoryTaskRepository
from skalds.adapters.memory.supervisor import InProcessWorkerSupervisor
from skalds.application.node_runtime import NodeIdentity, NodeRuntime
from skalds.domain import lifecycle
from skalds.domain.commands import AssignTask, CancelTask
from skalds.domain.heartbeat import Outcome
from skalds.domain.lifecycle import TaskCommand
from skalds.domain.task import Task, new_task
from tests.fakes import FakeClock
from tests.unit.application.test_node_capacity import CLASS, forever


async def assigned(repository: InMemoryTaskRepository, task_id: str, now: int) -> Task:
    task, _ = lifecycle.apply(
        new_task(task_id=task_id, class_name=CLASS, now=now), TaskCommand.ASSIGN, at=now, executor="n1"
    )
    await repository.insert(task)
    return task


def assign(task: Task) -> AssignTask:
    return AssignTask(task_id=task.id, node_id="n1", version=task.version, at=0, attempt=task.attempt)


async def test_a_batch_starts_its_assignments_in_order_and_obeys_a_later_cancel() -> None:
    clock = FakeClock()
    repository = InMemoryTaskRepository()
    supervisor = InProcessWorkerSupervisor({CLASS: forever}, cancel_grace_s=0.05)
    runtime = NodeRuntime(
        NodeIdentity(id="n1", supported_classes=frozenset({CLASS})),
        repository,
        InMemoryLiveStateStore(clock),
        clock,
        supervisor,
    )
    await runtime.register()
    try:
        a, b, c = [await assigned(repository, task_id, clock.now_ms()) for task_id in "abc"]
        # c was cancelled after its assignment was sent, before the node read it: not started
        cancelled, _ = lifecycle.apply(c, TaskCommand.CANCEL, at=clock.now_ms())
        await repository.update(cancelled, expected_version=c.version)
        other_node = AssignTask(task_id="x", node_id="n2", version=2, at=0, attempt=1)
        await runtime.handle_batch(
            [
                assign(a),
                other_node,
                assign(b),
                assign(c),
                CancelTask(task_id="a", node_id="n1", version=3, at=0),
            ]
        )
        assert set(supervisor.states()) == {"a", "b"}  # c not started, x not this node's
        async with asyncio.timeout(10):  # the cancel came after a's start, so it stopped a's worker
            while supervisor.states()["a"].outcome is not Outcome.CANCELLED:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
        assert supervisor.states()["b"].outcome is None
    finally:
        await supervisor.shutdown()
