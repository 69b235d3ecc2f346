"""The MongoDB-wire server dead or restarted under a live repository and under the dispatcher loop: clear
errors while it is down (BackendUnavailableError, never a pymongo exception, within seconds), then recovery
with the same objects and the data written before still there (FerretDB keeps its SQLite files).

The restart runs in a thread so the event loop keeps calling while the server is away. Repositories that
must see the outage use an impatient client (300 ms server selection, no retried reads): the default
client would wait out a restart this short, which is its job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from pymongo import AsyncMongoClient

from skalds.adapters.memory.event_bus import InMemoryEventBus
from skalds.adapters.memory.live_state import InMemoryLiveStateStore
from skalds.adapters.mongo.repository import (
    MongoClient,
    MongoTaskRepository,
    mongo_client,
    mongo_task_repository,
)
from skalds.application.dispatching import Dispatcher
from skalds.domain import lifecycle
from skalds.domain.dispatch import DispatchStrategy
from skalds.domain.errors import BackendUnavailableError, TaskAlreadyExistsError
from skalds.domain.heartbeat import HeartbeatPolicy
from skalds.domain.nodes import Node
from skalds.domain.ports import TaskQuery
from skalds.domain.task import TaskStatus
from tests.contracts.task_repository import a_task, assigned
from tests.fakes import FakeClock

Restart = Callable[[str], None]


def impatient_client(url: str) -> MongoClient:
    return AsyncMongoClient(
        url, serverSelectionTimeoutMS=300, connectTimeoutMS=300, socketTimeoutMS=2_000, retryReads=False
    )


@pytest.fixture
async def cleanup(mongo_url: str, unique: str) -> AsyncIterator[None]:
    yield
    client = mongo_client(mongo_url)
    try:
        await client.drop_database(unique)
    finally:
        await client.close()


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 15.0) -> None:
    """Until ``check`` is true; a backend still coming back counts as "not yet"."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if await check():
                return
        except BackendUnavailableError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.05)


async def answers(repository: MongoTaskRepository) -> bool:
    await repository.ping()
    return True


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_dead_server_is_a_backend_unavailable_error_within_seconds_without_credentials() -> None:
    port = closed_port()
    url = f"mongodb://skalds:s3cret@127.0.0.1:{port}/?authSource=admin"
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError) as at_start:
        await anext(mongo_task_repository(url, server_selection_timeout_ms=500))
    assert time.monotonic() - started < 3
    assert at_start.value.backend == "mongo"
    assert f"127.0.0.1:{port}" in str(at_start.value) and "within 500 ms" in str(at_start.value)
    assert "s3cret" not in str(at_start.value) and "skalds:" not in str(at_start.value)

    client = mongo_client(url, server_selection_timeout_ms=200)
    repository = MongoTaskRepository(client, database="deadserver")
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: repository.get("t1"),
        lambda: repository.list(TaskQuery()),
        lambda: repository.insert(a_task("t1")),
        lambda: repository.update(assigned(a_task("t1")), 1),
        lambda: repository.update_many([(assigned(a_task("t1")), 1)]),
        lambda: repository.delete("t1", 1),
        repository.class_names,
        repository.count_by_status,
        lambda: repository.count_by_executor(frozenset({TaskStatus.RUNNING})),
        repository.ping,
        repository.prepare,
    ]

    async def timed(call: Callable[[], Awaitable[object]]) -> tuple[BaseException | None, float]:
        started = time.monotonic()
        try:
            await call()
        except Exception as error:
            return error, time.monotonic() - started
        return None, time.monotonic() - started

    try:
        outcomes = await asyncio.gather(*(timed(call) for call in calls))  # all at once: 0.5 s each
    finally:
        await client.close()
    for error, seconds in outcomes:
        assert isinstance(error, BackendUnavailableError), error
        assert seconds < 3 and "s3cret" not in str(error)


