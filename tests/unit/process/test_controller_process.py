"""``skalds controller`` serves the API, runs the loops its mode asks for, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CONTROLLER = (sys.executable, "-m", "skalds", "controller", "--standalone")  # an API alone, on purpose


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=2) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def wait_until_serving(process: subprocess.Popen[str], port: int) -> dict[str, object]:
    """The health answer once the controller on ``port`` serves; raises if it exits or takes too long."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return get(f"http://127.0.0.1:{port}/api/system/health")
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise
            time.sleep(0.1)


def test_the_controller_serves_the_api_in_dispatcher_mode_and_stops_on_sigterm() -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [*CONTROLLER, "--mode", "dispatcher", "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        health = wait_until_serving(process, port)
        assert health["status"] == "healthy"
        status = get(f"http://127.0.0.1:{port}/api/system/status")
        assert status["mode"] == "DISPATCHER"
        running = {c["name"]: c["running"] for c in status["components"]}  # type: ignore[union-attr]
        assert running == {"Dispatcher": True, "Monitor": True}
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal so a supervisor sees why it stopped
        assert process.wait(timeout=20) in (0, -signal.SIGTERM)
    finally:
        process.kill()


def test_a_bad_mode_is_refused_before_anything_starts() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SYSTEM_CONTROLLER_MODE": "everything"}
    done = subprocess.run(
        [sys.executable, "-m", "skalds", "controller"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 78
    assert "SYSTEM_CONTROLLER_MODE" in done.stderr


def test_a_backend_that_does_not_answer_at_start_up_is_named_in_one_line_and_exit_69() -> None:
    """Nothing listens on port 1: the operator gets which backend, where (no password), and EX_UNAVAILABLE."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SKALDS_BACKENDS__LIVE_STATE": "redis",
        "SKALDS_REDIS_URL": "redis://:hunter2@127.0.0.1:1/0",
    }
    for command in (
        ["controller", "--standalone", "--mode", "dispatcher", "--port", str(free_port())],
        ["node", "--standalone", "--mode", "node", "--worker", "tests.workers:Quick"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "skalds", *command],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 69, done.stderr
        assert "cannot start: redis is unavailable" in done.stderr
        assert "hunter2" not in done.stderr
        assert "Traceback" not in done.stderr


def test_a_stopping_controller_ends_open_live_streams_cleanly() -> None:
    """An SSE stream never ends by itself; on SIGTERM the controller ends it with the stream's proper end
    (not a connection cut when the grace period runs out), so browsers see it and reconnect elsewhere."""
    import httpx

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [*CONTROLLER, "--mode", "monitor", "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_serving(process, port)
        lines = []
        with (
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http,
            http.stream("GET", "/api/events/tasks") as stream,
        ):
            for line in stream.iter_lines():  # raises RemoteProtocolError if the stream is cut, not ended
                lines.append(line)
                if "Connected to Skalds Task events" in line:
                    process.send_signal(signal.SIGTERM)
        assert any("Connected" in line for line in lines)
        assert process.wait(timeout=20) in (0, -signal.SIGTERM)
    finally:
        process.kill()


def test_a_node_or_controller_that_would_reach_nobody_refuses_to_start_and_says_what_to_set() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SKALDS_")}
    env |= {"PYTHONPATH": str(ROOT), "SKALDS_BACKENDS__EVENT_BUS": "kafka"}  # live state left in memory
    for command, other in (
        (["controller", "--port", str(free_port())], "node"),
        (["node", "--worker", "tests.workers:Quick"], "controller"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "skalds", *command],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 78, done.stderr
        assert f"backends.live_state in memory: this {command[0]} could reach no {other}" in done.stderr
        assert "SKALDS_BACKENDS__LIVE_STATE=redis" in done.stderr and "--standalone" in done.stderr
        assert "event_bus" not in done.stderr.split("Set ")[1].split(" to join")[0]
