"""Real worker processes on the in-memory backend: the life of a task as users of Skalds will see it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from skalds.application.tasks import TaskDraft
from skalds.domain.errors import ValidationError
from skalds.domain.task import TaskStatus
from tests.unit.application.harness import System, build_system
from tests.workers import WORKERS, Settings

S = TaskStatus
ROOT = Path(__file__).resolve().parents[3]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is not alive
        return stat.read().split()[2] != "Z"


@pytest.fixture
async def system() -> AsyncIterator[tuple[System, object]]:
    built = await build_system()
    for name in WORKERS:
        built.services.catalog.register(name, Settings)
    supervisor = await built.add_process_node("n1", WORKERS)
    yield built, supervisor
    await built.close()
    for task_id, _ in list(supervisor.states().items()):
        pid = supervisor.pid(task_id)
        assert pid is None or not alive(pid), f"orphan worker process {pid} for {task_id}"


async def until(system: System, task_id: str, status: TaskStatus, *, seconds: float = 10.0) -> None:
    """Drive the system (fake time, real processes) until the task reaches ``status``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await system.cycle(advance_ms=100)
        await asyncio.sleep(0.03)
        if (await system.services.tasks.get(task_id)).lifecycle_status is status:
            return
    task = await system.services.tasks.get(task_id)
    raise AssertionError(f"{task_id} is {task.lifecycle_status} ({task.last_error}), wanted {status}")


async def test_a_task_runs_in_its_own_process_and_finishes(system: tuple[System, object]) -> None:
    sys_, _ = system
    task = await sys_.services.tasks.create(TaskDraft(class_name="Quick"))
    await until(sys_, task.id, S.FINISHED)
    history = await sys_.services.queries.heartbeat_history(task.id)
    assert history[-1].outcome is not None


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("before", "ValueError: camera URL is unreachable"),
        ("main", "RuntimeError: decoder crashed at frame 3"),
    ],
)
async def test_a_worker_raising_fails_with_its_error_text(
    system: tuple[System, object], where: str, message: str
) -> None:
    sys_, _ = system
    task = await sys_.services.tasks.create(
        TaskDraft(class_name="Steady", attachments={"failIn": where}, max_attempts=1)
    )
    await until(sys_, task.id, S.FAILED)
    error = (await sys_.services.tasks.get(task.id)).last_error or ""
    assert error.startswith(message)
    assert "Traceback" in error


async def test_cancel_stops_the_process_after_its_release_hook(
    system: tuple[System, object], tmp_path: Path
) -> None:
    sys_, supervisor = system
    task = await sys_.services.tasks.create(
        TaskDraft(class_name="Steady", attachments={"markerDir": str(tmp_path)})
    )
    await until(sys_, task.id, S.RUNNING)
    pid = supervisor.pid(task.id)
    await sys_.services.tasks.cancel(task.id)
    await until(sys_, task.id, S.CANCELLED)
    assert (tmp_path / f"{task.id}.release").exists()
    assert pid is not None and not alive(pid)


async def test_a_worker_ignoring_cancel_is_terminated_after_the_grace_period(
    system: tuple[System, object], tmp_path: Path
) -> None:
    sys_, _ = system
    attachments = {"ignoreCancel": True, "markerDir": str(tmp_path)}
    task = await sys_.services.tasks.create(TaskDraft(class_name="Steady", attachments=attachments))
    await until(sys_, task.id, S.RUNNING)
    await sys_.services.tasks.cancel(task.id)
    await until(sys_, task.id, S.CANCELLED)
    assert (tmp_path / f"{task.id}.release").exists()  # SIGTERM still lets the release hook run


async def test_a_worker_ignoring_sigterm_is_killed(system: tuple[System, object]) -> None:
    sys_, supervisor = system
    task = await sys_.services.tasks.create(TaskDraft(class_name="Stubborn"))
    await until(sys_, task.id, S.RUNNING)
    pid = supervisor.pid(task.id)
    await sys_.services.tasks.cancel(task.id)
    await until(sys_, task.id, S.CANCELLED)
    assert pid is not None and not alive(pid)


