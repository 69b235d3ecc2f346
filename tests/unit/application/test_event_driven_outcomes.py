"""Outcomes travel as events: what a node's supervisor sees is applied at once, not at the next cycle.

The loops run as in production (dispatcher, monitor and node ``run``) but with periods of an hour, so
anything that happens within the test happened because an event caused it, never because a poll came
round. Workers run in-process; the fake clock stands still, so no threshold is ever crossed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from skalds.application.tasks import TaskDraft
from skalds.domain import events as ev
from skalds.domain.nodes import NodeHealth
from skalds.domain.task import TaskStatus
from tests.unit.application.harness import CLASS, System, build_system
from tests.unit.application.test_live_state_loss import wipe

S = TaskStatus
HOUR_S = 3_600.0


@pytest.fixture
async def system() -> AsyncIterator[System]:
    built = await build_system()
    services = built.services
    loops = [
        asyncio.create_task(services.dispatcher.run(services.subscriber, interval_s=HOUR_S)),
        asyncio.create_task(services.monitor.run(interval_s=HOUR_S)),
    ]
    await asyncio.sleep(0.05)  # the monitor's first full cycle, and both subscriptions, are in place
    yield built
    for loop in loops:
        loop.cancel()
    await asyncio.gather(*loops, return_exceptions=True)
    await built.close()


async def run_node(system: System, node_id: str, *, capacity: int | None = None) -> asyncio.Task[None]:
    node = await system.add_node(node_id, capacity=capacity, listening=False)
    loop = asyncio.create_task(node.run(system.services.subscriber, heartbeat_interval_s=HOUR_S))
    system.listeners.append(loop)
    await asyncio.sleep(0.01)
    return loop


async def eventually(what: str, check: Callable[[], Awaitable[bool]]) -> None:
    """Until ``check`` holds; the deadline only bounds a hung test, it is not a claim about speed."""
    async with asyncio.timeout(10):
        while not await check():  # noqa: ASYNC110 - the API is read by polling, as a client would
            await asyncio.sleep(0.005)


def status_is(system: System, task_id: str, status: TaskStatus) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return (await system.services.tasks.get(task_id)).lifecycle_status is status

    return check


async def test_a_started_worker_shows_running_without_waiting_for_a_cycle(system: System) -> None:
    await run_node(system, "n1")
    task = await system.services.tasks.create(TaskDraft(class_name=CLASS))
    await eventually("running", status_is(system, task.id, S.RUNNING))
    assert system.services.monitor.counters.cycles >= 2  # the first full one, then one for the report


async def test_a_finished_worker_frees_its_slot_for_the_next_task_at_once(system: System) -> None:
    await run_node(system, "n1", capacity=1)
    first = await system.services.tasks.create(TaskDraft(id="first", class_name=CLASS, priority=5))
    second = await system.services.tasks.create(TaskDraft(id="second", class_name=CLASS))
    await eventually("first running", status_is(system, first.id, S.RUNNING))
    assert (await system.services.tasks.get(second.id)).lifecycle_status is S.CREATED  # no free slot
    system.workers.control(first.id).finish = True
    await eventually("first finished", status_is(system, first.id, S.FINISHED))
    await eventually("second running", status_is(system, second.id, S.RUNNING))


async def test_while_every_node_is_full_a_burst_of_creates_costs_one_cycle_not_one_each(
    system: System,
) -> None:
    """Nothing new can be placed while no node has a free slot, so creates join into one cycle (which gives
    them their pending reason) instead of a pass over the whole backlog per created task."""
    dispatcher = system.services.dispatcher
    await eventually("the first cycle", lambda: _true(dispatcher.counters.cycles >= 1))
    assert dispatcher.full  # no node at all
    before = dispatcher.counters.cycles
    ids = [(await system.services.tasks.create(TaskDraft(class_name=CLASS))).id for _ in range(50)]
    await eventually("every new task has its reason", lambda: _true(all(map(dispatcher.pending_reason, ids))))
    assert dispatcher.counters.cycles - before < 10


async def _true(value: bool) -> bool:
    return value


async def test_cancel_pause_resume_and_update_are_confirmed_by_events(system: System) -> None:
    await run_node(system, "n1")
    tasks = system.services.tasks
    task = await tasks.create(TaskDraft(class_name=CLASS, attachments={"round": 0}))
    await eventually("running", status_is(system, task.id, S.RUNNING))
    await tasks.update_attachments(task.id, {"round": 1})

    async def applied() -> bool:
        stored = await tasks.get(task.id)
        return stored.applied_attachments_version == stored.attachments_version

    await eventually("update applied", applied)
    assert system.workers.control(task.id).updates[-1][0] == {"round": 1}
    await tasks.pause(task.id)
    await eventually("paused", status_is(system, task.id, S.PAUSED))
    await tasks.resume(task.id)
    await eventually("resumed", status_is(system, task.id, S.RUNNING))
    await tasks.cancel(task.id)
    await eventually("cancelled", status_is(system, task.id, S.CANCELLED))


async def test_a_failing_worker_is_failed_at_once_and_the_event_names_the_node(system: System) -> None:
    reports: list[ev.WorkerChangesReported] = []
    subscription = system.services.subscriber.events()

    async def listen() -> None:
        async for event in subscription:
            if isinstance(event, ev.WorkerChangesReported):
                reports.append(event)

    listener = asyncio.create_task(listen())
    try:
        await run_node(system, "n1")
        task = await system.services.tasks.create(TaskDraft(class_name=CLASS))
        await eventually("running", status_is(system, task.id, S.RUNNING))
        system.workers.control(task.id).fail = "camera unreachable"
        await eventually("failed", status_is(system, task.id, S.FAILED))
        failed = await system.services.tasks.get(task.id)
        assert "camera unreachable" in (failed.last_error or "")
        assert {report.node_id for report in reports} == {"n1"}
        assert all(report.task_ids == (task.id,) for report in reports)
    finally:
        listener.cancel()
        await subscription.close()


# ---- what a cycle for reported changes must not decide (found in review) ------------------------------


async def test_a_reported_start_on_a_node_once_taken_for_offline_is_applied_not_requeued() -> None:
    """A node back after being offline (restarted with its id, or a healed partition) gets work at once; the
    cycle its first report triggers must not re-queue that task on the strength of the old verdict."""
    system = await build_system()
    try:
        services = system.services
        node = await system.add_node("n1")
        system.clock.advance(16_000)  # silent past dead-after (15 s here)
        await services.monitor.run_cycle()
        assert services.monitor.node_health("n1") is NodeHealth.OFFLINE
        await node.register()
        task = await services.tasks.create(TaskDraft(class_name=CLASS))
        await services.dispatcher.dispatch_once()
        await system.settle(0.05)
        await node.report_changes()
        await services.monitor.run_cycle(only={task.id})
        stored = await services.tasks.get(task.id)
        assert (stored.lifecycle_status, stored.executor, stored.attempt) == (S.RUNNING, "n1", 1)
    finally:
        await system.close()


async def test_a_change_reported_after_the_store_restarted_does_not_make_its_node_look_gone() -> None:
    """The 'node left' rule compares the store with what the last full cycle judged; a report judged in
    between must not make a node whose entry the restarted store lost look as if it removed itself."""
    system = await build_system()
    try:
        services = system.services
        node = await system.add_node("n1", capacity=3)
        for task_id in ("a", "b"):
            await services.tasks.create(TaskDraft(id=task_id, class_name=CLASS))
        for _ in range(3):
            await system.cycle()
        await node.report_changes()  # nothing pending, as the change loop would have left it
        await wipe(system)  # Redis restarted empty
        await services.tasks.update_attachments("a", {"x": 1})
        await system.settle(0.05)
        await node.report_changes()  # a's applied update, before n1's next beat restores its entry
        await services.monitor.run_cycle(only={"a"})
        await services.monitor.run_cycle()
        for task_id in ("a", "b"):
            stored = await services.tasks.get(task_id)
            assert (stored.lifecycle_status, stored.attempt) == (S.RUNNING, 1)
    finally:
        await system.close()
