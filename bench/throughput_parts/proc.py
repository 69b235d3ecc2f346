"""What /proc says about a process tree: resident memory and CPU time."""

from __future__ import annotations

import os
from pathlib import Path

from tests.integration.cluster import SkaldsProcess

TICKS = os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (the peak) of a process, in bytes; empty when it is gone."""
    found: dict[str, int] = {}
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        key, _, value = line.partition(":")
        if key in {"VmRSS", "VmHWM"}:
            found[key] = int(value.split()[0]) * 1024
    return found


def cpu_seconds(pid: int) -> float:
    """User + system time of a process and of its children it has waited for; 0 when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text[text.rindex(")") + 2 :].split()
    return sum(int(value) for value in fields[11:15]) / TICKS  # utime stime cutime cstime (14-17 of proc(5))


def tree_cpu_seconds(process: SkaldsProcess) -> float:
    """CPU time of a Skalds process and of what runs below it now (a node's forkserver and workers)."""
    below = [p.pid for p in process.descendants() if p.alive()]
    return cpu_seconds(process.popen.pid) + sum(cpu_seconds(pid) for pid in below)
