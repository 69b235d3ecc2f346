"""InProcessWorkerSupervisor.on_change: asyncio workers tell the node at once when they change."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from skalds.adapters.memory.supervisor import InProcessWorkerContext, InProcessWorkerSupervisor
from skalds.domain import lifecycle
from skalds.domain.heartbeat import Outcome
from skalds.domain.lifecycle import TaskCommand
from skalds.domain.task import Task, new_task
from skalds.domain.workers import WorkerState


class Changes:
    """The listener: what the supervisor said about each change, as it said it."""

    def __init__(self, supervisor: InProcessWorkerSupervisor) -> None:
        self.seen: list[WorkerState] = []
        self._supervisor = supervisor
        self._arrived = asyncio.Event()

    def __call__(self, task_id: str) -> None:
        self.seen.append(self._supervisor.states()[task_id])
        self._arrived.set()

    async def until(self, found: Callable[[WorkerState], bool], *, since: int = 0) -> WorkerState:
        """The first change reported (from the ``since``-th on) that ``found`` accepts, once there is one."""
        async with asyncio.timeout(10):
            while True:
                for state in self.seen[since:]:
                    if found(state):
                        return state
                self._arrived.clear()
                await self._arrived.wait()


class Worker:
    """Runs until told to finish or fail; honours cancel and pause at every checkpoint."""

    def __init__(self) -> None:
        self.finish = asyncio.Event()
        self.failure: str | None = None
        self.reject_updates = False
        self.updates: list[int] = []

    async def __call__(self, ctx: InProcessWorkerContext) -> None:
        def on_update(attachments: Any, version: int) -> None:
            if self.reject_updates:
                raise ValueError("no updates, thanks")
            self.updates.append(version)

        ctx.on_update = on_update
        while not self.finish.is_set():
            await ctx.checkpoint()
            if self.failure:
                raise RuntimeError(self.failure)
            await asyncio.sleep(0.001)


async def eventually(condition: Callable[[], bool]) -> None:
    """Poll the supervisor (the port reports by polling) until ``condition()``."""
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110 - states() is the port's way to report
            await asyncio.sleep(0.001)


def assigned(task_id: str, class_name: str = "W") -> Task:
    task = new_task(task_id=task_id, class_name=class_name, now=0)
    task, _ = lifecycle.apply(task, TaskCommand.ASSIGN, at=0, executor="n1")
    return task


@pytest.fixture
def worker() -> Worker:
    return Worker()


@pytest.fixture
async def supervised(worker: Worker) -> AsyncIterator[tuple[InProcessWorkerSupervisor, Changes]]:
    supervisor = InProcessWorkerSupervisor({"W": worker}, cancel_grace_s=1.0)
    changes = Changes(supervisor)
    supervisor.on_change(changes)
    yield supervisor, changes
    await supervisor.shutdown()


async def test_a_start_is_a_change(supervised: tuple[InProcessWorkerSupervisor, Changes]) -> None:
    supervisor, changes = supervised
    await supervisor.start(assigned("t1"))
    assert not supervisor.states()["t1"].started  # the coroutine has not run yet
    started = await changes.until(lambda s: s.started)
    assert started.outcome is None and started.pid is None


async def test_pause_and_resume_are_reported_once_they_take_effect(
    supervised: tuple[InProcessWorkerSupervisor, Changes],
) -> None:
    supervisor, changes = supervised
    await supervisor.start(assigned("t1"))
    await changes.until(lambda s: s.started)
    await supervisor.pause("t1")
    await changes.until(lambda s: s.paused)
    count = len(changes.seen)
    await supervisor.resume("t1")
    resumed = await changes.until(lambda s: not s.paused, since=count)
    assert resumed.outcome is None


async def test_an_applied_and_a_rejected_update_are_changes(
    supervised: tuple[InProcessWorkerSupervisor, Changes], worker: Worker
) -> None:
    supervisor, changes = supervised
    await supervisor.start(assigned("t1"))
    await changes.until(lambda s: s.started)
    await supervisor.update("t1", {"fps": 25}, 2)
    await changes.until(lambda s: s.applied_attachments_version == 2)
    worker.reject_updates = True
    await supervisor.update("t1", {"fps": 30}, 3)
    rejected = await changes.until(lambda s: "version 3 rejected" in (s.error or ""))
    assert rejected.applied_attachments_version == 2 and worker.updates == [2]


@pytest.mark.parametrize(
    ("ending", "outcome"),
    [("finish", Outcome.FINISHED), ("fail", Outcome.FAILED), ("cancel", Outcome.CANCELLED)],
)
async def test_an_outcome_is_a_change(
    supervised: tuple[InProcessWorkerSupervisor, Changes], worker: Worker, ending: str, outcome: Outcome
) -> None:
    supervisor, changes = supervised
    await supervisor.start(assigned("t1"))
    await changes.until(lambda s: s.started)
    if ending == "finish":
        worker.finish.set()
    elif ending == "fail":
        worker.failure = "the camera fell off"
    else:
        await supervisor.cancel("t1")
    ended = await changes.until(lambda s: s.outcome is not None)
    assert ended.outcome is outcome


async def test_an_unknown_class_ends_as_a_change_after_start_returns(
    supervised: tuple[InProcessWorkerSupervisor, Changes],
) -> None:
    supervisor, changes = supervised
    await supervisor.start(assigned("t1", "Unheard"))
    assert changes.seen == []  # not from inside start: the node has not yet recorded the start
    ended = await changes.until(lambda s: s.outcome is not None)
    assert ended.outcome is Outcome.FAILED and "Unheard" in (ended.error or "")


async def test_a_failing_listener_is_logged_and_supervision_goes_on(
    worker: Worker, caplog: pytest.LogCaptureFixture
) -> None:
    supervisor = InProcessWorkerSupervisor({"W": worker}, cancel_grace_s=1.0)
    calls: list[str] = []

    def broken(task_id: str) -> None:
        calls.append(task_id)
        raise RuntimeError("the listener is broken")

    supervisor.on_change(broken)
    with caplog.at_level(logging.ERROR, logger="skalds.adapters.memory.supervisor"):
        await supervisor.start(assigned("t1"))
        await supervisor.pause("t1")
        await eventually(lambda: supervisor.states()["t1"].paused)
        await supervisor.resume("t1")
        worker.finish.set()
        await eventually(lambda: supervisor.states()["t1"].outcome is not None)
    assert supervisor.states()["t1"].outcome is Outcome.FINISHED
    assert len(calls) >= 4 and set(calls) == {"t1"}  # started, paused, resumed, finished
    assert "worker change listener failed for t1" in caplog.text
    await supervisor.shutdown()