async def test_calls_during_a_restart_fail_clearly_and_the_same_repository_recovers_its_data(
    mongo_url: str, unique: str, restart_service: Restart, cleanup: None
) -> None:
    impatient_mongo = impatient_client(mongo_url)
    patient_mongo = mongo_client(mongo_url)
    impatient = MongoTaskRepository(impatient_mongo, database=unique)
    patient = MongoTaskRepository(patient_mongo, database=unique)
    try:
        await impatient.prepare()
        before = [a_task(f"before-{i}", now=i) for i in range(5)]
        for task in before:
            await impatient.insert(task)
        moved = assigned(before[0])
        await impatient.update(moved, 1)
        await patient.ping()  # leaves a pooled connection that the restart will kill

        counter = iter(range(1_000_000))
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: impatient.get("before-1"),
            lambda: impatient.list(TaskQuery(limit=2)),
            lambda: impatient.insert(a_task(f"during-{next(counter)}")),
            lambda: impatient.update_many([(assigned(before[2]), 99)]),  # stale: never stored
            impatient.count_by_status,
        ]
        restart = asyncio.ensure_future(asyncio.to_thread(restart_service, "mongo"))
        failures: list[Exception] = []
        slowest = 0.0
        i = 0
        while not restart.done():
            started = time.monotonic()
            try:
                await calls[i % len(calls)]()
            except Exception as error:
                failures.append(error)
            slowest = max(slowest, time.monotonic() - started)
            i += 1
            await asyncio.sleep(0.005)
        await restart  # re-raises a skip or a failed restart
        assert failures, "no call landed while the server was down"
        assert {type(error) for error in failures} == {BackendUnavailableError}
        assert all(isinstance(e, BackendUnavailableError) and e.backend == "mongo" for e in failures)
        assert slowest < 3, f"a call took {slowest:.1f} s while the server was down"

        await eventually(lambda: answers(impatient), "the same repository to answer again")
        assert await impatient.get("before-0") == moved  # written before the restart, still there
        assert [await impatient.get(task.id) for task in before[1:]] == before[1:]
        await impatient.update(assigned(before[1]), 1)
        assert list(await impatient.update_many([(assigned(before[2]), 1)])) == []
        await impatient.insert(a_task("after"))
        await eventually(lambda: answers(patient), "the patient repository to answer again")
        assert (await patient.get("before-2")).executor == "n1"
        assert (await patient.list(TaskQuery(statuses=frozenset({TaskStatus.ASSIGNING})))).total == 3
    finally:
        await impatient_mongo.close()
        await patient_mongo.close()


async def test_the_dispatcher_loop_survives_a_restart_and_assigns_a_task_created_after_it(
    mongo_url: str, unique: str, restart_service: Restart, caplog: pytest.LogCaptureFixture, cleanup: None
) -> None:
    clock = FakeClock()
    client = impatient_client(mongo_url)
    repository = MongoTaskRepository(client, database=unique)
    live = InMemoryLiveStateStore(clock)
    bus = InMemoryEventBus()
    dispatcher = Dispatcher(
        repository,
        live,
        bus,
        clock,
        strategy=DispatchStrategy.LEAST_TASKS,
        policy=HeartbeatPolicy(),
        rng=random.Random(1),
    )
    now = clock.now_ms()
    await live.put_node(
        Node(id="n1", supported_classes=frozenset({"Video"}), registered_at=now, last_heartbeat_at=now)
    )

    async def assigned_to_n1(task_id: str) -> bool:
        task = await repository.get(task_id)
        return task.lifecycle_status is TaskStatus.ASSIGNING and task.executor == "n1"

    async def create(task_id: str) -> None:
        """As the task service creates: stored, then announced (the dispatcher follows the events)."""
        task = a_task(task_id, now=clock.now_ms())
        with contextlib.suppress(TaskAlreadyExistsError):  # stored, but the reply was lost
            await repository.insert(task)
        await bus.publish(lifecycle.created(task))

    async def keep_announcing() -> None:
        """Announced tasks the dispatcher tries to claim, so its cycles write while the server is down
        (never stored: when the server is up, each claim is simply lost)."""
        for number in range(1_000_000):
            await bus.publish(lifecycle.created(a_task(f"ghost-{number}", now=clock.now_ms())))
            await asyncio.sleep(0.05)

    loop = asyncio.create_task(dispatcher.run(bus, interval_s=0.05))
    try:
        await repository.prepare()
        await create("before")
        await eventually(lambda: assigned_to_n1("before"), "the first task to be assigned")
        announcing = asyncio.create_task(keep_announcing())
        with caplog.at_level(logging.ERROR, logger="skalds.application.dispatching"):
            await asyncio.to_thread(restart_service, "mongo")
            failed = [r for r in caplog.records if r.getMessage() == "dispatch cycle failed"]
        announcing.cancel()
        await asyncio.gather(announcing, return_exceptions=True)
        assert failed, "no dispatch cycle failed while the server was down"
        assert all(r.exc_info and isinstance(r.exc_info[1], BackendUnavailableError) for r in failed)
        assert not loop.done()

        async def insert_after() -> bool:
            await create("after")
            return True

        await eventually(insert_after, "a task to be created after the restart")
        await eventually(lambda: assigned_to_n1("after"), "the task created after the restart to be assigned")
        assert await assigned_to_n1("before")
        assert not loop.done()
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        await client.close()
