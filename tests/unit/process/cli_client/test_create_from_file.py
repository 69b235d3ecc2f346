"""``skalds task create --file``: a JSON Lines file in batches with progress on stderr; bad lines reported by
number before anything is sent, and the API's refusal of an item mapped back to its line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.unit.process.cli_client.harness import KEY, Run, new_id, task


def write_lines(path: Path, lines: list[Any]) -> str:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return str(path)


def absent(api: str, *task_ids: str) -> bool:
    headers = {"X-API-Key": KEY}
    return all(httpx.get(f"{api}/api/tasks/{t}", headers=headers).status_code == 404 for t in task_ids)


def test_a_file_is_created_in_batches_with_progress_and_the_ids_in_line_order(
    run: Run, api: str, tmp_path: Path
) -> None:
    prefix = new_id("file")
    bodies = [
        {"className": "CountdownWorker", "id": f"{prefix}-{i}", "attachments": {"seconds": 1}}
        for i in range(5)
    ]
    path = write_lines(
        tmp_path / "tasks.jsonl", [bodies[0], bodies[1], "", bodies[2], "  ", bodies[3], bodies[4]]
    )
    code, out, err = run("task", "create", "--file", path, "--batch-size", "2")
    assert code == 0, err
    assert out == f"created 5 tasks from {path}\n"
    assert err.splitlines() == ["created 2/5", "created 4/5", "created 5/5"]  # not a terminal: a line a batch
    assert task(api, f"{prefix}-3")["attachments"] == {"seconds": 1}

    again = [{**body, "id": f"{prefix}-again-{i}"} for i, body in enumerate(bodies[:2])]
    code, out, _ = run("task", "create", "--file", write_lines(tmp_path / "again.jsonl", again), "--json")
    assert (code, json.loads(out)) == (0, {"ids": [f"{prefix}-again-0", f"{prefix}-again-1"]})


def test_bad_lines_are_reported_by_number_and_nothing_is_sent(run: Run, api: str, tmp_path: Path) -> None:
    good = {"className": "CountdownWorker", "id": new_id("never")}
    path = write_lines(tmp_path / "bad.jsonl", [good, "{not json", "", [good], good, '"text"'])
    code, out, err = run("task", "create", "--file", path)
    assert (code, out) == (5, "")
    assert err.splitlines() == [
        f"skalds task create: {path} line 2: not valid JSON: Expecting property name enclosed in double "
        "quotes",
        f"skalds task create: {path} line 4: must be a JSON object (a create body), got an array",
        f"skalds task create: {path} line 6: must be a JSON object (a create body), got a string",
    ]
    assert absent(api, good["id"])


def test_the_apis_refusal_of_an_item_names_its_line(run: Run, api: str, tmp_path: Path) -> None:
    prefix = new_id("refused")
    bodies = [{"className": "CountdownWorker", "id": f"{prefix}-{i}"} for i in range(4)]
    bodies[2] = {"className": "NoSuchWorker", "id": f"{prefix}-2"}
    path = write_lines(tmp_path / "refused.jsonl", ["", *bodies])
    code, _, err = run("task", "create", "--file", path, "--batch-size", "2")
    assert code == 5
    assert err.startswith(f"created 2/4\nskalds task create: {path} line 4: className: unknown worker class ")
    assert err.endswith("(2 of 4 tasks created before it) (HTTP 422)\n")
    assert absent(api, f"{prefix}-2", f"{prefix}-3")
    assert task(api, f"{prefix}-1")["id"] == f"{prefix}-1"

    code, _, err = run("task", "create", "--file", write_lines(tmp_path / "taken.jsonl", bodies[:1]))
    assert code == 5
    assert f"{path.replace('refused', 'taken')} line 1: id: task '{prefix}-0' already exists" in err


def test_class_and_file_go_alone(run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_lines(tmp_path / "one.jsonl", [{"className": "CountdownWorker"}])
    code, _, err = run("task", "create", "--file", path, "--priority", "3")
    assert (code, err) == (2, "skalds task create: --priority: with --file, each line gives its own fields\n")
    code, _, err = run("task", "create", "--class", "CountdownWorker", "--batch-size", "5")
    assert (code, err) == (2, "skalds task create: --batch-size goes with --file\n")
    for argv, said in (
        (["--class", "X", "--file", path], "argument --file: not allowed with argument --class"),
        ([], "one of the arguments --class --file is required"),
    ):
        with pytest.raises(SystemExit) as usage:
            run("task", "create", *argv)
        assert usage.value.code == 2
        assert said in capsys.readouterr().err
