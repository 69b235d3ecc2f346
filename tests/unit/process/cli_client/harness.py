"""Helpers for the client-command tests: run a command in-process, create a task, wait for a status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from tests.unit.process.test_controller_process import ROOT

KEY = "cli-test-key"
Run = Callable[..., tuple[int, str, str]]
"""``run("task", "list")`` -> (exit code, stdout, stderr)."""


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def task(api: str, task_id: str) -> dict[str, Any]:
    return httpx.get(f"{api}/api/tasks/{task_id}", headers={"X-API-Key": KEY}).json()  # type: ignore[no-any-return]


def until_status(api: str, task_id: str, *statuses: str, within_s: float = 60) -> dict[str, Any]:
    """Poll until the task is in one of ``statuses``; a generous deadline, only to end a broken run."""
    deadline = time.monotonic() + within_s
    while (found := task(api, task_id))["lifecycleStatus"] not in statuses:
        assert time.monotonic() < deadline, f"{task_id} stayed {found['lifecycleStatus']}, not {statuses}"
        time.sleep(0.2)
    return found


def create(run: Run, class_name: str, attachments: dict[str, Any], prefix: str = "t") -> str:
    """``skalds task create`` with a fresh id; checks the one line it prints."""
    task_id = new_id(prefix)
    code, out, err = run("task", "create", "--class", class_name, "--id", task_id,
                         "--attachments", json.dumps(attachments))  # fmt: skip
    assert (code, err) == (0, ""), err
    assert out == f"created task {task_id} ({class_name}, Created)\n"
    return task_id


def watch_process(api: str, task_id: str) -> subprocess.Popen[str]:
    """``python -m skalds task watch`` as a real process (stdout is a pipe: plain lines)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SKALDS_API_URL": api, "SKALDS_API_KEY": KEY}
    command = [sys.executable, "-m", "skalds", "task", "watch", task_id]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
