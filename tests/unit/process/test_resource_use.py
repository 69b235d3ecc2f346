"""A busy worker process, measured for real: its node's CPU and its own CPU and memory are seen, the
dispatcher gives that node no new task over its CPU threshold, and the resource alert is raised.

Fake time stands still (as in test_worker_processes.py); what moves is the real process, waited for with a
generous deadline. Each wait is for the state that proves the point, never a sleep to prove an absence.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from skalds.application.tasks import TaskDraft
from skalds.bootstrap import resource_meter
from skalds.domain.alerts import AlertRule
from skalds.domain.task import TaskStatus
from tests.unit.application.harness import System, build_system, settings_for_tests
from tests.workers import SPIN, WORKERS, Settings

PATIENCE_S = 60.0  # a deadline, not an expectation: the machine may be busy
LOW_CPU = 5  # one CPU spinning is at least this share of any machine up to 20 CPUs
THRESHOLDS = {"max_cpu_percent": LOW_CPU, "max_memory_percent": 99.9}
BALLAST = 32 * 1024 * 1024  # what Spin keeps resident


async def drive(system: System, done: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while True:
        await system.cycle(advance_ms=0)
        if await done():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {PATIENCE_S} s for {what}")
        await asyncio.sleep(0.05)


def low_threshold_settings(**sections: dict[str, object]) -> dict[str, dict[str, object]]:
    return {"dispatch": THRESHOLDS, "alerts": THRESHOLDS, **sections}


@pytest.fixture
async def system() -> AsyncIterator[System]:
    built = await build_system(settings_for_tests(**low_threshold_settings()))
    yield built
    await built.close()


async def a_busy_worker_is_measured_and_acted_on(system: System) -> None:
    workers = {**SPIN, "Quick": WORKERS["Quick"]}
    for name in workers:
        system.services.catalog.register(name, Settings)
    await system.add_process_node("n1", workers, meter=resource_meter())
    busy = await system.services.tasks.create(TaskDraft(class_name="Spin"))

    async def measured() -> bool:
        node = await system.services.live_state.get_node("n1")
        beat = (await system.services.live_state.latest_heartbeats([busy.id])).get(busy.id)
        return (
            node is not None
            and (node.cpu_percent or 0) > LOW_CPU
            and (node.memory_percent or 0) > 0
            and beat is not None
            and (beat.cpu_percent or 0) > 50  # most of one CPU
            and (beat.memory_bytes or 0) > BALLAST
        )

    await drive(system, measured, "the node's and the busy worker's numbers")

    waiting = await system.services.tasks.create(TaskDraft(class_name="Quick"))
    await system.services.dispatcher.dispatch_once()
    assert (await system.services.tasks.get(waiting.id)).lifecycle_status is TaskStatus.CREATED
    reason = system.services.dispatcher.pending_reason(waiting.id) or ""
    assert f"CPU above {LOW_CPU}%" in reason

    await system.services.alerts.evaluate()
    [alert] = [a for a in system.services.alerts.active() if a.rule is AlertRule.NODE_RESOURCES]
    assert alert.subject == "n1" and alert.message.startswith("node n1: CPU ")

    await system.services.tasks.cancel(busy.id)

    async def cancelled() -> bool:
        return (await system.services.tasks.get(busy.id)).lifecycle_status is TaskStatus.CANCELLED

    await drive(system, cancelled, "the busy worker to be cancelled")


async def test_a_busy_worker_is_measured_and_acted_on(system: System) -> None:
    await a_busy_worker_is_measured_and_acted_on(system)
