"""Redis restarted under a live store and under the monitor loop: clear errors while it is down, then
recovery with the same objects, no rebuild and no crash.

The restart runs in a thread so the event loop keeps calling while the server is away. The stores that must
see the outage use a client without retries: the default client retries for about 0.7 s, which can hide a
restart this short (that is its job). The test server keeps no data across a restart, and live state need
not: these tests assert recovery, not persistence.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable

import pytest

from skalds.adapters.memory.event_bus import InMemoryEventBus
from skalds.adapters.memory.repository import InMemoryTaskRepository
from skalds.adapters.redis.live_state import RedisLiveStateStore, redis_client
from skalds.application.monitoring import Monitor
from skalds.application.reconciling import ReconcileRules
from skalds.domain import events as ev
from skalds.domain import lifecycle
from skalds.domain.errors import BackendUnavailableError
from skalds.domain.heartbeat import HeartbeatPolicy, HeartbeatReport
from skalds.domain.lifecycle import TaskCommand
from skalds.domain.nodes import Node
from skalds.domain.task import Task, TaskStatus, new_task
from tests.fakes import FakeClock

Restart = Callable[[str], None]


async def eventually(condition: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.01)


def running_task(task_id: str, node_id: str, now: int) -> Task:
    task = new_task(task_id=task_id, class_name="Video", now=now)
    task, _ = lifecycle.apply(task, TaskCommand.ASSIGN, at=now, executor=node_id)
    task, _ = lifecycle.apply(task, TaskCommand.START, at=now)
    return task


async def test_calls_while_redis_is_down_raise_backend_unavailable_and_the_same_store_recovers(
    redis_url: str, unique: str, restart_service: Restart
) -> None:
    clock = FakeClock()
    impatient_client = redis_client(redis_url, retries=0)
    impatient = RedisLiveStateStore(impatient_client, clock, key_prefix=f"{unique}:")
    patient = RedisLiveStateStore(redis_url, clock, key_prefix=f"{unique}:")  # the default client
    try:
        now = clock.now_ms()
        await impatient.record_heartbeat("t1", HeartbeatReport(received_at=now, sequence=1))
        await patient.ping()  # leaves a pooled connection that the restart will kill
        calls: itertools.cycle[Callable[[], Awaitable[object]]] = itertools.cycle(
            [
                lambda: impatient.latest_heartbeats(["t1"]),
                lambda: impatient.record_heartbeat("t1", HeartbeatReport(received_at=now, sequence=2)),
                impatient.list_nodes,
                lambda: impatient.put_node(Node(id="n1", registered_at=now)),
                lambda: impatient.heartbeat_history("t1", 5),
            ]
        )
        restart = asyncio.ensure_future(asyncio.to_thread(restart_service, "redis"))
        failures: list[Exception] = []
        while not restart.done():
            try:
                await next(calls)()
            except Exception as error:
                failures.append(error)
            await asyncio.sleep(0.002)
        await restart  # re-raises a skip or a failed restart
        assert failures, "no call landed while redis was down"
        assert {type(error) for error in failures} == {BackendUnavailableError}
        assert all(
            error.backend == "redis" for error in failures if isinstance(error, BackendUnavailableError)
        )

        again = await impatient.record_heartbeat("t1", HeartbeatReport(received_at=now, sequence=3))
        assert (await impatient.latest_heartbeats(["t1"]))["t1"] == again
        assert (await patient.latest_heartbeats(["t1"]))["t1"] == again  # reconnected by its retry
        await patient.forget_tasks(["t1"])
        await patient.remove_node("n1")
    finally:
        await impatient.aclose()
        await impatient_client.aclose()
        await patient.aclose()


async def test_a_server_that_never_answers_gives_backend_unavailable_within_the_deadline() -> None:
    """A listener on loopback that accepts and stays silent: what a wedged or paused Redis looks like."""
    connections: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    store = RedisLiveStateStore(f"redis://127.0.0.1:{port}/0", FakeClock(), timeout_s=0.3)
    try:
        for call in (
            store.ping,
            lambda: store.record_heartbeat("t1", HeartbeatReport(received_at=1)),
            lambda: store.latest_heartbeats(["t1"]),
        ):
            with pytest.raises(BackendUnavailableError, match=r"no answer within 0\.3 s"):
                await call()
    finally:
        await store.aclose()
        for writer in connections:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_the_monitor_loop_survives_a_redis_restart(
    redis_url: str, unique: str, restart_service: Restart, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    client = redis_client(redis_url, retries=0)
    live = RedisLiveStateStore(client, clock, key_prefix=f"{unique}:")
    repository = InMemoryTaskRepository()
    bus = InMemoryEventBus()
    monitor = Monitor(repository, live, bus, clock, policy=HeartbeatPolicy(), rules=ReconcileRules())
    subscription = bus.events()
    seen: list[ev.DomainEvent] = []

    async def collect() -> None:
        async for event in subscription:
            seen.append(event)

    def heartbeat_seen(task_id: str, sequence: int) -> bool:
        return any(
            (beat.task_id, beat.sequence) == (task_id, sequence)
            for e in seen
            if isinstance(e, ev.TaskHeartbeatsObserved)
            for beat in e.each()
        )

    now = clock.now_ms()
    before = running_task("before", "n1", now)
    await live.put_node(Node(id="n1", registered_at=now, last_heartbeat_at=now))
    await live.record_heartbeat(
        before.id, HeartbeatReport(received_at=now, sequence=1, attempt=before.attempt)
    )
    await repository.insert(before)
    collector = asyncio.create_task(collect())
    loop = asyncio.create_task(monitor.run(interval_s=0.01))
    try:
        await eventually(lambda: heartbeat_seen("before", 1), "the first heartbeat to be observed")
        with caplog.at_level(logging.ERROR, logger="skalds.application.monitoring"):
            await asyncio.to_thread(restart_service, "redis")
            failed = [r for r in caplog.records if r.getMessage() == "monitor cycle failed"]
        assert failed, "no monitor cycle failed while redis was down"
        assert all(r.exc_info and isinstance(r.exc_info[1], BackendUnavailableError) for r in failed)
        assert not loop.done()

        after = running_task("after", "n2", clock.now_ms())
        await live.put_node(Node(id="n2", registered_at=now, last_heartbeat_at=now))
        await live.record_heartbeat(
            after.id, HeartbeatReport(received_at=now, sequence=7, attempt=after.attempt)
        )
        await repository.insert(after)
        await eventually(lambda: heartbeat_seen("after", 7), "a heartbeat recorded after the restart")
        assert (await repository.get("after")).lifecycle_status is TaskStatus.RUNNING
        assert not loop.done()
    finally:
        loop.cancel()
        await subscription.close()
        await asyncio.gather(loop, collector, return_exceptions=True)
        await live.forget_tasks(["before", "after"])
        for node_id in ("n1", "n2"):
            await live.remove_node(node_id)
        await live.aclose()
        await client.aclose()
