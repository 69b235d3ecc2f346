"""Upstream's controller modes: CONTROLLER is the API only, MONITOR adds the monitor and alerts (and the log
keeper), DISPATCHER adds the dispatcher. What runs is what the mode says, and the status endpoint tells the
truth about it."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from skalds.bootstrap import build_container
from skalds.entrypoints.api.app import create_app
from tests.unit.application.harness import settings_for_tests

ALWAYS = {"EventFeed", "Activity"}
KEEPERS = {"Monitor", "Alerts", "Log keeper", "History keeper"}  # the loops of the monitoring modes


@pytest.mark.parametrize(
    ("mode", "loops"),
    [
        ("CONTROLLER", ALWAYS),
        ("MONITOR", ALWAYS | KEEPERS),
        ("DISPATCHER", ALWAYS | KEEPERS | {"Dispatcher", "Upstream intake"}),
    ],
)
async def test_each_mode_runs_exactly_its_loops(mode: str, loops: set[str]) -> None:
    app = create_app(build_container(settings_for_tests(controller={"mode": mode})))
    async with AsyncTestClient(app, base_url="http://127.0.0.1") as client:  # a loopback Host
        assert set(app.state.loops) == loops
        assert not any(task.done() for task in app.state.loops.values())
        status = (await client.get("/api/system/status")).json()
        assert status["mode"] == mode
        running = {c["name"]: c["running"] for c in status["components"]}
        assert running == {"Dispatcher": "Dispatcher" in loops, "Monitor": "Monitor" in loops}
        assert (await client.get("/api/tasks")).status_code == 200  # the API answers in every mode
