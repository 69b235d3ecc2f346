"""A node never runs more workers than its capacity, whatever arrives: an assignment beyond it (two
dispatchers, a stale view) is handed back to the queue, not started."""

from __future__ import annotations

import asyncio

from skalds.adapters.memory.live_state import InMemoryLiveStateStore
from skalds.adapters.memory.repository import InMemoryTaskRepository
from skalds.adapters.memory.supervisor import InProcessWorkerContext, InProcessWorkerSupervisor
from skalds.application.node_runtime import NodeIdentity, NodeRuntime
from skalds.domain import lifecycle
from skalds.domain.commands import AssignTask
from skalds.domain.heartbeat import Outcome
from skalds.domain.lifecycle import TaskCommand
from skalds.domain.task import new_task
from tests.fakes import FakeClock

CLASS = "Forever"


async def forever(ctx: InProcessWorkerContext) -> None:
    while True:
        await ctx.checkpoint()
        await asyncio.sleep(0.001)


async def test_an_assignment_beyond_the_capacity_is_handed_back_not_started() -> None:
    clock = FakeClock()
    repository = InMemoryTaskRepository()
    live = InMemoryLiveStateStore(clock)
    supervisor = InProcessWorkerSupervisor({CLASS: forever})
    runtime = NodeRuntime(
        NodeIdentity(id="n1", supported_classes=frozenset({CLASS}), capacity=2),
        repository,
        live,
        clock,
        supervisor,
    )
    await runtime.register()
    try:
        for task_id in ("t1", "t2", "t3"):
            created = new_task(task_id=task_id, class_name=CLASS, now=clock.now_ms())
            task, _ = lifecycle.apply(created, TaskCommand.ASSIGN, at=clock.now_ms(), executor="n1")
            await repository.insert(task)
            await runtime.handle(
                AssignTask(task_id=task.id, node_id="n1", version=task.version, at=clock.now_ms(), attempt=1)
            )
        assert set(supervisor.states()) == {"t1", "t2"}
        reports = await live.latest_heartbeats(["t3"])
        assert reports["t3"].outcome is Outcome.RELEASED
        assert "all 2 slots busy" in (reports["t3"].error or "")
    finally:
        await supervisor.shutdown()
