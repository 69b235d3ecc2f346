"""A meter that reads what it is told: nodes in tests and demos with the usage they are meant to have."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from skalds.domain.ports import ResourceMeter
from skalds.domain.resources import NodeUsage, ProcessUsage, ResourceReading


class FixedResourceMeter(ResourceMeter):
    """Reports ``node``, and each pid's usage that ``processes`` names; a test sets them at will."""

    def __init__(
        self, node: NodeUsage | None = None, processes: Mapping[int, ProcessUsage] | None = None
    ) -> None:
        self.node = node
        self.processes = dict(processes or {})
        self.readings = 0

    def measure(self, pids: Collection[int]) -> ResourceReading:
        self.readings += 1
        found = {pid: self.processes[pid] for pid in pids if pid in self.processes}
        return ResourceReading(node=self.node, processes=found)
