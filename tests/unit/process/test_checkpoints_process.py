"""A worker that checkpoints is resumed from its last save: after it failed and is retried, and after
``skalds up`` was SIGKILLed and started again (real worker processes, real time, the SQLite default)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx

from tests.unit.process.test_controller_process import free_port, get
from tests.unit.process.test_embedded_up import wait_for
from tests.unit.process.test_up_restart import start as start_up


def start(port: int, data: Path, log: Path) -> subprocess.Popen[str]:
    retry_soon = {"SKALDS_RETRY__BASE_DELAY_MS": "200"}
    return start_up(port, data, log, "--worker", "tests.workers:Resumable", env=retry_soon)


def checkpoint(base: str, task_id: str) -> dict[str, Any]:
    found: dict[str, Any] = get(f"{base}/api/tasks/{task_id}/checkpoint")  # type: ignore[assignment]
    return found


def task(base: str, task_id: str) -> dict[str, Any]:
    found: dict[str, Any] = get(f"{base}/api/tasks/{task_id}")  # type: ignore[assignment]
    return found


def test_a_retried_task_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    up = start(port, tmp_path / "data", tmp_path / "up.log")
    try:
        wait_for(lambda: get(f"{base}/api/skalds")["items"], up)
        body = {"className": "Resumable", "id": "rows", "attachments": {"rows": 40, "failAt": 20}}
        assert httpx.post(f"{base}/api/tasks", json=body).status_code == 201
        wait_for(lambda: task(base, "rows")["lifecycleStatus"] == "Finished", up)
        done = checkpoint(base, "rows")
        assert done["checkpoint"] == {"row": 40, "starts": [0, 20]}  # the second attempt began at row 20
        assert (done["attempt"], task(base, "rows")["attempt"]) == (2, 2)
        assert done["sizeBytes"] == len('{"row":40,"starts":[0,20]}') and done["savedAt"] > 0
        cleared = httpx.delete(f"{base}/api/tasks/rows/checkpoint")
        assert cleared.status_code == 200 and cleared.json()["checkpoint"] is None
        assert checkpoint(base, "rows")["checkpoint"] is None
        assert httpx.get(f"{base}/api/tasks/nope/checkpoint").status_code == 404
    finally:
        up.kill()
        up.wait()


def test_after_a_sigkill_and_a_restart_the_task_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "up.log"
    first = start(port, tmp_path / "data", log)
    try:
        wait_for(lambda: get(f"{base}/api/skalds")["items"], first)
        body = {"className": "Resumable", "id": "long", "attachments": {"rows": 100_000, "rowS": 0.01}}
        assert httpx.post(f"{base}/api/tasks", json=body).status_code == 201
        reached = wait_for(
            lambda: (c := checkpoint(base, "long")["checkpoint"]) and c["row"] >= 20 and c, first
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        first.kill()
        first.wait()
    second = start(port, tmp_path / "data", log)
    try:

        def resumed() -> dict[str, Any] | None:
            found = checkpoint(base, "long")["checkpoint"]
            return found if found and len(found["starts"]) == 2 else None

        again = wait_for(resumed, second)
        assert again["starts"][0] == 0 and again["starts"][1] >= reached["row"]
        assert task(base, "long")["attempt"] == 2
    finally:
        second.kill()
        second.wait()
