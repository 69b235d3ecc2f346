"""On a node: its workers' output to the control plane, in batches, never in the way of the heartbeats.

The shipper waits for lines, lets a batch gather for ``linger_s``, and ships at most ``batch_lines`` at a
time. When the bus is away it keeps the batch and tries it again (lines go on waiting in the supervisor,
bounded there), so an outage loses output only once the node's own bound is reached.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from skalds.domain.errors import BackendUnavailableError
from skalds.domain.ports import LogShipper, WorkerOutput
from skalds.domain.task_logs import LogLine

log = logging.getLogger(__name__)


class OutputShipper:
    def __init__(
        self,
        node_id: str,
        output: WorkerOutput,
        shipper: LogShipper,
        *,
        batch_lines: int = 2_000,
        linger_s: float = 0.1,
        retry_s: float = 1.0,
    ) -> None:
        self._node_id = node_id
        self._output = output
        self._shipper = shipper
        self._batch_lines = batch_lines
        self._linger_s = linger_s
        self._retry_s = retry_s
        self.shipped = 0  # lines the bus took, for the bench and the tests

    async def run(self) -> None:
        while True:
            await self._output.lines_waiting()
            await asyncio.sleep(self._linger_s)  # a burst becomes one batch, not one message per line
            await self._ship(self._output.take_lines(self._batch_lines))

    async def flush(self) -> None:
        """Ship what waits now (a stopping node); one attempt per batch, failures logged."""
        while lines := self._output.take_lines(self._batch_lines):
            try:
                await self._shipper.ship(lines)
                self.shipped += len(lines)
            except BackendUnavailableError as error:
                log.warning(
                    "node %s: %d lines of task output not shipped: %s", self._node_id, len(lines), error
                )
                return

    async def _ship(self, lines: Sequence[LogLine]) -> None:
        failing = False
        while lines:
            try:
                await self._shipper.ship(lines)
            except BackendUnavailableError as error:
                if not failing:
                    log.warning(
                        "node %s: cannot ship task output (%s); retrying every %.1f s",
                        self._node_id,
                        error,
                        self._retry_s,
                        extra={"node": self._node_id},
                    )
                    failing = True
                await asyncio.sleep(self._retry_s)
                continue
            if failing:
                log.info("node %s: shipping task output again", self._node_id, extra={"node": self._node_id})
            self.shipped += len(lines)
            return
