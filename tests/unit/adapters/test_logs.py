"""Logging from settings: upstream's knobs, text or JSON lines, rotation, retention, a file per worker."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path

import pytest

from skalds.adapters.logs import JsonLines, LogSetup, configure, remove_expired, retention_seconds
from skalds.adapters.process.supervisor import ProcessWorkerSupervisor
from skalds.config import SettingsError, load_settings
from skalds.domain import lifecycle
from skalds.domain.lifecycle import TaskCommand
from skalds.domain.task import new_task

pytestmark = pytest.mark.usefixtures("restore_root_logger")  # every test here configures logging


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("3 days", 259_200), ("12 hours", 43_200), ("1 week", 604_800), ("3", 259_200), ("90 minutes", 5_400)],
)
def test_retention_reads_upstreams_durations(text: str, seconds: float) -> None:
    assert retention_seconds(text) == seconds


def test_zero_retention_keeps_files_and_nonsense_is_refused_naming_the_setting() -> None:
    assert retention_seconds("0") is None
    with pytest.raises(SettingsError, match=r"LOG_RETENTION|logging\.retention"):
        load_settings(None, {"LOG_RETENTION": "three days"})


def test_upstreams_variables_configure_files_and_worker_files() -> None:
    settings = load_settings(
        None, {"LOG_PATH": "/var/log/skalds", "LOG_ROTATION_MB": "5", "LOG_SPLIT_WITH_WORKER_ID": "yes"}
    )
    setup = settings.logging.setup()
    assert (setup.directory, setup.rotation_bytes) == ("/var/log/skalds", 5 * 1024 * 1024)
    assert settings.logging.worker_setup() == setup
    assert load_settings(None, {}).logging.setup().directory is None  # console only unless LOG_PATH is set


def test_json_lines_carry_level_logger_message_and_exception() -> None:
    try:
        raise ValueError("bad frame")
    except ValueError:
        record = logging.LogRecord("skalds.node", logging.ERROR, __file__, 1, "task %s failed", ("t1",), None)
        record.exc_info = sys.exc_info()
    line = json.loads(JsonLines().format(record))
    assert (line["level"], line["logger"], line["message"]) == ("ERROR", "skalds.node", "task t1 failed")
    assert "ValueError: bad frame" in line["exception"] and line["time"].endswith("Z")


def test_a_file_per_process_rotates_by_size(tmp_path: Path) -> None:
    configure(LogSetup(directory=str(tmp_path), rotation_bytes=2_000), "node-1", console=False)
    for i in range(100):
        logging.getLogger("skalds.test").info("line %03d of a long enough message to fill the file", i)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files[0] == "node-1.log" and "node-1.log.1" in files


def test_files_older_than_the_retention_are_removed(tmp_path: Path) -> None:
    old, fresh = tmp_path / "node-1.log.3", tmp_path / "node-1.log"
    old.write_text("old")
    fresh.write_text("fresh")
    os.utime(old, (time.time() - 4 * 86_400,) * 2)
    assert remove_expired(tmp_path, retention_seconds("3 days")) == [old]
    assert fresh.exists()


async def test_with_split_files_each_worker_logs_to_node_id_underscore_task_id(tmp_path: Path) -> None:
    supervisor = ProcessWorkerSupervisor(
        {"Chatty": "tests.workers:Chatty"},
        heartbeat_period_s=0.05,
        worker_logs=LogSetup(directory=str(tmp_path)),
        node_id="n1",
        warm_spare=False,
    )
    task, _ = lifecycle.apply(
        new_task(task_id="t1", class_name="Chatty", now=0), TaskCommand.ASSIGN, at=0, executor="n1"
    )
    try:
        await supervisor.start(task)
        for _ in range(600):
            if supervisor.states()["t1"].outcome is not None:
                break
            await asyncio.sleep(0.05)
    finally:
        await supervisor.shutdown()
    assert "processing t1" in (tmp_path / "n1_t1.log").read_text()


async def test_the_api_app_keeps_the_logging_the_process_configured() -> None:
    """Litestar installs its own root handler and format unless told not to; JSON lines must survive."""
    from litestar.testing import AsyncTestClient

    from skalds.bootstrap import build_container
    from skalds.entrypoints.api.app import create_app
    from tests.unit.application.harness import settings_for_tests

    configure(LogSetup(json_lines=True), "controller")
    async with AsyncTestClient(create_app(build_container(settings_for_tests()), run_loops=False)):
        formatters = {type(handler.formatter) for handler in logging.getLogger().handlers}
    assert formatters == {JsonLines}
