"""The bench's table: ``render`` turns ``analyse``'s result into the Markdown table an operator reads, one
row a measure with its target and pass / FAIL, then the details of any violation. Only the bench prints it.
"""

from __future__ import annotations

import json
from typing import Any


def _s(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f} s"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value * 1000:.0f} ms"


def _verdict(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(measure, measured, target, pass/FAIL) for every line of the table."""
    dead_after = result["dead_after_s"]
    makespan, ideal, target = result["makespan_s"], result["ideal_s"], result["makespan_target_s"]
    if makespan is None:
        measured = f"not all terminal at {result['observed_s']:.0f} s (ideal {ideal:.1f} s)"
    else:
        measured = f"{makespan:.1f} s vs ideal {ideal:.1f} s ({makespan / ideal:.2f}x)"
    allowance = f" + {result['makespan_allowance_s']:g} s" if result["makespan_allowance_s"] else ""
    table = [
        (
            "makespan vs ideal",
            measured,
            f"≤ 1.15 x ideal{allowance} = {target:.1f} s",
            _verdict(makespan is not None and makespan <= target),
        )
    ]
    utilisation = result["utilisation"]
    table.append(
        (
            f"mean slot utilisation while work waits ({result['waited_s']:.0f} s of waiting)",
            "—" if utilisation is None else f"{100 * utilisation:.0f} %",
            "≥ 90 %",
            _verdict(utilisation is None or utilisation >= 0.9),
        )
    )
    gap = result["finish_to_next_start_s"]
    table.append(
        (
            f"finish → next start on the node while work waits, p50 / p95 (n={gap['count']}, "
            f"{result['never_refilled']} never refilled)",
            f"{_ms(gap['p50'])} / {_ms(gap['p95'])}",
            "p50 ≤ 200 ms",
            _verdict(gap["p50"] is not None and gap["p50"] <= 0.2),
        )
    )
    running = result["start_to_running_s"]
    table.append(
        (
            f"worker start → Running in the API, p50 / p95 (n={running['count']}, "
            f"{result['runs_never_running_in_api']} runs never shown Running)",
            f"{_ms(running['p50'])} / {_ms(running['p95'])}",
            "p50 ≤ 200 ms",
            _verdict(running["p50"] is not None and running["p50"] <= 0.2),
        )
    )
    if result["kill_s"] is not None:
        requeue, restart = result["requeue_s"], result["restart_s"]
        never = result["victims_never_requeued"]
        table.append(
            (
                f"re-queue after SIGKILL of {result['killed']}, min / p50 / max (n={requeue['count']} of "
                f"{len(result['requeue'])}; {len(never)} never)",
                f"{_s(requeue['min'])} / {_s(requeue['p50'])} / {_s(requeue['max'])}",
                f"≤ dead-after + 1 s = {dead_after + 1:g} s",
                _verdict(not never and (requeue["max"] is None or requeue["max"] <= dead_after + 1)),
            )
        )
        table.append(
            (
                f"SIGKILL → started on another node, min / p50 / max (n={restart['count']})",
                f"{_s(restart['min'])} / {_s(restart['p50'])} / {_s(restart['max'])}",
                "—",
                "",
            )
        )
        offline = result["offline_after_kill_s"]
        table.append((f"SIGKILL → {result['killed']} offline in the API", _s(offline), "—", ""))
        workers = sum(1 for orphan in result["orphans"] if orphan["worker"])
        table.append(
            (
                f"orphans: {result['killed']}'s processes alive {result['orphan_grace_s']:g} s after SIGKILL "
                "(journal lines after)",
                f"{len(result['orphans'])} ({workers} workers; {result['orphan_journal_lines']} lines)",
                "0",
                _verdict(not result["orphans"]),
            )
        )
    violations = [
        ("overlaps: one task in two processes at once", len(result["overlaps"])),
        ("late cancels (worker going > 2 s after Cancelled, or never stopped)", len(result["late_cancels"])),
        ("ignored cancels (accepted, yet Finished or Failed)", len(result["ignored_cancels"])),
        (
            f"missed updates (of {result['updates_accepted']} accepted; {result['moot_updates']} moot)",
            len(result["missed_updates"]),
        ),
        (f"not terminal at the end {result['not_terminal_by_status'] or ''}", len(result["not_terminal"])),
        ("API status ≠ the workers' journal", len(result["disagreements"])),
        ("runs Skalds stopped unasked (ended cancelled, no cancel)", len(result["unasked_stops"])),
    ]
    table += [(what, str(count), "0", _verdict(count == 0)) for what, count in violations]
    return table


def render(result: dict[str, Any], header: str) -> str:
    table = rows(result)
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    lines = [header, ""]
    titles = ("measure", "measured", "target", "")
    lines.append("| " + " | ".join(t.ljust(w) for t, w in zip(titles, widths, strict=True)) + " |")
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in table]
    lines.append("")
    lines.append(
        f"API counts {result['api_counts']}; journal {result['journal_counts']}; "
        f"{result['runs']} runs; {result['cancels_accepted']} cancels and {len(result['pauses'])} pauses "
        f"journaled; last worker end at {result['last_worker_end_s']:.1f} s"
    )
    for title, key, limit in (
        ("not terminal", "not_terminal", 15),
        ("stopped unasked", "unasked_stops", 15),
        ("overlaps", "overlaps", 10),
        ("late cancels", "late_cancels", 10),
        ("missed updates", "missed_updates", 10),
        ("API ≠ journal", "disagreements", 10),
    ):
        items = result[key]
        if not items:
            continue
        listed = list(items.items()) if isinstance(items, dict) else items
        lines.append(f"{title} ({len(listed)}):")
        lines += [f"  {json.dumps(item, default=str)}" for item in listed[:limit]]
        if len(listed) > limit:
            lines.append(f"  … {len(listed) - limit} more in the JSON")
    return "\n".join(lines)
