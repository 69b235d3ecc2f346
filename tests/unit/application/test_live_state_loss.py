"""The live-state store comes back empty (Redis restarted without persistence): nothing is re-queued for that.

A wipe is what a restarted Redis looks like through the port: every heartbeat forgotten, every node removed.
Settings for tests: suspect after 5 s, dead after 15 s, first-heartbeat grace 10 s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from skalds.application.monitoring import Monitor
from skalds.application.reconciling import ReconcileRules
from skalds.application.tasks import TaskDraft
from skalds.domain import events as ev
from skalds.domain.heartbeat import HeartbeatReport
from skalds.domain.ports import Subscription, TaskQuery
from skalds.domain.task import Task, TaskStatus
from tests.contracts.event_bus import drain
from tests.unit.application.harness import CLASS, System, build_system

S = TaskStatus
DEAD_AFTER_MS = 15_000


@pytest.fixture
async def system() -> AsyncIterator[System]:
    built = await build_system()
    yield built
    await built.close()


async def running(system: System, node_ids: tuple[str, ...], count: int) -> list[Task]:
    """``count`` tasks running on ``node_ids``, for a while already (longer than any grace)."""
    for node_id in node_ids:
        await system.add_node(node_id, capacity=count)
    for n in range(count):
        await system.services.tasks.create(TaskDraft(id=f"t{n}", class_name=CLASS))
    for _ in range(40):  # 40 s of a healthy system
        await system.cycle()
    tasks = await live_tasks(system)
    assert [(t.lifecycle_status, t.attempt) for t in tasks] == [(S.RUNNING, 1)] * count
    return tasks


async def live_tasks(system: System) -> list[Task]:
    page = await system.services.repository.list(TaskQuery(limit=None))
    return sorted(page.items, key=lambda t: t.id)


async def wipe(system: System) -> None:
    """What a restarted Redis looks like: every heartbeat and every node entry gone."""
    live = system.services.live_state
    await live.forget_tasks([t.id for t in await live_tasks(system)])
    for node in await live.list_nodes():
        await live.remove_node(node.id)
    assert await live.list_nodes() == []


def restart_the_monitor(system: System) -> None:
    """A second monitor over the same repository and live state, as a restarted controller builds it."""
    services = system.services
    settings = services.settings
    fresh = Monitor(
        services.repository,
        services.live_state,
        services.publisher,
        system.clock,
        policy=settings.heartbeat.policy(),
        rules=ReconcileRules(
            retry=settings.retry.policy(),
            offline_node_policy=settings.dispatch.offline_node_policy,
            assign_timeout_ms=settings.dispatch.assign_timeout_ms,
        ),
        cancel_grace_ms=settings.monitor.cancel_grace_ms,
        pause_grace_ms=settings.monitor.pause_grace_ms,
    )
    system.services = dataclasses.replace(services, monitor=fresh)


async def look(system: System) -> None:
    """A second passes and the monitor judges; no node beats."""
    system.clock.advance(1_000)
    await system.services.monitor.run_cycle()


def alarms(events: list[ev.DomainEvent]) -> list[ev.DomainEvent]:
    """Everything that says a node or a worker is in trouble, or moves a task because of it."""
    troubled = (ev.NodeWentSuspect, ev.NodeWentOffline, ev.TaskRequeued, ev.TaskFailed)
    return [
        e
        for e in events
        if isinstance(e, troubled)
        or (isinstance(e, ev.TaskVerdictChanged) and e.verdict in {"suspect", "dead"})
    ]


async def quiet(events: Subscription[ev.DomainEvent]) -> list[ev.DomainEvent]:
    return alarms(await drain(events))


async def test_an_emptied_store_requeues_nothing_while_the_nodes_are_healthy(system: System) -> None:
    before = await running(system, ("n1", "n2"), 4)
    events = system.services.subscriber.events()
    await wipe(system)
    for _ in range(3):  # the monitor looks before any node has re-reported, more than once
        await look(system)
    assert await live_tasks(system) == before
    for _ in range(5):  # the nodes re-register and re-report
        await system.cycle()
    after = await live_tasks(system)
    assert [(t.lifecycle_status, t.executor, t.attempt) for t in after] == [
        (S.RUNNING, t.executor, 1) for t in before
    ]
    assert await quiet(events) == []
    assert sorted(system.workers.started) == [t.id for t in before]  # the same workers, never started twice


async def test_a_node_that_re_reports_its_workers_before_its_entry_is_not_taken_for_gone(
    system: System,
) -> None:
    before = await running(system, ("n1",), 2)
    await wipe(system)
    system.clock.advance(1_000)
    for task in before:  # a node's beat writes its workers' heartbeats first, then its own entry
        await system.services.live_state.record_heartbeat(
            task.id, HeartbeatReport(received_at=system.clock.now_ms(), sequence=10_000, attempt=task.attempt)
        )
    await system.services.monitor.run_cycle()
    await system.beat("n1")
    await system.cycle()
    assert [(t.lifecycle_status, t.attempt) for t in await live_tasks(system)] == [(S.RUNNING, 1)] * 2


async def test_a_node_that_died_while_the_store_was_emptied_loses_its_tasks_after_dead_after(
    system: System,
) -> None:
    before = await running(system, ("n1",), 2)
    last_heard = system.clock.now_ms()  # n1 beat and the monitor saw it in the last cycle
    await system.add_node("n2", capacity=2)
    events = system.services.subscriber.events()
    await system.nodes["n1"]._supervisor.shutdown()  # n1 dies (its workers with it) ...
    await wipe(system)  # ... and the store forgets it had ever been there
    while system.clock.now_ms() - last_heard < DEAD_AFTER_MS:
        await system.cycle(beating=("n2",))
    assert await live_tasks(system) == before  # silent for exactly dead_after: not yet
    await system.cycle(beating=("n2",))
    assert [(t.lifecycle_status, t.attempt) for t in await live_tasks(system)] == [(S.CREATED, 1)] * 2
    await system.cycle(beating=("n2",))
    moved = await live_tasks(system)
    assert [(t.lifecycle_status, t.executor, t.attempt) for t in moved] == [(S.RUNNING, "n2", 2)] * 2
    node_events = [e for e in await drain(events) if isinstance(e, ev.NodeEvent) and e.node_id == "n1"]
    assert [(type(e).__name__, getattr(e, "silent_for_ms", None)) for e in node_events] == [
        ("NodeWentSuspect", 6_000),
        ("NodeWentOffline", 16_000),
    ]
    await system.cycle(beating=("n2",))
    assert system.services.monitor.node_health("n1") is None  # forgotten once offline and unnamed


async def test_a_restarted_monitor_requeues_nothing_before_nodes_it_never_saw_report(system: System) -> None:
    before = await running(system, ("n1", "n2"), 4)
    events = system.services.subscriber.events()
    await wipe(system)
    restart_the_monitor(system)
    for _ in range(4):  # it looks, and looks again, before any node re-reports (within the nodes' lease)
        await look(system)
    assert await live_tasks(system) == before
    for _ in range(3):
        await system.cycle()
    assert [(t.lifecycle_status, t.executor, t.attempt) for t in await live_tasks(system)] == [
        (S.RUNNING, t.executor, 1) for t in before
    ]
    assert sorted(system.workers.started) == [t.id for t in before]
    unheard = [e for e in await quiet(events) if not isinstance(e, ev.TaskVerdictChanged)]
    assert unheard == []  # what it never heard from is at worst suspect until it has listened dead_after


async def test_a_restarted_monitor_requeues_the_tasks_of_a_node_that_never_returns_after_its_grace(
    system: System,
) -> None:
    await running(system, ("n1",), 2)
    await system.add_node("n2", capacity=2)
    await system.nodes["n1"]._supervisor.shutdown()
    await wipe(system)
    restart_the_monitor(system)
    await system.cycle(beating=("n2",))
    first_cycle = system.clock.now_ms()
    while system.clock.now_ms() - first_cycle < DEAD_AFTER_MS:
        await system.cycle(beating=("n2",))
    assert {t.lifecycle_status for t in await live_tasks(system)} == {S.RUNNING}
    await system.cycle(beating=("n2",))
    assert [(t.lifecycle_status, t.attempt) for t in await live_tasks(system)] == [(S.CREATED, 1)] * 2
    await system.cycle(beating=("n2",))
    assert {(t.lifecycle_status, t.executor) for t in await live_tasks(system)} == {(S.RUNNING, "n2")}


async def test_a_node_handing_its_tasks_back_has_them_requeued_at_once(system: System) -> None:
    await running(system, ("n1",), 2)
    await system.add_node("n2", capacity=2)
    await system.nodes.pop("n1").stop(drain=False, drain_timeout_s=0)
    await system.cycle()
    assert [(t.lifecycle_status, t.attempt) for t in await live_tasks(system)] == [(S.CREATED, 1)] * 2
    await system.cycle()
    assert {(t.lifecycle_status, t.executor) for t in await live_tasks(system)} == {(S.RUNNING, "n2")}


async def test_a_node_that_beat_once_more_before_handing_back_has_them_requeued_a_cycle_later(
    system: System,
) -> None:
    await running(system, ("n1",), 2)
    await system.add_node("n2", capacity=2)
    system.clock.advance(500)
    await system.beat("n1")  # a beat the monitor has not seen: it cannot tell it from a re-report yet
    await system.nodes.pop("n1").stop(drain=False, drain_timeout_s=0)
    await system.cycle()
    assert {t.lifecycle_status for t in await live_tasks(system)} == {S.RUNNING}
    await system.cycle()
    assert [(t.lifecycle_status, t.attempt) for t in await live_tasks(system)] == [(S.CREATED, 1)] * 2


async def test_a_restarted_monitor_requeues_the_tasks_a_node_handed_back_a_cycle_later(
    system: System,
) -> None:
    await running(system, ("n1",), 2)
    await system.add_node("n2", capacity=2)
    await system.nodes.pop("n1").stop(drain=False, drain_timeout_s=0)
    restart_the_monitor(system)
    await system.cycle()  # its first look: heartbeats it never saw, of a node it never saw
    assert {t.lifecycle_status for t in await live_tasks(system)} == {S.RUNNING}
    await system.cycle()
    assert [(t.lifecycle_status, t.attempt) for t in await live_tasks(system)] == [(S.CREATED, 1)] * 2


async def pause_the_monitor(system: System, seconds: int, *, beating: tuple[str, ...]) -> None:
    """The monitor completes no cycle (say, its host stalled) while ``beating`` nodes go on every 2 s."""
    for _ in range(seconds // 2):
        system.clock.advance(2_000)
        for node_id in beating:
            await system.nodes[node_id].beat()


async def test_what_a_monitor_saw_before_a_pause_in_its_cycles_does_not_decide_after_it(
    system: System,
) -> None:
    before = await running(system, ("n1", "n2"), 4)
    await pause_the_monitor(system, 16, beating=("n1", "n2"))  # longer than dead_after - suspect_after
    await wipe(system)  # the nodes beat unseen, then the store forgot them
    events = system.services.subscriber.events()
    await system.services.monitor.run_cycle()
    assert await live_tasks(system) == before
    for _ in range(3):
        await system.cycle()
    assert [(t.lifecycle_status, t.executor, t.attempt) for t in await live_tasks(system)] == [
        (S.RUNNING, t.executor, 1) for t in before
    ]
    assert await quiet(events) == []


async def test_a_node_that_died_during_a_monitor_pause_and_a_wipe_is_offline_dead_after_after_the_pause(
    system: System,
) -> None:
    await running(system, ("n1",), 2)
    await system.add_node("n2", capacity=2)
    await system.nodes["n1"]._supervisor.shutdown()
    await pause_the_monitor(system, 16, beating=("n2",))
    await wipe(system)
    await system.cycle(beating=("n2",))
    resumed = system.clock.now_ms()
    while system.clock.now_ms() - resumed < DEAD_AFTER_MS:
        await system.cycle(beating=("n2",))
    assert {t.lifecycle_status for t in await live_tasks(system)} == {S.RUNNING}
    await system.cycle(beating=("n2",))
    assert [(t.lifecycle_status, t.attempt) for t in await live_tasks(system)] == [(S.CREATED, 1)] * 2


async def test_a_node_that_restarts_hands_back_what_its_previous_run_ran(system: System) -> None:
    """A node SIGKILLed (or ``skalds up`` restarted) comes back under the same id with no workers: the
    tasks the store says it runs are handed back at its start and run again at once, not after the
    first-heartbeat grace and dead_after of workers that died with the old process."""
    await running(system, ("n1",), 2)
    for listener in system.listeners:  # the old process is gone: it hears no more commands, beats no more
        listener.cancel()
    old = system.nodes.pop("n1")
    await system.add_node("n1", capacity=2)
    await system.cycle()
    tasks = await live_tasks(system)
    assert [(t.lifecycle_status, t.attempt) for t in tasks] == [(S.CREATED, 1)] * 2
    await system.cycle()
    assert {(t.lifecycle_status, t.executor, t.attempt) for t in await live_tasks(system)} == {
        (S.RUNNING, "n1", 2)
    }
    await old._supervisor.shutdown()
