"""Real worker processes on the in-memory backend: the life of a task as users of Skalds will see it.

Fake time stands still here: what moves a task is what its real process reports, waited for in real time
with a generous deadline. Were the fake clock to run meanwhile, a busy machine that slows the processes
down would let the monitor's silence and grace periods expire (re-queueing a start, settling a cancel
without its worker), and the test would see that instead of what the worker did.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from skalds.adapters.process.supervisor import ProcessWorkerSupervisor
from skalds.application.tasks import TaskDraft
from skalds.domain.errors import ValidationError
from skalds.domain.task import TaskStatus
from tests.unit.application.harness import System, build_system
from tests.workers import WORKERS, Settings

S = TaskStatus
ROOT = Path(__file__).resolve().parents[3]
PATIENCE_S = 60.0  # a deadline, not an expectation: the machine may be busy
Built = tuple[System, ProcessWorkerSupervisor]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is not alive
        return stat.read().split()[2] != "Z"


@pytest.fixture
async def system(request: pytest.FixtureRequest) -> AsyncIterator[Built]:
    """A system with one process node. Its graces are long unless a test asks for short ones (indirect
    parametrization), so no escalation cuts short a worker that is merely slow on a busy machine."""
    graces: dict[str, float] = {"cancel_grace_s": 60.0, "kill_grace_s": 60.0}
    graces.update(getattr(request, "param", {}))
    built = await build_system()
    for name in WORKERS:
        built.services.catalog.register(name, Settings)
    supervisor = await built.add_process_node("n1", WORKERS, **graces)
    yield built, supervisor
    await built.close()
    for task_id, _ in list(supervisor.states().items()):
        pid = supervisor.pid(task_id)
        assert pid is None or not alive(pid), f"orphan worker process {pid} for {task_id}"


async def drive(system: System, done: Callable[[], Awaitable[bool]], what: str) -> None:
    """Turn the system (fake time standing still) until ``done()``; fail after ``PATIENCE_S`` of real time."""
    deadline = time.monotonic() + PATIENCE_S
    while True:
        await system.cycle(advance_ms=0)
        if await done():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {PATIENCE_S} s for {what}")
        await asyncio.sleep(0.02)


async def until(system: System, task_id: str, status: TaskStatus) -> None:
    """Drive the system until the task reaches ``status``."""

    async def reached() -> bool:
        return (await system.services.tasks.get(task_id)).lifecycle_status is status

    try:
        await drive(system, reached, f"{task_id} to be {status}")
    except AssertionError as late:
        task = await system.services.tasks.get(task_id)
        raise AssertionError(f"{late}: it is {task.lifecycle_status} ({task.last_error})") from None


async def test_a_task_runs_in_its_own_process_and_finishes(system: Built) -> None:
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
async def test_a_worker_raising_fails_with_its_error_text(system: Built, where: str, message: str) -> None:
    sys_, _ = system
    task = await sys_.services.tasks.create(
        TaskDraft(class_name="Steady", attachments={"failIn": where}, max_attempts=1)
    )
    await until(sys_, task.id, S.FAILED)
    error = (await sys_.services.tasks.get(task.id)).last_error or ""
    assert error.startswith(message)
    assert "Traceback" in error


async def test_cancel_stops_the_process_after_its_release_hook(system: Built, tmp_path: Path) -> None:
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


@pytest.mark.parametrize("system", [{"cancel_grace_s": 0.3}], indirect=True)
async def test_a_worker_ignoring_cancel_is_terminated_after_the_grace_period(
    system: Built, tmp_path: Path
) -> None:
    sys_, _ = system
    attachments = {"ignoreCancel": True, "markerDir": str(tmp_path)}
    task = await sys_.services.tasks.create(TaskDraft(class_name="Steady", attachments=attachments))
    await until(sys_, task.id, S.RUNNING)
    await sys_.services.tasks.cancel(task.id)
    await until(sys_, task.id, S.CANCELLED)
    assert (tmp_path / f"{task.id}.release").exists()  # SIGTERM still lets the release hook run


@pytest.mark.parametrize("system", [{"cancel_grace_s": 0.3, "kill_grace_s": 0.3}], indirect=True)
async def test_a_worker_ignoring_sigterm_is_killed(system: Built) -> None:
    sys_, supervisor = system
    task = await sys_.services.tasks.create(TaskDraft(class_name="Stubborn"))
    await until(sys_, task.id, S.RUNNING)
    pid = supervisor.pid(task.id)
    await sys_.services.tasks.cancel(task.id)
    await until(sys_, task.id, S.CANCELLED)
    assert pid is not None and not alive(pid)


async def test_pause_then_resume_continues_the_same_process(system: Built, tmp_path: Path) -> None:
    sys_, supervisor = system
    task = await sys_.services.tasks.create(
        TaskDraft(class_name="Steady", attachments={"markerDir": str(tmp_path)})
    )
    await until(sys_, task.id, S.RUNNING)
    pid = supervisor.pid(task.id)
    await sys_.services.tasks.pause(task.id)
    await until(sys_, task.id, S.PAUSED)
    paused_at = (await sys_.services.queries.latest_heartbeat(task.id)).progress  # type: ignore[union-attr]
    beats = supervisor.states()[task.id].beats

    async def beaten_while_paused() -> bool:  # the worker lives on and reports, so its progress is known
        return supervisor.states()[task.id].beats >= beats + 3

    await drive(sys_, beaten_while_paused, "three beats while paused")
    await sys_.cycle(advance_ms=0)
    latest = await sys_.services.queries.latest_heartbeat(task.id)
    assert latest is not None and latest.paused and latest.progress == paused_at
    await sys_.services.tasks.resume(task.id)
    await until(sys_, task.id, S.RUNNING)
    assert supervisor.pid(task.id) == pid
    markers = sorted(p.suffix for p in tmp_path.iterdir())
    assert {".pause", ".resume"} <= set(markers), (
        markers,
        await sys_.services.queries.heartbeat_history(task.id, 50),
    )


async def test_a_hot_update_reaches_the_handler_typed_and_is_acknowledged(
    system: Built, tmp_path: Path
) -> None:
    sys_, _ = system
    task = await sys_.services.tasks.create(
        TaskDraft(class_name="Steady", attachments={"markerDir": str(tmp_path)})
    )
    await until(sys_, task.id, S.RUNNING)
    await sys_.services.tasks.update_attachments(task.id, {"fps": 25, "markerDir": str(tmp_path)})
    marker = tmp_path / f"{task.id}.update"

    async def acknowledged() -> bool:
        return marker.exists() and (await sys_.services.tasks.get(task.id)).applied_attachments_version == 2

    await drive(sys_, acknowledged, "the update to be applied and acknowledged")
    assert marker.read_text() == "Settings:25"
    assert (await sys_.services.tasks.get(task.id)).applied_attachments_version == 2


async def test_an_invalid_update_is_refused_naming_the_field(system: Built) -> None:
    sys_, _ = system
    task = await sys_.services.tasks.create(TaskDraft(class_name="Steady"))
    with pytest.raises(ValidationError) as refused:
        await sys_.services.tasks.update_attachments(task.id, {"fps": "fast"})
    assert refused.value.field == "attachments.fps"


async def test_a_killed_worker_fails_and_says_how(system: Built) -> None:
    sys_, supervisor = system
    task = await sys_.services.tasks.create(TaskDraft(class_name="Steady", max_attempts=1))
    await until(sys_, task.id, S.RUNNING)
    pid = supervisor.pid(task.id)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    await until(sys_, task.id, S.FAILED)
    assert "SIGKILL" in ((await sys_.services.tasks.get(task.id)).last_error or "")


NODE_PROBE = textwrap.dedent(
    """
    import asyncio, json, multiprocessing, sys
    from skalds.adapters.process.supervisor import ProcessWorkerSupervisor
    from skalds.domain import lifecycle
    from skalds.domain.lifecycle import TaskCommand
    from skalds.domain.task import new_task

    MARKERS = sys.argv[2]
    WORKERS = {  # task id -> (class, attachments)
        "cooperative": ("Steady", {"markerDir": MARKERS}),
        "deaf-to-cancel": ("Steady", {"ignoreCancel": True, "markerDir": MARKERS}),
        "deaf-to-sigterm": ("Stubborn", {}),
        "stuck-in-release": ("SlowRelease", {}),
        "swallows-cancel": ("Defiant", {}),
    }

    async def main():
        supervisor = ProcessWorkerSupervisor(
            {name: f"tests.workers:{name}" for name, _ in WORKERS.values()},
            heartbeat_period_s=0.05,
            start_method=sys.argv[1],
        )
        for task_id, (class_name, attachments) in WORKERS.items():
            task = new_task(task_id=task_id, class_name=class_name, now=0, attachments=attachments)
            task, _ = lifecycle.apply(task, TaskCommand.ASSIGN, at=0, executor="n")
            await supervisor.start(task)
        while not (
            all(state.started for state in supervisor.states().values())
            and len(multiprocessing.active_children()) > len(WORKERS)  # the warm spare is up too
        ):
            await asyncio.sleep(0.02)
        print(json.dumps({task_id: supervisor.pid(task_id) for task_id in WORKERS}), flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


def process_table() -> dict[int, tuple[int, int, str]]:
    """Every process: pid -> (parent pid, start time, state), from /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                text = stat.read()
        except OSError:
            continue  # ended meanwhile
        fields = text[text.rindex(b")") + 2 :].split()
        table[int(entry)] = (int(fields[1]), int(fields[19]), fields[0].decode())
    return table


def descendants(pid: int) -> dict[int, int]:
    """Every process below ``pid`` (pid -> start time, so a recycled pid is not taken for it)."""
    table = process_table()
    found: dict[int, int] = {}
    parents = {pid}
    while parents:
        children = {p for p, (ppid, _, _) in table.items() if ppid in parents and p not in found}
        found.update({p: table[p][1] for p in children})
        parents = children
    return found


def still_running(processes: dict[int, int]) -> dict[int, str]:
    table = process_table()
    return {
        pid: table[pid][2]
        for pid, started in processes.items()
        if pid in table and table[pid][1] == started and table[pid][2] not in ("Z", "X")
    }


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("start_method", ["forkserver", "spawn"])
def test_a_killed_node_leaves_no_process_behind(start_method: str, tmp_path: Path) -> None:
    """SIGKILL the node: every process it started (workers, even those deaf to cancel and SIGTERM or stuck
    in their release hook, the warm spare, the forkserver) ends soon after, well inside the 10 s after
    which the control plane re-queues the node's tasks (the bound itself is the supervisor's
    ``orphan_grace_s``, 3 s; this deadline only keeps a busy machine from failing the test). Workers
    that heed the cancel or SIGTERM run their release hooks on the way out."""
    node = subprocess.Popen(
        [sys.executable, "-c", NODE_PROBE, start_method, str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    below: dict[int, int] = {}
    try:
        assert node.stdout is not None
        workers = json.loads(node.stdout.readline())
        below = descendants(node.pid)
        assert set(workers.values()) <= set(below), (workers, below)
        assert len(below) > len(workers), below  # and the spare (and forkserver or resource tracker)
        node.kill()
        node.wait()
        deadline = time.monotonic() + 20
        while still_running(below) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = still_running(below)
        assert not left, f"outlived their node: {left} (workers: {workers})"
        released = {marker.stem for marker in tmp_path.glob("*.release")}
        assert released == {"cooperative", "deaf-to-cancel"}
    finally:
        node.kill()
        node.wait()
        for pid in still_running(below):  # leave no orphan behind even when the test fails
            os.kill(pid, signal.SIGKILL)


async def test_a_dead_forkserver_is_started_again_and_the_next_task_runs(system: Built) -> None:
    from multiprocessing import forkserver

    sys_, supervisor = system
    first = await sys_.services.tasks.create(TaskDraft(class_name="Quick"))
    await until(sys_, first.id, S.FINISHED)
    server_pid = forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined]
    assert server_pid is not None
    os.kill(server_pid, signal.SIGKILL)
    spare = supervisor._spare  # the warm spare would hide the dead server: the next start must launch
    if spare is not None:
        spare[0].kill()
        spare[0].join(5)
    second = await sys_.services.tasks.create(TaskDraft(class_name="Quick"))
    await until(sys_, second.id, S.FINISHED)
    assert forkserver._forkserver._forkserver_pid not in (None, server_pid)  # type: ignore[attr-defined]


async def test_a_worker_process_is_named_after_its_class_and_task(system: Built) -> None:
    """In ``ps -f`` / ``top -c`` an operator sees which task a hot process runs; ``comm`` stays short."""
    sys_, supervisor = system
    await sys_.services.tasks.create(TaskDraft(class_name="Steady", id="cam-7"))
    await until(sys_, "cam-7", S.RUNNING)
    pid = supervisor.pid("cam-7")
    assert pid is not None
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\x00", b" ").decode().strip()
    assert cmdline == "skalds-worker Steady cam-7"
    assert Path(f"/proc/{pid}/comm").read_text().strip() == "skalds-worker"
    await sys_.services.tasks.cancel("cam-7")
    await until(sys_, "cam-7", S.CANCELLED)
