"""A node reports all its workers' heartbeats in one batch, so a networked store sends them in a few round
trips however many workers run."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Mapping, Sequence

import pytest

from skalds.application.tasks import TaskDraft
from skalds.domain.errors import BackendUnavailableError
from skalds.domain.heartbeat import HeartbeatReport
from skalds.domain.nodes import Node
from skalds.domain.ports import LiveStateStore
from skalds.domain.task import TaskStatus
from tests.unit.application.harness import CLASS, System, build_system

WORKERS = 5


class RoundTrips(LiveStateStore):
    """The system's store behind a network: each heartbeat call waits a round trip and is counted; a call
    with a task in ``refused`` fails as a store that is down would, storing nothing."""

    def __init__(self, inner: LiveStateStore) -> None:
        self._inner = inner
        self.in_flight = 0
        self.most_in_flight = 0
        self.batches: list[list[str]] = []  # the task ids of each record_heartbeats call
        self.refused: set[str] = set()

    async def record_heartbeats(self, beats: Sequence[tuple[str, HeartbeatReport]]) -> list[HeartbeatReport]:
        self.batches.append([task_id for task_id, _ in beats])
        await asyncio.sleep(0)  # the round trip
        if refused := sorted(self.refused & {task_id for task_id, _ in beats}):
            raise BackendUnavailableError("live state", f"refused the heartbeats of {', '.join(refused)}")
        return list(await self._inner.record_heartbeats(beats))

    async def record_heartbeat(self, task_id: str, report: HeartbeatReport) -> HeartbeatReport:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)  # the round trip
            if task_id in self.refused:
                raise BackendUnavailableError("live state", f"refused the heartbeat of {task_id}")
            return await self._inner.record_heartbeat(task_id, report)
        finally:
            self.in_flight -= 1

    async def latest_heartbeats(self, task_ids: Sequence[str]) -> Mapping[str, HeartbeatReport]:
        return await self._inner.latest_heartbeats(task_ids)

    async def heartbeat_history(self, task_id: str, limit: int) -> Sequence[HeartbeatReport]:
        return await self._inner.heartbeat_history(task_id, limit)

    async def forget_tasks(self, task_ids: Sequence[str]) -> None:
        await self._inner.forget_tasks(task_ids)

    async def put_node(self, node: Node) -> None:
        await self._inner.put_node(node)

    async def get_node(self, node_id: str) -> Node | None:
        return await self._inner.get_node(node_id)

    async def list_nodes(self) -> Sequence[Node]:
        return await self._inner.list_nodes()

    async def remove_node(self, node_id: str) -> None:
        await self._inner.remove_node(node_id)

    async def ping(self) -> None:
        await self._inner.ping()


@pytest.fixture
async def system() -> AsyncIterator[System]:
    built = await build_system()
    yield built
    await built.close()


async def node_behind_round_trips(system: System) -> RoundTrips:
    """Node n1, whose writes to the live state go through ``RoundTrips``; the control plane's do not."""
    store = RoundTrips(system.services.live_state)
    services = system.services
    system.services = dataclasses.replace(services, live_state=store)
    try:
        await system.add_node("n1", capacity=WORKERS)
    finally:
        system.services = services
    for n in range(WORKERS):
        await system.services.tasks.create(TaskDraft(id=f"t{n}", class_name=CLASS))
    await system.cycle()
    statuses = [(await system.services.tasks.get(f"t{n}")).lifecycle_status for n in range(WORKERS)]
    assert statuses == [TaskStatus.RUNNING] * WORKERS
    return store


async def sequences(system: System, task_id: str) -> list[int]:
    return [r.sequence for r in await system.services.queries.heartbeat_history(task_id)]


async def test_a_beat_writes_every_workers_heartbeat_in_one_batch_and_each_tasks_in_order(
    system: System,
) -> None:
    store = await node_behind_round_trips(system)
    store.batches.clear()
    for _ in range(3):
        await system.settle()
        await system.beat("n1")
    assert [sorted(batch) for batch in store.batches] == [[f"t{n}" for n in range(WORKERS)]] * 3
    for n in range(WORKERS):
        beats = await sequences(system, f"t{n}")
        assert beats == sorted(set(beats)) and len(beats) >= 4, beats  # the start, then the three beats
    for n in range(WORKERS):
        system.workers.control(f"t{n}").finish = True
    await system.settle()
    await system.cycle()
    statuses = [(await system.services.tasks.get(f"t{n}")).lifecycle_status for n in range(WORKERS)]
    assert statuses == [TaskStatus.FINISHED] * WORKERS


async def test_a_refused_batch_is_raised_and_every_heartbeat_in_it_is_sent_on_the_next_beat(
    system: System,
) -> None:
    store = await node_behind_round_trips(system)
    before = {f"t{n}": (await sequences(system, f"t{n}"))[-1] for n in range(WORKERS)}
    store.refused = {"t2"}
    await system.settle()
    with pytest.raises(BackendUnavailableError, match="t2"):
        await system.beat("n1")
    assert {f"t{n}": (await sequences(system, f"t{n}"))[-1] for n in range(WORKERS)} == before
    store.refused = set()
    await system.settle()
    await system.beat("n1")
    after = {f"t{n}": (await sequences(system, f"t{n}"))[-1] for n in range(WORKERS)}
    assert all(after[task_id] > before[task_id] for task_id in before)
