"""The operator scenario of bench/operator_scenario.py at a test's size, asserting only invariants.

One ``skalds controller --mode dispatcher`` and two ``skalds node`` processes (capacity 12 each) on real
Kafka, Redis and FerretDB; 60 tasks of 1-3 s created over the HTTP API, some updated, paused and resumed,
cancelled while running, some failing, and node-a SIGKILLed once half of them are terminal. The driver and
the analysis are tests/integration/scenario/, shared with the bench. The workers hold on until their
control took effect (``Journaled.hold``), so every control finds its worker running, whatever the timing.

The evidence is the workers' own journal, the API's live stream and /proc. Nothing here asserts a duration:
waits have generous deadlines, and the scenario's deadline only bounds a hung run. Short heartbeat thresholds
(test_distributed.py's) keep it quick.
"""

from __future__ import annotations

import json

from tests.integration.cluster import Cluster, ProcessId, cluster_fixture, wait_for
from tests.integration.scenario import Evidence, Load, Options, Scenario, analyse, start_journaled_cluster
from tests.integration.test_distributed import DEAD_AFTER_MS, settings_env

NODES = ("node-a", "node-b")
CAPACITY = 12
LOAD = Load(
    tasks=60,
    min_s=1.0,
    max_s=3.0,
    seed=15,
    update_share=0.10,
    pause_share=0.10,
    cancel_share=0.10,
    fail_share=0.05,
    act_after_s=0.3,
    pause_for_s=0.5,
    hold=True,
    prefix="it",
)


cluster = cluster_fixture(settings_env)


def test_an_operators_load_with_a_node_killed_keeps_every_invariant(cluster: Cluster) -> None:
    journal = cluster.logs / "journal.jsonl"
    controller, nodes = start_journaled_cluster(cluster, NODES, CAPACITY, journal)
    options = Options(
        journal=journal,
        slots=dict.fromkeys(NODES, CAPACITY),
        kill="node-a",
        deadline_s=300,
        dead_after_s=DEAD_AFTER_MS / 1000,
    )

    record = Scenario(cluster, controller, nodes, LOAD, options).run()
    result = analyse(record)
    saved = cluster.logs / "scenario.json"  # all the evidence, for a failure: analyse(Record.from_json(...))
    saved.write_text(json.dumps({"result": result, "record": record.as_json()}, default=str))
    evidence = Evidence(record)
    runs = evidence.runs
    print(  # shown for a failed test, or with -s: what the run was
        f"{result['runs']} runs of {result['tasks']} tasks; node-a killed at {result['kill_s']} s "
        f"({result['kill_reason']}) with {len(result['requeue'])} tasks; {result['updates_accepted']} "
        f"updates, {len(result['pauses'])} pauses, {result['cancels_accepted']} cancels; "
        f"API {result['api_counts']}; not terminal {result['not_terminal_by_status']}; "
        f"{len(record.killed_below)} processes below node-a; evidence in {saved}"
    )
    planned = {task["id"]: task for task in record.plan}

    # The kill happened, and no process of the killed node is left (they die with it).
    assert record.kill_at is not None, "node-a was never killed"
    killed_below = [ProcessId(p["pid"], p["started"]) for p in record.killed_below]
    assert killed_below, "node-a had no process below it when it was killed"
    wait_for(
        "node-a's processes gone after its SIGKILL",
        lambda: not [p.command() for p in killed_below if p.alive()],
        within_s=120,
    )

    # Every task is terminal for good.
    assert result["all_terminal"], (result["not_terminal"], result["missing"], record.evidence)

    # No task ran in two processes at once (by the journal; a run with no end lasts to the end).
    assert result["overlaps"] == [], result["overlaps"]

    # The API's counts of finished, cancelled and failed tasks are what the workers' journal says.
    assert result["disagreements"] == {}, result["disagreements"]
    assert result["api_counts"] == result["journal_counts"]

    by_action: dict[str, list[str]] = {}
    for task_id, task in planned.items():
        by_action.setdefault(task["action"], []).append(task_id)
    # Cancelled ones stopped: each cancel target ended Cancelled, and every worker it had has ended.
    for task_id in by_action.get("cancel", []):
        assert evidence.status(task_id) == "Cancelled", (task_id, record.final[task_id])
        for run in runs.get(task_id, []):  # node-a's are gone with it (above)
            assert run.end is not None or run.node == "node-a", (task_id, run)
        assert evidence.journal_final()[task_id] == "Cancelled", (task_id, runs.get(task_id))
    # Updated ones saw their update (in the update hook, or in the attachments a later run started with).
    for task_id in by_action.get("update", []):
        task_runs = runs.get(task_id, [])
        assert any(r >= 1 for run in task_runs for _, r in run.rounds) or any(
            run.start_round >= 1 for run in task_runs
        ), (task_id, task_runs)
        assert evidence.status(task_id) == "Finished", (task_id, record.final[task_id])
    # Paused ones were paused and resumed by the run that finished them.
    for task_id in by_action.get("pause", []):
        last = runs[task_id][-1]
        assert last.pauses and all(resumed is not None for _, resumed in last.pauses), (task_id, last)
        assert evidence.status(task_id) == "Finished", (task_id, record.final[task_id])
    for task_id in by_action.get("fail", []):
        assert evidence.status(task_id) == "Failed", (task_id, record.final[task_id])
    for task_id in by_action.get("", []):
        assert evidence.status(task_id) == "Finished", (task_id, record.final[task_id])
