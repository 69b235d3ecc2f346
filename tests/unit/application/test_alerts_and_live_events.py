"""Alerts fire on what an operator must see, and the system pushes change events as they happen."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from skalds.adapters.memory.notifications import InMemoryNotificationChannel
from skalds.application.tasks import TaskDraft
from skalds.domain import events as ev
from skalds.domain.alerts import AlertRule, Severity
from skalds.domain.nodes import Node
from skalds.domain.task import TaskStatus
from tests.contracts.event_bus import drain
from tests.unit.application.harness import CLASS, System, build_system, settings_for_tests


@pytest.fixture
async def system() -> AsyncIterator[System]:
    built = await build_system(settings_for_tests(alerts={"failure_min_samples": 2, "failure_rate": 0.5}))
    yield built
    await built.close()


def channel(system: System) -> InMemoryNotificationChannel:
    [only] = system.services.notification_channels
    assert isinstance(only, InMemoryNotificationChannel)
    return only


async def test_a_node_going_offline_raises_a_critical_alert_that_clears_when_it_returns(
    system: System,
) -> None:
    await system.add_node("n1")
    await system.services.monitor.run_cycle()
    await system.services.alerts.observe(ev.NodeCameOnline(at=1, node_id="n1"))
    await system.services.alerts.observe(ev.NodeWentOffline(at=2, node_id="n1", silent_for_ms=31_000))
    [alert] = system.services.alerts.active()
    assert (alert.rule, alert.severity, alert.subject) == (AlertRule.NODE_OFFLINE, Severity.CRITICAL, "n1")
    assert "31000 ms" in alert.message
    await system.services.alerts.observe(ev.NodeCameOnline(at=3, node_id="n1"))
    assert system.services.alerts.active() == []
    assert [a.resolved_at is not None for a in system.services.alerts.history()] == [True]
    assert [a.rule for a in channel(system).delivered] == [AlertRule.NODE_OFFLINE, AlertRule.NODE_OFFLINE]


async def test_a_failed_task_alerts_once_and_more_failures_raise_the_failure_rate_alert(
    system: System,
) -> None:
    events = system.services.subscriber.events()
    await system.add_node("n1")
    for name in ("a", "b"):
        await system.services.tasks.create(TaskDraft(id=name, class_name=CLASS, max_attempts=1))
    await system.cycle()
    for name in ("a", "b"):
        system.workers.control(name).fail = "bad input"
    await system.settle()
    await system.cycle()
    for event in await drain(events):
        await system.services.alerts.observe(event)
    await system.services.alerts.evaluate()
    rules = sorted((a.rule.value, a.subject, a.severity.value) for a in system.services.alerts.active())
    assert rules == [
        ("failure_rate", "tasks", "critical"),
        ("task_failed", "a", "critical"),
        ("task_failed", "b", "critical"),
    ]


async def test_a_stalled_task_alerts_and_clears_when_progress_resumes(system: System) -> None:
    alerts = system.services.alerts
    await alerts.observe(ev.TaskVerdictChanged(at=1, task_id="t1", previous="progressing", verdict="stalled"))
    await alerts.observe(ev.TaskVerdictChanged(at=2, task_id="t1", previous="progressing", verdict="stalled"))
    assert [a.rule for a in alerts.active()] == [AlertRule.TASK_STALLED]
    await alerts.observe(ev.TaskVerdictChanged(at=3, task_id="t1", previous="stalled", verdict="progressing"))
    assert alerts.active() == []


async def test_a_node_above_its_resource_thresholds_alerts(system: System) -> None:
    now = system.clock.now_ms()
    await system.services.live_state.put_node(
        Node(id="hot", registered_at=now, last_heartbeat_at=now, cpu_percent=97.0, memory_percent=50.0)
    )
    await system.services.alerts.evaluate()
    [alert] = system.services.alerts.active()
    assert (alert.rule, alert.subject) == (AlertRule.NODE_RESOURCES, "hot")
    assert "CPU 97%" in alert.message


async def test_status_heartbeat_and_node_changes_are_pushed_as_events(system: System) -> None:
    events = system.services.subscriber.events()
    await system.add_node("n1")
    task = await system.services.tasks.create(TaskDraft(class_name=CLASS))
    await system.cycle()
    system.workers.control(task.id).progress = 10
    await system.settle()
    await system.cycle()
    seen = await drain(events)
    kinds = [type(e).__name__ for e in seen]
    for expected in (
        "NodeCameOnline",
        "TaskCreated",
        "TaskAssigned",
        "TaskStarted",
        "TaskHeartbeatsObserved",
    ):
        assert expected in kinds
    beats = [b for e in seen if isinstance(e, ev.TaskHeartbeatsObserved) for b in e.each()]
    assert any(
        b.task_id == task.id and b.progress == 10 for b in beats
    )  # one batch per cycle, this task in it


async def test_a_cycles_new_heartbeats_go_out_in_batches_not_one_event_per_task(system: System) -> None:
    await system.add_node("n1", capacity=5)
    for n in range(5):
        await system.services.tasks.create(TaskDraft(id=f"t{n}", class_name=CLASS))
    await system.cycle()
    events = system.services.subscriber.events()
    for n in range(5):
        system.workers.control(f"t{n}").progress = 50
    await system.settle()
    await system.beat("n1")
    await system.cycle()
    batches = [e for e in await drain(events) if isinstance(e, ev.TaskHeartbeatsObserved)]
    assert len(batches) == 1
    assert sorted(batches[0].task_ids) == [f"t{n}" for n in range(5)] and set(batches[0].progress) == {50}


async def test_the_dispatcher_assigns_a_new_task_at_once_not_at_its_next_sweep(system: System) -> None:
    await system.add_node("n1")
    loop = asyncio.create_task(system.services.dispatcher.run(system.services.subscriber, interval_s=3_600))
    try:
        await asyncio.sleep(0.01)  # the first sweep ran and found nothing
        task = await system.services.tasks.create(TaskDraft(class_name=CLASS))
        for _ in range(200):
            if (await system.services.tasks.get(task.id)).lifecycle_status is TaskStatus.ASSIGNING:
                break
            await asyncio.sleep(0.005)
        assert (await system.services.tasks.get(task.id)).lifecycle_status is TaskStatus.ASSIGNING
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)


async def test_a_worker_that_ignores_pause_is_reported_not_left_silently_running(system: System) -> None:
    events = system.services.subscriber.events()
    await system.add_node("n1")
    task = await system.services.tasks.create(TaskDraft(class_name=CLASS))
    await system.cycle()
    system.workers.control(task.id).ignore_cancel = True  # never reaches a checkpoint, so never pauses
    await system.services.tasks.pause(task.id)
    for _ in range(8):
        await system.cycle()
    assert (await system.services.tasks.get(task.id)).lifecycle_status is TaskStatus.RUNNING
    ignored = [e for e in await drain(events) if isinstance(e, ev.TaskPauseNotHonoured)]
    assert [e.task_id for e in ignored] == [task.id]
    assert ignored[0].requested_for_ms >= 5_000


async def test_no_heartbeat_event_carries_a_status_older_than_the_change_published_before_it(
    system: System,
) -> None:
    """Live views (upstream's page above all) take a task's status from its newest frame, so a beat judged
    in the same cycle as a change must carry the status that change led to, never the one it left."""
    events = system.services.subscriber.events()
    await system.add_node("n1")
    task = await system.services.tasks.create(TaskDraft(class_name=CLASS))
    for step in range(6):
        system.workers.control(task.id).progress = 10 * step
        if step == 2:
            await system.services.tasks.pause(task.id)
        if step == 3:
            await system.services.tasks.resume(task.id)
        if step == 5:
            system.workers.control(task.id).finish = True
        await system.cycle()
    announced: TaskStatus | None = None
    beats = 0
    for event in await drain(events):
        if isinstance(event, ev.TaskEvent) and event.task_id == task.id:
            announced = event.to_status
        for beat in event.each() if isinstance(event, ev.TaskHeartbeatsObserved) else ():
            beats += 1
            assert beat.status is announced, f"a beat said {beat.status} after {announced} was announced"
    assert beats >= 3 and announced is TaskStatus.FINISHED
