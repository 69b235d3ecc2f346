"""The whole application wired by the composition root on MongoDB-wire, Redis and Kafka at once.

The adapters' own suites prove each port; this proves they compose: a task created through the service is
dispatched over Kafka, run by a node, watched through Redis heartbeats and stored in Mongo at every step,
and the HTTP API answers from the same backends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from litestar.testing import AsyncTestClient

from skalds.application.tasks import TaskDraft
from skalds.bootstrap import build_container, start, stop
from skalds.domain.task import TaskStatus
from skalds.entrypoints.api.app import create_app
from tests.fakes import FakeClock
from tests.unit.application.harness import CLASS, SteerableWorkers, System, settings_for_tests


def real_settings(
    kafka_bootstrap: str, redis_url: str, mongo_url: str, name: str
) -> dict[str, dict[str, object]]:
    return {
        "backends": {"repository": "mongo", "live_state": "redis", "event_bus": "kafka"},
        "mongo": {"url": mongo_url, "database": name},
        "redis": {"url": redis_url, "key_prefix": f"{name}:"},
        "kafka": {
            "bootstrap_servers": kafka_bootstrap,
            "topic_prefix": f"{name}.",
            "consumer_group_prefix": name,
        },
    }


@pytest.fixture
async def system(kafka_bootstrap: str, redis_url: str, mongo_url: str, unique: str) -> AsyncIterator[System]:
    # The system clock, not a fake one: Kafka's group join takes real time, and a fake clock driven faster
    # than that would time assignments out. The harness's clock is then only a counter nobody reads.
    container = build_container(
        settings_for_tests(**real_settings(kafka_bootstrap, redis_url, mongo_url, unique))
    )
    services = await start(container)
    built = System(services=services, clock=FakeClock(), workers=SteerableWorkers())
    try:
        yield built
    finally:
        await built.close()
        await stop(container)


async def eventually(check: Callable[[], Awaitable[bool]], *, within_s: float = 10.0) -> None:
    """Poll ``check`` until it holds (real services deliver in milliseconds, but not synchronously)."""
    deadline = asyncio.get_running_loop().time() + within_s
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {within_s} s")
        await asyncio.sleep(0.02)


async def status_is(system: System, task_id: str, status: TaskStatus) -> bool:
    return (await system.services.tasks.get(task_id)).lifecycle_status is status


async def drive_until(system: System, task_id: str, status: TaskStatus, *, within_s: float = 15.0) -> None:
    async def reached() -> bool:
        await system.cycle(advance_ms=0)
        return await status_is(system, task_id, status)

    await eventually(reached, within_s=within_s)


async def test_a_task_runs_and_finishes_on_real_services(system: System) -> None:
    await system.add_node("n1")
    task = await system.services.tasks.create(TaskDraft(class_name=CLASS, attachments={"fps": 10}))
    await drive_until(system, task.id, TaskStatus.RUNNING)
    stored = await system.services.tasks.get(task.id)
    assert (stored.executor, stored.attempt) == ("n1", 1)
    system.workers.control(task.id).progress = 42
    await eventually(
        lambda: _latest_progress_is(system, task.id, 42.0),
    )
    system.workers.control(task.id).finish = True
    await drive_until(system, task.id, TaskStatus.FINISHED)


async def _latest_progress_is(system: System, task_id: str, progress: float) -> bool:
    await system.beat()
    latest = await system.services.live_state.latest_heartbeats([task_id])
    return task_id in latest and latest[task_id].progress == progress


async def test_a_running_task_is_cancelled_through_kafka(system: System) -> None:
    await system.add_node("n1")
    task = await system.services.tasks.create(TaskDraft(class_name=CLASS))
    await drive_until(system, task.id, TaskStatus.RUNNING)
    await system.services.tasks.cancel(task.id)
    await drive_until(system, task.id, TaskStatus.CANCELLED)
    assert task.id not in system.workers.controls or system.nodes["n1"]._supervisor.states() == {}


async def test_the_api_reports_every_real_backend_healthy(
    kafka_bootstrap: str, redis_url: str, mongo_url: str, unique: str
) -> None:
    container = build_container(
        settings_for_tests(**real_settings(kafka_bootstrap, redis_url, mongo_url, unique))
    )
    app = create_app(container, run_loops=False)
    async with AsyncTestClient(app, base_url="http://127.0.0.1") as client:  # a loopback Host
        health = await client.get("/api/system/health")
        assert health.status_code == 200, health.text
        assert health.json()["services"] == {
            "repository": "healthy",
            "liveState": "healthy",
            "eventBus": "healthy",
        }
        created = await client.post("/api/tasks", json={"className": CLASS, "id": "api-1"})
        assert created.status_code == 201, created.text
        listed = await client.get("/api/tasks", params={"lifecycleStatus": "created"})
        assert [item["id"] for item in listed.json()["items"]] == ["api-1"]


async def test_a_redis_restart_requeues_no_running_task(
    system: System, restart_service: Callable[[str], None]
) -> None:
    """Redis comes back empty; the monitor must not take the lost heartbeats and nodes for dead ones."""
    await system.add_node("n1")
    task = await system.services.tasks.create(TaskDraft(class_name=CLASS))
    await drive_until(system, task.id, TaskStatus.RUNNING)
    await asyncio.to_thread(restart_service, "redis")
    for _ in range(5):  # the node re-reports; the monitor judges in between
        await asyncio.sleep(0.2)
        await system.services.monitor.run_cycle()
        await system.beat()
    stored = await system.services.tasks.get(task.id)
    assert (stored.lifecycle_status, stored.attempt, stored.executor) == (TaskStatus.RUNNING, 1, "n1")
    assert system.workers.started == [task.id]  # never started a second time
