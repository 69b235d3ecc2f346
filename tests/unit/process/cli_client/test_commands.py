"""``skalds task create|list|show|pause|resume|update|cancel|retry`` in-process against ``skalds up``."""

from __future__ import annotations

import json

from tests.unit.process.cli_client.harness import Run, create, new_id, task, until_status


def test_create_with_every_option_then_show_and_list_it(run: Run) -> None:
    task_id = new_id("opts")
    code, out, _ = run("task", "create", "--class", "CountdownWorker", "--id", task_id, "--name", "demo",
                       "--priority", "3", "--max-attempts", "2", "--attachments", '{"seconds": 50}',
                       "--set", "seconds=60", "--json")  # fmt: skip
    created = json.loads(out)
    assert code == 0
    assert (created["id"], created["name"], created["priority"]) == (task_id, "demo", 3)
    assert (created["maxAttempts"], created["attachments"]) == (2, {"seconds": 60})  # --set wins

    code, out, _ = run("task", "show", task_id)
    assert code == 0
    assert "class       CountdownWorker" in out
    assert 'attachments {"seconds": 60}' in out
    assert json.loads(run("task", "show", task_id, "--json")[1])["id"] == task_id

    code, out, _ = run("task", "list", "--id", task_id, "--class", "CountdownWorker", "--page-size", "5")
    header, row, footer = out.splitlines()
    assert header.split() == ["ID", "CLASS", "STATUS", "EXECUTOR", "PROGRESS", "UPDATED"]
    assert row.split()[:2] == [task_id, "CountdownWorker"]
    assert footer == "1 of 1 task (page 1 of 1)"
    assert all(len(line) <= 100 for line in out.splitlines())
    page = json.loads(run("task", "list", "--id", task_id, "--json")[1])
    assert [t["id"] for t in page["items"]] == [task_id]
    assert run("task", "cancel", task_id)[0] == 0


def test_list_filters_by_status_in_any_case_and_pages(run: Run, api: str) -> None:
    task_id = create(run, "Steady", {"steps": 1_000_000})
    until_status(api, task_id, "Running")
    code, out, _ = run("task", "list", "--status", "running", "--id", task_id, "--json")
    assert code == 0
    assert [t["lifecycleStatus"] for t in json.loads(out)["items"]] == ["Running"]
    assert json.loads(run("task", "list", "--status", "Paused", "--id", task_id, "--json")[1])["items"] == []
    code, out, _ = run("task", "list", "--page", "2", "--page-size", "1")
    assert code == 0
    assert out.splitlines()[-1].startswith("1 of ")
    assert "(page 2 of " in out
    assert run("task", "cancel", task_id)[0] == 0


def test_pause_resume_update_cancel_and_retry_a_running_task(run: Run, api: str) -> None:
    task_id = create(run, "CountdownWorker", {"seconds": 300})
    until_status(api, task_id, "Running")
    code, out, _ = run("task", "pause", task_id)
    assert code == 0
    assert out.startswith(f"pause: task {task_id} is ")
    until_status(api, task_id, "Paused")
    assert run("task", "resume", task_id)[0] == 0
    until_status(api, task_id, "Running")

    version = task(api, task_id)["version"]
    code, out, _ = run("task", "update", task_id, "--set", "seconds=200")
    assert code == 0
    assert "attachments version 2" in out
    assert task(api, task_id)["attachments"] == {"seconds": 200}
    code, _, err = run("task", "update", task_id, "--attachments", '{"seconds": 9}',
                       "--expected-version", str(version))  # fmt: skip
    assert code == 4
    assert "changed concurrently" in err
    assert err.endswith("(HTTP 409)\n")

    code, out, _ = run("task", "cancel", task_id, "--json")
    assert (code, json.loads(out)["desiredState"]) == (0, "cancel")
    until_status(api, task_id, "Cancelled")
    code, out, _ = run("task", "retry", task_id)
    assert code == 0
    assert out.startswith(f"retry: task {task_id} is ")
    until_status(api, task_id, "Created", "Assigning", "Running")
    assert run("task", "cancel", task_id)[0] == 0


def test_update_with_set_alone_keeps_the_other_attachments(run: Run, api: str) -> None:
    task_id = create(run, "Steady", {"steps": 1_000_000, "fps": 10})
    code, out, _ = run("task", "update", task_id, "--set", "fps=25", "--json")
    assert code == 0
    assert json.loads(out)["data"]["attachments"]["steps"] == 1_000_000
    assert task(api, task_id)["attachments"]["fps"] == 25
    assert run("task", "cancel", task_id)[0] == 0
