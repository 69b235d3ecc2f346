"""``skalds up``: one command, and a new user sees the example tasks running on a node; Ctrl-C ends it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from skalds.config import Backend, ControllerMode, ShutdownPolicy, load_settings
from skalds.entrypoints.cli import _up_settings, build_parser
from skalds.entrypoints.embedded import embedded_settings
from tests.unit.process.test_controller_process import ROOT, free_port, get


def wait_for(probe: Callable[[], Any], process: subprocess.Popen[str], within_s: float = 60) -> Any:
    """Poll ``probe`` until it returns something truthy (connection errors count as not yet)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            found = probe()
            if found:
                return found
        except OSError:
            pass
        if process.poll() is not None:
            raise AssertionError(f"skalds up exited with {process.returncode}: {process.stderr}")
        if time.monotonic() > deadline:
            raise AssertionError("skalds up did not get there")
        time.sleep(0.2)


def test_up_runs_the_example_tasks_on_its_own_node_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "skalds", "up", "--port", str(port), "--data-dir", str(tmp_path)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:

        def examples_running() -> list[dict[str, Any]] | None:
            items: list[dict[str, Any]] = get(f"{base}/api/tasks")["items"]  # type: ignore[assignment]
            running = [t for t in items if t["lifecycleStatus"] == "Running" and t["progress"] is not None]
            return running if len(running) == 2 else None

        running = wait_for(examples_running, process)
        assert {t["id"] for t in running} == {"example-countdown", "example-stream"}
        assert {t["executor"] for t in running} == {"embedded-node"}
        status = get(f"{base}/api/system/status")
        assert status["mode"] == "DISPATCHER"
        [node] = get(f"{base}/api/skalds")["items"]  # type: ignore[misc]
        assert node["supportedTasks"] == ["CountdownWorker", "StreamWorker"]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) in (0, -signal.SIGINT)
    finally:
        process.kill()
        process.wait()


def test_up_is_the_dispatcher_mode_and_hands_back_on_shutdown_unless_told_otherwise() -> None:
    settings = embedded_settings(load_settings(None, {}))
    assert settings.controller.mode is ControllerMode.DISPATCHER
    assert settings.node.on_shutdown is ShutdownPolicy.HAND_BACK
    assert settings.node.id == "embedded-node"
    chosen = embedded_settings(load_settings(None, {"SKALDS_NODE__ON_SHUTDOWN": "drain"}))
    assert chosen.node.on_shutdown is ShutdownPolicy.DRAIN


def test_up_switches_single_ports_to_real_backends() -> None:
    args = build_parser().parse_args(["up", "--event-bus", "KAFKA", "--live-state", "redis"])
    backends = _up_settings(args).backends
    assert (backends.event_bus, backends.live_state, backends.repository) == (
        Backend.KAFKA,
        Backend.REDIS,
        Backend.SQLITE,  # the embedded default, not chosen by a port option
    )


def test_ctrl_c_in_a_terminal_stops_up_without_a_traceback_from_any_process(tmp_path: Path) -> None:
    """A terminal's Ctrl-C signals the whole process group: the worker processes (the warm spare too)
    ignore it and are stopped by their node; nobody prints a KeyboardInterrupt."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "skalds", "up", "--port", str(port), "--data-dir", str(tmp_path)]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:

        def examples_running() -> bool:
            items: list[dict[str, Any]] = get(f"http://127.0.0.1:{port}/api/tasks")["items"]  # type: ignore[assignment]
            return sum(t["lifecycleStatus"] == "Running" for t in items) == 2

        wait_for(examples_running, process)
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
        assert process.returncode in (0, -signal.SIGINT)
        assert "Traceback" not in stderr, stderr
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def test_a_worker_path_that_does_not_load_is_one_line_and_exit_78() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "skalds", "up", "--port", str(free_port()), "--worker", "nope.module:Worker"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 78
    assert done.stderr.strip().splitlines() == [
        "skalds up: invalid settings: node.worker_classes: cannot load 'nope.module:Worker': "
        "No module named 'nope'"
    ]


async def test_only_example_tasks_the_node_can_run_are_created() -> None:
    from skalds.domain.ports import TaskQuery
    from skalds.entrypoints.embedded import create_examples
    from tests.unit.application.harness import build_system

    system = await build_system()
    try:
        await create_examples(system.services, ["CountdownWorker"])
        await create_examples(system.services, ["CountdownWorker"])  # a restart: nothing twice
        found = await system.services.tasks.list(TaskQuery())
        assert [t.id for t in found.items] == ["example-countdown"]
    finally:
        await system.close()
