"""A node's CPU and memory, as its meter reads them, reach its entry with each beat; the dispatcher gives
no new work to a node over its thresholds and the resource alert follows the node over and back under."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Collection

import pytest

from skalds.adapters.memory.resource_meter import FixedResourceMeter
from skalds.application.tasks import TaskDraft
from skalds.domain.alerts import AlertRule
from skalds.domain.ports import ResourceMeter
from skalds.domain.resources import NodeUsage, ResourceReading
from skalds.domain.task import TaskStatus
from tests.unit.application.harness import CLASS, System, build_system, settings_for_tests

PATIENCE_S = 30.0  # a deadline for what must happen, never a wait to prove something did not


def usage(cpu: float, memory: float = 40.0) -> NodeUsage:
    return NodeUsage(cpu_percent=cpu, memory_percent=memory, memory_bytes=1 << 30)


@pytest.fixture
async def system() -> AsyncIterator[System]:
    built = await build_system(
        settings_for_tests(
            dispatch={"max_cpu_percent": 80, "max_memory_percent": 90},
            alerts={"max_cpu_percent": 80, "max_memory_percent": 90},
        )
    )
    yield built
    await built.close()


async def reads(system: System, node_id: str, meter: FixedResourceMeter, cpu: float, memory: float) -> None:
    """The node's meter now reads this, and the node has measured and beaten since."""
    meter.node = usage(cpu, memory)
    await system.nodes[node_id].measure_resources()
    await system.nodes[node_id].beat()


async def test_each_beat_publishes_the_nodes_latest_reading(system: System) -> None:
    meter = FixedResourceMeter(usage(12.5, 33.0))
    await system.add_node("n1", meter=meter)
    await system.nodes["n1"].measure_resources()
    await system.nodes["n1"].beat()
    node = await system.services.live_state.get_node("n1")
    assert node is not None and (node.cpu_percent, node.memory_percent) == (12.5, 33.0)
    nodes = await system.services.queries.nodes()
    assert [(v.node.id, v.node.cpu_percent) for v in nodes] == [("n1", 12.5)]


async def test_a_node_without_a_meter_reports_no_numbers(system: System) -> None:
    await system.add_node("n1")
    await system.nodes["n1"].beat()
    node = await system.services.live_state.get_node("n1")
    assert node is not None and (node.cpu_percent, node.memory_percent) == (None, None)


class StuckMeter(ResourceMeter):
    """A meter whose reading hangs until the test lets it go (a /proc read on an overloaded machine)."""

    def __init__(self) -> None:
        self.go = threading.Event()
        self.asked = threading.Event()

    def measure(self, pids: Collection[int]) -> ResourceReading:
        self.asked.set()
        self.go.wait()
        return ResourceReading(node=usage(55.0))


async def test_a_stuck_meter_never_holds_back_the_heartbeat(system: System) -> None:
    meter = StuckMeter()
    node = await system.add_node("n1", meter=meter)
    try:
        await node.beat()  # begins a reading beside itself
        await asyncio.to_thread(meter.asked.wait, PATIENCE_S)
        system.clock.advance(1_000)
        await asyncio.wait_for(node.beat(), PATIENCE_S)  # renews while the reading hangs
        entry = await system.services.live_state.get_node("n1")
        assert entry is not None and entry.last_heartbeat_at == system.clock.now_ms()
        assert entry.cpu_percent is None  # no reading yet
    finally:
        meter.go.set()
    await node.measure_resources()
    await node.beat()
    entry = await system.services.live_state.get_node("n1")
    assert entry is not None and entry.cpu_percent == 55.0


class BrokenMeter(ResourceMeter):
    def __init__(self) -> None:
        self.broken = False

    def measure(self, pids: Collection[int]) -> ResourceReading:
        if self.broken:
            raise PermissionError("/proc/stat")
        return ResourceReading(node=usage(95.0))


async def test_a_failing_meter_clears_the_numbers_rather_than_keep_stale_ones(system: System) -> None:
    meter = BrokenMeter()
    node = await system.add_node("n1", meter=meter)
    await node.measure_resources()
    await node.beat()
    meter.broken = True
    await node.measure_resources()
    await node.beat()
    entry = await system.services.live_state.get_node("n1")
    assert entry is not None and (entry.cpu_percent, entry.memory_percent) == (None, None)


async def test_a_node_over_a_dispatch_threshold_gets_no_new_task_until_back_under(
    system: System, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="skalds.application.dispatching")
    meter = FixedResourceMeter()
    await system.add_node("n1", meter=meter)
    await reads(system, "n1", meter, cpu=95.0, memory=40.0)
    task = await system.services.tasks.create(TaskDraft(class_name=CLASS))
    await system.services.dispatcher.dispatch_once()
    assert (await system.services.tasks.get(task.id)).lifecycle_status is TaskStatus.CREATED
    assert system.services.dispatcher.pending_reason(task.id) == "no eligible node (1 CPU above 80%)"
    assert "node n1 is over its dispatch limits (CPU 95% > 80%): no new tasks" in caplog.messages

    await reads(system, "n1", meter, cpu=20.0, memory=95.0)
    await system.services.dispatcher.dispatch_once()
    assert (await system.services.tasks.get(task.id)).lifecycle_status is TaskStatus.CREATED  # memory now

    await reads(system, "n1", meter, cpu=20.0, memory=40.0)
    await system.services.dispatcher.dispatch_once()
    assert (await system.services.tasks.get(task.id)).executor == "n1"
    assert any(
        "node n1 is back under its dispatch limits (CPU 20%, memory 40%)" in m for m in caplog.messages
    )


async def test_the_resource_alert_fires_when_over_and_clears_when_back_under(
    system: System, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="skalds.application.alert_book")
    meter = FixedResourceMeter()
    await system.add_node("n1", meter=meter)
    await reads(system, "n1", meter, cpu=30.0, memory=40.0)
    await system.services.alerts.evaluate()
    assert system.services.alerts.active() == []

    await reads(system, "n1", meter, cpu=97.0, memory=40.0)
    await system.services.alerts.evaluate()
    [alert] = system.services.alerts.active()
    assert (alert.rule, alert.subject, alert.message) == (
        AlertRule.NODE_RESOURCES,
        "n1",
        "node n1: CPU 97% > 80%",
    )
    await system.services.alerts.evaluate()  # still over: the same alert, not a second one
    assert [a.id for a in system.services.alerts.active()] == [alert.id]

    await reads(system, "n1", meter, cpu=30.0, memory=40.0)
    await system.services.alerts.evaluate()
    assert system.services.alerts.active() == []
    [resolved] = system.services.alerts.history()
    assert resolved.id == alert.id and resolved.resolved_at is not None
    assert any("rule=node_resources subject=n1 reason=node n1: CPU 97% > 80%" in m for m in caplog.messages)
    assert any("node n1 is back under its limits (CPU 30%, memory 40%)" in m for m in caplog.messages)
