"""``skalds alerts list|ack|silence|silences|unsilence`` in-process against ``skalds up``: a failed task's
alert is listed, acknowledged, and its rule silenced and unsilenced, each with one line of output."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from skalds.entrypoints.client.alerts import duration_ms
from tests.unit.process.cli_client.harness import Run, create


def firing_for(run: Run, task_id: str, within_s: float = 30) -> dict[str, Any]:
    """Poll until the task's alert is listed; a generous deadline, only to end a broken run."""
    deadline = time.monotonic() + within_s
    while True:
        code, out, err = run("alerts", "list", "--json")
        assert code == 0, err
        found = [a for a in json.loads(out)["items"] if a["subject"] == task_id]
        if found:
            return dict(found[0])
        assert time.monotonic() < deadline, f"no alert for {task_id}"
        time.sleep(0.2)


def test_a_failed_tasks_alert_is_listed_acknowledged_and_its_rule_silenced(run: Run) -> None:
    task_id = create(run, "Steady", {"failIn": "before"}, prefix="alerting")
    alert = firing_for(run, task_id)
    code, out, _ = run("alerts", "list")
    assert code == 0 and alert["id"] in out and out.splitlines()[0].split()[:3] == ["ID", "STATUS", "RULE"]
    assert all(len(line) <= 100 for line in out.splitlines())
    code, out, _ = run("alerts", "list", "--all")
    assert code == 0 and out.splitlines()[0].split()[4:6] == ["RAISED", "RESOLVED"]
    assert all(len(line) <= 100 for line in out.splitlines())

    code, out, _ = run("alerts", "ack", alert["id"], "--by", "ann")
    assert (code, out) == (0, f"alert {alert['id']} (task_failed on {task_id}) acknowledged by ann\n")

    code, out, _ = run("alerts", "silence", "--rule", "task_failed", "--subject", task_id, "--for", "1h30m",
                       "--by", "ann", "--comment", "known bad input", "--json")  # fmt: skip
    silence = json.loads(out)
    assert code == 0 and silence["endsAt"] - silence["startsAt"] == 90 * 60_000
    code, out, _ = run("alerts", "silences")
    assert code == 0 and silence["id"] in out and "known" in out
    code, out, _ = run("alerts", "unsilence", silence["id"], "--by", "bob")
    assert (code, out) == (0, f"silence {silence['id']} ended by bob\n")
    assert run("alerts", "unsilence", silence["id"])[0] == 4  # 409: it already ended
    code, _, err = run("alerts", "ack", "no-such-alert")
    assert code == 3 and "not found" in err


def test_a_bad_silence_is_refused_before_or_by_the_api(run: Run) -> None:
    with pytest.raises(SystemExit):
        run("alerts", "silence", "--rule", "task_failed", "--for", "soon")
    code, _, err = run("alerts", "silence", "--rule", "nope", "--for", "1h")
    assert code == 5 and "rule" in err


@pytest.mark.parametrize(("text", "ms"), [("90s", 90_000), ("30m", 1_800_000), ("1h30m", 5_400_000),
                                          ("1d", 86_400_000), ("250ms", 250)])  # fmt: skip
def test_durations_read_as_people_write_them(text: str, ms: int) -> None:
    assert duration_ms(text) == ms
