"""``analyse``: one run's measurements and violations as plain JSON, what both the bench (its table) and the
test (its asserts) read. It only puts together the measures of ``timings``, ``requeue`` and ``violations``.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

from tests.integration.scenario import requeue, timings, violations
from tests.integration.scenario.evidence import Evidence
from tests.integration.scenario.record import Record


def percentile(samples: Sequence[float], share: float) -> float | None:
    """The sample at ``share`` of the way through them, sorted (nearest rank); None for no samples."""
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def _summary(samples: Sequence[float]) -> dict[str, Any]:
    return {
        "count": len(samples),
        "min": min(samples) if samples else None,
        "p50": statistics.median(samples) if samples else None,
        "p95": percentile(samples, 0.95),
        "max": max(samples) if samples else None,
    }


def pauses(evidence: Evidence) -> list[dict[str, Any]]:
    """Every pause the journal shows: when, and how long until the resume."""
    return [
        {"task": run.task, "pause_s": p - evidence.t0, "paused_for_s": None if q is None else q - p}
        for run in evidence.all_runs
        for p, q in run.pauses
        if p is not None
    ]


def analyse(record: Record) -> dict[str, Any]:
    """The measurements and the violations of one run, as plain JSON."""
    evidence = Evidence(record)
    kill_at = record.kill_at
    not_terminal = violations.not_terminal(evidence)
    missing = sorted(set(evidence.plan) - set(record.final))
    ideal = timings.ideal(evidence)
    allowance = record.dead_after_s if kill_at is not None else 0.0
    utilisation, waited = timings.utilisation(evidence)
    gaps, unfilled = timings.refill_gaps(evidence)
    to_running, never_running = timings.start_to_running(evidence)
    requeues = requeue.requeues(evidence)
    orphans, orphan_lines = requeue.orphans(evidence)
    missed_updates, moot_updates = violations.missed_updates(evidence)
    last_end = max((r.end for r in evidence.all_runs if r.end is not None), default=record.t0)
    return {
        "tasks": len(evidence.plan),
        "runs": len(evidence.all_runs),
        "skalds_seen_by_workers": sorted({run.skalds for run in evidence.all_runs}),
        "all_terminal": not not_terminal and not missing,
        "deadline_hit": record.deadline_hit,
        "makespan_s": timings.makespan(evidence),
        "last_worker_end_s": last_end - record.t0,
        "observed_s": record.final_at - record.t0,
        "ideal_s": ideal,
        "makespan_allowance_s": allowance,
        "makespan_target_s": 1.15 * ideal + allowance,
        "killed": record.killed,
        "kill_s": None if kill_at is None else kill_at - record.t0,
        "kill_reason": record.kill_reason,
        "offline_after_kill_s": None
        if record.offline_at is None or kill_at is None
        else record.offline_at - kill_at,
        "utilisation": utilisation,
        "waited_s": waited,
        "finish_to_next_start_s": _summary(gaps),
        "never_refilled": unfilled,
        "start_to_running_s": _summary(to_running),
        "runs_never_running_in_api": never_running,
        "dead_after_s": record.dead_after_s,
        "orphan_grace_s": record.orphan_grace_s,
        "requeue": requeues,
        "requeue_s": _summary([v["requeued_s"] for v in requeues.values() if v["requeued_s"] is not None]),
        "restart_s": _summary([v["restarted_s"] for v in requeues.values() if v["restarted_s"] is not None]),
        "victims_never_requeued": sorted(
            t for t, v in requeues.items() if v["requeued_s"] is None and v["terminal_s"] is None
        ),
        "orphans": orphans,
        "orphan_journal_lines": orphan_lines,
        "overlaps": violations.overlaps(evidence),
        "late_cancels": violations.late_cancels(evidence),
        "ignored_cancels": violations.ignored_cancels(evidence),
        "cancels_accepted": sum(len(a["cancel"]) for a in evidence.asked.values()),
        "missed_updates": missed_updates,
        "moot_updates": moot_updates,
        "updates_accepted": sum(len(a["update"]) for a in evidence.asked.values()),
        "pauses": pauses(evidence),
        "not_terminal": not_terminal,
        "not_terminal_by_status": dict(Counter(t["lifecycleStatus"] for t in not_terminal.values())),
        "missing": missing,
        **violations.counts(evidence),
        "unasked_stops": violations.unasked_stops(evidence),
        "feed_reconnects": record.feed_reconnects,
        "feed_dropped": record.feed_dropped,
    }
