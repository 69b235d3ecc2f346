"""The node's CPU and memory and its worker processes', measured with psutil (cross-platform, well kept).

CPU is a rate, so each reading compares with the previous one: the machine's CPU times and one
``psutil.Process`` per worker pid are kept between calls (a new pid reads 0 the first time). Memory is of
the machine, unless this process lives in a cgroup with a memory limit below it (a container): then it is
the cgroup's working set (usage less inactive file cache, as ``docker stats`` and ``kubectl top`` count it)
against that limit, which is what the OOM killer goes by.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection
from pathlib import Path

import psutil

from skalds.domain.ports import ResourceMeter
from skalds.domain.resources import NodeUsage, ProcessUsage, ResourceReading

CGROUP_ROOT = Path("/sys/fs/cgroup")
SELF_CGROUP = Path("/proc/self/cgroup")


class PsutilResourceMeter(ResourceMeter):
    def __init__(self, *, cgroup_root: Path = CGROUP_ROOT, self_cgroup: Path = SELF_CGROUP) -> None:
        self._cgroup_root = cgroup_root
        self._self_cgroup = self_cgroup
        self._processes: dict[int, psutil.Process] = {}
        self._last_cpu: tuple[float, float] | None = None  # (busy, total) CPU seconds at the last reading

    def measure(self, pids: Collection[int]) -> ResourceReading:
        return ResourceReading(node=self._node(), processes=self._measure_processes(pids))

    def _node(self) -> NodeUsage:
        machine = psutil.virtual_memory()
        used, limit = machine.total - machine.available, machine.total
        cgroup = cgroup_memory(self._cgroup_root, self._self_cgroup)
        if cgroup is not None and cgroup[1] < machine.total:
            used, limit = cgroup
        return NodeUsage(
            cpu_percent=self._machine_cpu(), memory_percent=100.0 * used / limit, memory_bytes=used
        )

    def _machine_cpu(self) -> float:
        """Busy share of all CPUs since the last reading. Not psutil's ``cpu_percent``: it keeps one
        baseline per Python process, which two nodes in one process (tests) would steal from each other."""
        times = psutil.cpu_times()
        total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
        busy = total - times.idle - getattr(times, "iowait", 0.0)
        last, self._last_cpu = self._last_cpu, (busy, total)
        if last is None or total <= last[1]:
            return 0.0
        share: float = 100.0 * (busy - last[0]) / (total - last[1])
        return max(0.0, min(100.0, share))

    def _measure_processes(self, pids: Collection[int]) -> dict[int, ProcessUsage]:
        wanted = set(pids)
        for gone in set(self._processes) - wanted:
            del self._processes[gone]
        found: dict[int, ProcessUsage] = {}
        for pid in sorted(wanted):
            try:
                process = self._processes.get(pid) or psutil.Process(pid)
                if not process.is_running():  # the pid was reused: a new process, measured afresh
                    process = psutil.Process(pid)
                self._processes[pid] = process
                with process.oneshot():
                    cpu, rss = process.cpu_percent(interval=None), process.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                self._processes.pop(pid, None)
                continue
            found[pid] = ProcessUsage(cpu_percent=cpu, memory_bytes=rss)
        return found


def cgroup_memory(root: Path, self_cgroup: Path) -> tuple[int, int] | None:
    """(working set, limit) in bytes of this process's memory cgroup when it has a limit, else None.

    cgroup v2: the process's own group (``0::/path`` in /proc/self/cgroup); v1: the memory controller's
    mount root, what a container sees as its own."""
    with contextlib.suppress(OSError, ValueError):
        path = _v2_path(self_cgroup)
        v2 = root / path.lstrip("/") if path is not None else None
        if v2 is not None and (v2 / "memory.max").exists():
            limit = (v2 / "memory.max").read_text().strip()
            if limit == "max":
                return None
            usage = int((v2 / "memory.current").read_text())
            return _working_set(usage, v2 / "memory.stat", "inactive_file"), int(limit)
        v1 = root / "memory"
        if (v1 / "memory.limit_in_bytes").exists():
            limit_bytes = int((v1 / "memory.limit_in_bytes").read_text())
            usage = int((v1 / "memory.usage_in_bytes").read_text())
            return _working_set(usage, v1 / "memory.stat", "total_inactive_file"), limit_bytes
    return None


def _v2_path(self_cgroup: Path) -> str | None:
    for line in self_cgroup.read_text().splitlines():
        if line.startswith("0::"):
            return line[3:]
    return None


def _working_set(usage: int, stat: Path, inactive_key: str) -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in stat.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == inactive_key:
                return max(0, usage - int(value))
    return usage