async def test_pause_then_resume_continues_the_same_process(
    system: tuple[System, object], tmp_path: Path
) -> None:
    sys_, supervisor = system
    task = await sys_.services.tasks.create(
        TaskDraft(class_name="Steady", attachments={"markerDir": str(tmp_path)})
    )
    await until(sys_, task.id, S.RUNNING)
    pid = supervisor.pid(task.id)
    await sys_.services.tasks.pause(task.id)
    await until(sys_, task.id, S.PAUSED)
    paused_at = (await sys_.services.queries.latest_heartbeat(task.id)).progress  # type: ignore[union-attr]
    await asyncio.sleep(0.2)
    await sys_.cycle(advance_ms=100)
    assert (await sys_.services.queries.latest_heartbeat(task.id)).progress == paused_at  # type: ignore[union-attr]
    await sys_.services.tasks.resume(task.id)
    await until(sys_, task.id, S.RUNNING)
    assert supervisor.pid(task.id) == pid
    markers = sorted(p.suffix for p in tmp_path.iterdir())
    assert {".pause", ".resume"} <= set(markers), (
        markers,
        await sys_.services.queries.heartbeat_history(task.id, 50),
    )


async def test_a_hot_update_reaches_the_handler_typed_and_is_acknowledged(
    system: tuple[System, object], tmp_path: Path
) -> None:
    sys_, _ = system
    task = await sys_.services.tasks.create(
        TaskDraft(class_name="Steady", attachments={"markerDir": str(tmp_path)})
    )
    await until(sys_, task.id, S.RUNNING)
    await sys_.services.tasks.update_attachments(task.id, {"fps": 25, "markerDir": str(tmp_path)})
    marker = tmp_path / f"{task.id}.update"
    for _ in range(100):
        await sys_.cycle(advance_ms=100)
        if marker.exists() and (await sys_.services.tasks.get(task.id)).applied_attachments_version == 2:
            break
        await asyncio.sleep(0.02)
    assert marker.read_text() == "Settings:25"
    assert (await sys_.services.tasks.get(task.id)).applied_attachments_version == 2


async def test_an_invalid_update_is_refused_naming_the_field(system: tuple[System, object]) -> None:
    sys_, _ = system
    task = await sys_.services.tasks.create(TaskDraft(class_name="Steady"))
    with pytest.raises(ValidationError) as refused:
        await sys_.services.tasks.update_attachments(task.id, {"fps": "fast"})
    assert refused.value.field == "attachments.fps"


async def test_a_killed_worker_fails_and_says_how(system: tuple[System, object]) -> None:
    sys_, supervisor = system
    task = await sys_.services.tasks.create(TaskDraft(class_name="Steady", max_attempts=1))
    await until(sys_, task.id, S.RUNNING)
    pid = supervisor.pid(task.id)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    await until(sys_, task.id, S.FAILED)
    assert "SIGKILL" in ((await sys_.services.tasks.get(task.id)).last_error or "")


ORPHAN_PROBE = textwrap.dedent(
    """
    import asyncio, sys
    from skalds.adapters.process.supervisor import ProcessWorkerSupervisor
    from skalds.domain.task import new_task
    from skalds.domain import lifecycle
    from skalds.domain.lifecycle import TaskCommand

    async def main():
        supervisor = ProcessWorkerSupervisor({"Steady": "tests.workers:Steady"}, heartbeat_period_s=0.05)
        task = new_task(task_id="orphan", class_name="Steady", now=0)
        task, _ = lifecycle.apply(task, TaskCommand.ASSIGN, at=0, executor="n")
        await supervisor.start(task)
        while supervisor.pid("orphan") is None or supervisor.states()["orphan"].beats < 2:
            await asyncio.sleep(0.02)
        print(supervisor.pid("orphan"), flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


def test_a_killed_node_leaves_no_orphan_worker() -> None:
    node = subprocess.Popen(
        [sys.executable, "-c", ORPHAN_PROBE],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert node.stdout is not None
        worker_pid = int(node.stdout.readline())
        assert alive(worker_pid)
        node.kill()
        node.wait()
        deadline = time.monotonic() + 10
        while alive(worker_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(worker_pid), "the worker outlived its node"
    finally:
        node.kill()
