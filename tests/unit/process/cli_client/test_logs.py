"""``skalds task logs``: a task's output as lines for people or JSON, filtered by level, and followed with
``-f`` until the task ends (exit 1 here: the task fails)."""

from __future__ import annotations

import json

from tests.unit.process.cli_client.harness import Run, create, until_status


def test_follow_prints_every_line_then_exits_as_the_task_ended(run: Run, api: str) -> None:
    task_id = create(run, "Talker", {"fps": 1})
    code, out, err = run("task", "logs", task_id, "-f")
    assert (code, err) == (1, "")
    lines = out.splitlines()
    assert lines[0].endswith(f"Z INFO     tests.talker: starting {task_id}")
    assert lines[1].endswith("Z INFO     stdout: to stdout")
    assert lines[2].endswith("Z WARNING  stderr: to stderr")
    assert any("RuntimeError: the camera went away" in line for line in lines)


def test_a_level_and_json_choose_what_is_printed(run: Run, api: str) -> None:
    task_id = create(run, "Talker", {"fps": 0})
    until_status(api, task_id, "Finished")
    code, out, _ = run("task", "logs", task_id, "-f", "--level", "error", "--json")
    assert code == 0
    printed = [json.loads(line) for line in out.splitlines()]
    assert [line["level"] for line in printed] == ["ERROR"]
    assert printed[0]["message"].startswith("handled\nTraceback")
    code, out, _ = run("task", "logs", task_id, "-n", "2")
    assert code == 0 and len(out.splitlines()) >= 2  # a multi-line message prints as its lines
    code, _, err = run("task", "logs", task_id, "--level", "loud")
    assert code == 5 and "level" in err
