"""``skalds up`` keeps what an operator did: SIGKILL it, start it again on the same data folder, and the
tasks are there with their attachments, errors and times; the one that was running runs again at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from tests.unit.process.test_controller_process import ROOT, free_port, get
from tests.unit.process.test_embedded_up import wait_for


def start(
    port: int, data: Path, log: Path, *options: str, env: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    """``skalds up`` without the examples on ``data``, logging to ``log`` (a pipe nobody reads would fill)."""
    command = [
        *(sys.executable, "-m", "skalds", "up", "--port", str(port), "--no-examples"),
        *("--data-dir", str(data), *options),
    ]
    settings = {"PYTHONPATH": str(ROOT), "SKALDS_MONITOR__INTERVAL_MS": "500", **(env or {})}
    out = log.open("a")
    return subprocess.Popen(
        command, cwd=ROOT, env={**os.environ, **settings}, stdout=out, stderr=out, text=True
    )


def tasks(base: str) -> dict[str, dict[str, Any]]:
    items: list[dict[str, Any]] = get(f"{base}/api/tasks")["items"]  # type: ignore[assignment]
    return {t["id"]: t for t in items}


def test_a_killed_up_comes_back_with_every_task_and_runs_the_interrupted_one_again(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "up.log"
    first = start(port, tmp_path / "data", log)
    try:
        wait_for(lambda: get(f"{base}/api/skalds")["items"], first)
        for body in (
            {"className": "CountdownWorker", "id": "long", "attachments": {"seconds": 600}},
            {"className": "CountdownWorker", "id": "short", "attachments": {"seconds": 1}},
        ):
            assert httpx.post(f"{base}/api/tasks", json=body).status_code == 201
        wait_for(lambda: tasks(base)["short"]["lifecycleStatus"] == "Finished", first)
        wait_for(lambda: tasks(base)["long"]["progress"] is not None, first)
        scale = tasks(base)["long"]
        assert (scale["progressTotal"], scale["progressUnit"]) == (600, "s")  # the worker's own scale
        patched = httpx.patch(f"{base}/api/tasks/long/attachments", json={"attachments": {"seconds": 900}})
        assert patched.status_code == 200
        before = tasks(base)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        first.kill()
        first.wait()
    second = start(port, tmp_path / "data", log)
    try:
        again = wait_for(lambda: (found := tasks(base)) and found["long"]["attempt"] == 2 and found, second)
        short, long = again["short"], again["long"]
        assert (short["lifecycleStatus"], short["finishedAt"]) == ("Finished", before["short"]["finishedAt"])
        assert long["attachments"] == {"seconds": 900}
        assert long["createDateTime"] == before["long"]["createDateTime"]
        running = wait_for(
            lambda: tasks(base)["long"]["lifecycleStatus"] == "Running" and tasks(base), second
        )
        assert running["long"]["executor"] == "embedded-node"
        assert "restarted: the worker of its previous run is gone" in log.read_text()
        second.send_signal(signal.SIGINT)
        assert second.wait(timeout=30) in (0, -signal.SIGINT)
    finally:
        second.kill()
        second.wait()


def test_a_second_up_on_the_same_folder_and_an_unwritable_folder_are_refused_saying_what_to_do(
    tmp_path: Path,
) -> None:
    port = free_port()
    log = tmp_path / "up.log"
    first = start(port, tmp_path / "data", log)
    try:
        wait_for(lambda: get(f"http://127.0.0.1:{port}/api/skalds")["items"], first)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        blocker = tmp_path / "a-file"
        blocker.write_text("")
        for folder, says in (
            (tmp_path / "data", f"another skalds up (pid {first.pid}) keeps its tasks in"),
            (blocker / "data", "cannot keep tasks in"),
        ):
            second = subprocess.run(
                [sys.executable, "-m", "skalds", "up", "--port", str(free_port()), "--data-dir", str(folder)],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert second.returncode == 78, second.stderr
            assert says in second.stderr and "--data-dir" in second.stderr, second.stderr
        assert first.poll() is None
    finally:
        first.kill()
        first.wait()
