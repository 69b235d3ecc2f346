"""The node process: single_process exit codes and SIGTERM, edge tasks, and leaving the cluster."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import skalds
from skalds.application.node_runtime import EdgeTask
from skalds.application.tasks import TaskDraft
from skalds.domain.checkpoints import Checkpoint
from skalds.domain.task import TaskMode, TaskStatus
from skalds.entrypoints.node import Skald
from tests.unit.application.harness import System, build_system
from tests.workers import WORKERS, Settings

S = TaskStatus
ROOT = Path(__file__).resolve().parents[3]


def node_command(yaml_file: Path, worker: str) -> list[str]:
    return [
        sys.executable, "-m", "skalds", "node", "--mode", "single_process", "--yaml", str(yaml_file),
        "--worker", worker,
    ]  # fmt: skip


def write_task(tmp_path: Path, class_name: str, attachments: str = "{}") -> Path:
    path = tmp_path / "task.yml"
    path.write_text(f"TaskWorkers:\n  job-1:\n    className: {class_name}\n    attachments: {attachments}\n")
    return path


def run_node(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False, **kwargs
    )  # type: ignore[call-overload, no-any-return]


def test_single_process_exits_0_when_the_task_finishes(tmp_path: Path) -> None:
    done = run_node(node_command(write_task(tmp_path, "Quick"), "tests.workers:Quick"))
    assert done.returncode == 0, done.stderr
    assert "job-1 finished" in done.stderr


def test_single_process_exits_1_with_the_error_when_the_task_fails(tmp_path: Path) -> None:
    done = run_node(node_command(write_task(tmp_path, "Steady", "{failIn: main}"), "tests.workers:Steady"))
    assert done.returncode == 1
    assert "RuntimeError: decoder crashed at frame 3" in done.stderr


def test_single_process_names_the_task_and_field_of_a_bad_file(tmp_path: Path) -> None:
    done = run_node(node_command(write_task(tmp_path, "Steady", "{fps: fast}"), "tests.workers:Steady"))
    assert done.returncode == 78
    assert "job-1" in done.stderr and "fps" in done.stderr


def test_sigterm_cancels_a_single_process_task_gracefully_and_leaves_no_orphan(tmp_path: Path) -> None:
    marker = tmp_path / "markers"
    marker.mkdir()
    yaml_file = write_task(tmp_path, "Steady", f"{{markerDir: '{marker}'}}")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    node = subprocess.Popen(
        node_command(yaml_file, "tests.workers:Steady"), cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 30
    while not (marker / "job-1.before").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    worker_pid = int((marker / "job-1.before").read_text())
    node.send_signal(signal.SIGTERM)
    assert node.wait(timeout=30) == 2
    assert (marker / "job-1.release").exists()
    with pytest.raises(ProcessLookupError):
        os.kill(worker_pid, 0)


@pytest.fixture
async def system() -> AsyncIterator[System]:
    built = await build_system()
    for name in WORKERS:
        built.services.catalog.register(name, Settings)
    yield built
    await built.close()


async def drive(system: System, task_id: str, status: TaskStatus, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await system.cycle(advance_ms=0)  # fake time stands still beside real processes
        await asyncio.sleep(0.03)
        if (await system.services.tasks.get(task_id)).lifecycle_status is status:
            return
    raise AssertionError(
        f"{task_id}: {(await system.services.tasks.get(task_id)).lifecycle_status}, wanted {status}"
    )


async def test_edge_tasks_are_stored_as_active_owned_by_the_node_and_can_be_cancelled(system: System) -> None:
    await system.add_process_node("edge-1", WORKERS)
    node = system.nodes["edge-1"]
    problems = await node.adopt_edge_tasks([EdgeTask(id="cam-1", class_name="Steady")])
    assert problems == []
    stored = await system.services.tasks.get("cam-1")
    assert (stored.mode, stored.executor, stored.source) == (TaskMode.ACTIVE, "edge-1", "YAML")
    await drive(system, "cam-1", S.RUNNING)
    await system.services.tasks.cancel("cam-1")
    await drive(system, "cam-1", S.CANCELLED)


async def test_a_restarted_edge_node_does_not_resurrect_ended_tasks_but_takes_back_retried_ones(
    system: System,
) -> None:
    await system.add_process_node("edge-1", WORKERS)
    node = system.nodes["edge-1"]
    await node.adopt_edge_tasks([EdgeTask(id="job", class_name="Quick")])
    await drive(system, "job", S.FINISHED)
    problems = await node.adopt_edge_tasks([EdgeTask(id="job", class_name="Quick")])
    assert problems == ["job: is Finished; retry it to run it again"]
    await system.services.tasks.retry("job")
    await drive(system, "job", S.FINISHED)
    assert (await system.services.tasks.get("job")).attempt == 2


async def test_an_edge_file_that_disagrees_with_the_stored_class_is_reported_not_crashed(
    system: System,
) -> None:
    await system.add_process_node("edge-1", WORKERS)
    await system.services.tasks.create(TaskDraft(id="taken", class_name="Quick"))
    problems = await system.nodes["edge-1"].adopt_edge_tasks([EdgeTask(id="taken", class_name="Steady")])
    assert problems == ["taken: stored as class 'Quick', the file says 'Steady'; not started"]


async def test_a_node_handing_back_its_tasks_lets_another_node_take_them(system: System) -> None:
    await system.add_process_node("n1", WORKERS)
    task = await system.services.tasks.create(TaskDraft(class_name="Steady"))
    await drive(system, task.id, S.RUNNING)
    await system.nodes.pop("n1").stop(drain=False, drain_timeout_s=0)
    await system.add_process_node("n2", WORKERS)
    await drive(system, task.id, S.RUNNING)
    moved = await system.services.tasks.get(task.id)
    assert (moved.executor, moved.attempt) == ("n2", 2)


async def test_a_draining_node_lets_its_task_finish_and_takes_no_new_work(system: System) -> None:
    await system.add_process_node("n1", WORKERS)
    # ~1.5 s of work: long enough to be seen Running whatever the machine's load, short enough to wait for
    task = await system.services.tasks.create(TaskDraft(class_name="Steady", attachments={"steps": 150}))
    await drive(system, task.id, S.RUNNING)
    await system.nodes["n1"].stop(drain=True, drain_timeout_s=30)
    await drive(system, task.id, S.FINISHED)
    assert (await system.services.live_state.get_node("n1")).draining  # type: ignore[union-attr]


def test_the_public_api_loads_lazily_with_upstream_names() -> None:
    assert skalds.Skald is Skald
    assert skalds.Skalds is Skald
    assert skalds.BaseTaskWorker.__name__ == "BaseTaskWorker"
    with pytest.raises(TypeError):
        Skald().register_task_worker(dict)  # type: ignore[arg-type]


def test_a_worker_class_that_cannot_be_loaded_is_a_clear_settings_error(tmp_path: Path) -> None:
    done = run_node(node_command(write_task(tmp_path, "Quick"), "no_such_module:Worker"))
    assert done.returncode == 78
    assert "cannot load 'no_such_module:Worker'" in done.stderr


async def test_an_adopted_edge_task_resumes_from_its_checkpoint(system: System) -> None:
    """An edge node started again takes its Active tasks back; their workers get the last saved checkpoint."""
    await system.add_process_node("edge-1", {"Resumable": "tests.workers:Resumable"})
    await system.services.checkpoints.save_many(
        [Checkpoint(task_id="rows", attempt=1, sequence=9, value='{"row":30,"starts":[0]}', saved_at=1)]
    )
    edge = EdgeTask(id="rows", class_name="Resumable", attachments={"rows": 35})
    assert await system.nodes["edge-1"].adopt_edge_tasks([edge]) == []
    await drive(system, "rows", S.FINISHED)
    saved = await system.services.checkpoints.get("rows")
    assert saved is not None and saved.value == '{"row":35,"starts":[0,30]}'
