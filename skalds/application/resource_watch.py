"""A node's latest resource reading, taken beside its heartbeat and never in it.

The meter blocks (it reads /proc), so it runs in a thread, at most one reading at a time; the heartbeat
publishes whatever reading is latest, so a slow or stuck meter makes the numbers old, never the node late.
A reading that fails clears the numbers: stale ones could keep a node out of dispatch for good.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from skalds.domain.ports import ResourceMeter
from skalds.domain.resources import NodeUsage, ProcessUsage

log = logging.getLogger(__name__)


class ResourceWatch:
    def __init__(self, meter: ResourceMeter, node_id: str) -> None:
        self._meter = meter
        self._node_id = node_id
        self._node: NodeUsage | None = None
        self._tasks: dict[str, ProcessUsage] = {}
        self._measuring: asyncio.Task[None] | None = None
        self._failing = False

    @property
    def node(self) -> NodeUsage | None:
        return self._node

    def task(self, task_id: str) -> ProcessUsage | None:
        """The latest reading of the task's worker process, if it has one of its own."""
        return self._tasks.get(task_id)

    def start(self, pids: Mapping[str, int]) -> None:
        """Begin a reading of the node and of these workers (task id -> pid), unless one is under way."""
        if self._measuring is None or self._measuring.done():
            name = f"node-{self._node_id}-resources"
            self._measuring = asyncio.create_task(self.measure(pids), name=name)

    async def measure(self, pids: Mapping[str, int]) -> None:
        """One reading, awaited: what ``start`` runs in the background."""
        try:
            reading = await asyncio.to_thread(self._meter.measure, list(pids.values()))
        except Exception as error:
            if not self._failing:
                log.warning("node %s could not measure its CPU and memory: %r", self._node_id, error)
            self._failing, self._node, self._tasks = True, None, {}
            return
        self._failing = False
        self._node = reading.node
        self._tasks = {t: reading.processes[pid] for t, pid in pids.items() if pid in reading.processes}

    async def close(self) -> None:
        if self._measuring is not None:
            self._measuring.cancel()
            await asyncio.gather(self._measuring, return_exceptions=True)
