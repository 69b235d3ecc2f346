"""What nodes measure reaches the API and /metrics: the node's CPU and memory, and each running task's."""

from __future__ import annotations

from skalds.adapters.memory.resource_meter import FixedResourceMeter
from skalds.domain.heartbeat import HeartbeatReport
from skalds.domain.resources import NodeUsage
from tests.unit.api.conftest import Api
from tests.unit.application.harness import CLASS


async def running_on_a_measured_node(api: Api) -> None:
    meter = FixedResourceMeter(NodeUsage(cpu_percent=63.5, memory_percent=41.25, memory_bytes=3 << 30))
    node = await api.system.add_node("n1", meter=meter)
    await api.client.post("/api/tasks", json={"className": CLASS, "id": "t1"})
    await api.system.cycle()
    await node.measure_resources()
    await node.beat()
    # as a node reports a worker process it measured (in-process workers have no process of their own)
    task = await api.services.tasks.get("t1")
    beat = HeartbeatReport(
        received_at=api.system.clock.now_ms(),
        sequence=99,
        attempt=task.attempt,
        cpu_percent=98.5,
        memory_bytes=52_428_800,
    )
    await api.services.live_state.record_heartbeat("t1", beat)


async def test_a_node_and_its_task_show_what_was_measured(api: Api) -> None:
    await running_on_a_measured_node(api)
    [skald] = (await api.client.get("/api/skalds")).json()["items"]
    assert (skald["cpuPercent"], skald["memoryPercent"]) == (63.5, 41.25)
    task = (await api.client.get("/api/tasks/t1")).json()
    assert (task["cpuPercent"], task["memoryBytes"]) == (98.5, 52_428_800)
    history = (await api.client.get("/api/tasks/t1/heartbeat")).json()["heartbeatHistory"]
    assert (history[-1]["cpuPercent"], history[-1]["memoryBytes"]) == (98.5, 52_428_800)


async def test_metrics_have_a_gauge_per_node_and_per_running_task(api: Api) -> None:
    await running_on_a_measured_node(api)
    await api.system.add_node("unmeasured")
    text = (await api.client.get("/metrics")).text
    assert 'skalds_node_cpu_percent{node="n1"} 63.5' in text
    assert 'skalds_node_memory_percent{node="n1"} 41.25' in text
    assert 'node="unmeasured"' not in text  # no meter, no sample (not a 0 that reads as idle)
    labels = f'class_name="{CLASS}",node="n1",task_id="t1"'
    assert f"skalds_task_cpu_percent{{{labels}}} 98.5" in text
    assert f"skalds_task_memory_bytes{{{labels}}} 5.24288e+07" in text
