"""``skalds task watch`` to each final status, ``skalds nodes``, and every refusal as one line and an exit
code: 409, 422 naming the field, 404, 401, an unreachable API (69) and Ctrl-C (130)."""

from __future__ import annotations

import json
import signal

import pytest

from skalds.entrypoints.cli import main
from tests.unit.process.cli_client.harness import Run, create, until_status, watch_process
from tests.unit.process.test_controller_process import free_port


def test_watch_follows_a_countdown_to_finished_then_exits_at_once_when_done(run: Run, api: str) -> None:
    task_id = create(run, "CountdownWorker", {"seconds": 2})
    process = watch_process(api, task_id)
    out, err = process.communicate(timeout=120)
    assert (process.returncode, err) == (0, "")
    lines = out.splitlines()
    assert lines[-1].endswith(f"  {task_id}  Finished")
    assert any(line.endswith("Running on embedded-node") for line in lines)
    assert "\r" not in out  # not a terminal: plain lines, no redrawn progress line

    code, out, _ = run("task", "watch", task_id)  # no event will come: it must end on what it reads first
    assert (code, out.splitlines()) == (0, [out.splitlines()[0]])
    assert out.split()[-1] == "Finished"


def test_watch_exits_1_on_failed_and_2_on_cancelled(run: Run, api: str) -> None:
    failing = create(run, "Steady", {"failIn": "main"})
    code, out, _ = run("task", "watch", failing)
    assert code == 1
    assert "Failed: RuntimeError: decoder crashed at frame 3" in out

    cancelled = create(run, "CountdownWorker", {"seconds": 300})
    until_status(api, cancelled, "Running")
    run("task", "cancel", cancelled)
    code, out, _ = run("task", "watch", cancelled, "--json")
    frames = [json.loads(line) for line in out.splitlines()]
    assert code == 2
    assert frames[0]["type"] == "task"
    assert frames[0]["data"]["id"] == cancelled
    assert frames[-1]["data"]["lifecycleStatus"] == "Cancelled"


def test_ctrl_c_ends_watch_without_a_traceback(run: Run, api: str) -> None:
    task_id = create(run, "CountdownWorker", {"seconds": 300})
    process = watch_process(api, task_id)
    try:
        assert process.stdout is not None
        assert task_id in process.stdout.readline()  # the current state is shown first
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
        assert process.returncode == 130
        assert "Traceback" not in err
        assert err.strip() == "skalds task watch: interrupted"
    finally:
        process.kill()
        run("task", "cancel", task_id)


def test_nodes_as_a_table_and_as_json(run: Run) -> None:
    code, out, _ = run("nodes")
    assert code == 0
    header, row, footer = out.splitlines()
    assert header.split()[:4] == ["ID", "MODE", "HEALTH", "TASKS"]
    assert row.split()[:3] == ["embedded-node", "node", "online"]
    assert "CountdownWorker, Steady" in row
    assert footer == "1 node"
    [node] = json.loads(run("nodes", "--json")[1])["items"]
    assert node["supportedTasks"] == ["CountdownWorker", "Steady", "Talker"]


def test_refusals_print_the_apis_message_and_exit_with_its_code(run: Run, api: str) -> None:
    done = create(run, "CountdownWorker", {"seconds": 1})
    assert run("task", "watch", done)[0] == 0
    code, out, err = run("task", "pause", done)
    assert (code, out) == (4, "")
    refusal = f"task '{done}': cannot pause from Finished: allowed from here: retry"
    assert err == f"skalds task pause: {refusal} (HTTP 409)\n"

    code, _, err = run("task", "create", "--class", "CountdownWorker", "--set", "seconds=lots")
    assert code == 5
    assert err.startswith("skalds task create: attachments.seconds: ")
    assert run("task", "update", done, "--set", "seconds=-1")[0] == 5

    code, _, err = run("task", "show", "no-such-task")
    assert (code, err) == (3, "skalds task show: task 'no-such-task' not found (HTTP 404)\n")
    code, _, err = run("task", "list", "--api-key", "wrong")
    assert code == 6
    assert "X-API-Key" in err


def test_an_unreachable_api_is_one_line_naming_it_and_exit_69(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for argv in (["task", "list"], ["nodes"], ["task", "watch", "x"], ["task", "cancel", "x"]):
        assert main([*argv, "--api", url]) == 69
    _, err = capsys.readouterr()
    lines = err.splitlines()
    assert len(lines) == 4
    assert all(f"cannot reach the Skalds API at {url}" in line for line in lines)
