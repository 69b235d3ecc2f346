"""Output for people: aligned tables that fit in 100 columns, times in local time, progress as a bar.

Statuses are the API's strings, as sent. Only the free-text columns (class, executor, supported classes)
shrink to fit; ids never do, so a listed id can always be copied.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

WIDTH = 100
GAP = "  "
BAR_CELLS = 30


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    shrinkable: Sequence[int] = (),
    width: int = WIDTH,
) -> str:
    """Columns as wide as their widest cell; if the table is wider than ``width``, the widest of the
    ``shrinkable`` columns gives up one character at a time (down to its header's width)."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    floor = {i: max(len(headers[i]), 6) for i in shrinkable}
    while sum(widths) + len(GAP) * (len(widths) - 1) > width:
        candidates = [i for i in shrinkable if widths[i] > floor[i]]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: widths[i])
        widths[widest] -= 1
    lines = [
        GAP.join(clip(c, w).ljust(w) for c, w in zip(row, widths, strict=True)) for row in [headers, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)


def when(epoch_ms: Any, *, short: bool = False) -> str:
    """Local time; ``short`` gives the time of day for today and the date otherwise."""
    if not isinstance(epoch_ms, int | float) or isinstance(epoch_ms, bool):
        return "-"
    moment = datetime.fromtimestamp(epoch_ms / 1000).astimezone()
    if not short:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    today = datetime.now().astimezone().date()
    return moment.strftime("%H:%M:%S") if moment.date() == today else moment.strftime("%Y-%m-%d")


def is_percent(progress: Any) -> bool:
    return isinstance(progress, int | float) and not isinstance(progress, bool) and 0 <= progress <= 100


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _share(progress: Any, total: Any) -> float | None:
    """Progress as a percentage of its total, when the worker said what it counts up to."""
    if _number(progress) and _number(total) and total > 0:
        return max(0.0, min(100.0, 100 * float(progress) / float(total)))
    return None


def progress_text(progress: Any, total: Any = None, unit: Any = None) -> str:
    """``37 / 120 frames (31%)`` with a total; else a percentage for 0-100, and any other number that
    moves (frames, bytes) as is."""
    share = _share(progress, total)
    if share is not None:
        counted = f"{progress:.6g} / {total:.6g}" + (f" {unit}" if unit else "")
        return f"{counted} ({share:.0f}%)"
    if is_percent(progress):
        return f"{progress:.0f}%"
    if isinstance(progress, int | float) and not isinstance(progress, bool):
        return f"{progress:.6g}"
    return "-"


def bar(progress: Any, total: Any = None, unit: Any = None, cells: int = BAR_CELLS) -> str:
    """``[#########.....]  45%`` for a percentage (of ``total`` when given), the plain number otherwise."""
    share = _share(progress, total)
    if share is None and not is_percent(progress):
        return progress_text(progress)
    done = round(cells * (share if share is not None else float(progress)) / 100)
    return f"[{'#' * done}{'.' * (cells - done)}] {progress_text(progress, total, unit):>4}"


def first_line(text: Any) -> str:
    return str(text).strip().splitlines()[0] if str(text or "").strip() else ""


def _cell(value: Any) -> str:
    return "-" if value is None or value == "" else str(value)


def tasks_table(items: Sequence[dict[str, Any]]) -> str:
    headers = ("ID", "CLASS", "STATUS", "EXECUTOR", "PROGRESS", "UPDATED")
    rows = [
        (
            _cell(t.get("id")),
            _cell(t.get("className")),
            _cell(t.get("lifecycleStatus")),
            _cell(t.get("executor")),
            progress_text(t.get("progress"), t.get("progressTotal"), t.get("progressUnit")),
            when(t.get("updateDateTime"), short=True),
        )
        for t in items
    ]
    return table(headers, rows, shrinkable=(1, 3))


def _with_message(task: dict[str, Any]) -> str:
    shown = bar(task.get("progress"), task.get("progressTotal"), task.get("progressUnit"))
    return f"{shown}  {task['progressMessage']}" if task.get("progressMessage") else shown


def task_details(task: dict[str, Any]) -> str:
    """Every field a person asks about, one per line; the full last error at the end."""
    status = f"{task.get('lifecycleStatus')} (desired: {task.get('desiredState')})"
    attempts = f"{task.get('attempt')} of {task.get('maxAttempts')}"
    versions = (
        f"{task.get('version')} (attachments {task.get('attachmentsVersion')}, "
        f"applied {_cell(task.get('appliedAttachmentsVersion'))})"
    )
    fields = [
        ("id", _cell(task.get("id"))),
        ("name", _cell(task.get("name"))),
        ("class", _cell(task.get("className"))),
        ("status", status),
        ("executor", _cell(task.get("executor"))),
        ("progress", _with_message(task)),
        ("attempt", attempts),
        ("priority", _cell(task.get("priority"))),
        ("pending", _cell(task.get("pendingReason"))),
        ("created", when(task.get("createDateTime"))),
        ("updated", when(task.get("updateDateTime"))),
        ("started", when(task.get("startedAt"))),
        ("finished", when(task.get("finishedAt"))),
        ("retry at", when(task.get("retryAt"))),
        ("version", versions),
        ("attachments", json.dumps(task.get("attachments") or {}, sort_keys=True)),
    ]
    lines = [f"{name:<12}{value}" for name, value in fields]
    if task.get("lastError"):
        lines += ["last error", *(f"  {line}" for line in str(task["lastError"]).splitlines())]
    return "\n".join(lines)


def nodes_table(items: Sequence[dict[str, Any]]) -> str:
    headers = ("ID", "MODE", "HEALTH", "TASKS", "SUPPORTS", "LAST HEARTBEAT")
    rows = []
    for node in items:
        count, capacity = node.get("taskCount", 0), node.get("capacity")
        tasks = f"{count}/{capacity}" if capacity else str(count)
        health = _cell(node.get("health")) + (" (draining)" if node.get("draining") else "")
        beat = str(node.get("lastHeartbeat") or "")
        supports = ", ".join(node.get("supportedTasks") or []) or "-"
        last = when(int(beat), short=True) if beat.isdigit() else _cell(beat)
        rows.append((_cell(node.get("id")), _cell(node.get("mode")), health, tasks, supports, last))
    return table(headers, rows, shrinkable=(4,))
