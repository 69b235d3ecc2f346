"""The lines a node's workers wrote, waiting for the node's shipper (``WorkerOutput``), on the event loop.

Shared by both supervisors. Bounded: when the bus is away longer than ``max_waiting`` lines take to pile
up, the oldest go and the count is logged once per episode, so a chatty task can never exhaust its node's
memory. Lines keep their worker's numbering, so a reader sees the gap.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable, Sequence

from skalds.domain.ports import WorkerOutput
from skalds.domain.task_logs import LogLine, LogStream

log = logging.getLogger(__name__)
DEFAULT_MAX_WAITING = 200_000


class WaitingLines(WorkerOutput):
    def __init__(self, node_id: str = "", *, max_waiting: int = DEFAULT_MAX_WAITING) -> None:
        if max_waiting < 1:
            raise ValueError(f"max_waiting must be at least 1, got {max_waiting}")
        self._node_id = node_id
        self._lines: deque[LogLine] = deque(maxlen=max_waiting)
        self._arrived = asyncio.Event()
        self.dropped = 0
        self._dropping = False

    def add(self, task_id: str, attempt: int, lines: Iterable[tuple[int, int, str, str, str, str]]) -> None:
        """Lines as a worker sends them: (seq, at, level, stream, logger, message)."""
        waiting = self._lines
        for seq, at, level, stream, logger, message in lines:
            if len(waiting) == waiting.maxlen:
                self.dropped += 1
                if not self._dropping:
                    self._dropping = True
                    log.warning(
                        "node %s: task output waits faster than it ships; dropping the oldest lines",
                        self._node_id,
                        extra={"node": self._node_id, "task_id": task_id},
                    )
            waiting.append(
                LogLine(
                    task_id=task_id,
                    attempt=attempt,
                    seq=seq,
                    at=at,
                    level=level,
                    stream=LogStream(stream),
                    logger=logger,
                    message=message,
                )
            )
        if waiting:
            self._arrived.set()

    def take_lines(self, limit: int) -> Sequence[LogLine]:
        waiting = self._lines
        taken = [waiting.popleft() for _ in range(min(limit, len(waiting)))]
        if not waiting:
            self._arrived.clear()
            if self._dropping:
                log.warning(
                    "node %s: %d lines of task output were dropped",
                    self._node_id,
                    self.dropped,
                    extra={"node": self._node_id},
                )
                self._dropping = False
        return taken

    async def lines_waiting(self) -> None:
        await self._arrived.wait()

    def __len__(self) -> int:
        return len(self._lines)
