"""ProcessWorkerSupervisor.on_change: real worker processes tell the node at once when they change.

Nothing here is timed: each test waits, with a generous deadline, for the state that proves its point.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from skalds.adapters.process.supervisor import ProcessWorkerSupervisor
from skalds.domain import lifecycle
from skalds.domain.heartbeat import Outcome
from skalds.domain.lifecycle import TaskCommand
from skalds.domain.task import Task, new_task
from skalds.domain.workers import WorkerState
from tests.workers import WORKERS

PATIENCE_S = 60.0  # a deadline, not an expectation: the machine may be busy
AN_HOUR = 3_600.0  # a heartbeat period no test outlives: what arrives came as a change, not as a beat


class Changes:
    """The listener: what the supervisor said about each change, as it said it."""

    def __init__(self, supervisor: ProcessWorkerSupervisor) -> None:
        self.seen: list[WorkerState] = []
        self._supervisor = supervisor

    def __call__(self, task_id: str) -> None:
        self.seen.append(self._supervisor.states()[task_id])

    async def until(self, what: str, found: Callable[[WorkerState], bool], *, since: int = 0) -> WorkerState:
        """The first change reported (from the ``since``-th on) that ``found`` accepts, once there is one."""
        deadline = time.monotonic() + PATIENCE_S
        while time.monotonic() < deadline:
            for state in self.seen[since:]:
                if found(state):
                    return state
            await asyncio.sleep(0.01)
        raise AssertionError(f"no change reported {what}; saw {self.seen}")


def assigned(task_id: str, class_name: str, attachments: dict[str, Any] | None = None) -> Task:
    task = new_task(task_id=task_id, class_name=class_name, now=0, attachments=attachments or {})
    task, _ = lifecycle.apply(task, TaskCommand.ASSIGN, at=0, executor="n1")
    return task


async def beats_reach(supervisor: ProcessWorkerSupervisor, task_id: str, beats: int) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while supervisor.states()[task_id].beats < beats:
        assert time.monotonic() < deadline, f"{task_id} beat {supervisor.states()[task_id].beats} times"
        await asyncio.sleep(0.01)


def supervisor_with(period_s: float) -> ProcessWorkerSupervisor:
    return ProcessWorkerSupervisor(WORKERS, heartbeat_period_s=period_s, warm_spare=False)


@pytest.fixture
async def quiet() -> AsyncIterator[tuple[ProcessWorkerSupervisor, Changes]]:
    """Workers whose periodic beat never comes during a test."""
    supervisor = supervisor_with(AN_HOUR)
    changes = Changes(supervisor)
    supervisor.on_change(changes)
    yield supervisor, changes
    await supervisor.shutdown()


async def test_a_start_is_a_change_and_names_the_process(
    quiet: tuple[ProcessWorkerSupervisor, Changes],
) -> None:
    supervisor, changes = quiet
    await supervisor.start(assigned("t1", "Steady"))
    started = await changes.until("for the start", lambda s: s.started)
    assert started.pid is not None and started.pid == supervisor.pid("t1")
    assert started.beats == 0  # before any beat: the start is reported on its own
    assert started.pid != os.getpid()


async def test_pause_and_resume_are_reported_once_they_take_effect(
    quiet: tuple[ProcessWorkerSupervisor, Changes],
) -> None:
    supervisor, changes = quiet
    await supervisor.start(assigned("t1", "Steady"))
    await changes.until("for the start", lambda s: s.started)
    await supervisor.pause("t1")
    await changes.until("for the pause", lambda s: s.paused)
    count = len(changes.seen)
    await supervisor.resume("t1")
    resumed = await changes.until("for the resume", lambda s: not s.paused, since=count)
    assert resumed.outcome is None


async def test_an_applied_and_a_rejected_update_are_changes(
    quiet: tuple[ProcessWorkerSupervisor, Changes],
) -> None:
    supervisor, changes = quiet
    await supervisor.start(assigned("t1", "Steady"))
    await changes.until("for the first attachments", lambda s: s.applied_attachments_version == 1)
    await supervisor.update("t1", {"fps": 25}, 2)
    await changes.until("for the update", lambda s: s.applied_attachments_version == 2)
    await supervisor.update("t1", {"fps": "fast"}, 3)
    rejected = await changes.until("for the rejection", lambda s: "version 3 rejected" in (s.error or ""))
    assert rejected.applied_attachments_version == 2


async def test_an_ended_worker_holds_its_slot_until_its_process_has_exited(
    quiet: tuple[ProcessWorkerSupervisor, Changes], tmp_path: Path
) -> None:
    supervisor, changes = quiet
    await supervisor.start(assigned("t1", "Lingering", {"markerDir": str(tmp_path)}))
    ended = await changes.until("for the outcome", lambda s: s.outcome is not None)
    assert ended.outcome is Outcome.FINISHED
    supervisor.forget("t1")  # recorded: the node no longer sees the worker, but its process is still there
    assert await supervisor.room(2, within_s=0)
    assert not await supervisor.room(1, within_s=0)
    (tmp_path / "t1.go").write_text("")
    assert await supervisor.room(1, within_s=PATIENCE_S)


async def test_a_worker_killed_by_a_nameless_signal_fails_saying_so_and_frees_its_slot(
    quiet: tuple[ProcessWorkerSupervisor, Changes],
) -> None:
    supervisor, changes = quiet
    await supervisor.start(assigned("t1", "Steady"))
    started = await changes.until("for the start", lambda s: s.started)
    assert started.pid is not None
    os.kill(started.pid, signal.SIGRTMIN + 1)  # a real-time signal: Python has no name for it
    ended = await changes.until("for the outcome", lambda s: s.outcome is not None)
    assert ended.outcome is Outcome.FAILED
    assert ended.error == f"worker process killed by signal {signal.SIGRTMIN + 1}"
    assert await supervisor.room(1, within_s=PATIENCE_S)


async def test_an_outcome_is_a_change(quiet: tuple[ProcessWorkerSupervisor, Changes]) -> None:
    supervisor, changes = quiet
    await supervisor.start(assigned("t1", "Quick"))
    ended = await changes.until("for the outcome", lambda s: s.outcome is not None)
    assert ended.outcome is Outcome.FINISHED


async def test_a_killed_worker_is_a_change(quiet: tuple[ProcessWorkerSupervisor, Changes]) -> None:
    supervisor, changes = quiet
    await supervisor.start(assigned("t1", "Steady"))
    started = await changes.until("for the start", lambda s: s.started)
    assert started.pid is not None
    os.kill(started.pid, signal.SIGKILL)
    ended = await changes.until("for the death", lambda s: s.outcome is not None)
    assert ended.outcome is Outcome.FAILED and "SIGKILL" in (ended.error or "")


async def test_an_unknown_class_ends_as_a_change_after_start_returns(
    quiet: tuple[ProcessWorkerSupervisor, Changes],
) -> None:
    supervisor, changes = quiet
    await supervisor.start(assigned("t1", "Unheard"))
    assert changes.seen == []  # not from inside start: the node has not yet recorded the start
    ended = await changes.until("for the failure", lambda s: s.outcome is not None)
    assert ended.outcome is Outcome.FAILED and "Unheard" in (ended.error or "")
    assert supervisor.pid("t1") is None


async def test_plain_beats_are_not_changes() -> None:
    supervisor = supervisor_with(0.02)
    changes = Changes(supervisor)
    supervisor.on_change(changes)
    try:
        await supervisor.start(assigned("t1", "Steady"))
        await changes.until("for the first attachments", lambda s: s.applied_attachments_version == 1)
        await beats_reach(supervisor, "t1", 1)
        count, beats = len(changes.seen), supervisor.states()["t1"].beats
        await beats_reach(supervisor, "t1", beats + 5)  # five beats read from the pipe, in order
        assert changes.seen[count:] == []
    finally:
        await supervisor.shutdown()


async def test_a_failing_listener_is_logged_and_supervision_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    supervisor = supervisor_with(0.02)
    calls: list[str] = []

    def broken(task_id: str) -> None:
        calls.append(task_id)
        raise RuntimeError("the listener is broken")

    supervisor.on_change(broken)
    try:
        with caplog.at_level(logging.ERROR, logger="skalds.adapters.process.supervisor"):
            await supervisor.start(assigned("t1", "Quick"))
            deadline = time.monotonic() + PATIENCE_S
            while supervisor.states()["t1"].outcome is None:
                assert time.monotonic() < deadline, supervisor.states()
                await asyncio.sleep(0.01)
        assert supervisor.states()["t1"].outcome is Outcome.FINISHED
        assert calls and set(calls) == {"t1"}
        assert "worker change listener failed for t1" in caplog.text
        assert "the listener is broken" in caplog.text
    finally:
        await supervisor.shutdown()


async def test_a_later_listener_replaces_the_first(quiet: tuple[ProcessWorkerSupervisor, Changes]) -> None:
    supervisor, first = quiet
    second = Changes(supervisor)
    supervisor.on_change(second)
    await supervisor.start(assigned("t1", "Quick"))
    await second.until("for the outcome", lambda s: s.outcome is not None)
    assert first.seen == []
