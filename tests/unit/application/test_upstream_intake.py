"""Requests upstream's clients send in upstream's form reach the control plane: an assign dispatches a task
written straight into the store (no event) at once, on the node its document names; cancel and attachment
updates go through the task service; a request that cannot be met is logged and the next one served."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import pytest

from skalds.adapters.memory.event_bus import InMemoryEventBus
from skalds.application.tasks import TaskDraft
from skalds.domain.task import Task, TaskStatus, new_task
from skalds.domain.upstream_requests import UpstreamRequest, UpstreamRequestKind
from tests.unit.application.harness import CLASS, System, build_system

T = TypeVar("T")
WITHIN_S = 10.0


@pytest.fixture
async def running() -> AsyncIterator[System]:
    """A system whose dispatcher and upstream intake run their loops (the dispatcher's sweep: an hour)."""
    system = await build_system()
    services = system.services
    loops = [
        asyncio.create_task(services.dispatcher.run(services.subscriber, interval_s=3_600)),
        asyncio.create_task(services.upstream_intake.run(services.upstream_requests)),
    ]
    await until(lambda: asyncio.sleep(0, services.dispatcher.counters.cycles), lambda n: n >= 1)
    yield system
    for loop in loops:
        loop.cancel()
    await asyncio.gather(*loops, return_exceptions=True)
    await system.close()


async def until(read: Callable[[], Awaitable[T]], done: Callable[[T], bool]) -> T:
    """What ``read`` gives once ``done`` holds for it (a wait for a state, with a generous bound)."""
    async with asyncio.timeout(WITHIN_S):
        while not done(value := await read()):  # noqa: ASYNC110 - the state lives in the store: poll it
            await asyncio.sleep(0.01)
    return value


def bus(system: System) -> InMemoryEventBus:
    source = system.services.upstream_requests
    assert isinstance(source, InMemoryEventBus)
    return source


def request(kind: UpstreamRequestKind, *task_ids: str) -> UpstreamRequest:
    return UpstreamRequest(kind=kind, task_ids=task_ids, at=None)


async def test_an_assign_dispatches_a_task_written_without_an_event_on_the_node_it_names(
    running: System,
) -> None:
    await running.add_node("n1")
    await running.add_node("n2")
    repository = running.services.repository
    written = new_task(task_id="up-1", class_name=CLASS, now=running.clock.now_ms(), executor="n2")
    await repository.insert(written)  # as an upstream client does: straight into the store
    bus(running).submit_upstream(request(UpstreamRequestKind.ASSIGN, "up-1"))
    assigned = await until(
        lambda: repository.get("up-1"), lambda t: t.lifecycle_status is not TaskStatus.CREATED
    )
    assert assigned.executor == "n2"


async def test_cancel_and_attachment_updates_go_through_the_task_service_and_misses_are_skipped(
    running: System,
) -> None:
    tasks = running.services.tasks
    for name in ("c1", "u1"):
        await tasks.create(TaskDraft(id=name, class_name=CLASS))
    bus(running).submit_upstream(request(UpstreamRequestKind.CANCEL, "no-such-task", "c1"))
    await until(lambda: tasks.get("c1"), lambda t: t.lifecycle_status is TaskStatus.CANCELLED)

    stored = await tasks.get("u1")
    edited: Task = dataclasses.replace(stored, attachments={"fps": 25})  # the client edits the document
    await running.services.repository.update(edited, stored.version)
    bus(running).submit_upstream(request(UpstreamRequestKind.UPDATE_ATTACHMENTS, "u1"))
    updated = await until(
        lambda: tasks.get("u1"), lambda t: t.attachments_version > stored.attachments_version
    )
    assert dict(updated.attachments) == {"fps": 25}
