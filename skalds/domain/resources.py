"""What a node measures of itself and of its worker processes, for dispatch thresholds, alerts and metrics.

Percentages follow the tools operators know: a node's ``cpu_percent`` is of the whole machine (0-100), a
process's is of one CPU, as ``top`` shows it (a process busy on two CPUs reads 200).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessUsage:
    """One worker process: CPU since the previous reading (100 = one CPU busy) and its resident memory."""

    cpu_percent: float
    memory_bytes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeUsage:
    """The node's machine (or its container's memory limit, when one applies): CPU and memory in use."""

    cpu_percent: float
    memory_percent: float
    memory_bytes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceReading:
    """One measurement: the node's usage and that of each process asked about and still there, by pid."""

    node: NodeUsage | None = None
    processes: Mapping[int, ProcessUsage] = field(default_factory=lambda: MappingProxyType({}))


def usage_over(
    cpu_percent: float | None,
    memory_percent: float | None,
    *,
    max_cpu_percent: float | None,
    max_memory_percent: float | None,
) -> list[str]:
    """What of a node's readings is over its limits, as words for logs and alerts ("CPU 95% > 90%");
    empty when nothing is (a reading or a limit that is None is never over)."""
    over = []
    if cpu_percent is not None and max_cpu_percent is not None and cpu_percent > max_cpu_percent:
        over.append(f"CPU {cpu_percent:.0f}% > {max_cpu_percent:g}%")
    if memory_percent is not None and max_memory_percent is not None and memory_percent > max_memory_percent:
        over.append(f"memory {memory_percent:.0f}% > {max_memory_percent:g}%")
    return over
