"""Task output in this process: the embedded default's ``TaskLogStore``.

Bounded twice: ``lines_per_attempt`` per attempt (its oldest lines go), and ``max_lines`` in all (the
attempts written least recently go whole), so a long-running ``skalds up`` holds at most that much output.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Sequence

from skalds.domain.ports import TaskLogStore
from skalds.domain.task_logs import LogLine, LogPage, LogQuery, page_of

DEFAULT_LINES_PER_ATTEMPT = 10_000
DEFAULT_MAX_LINES = 1_000_000


class InMemoryTaskLogStore(TaskLogStore):
    def __init__(
        self, *, lines_per_attempt: int = DEFAULT_LINES_PER_ATTEMPT, max_lines: int = DEFAULT_MAX_LINES
    ) -> None:
        if lines_per_attempt < 1 or max_lines < lines_per_attempt:
            raise ValueError(
                f"need 1 <= lines_per_attempt <= max_lines, got {lines_per_attempt}, {max_lines}"
            )
        self._per_attempt = lines_per_attempt
        self._max_lines = max_lines
        self._attempts: OrderedDict[tuple[str, int], deque[LogLine]] = OrderedDict()  # least recent first
        self._last_seq: dict[tuple[str, int], int] = {}
        self._total = 0

    async def append(self, lines: Sequence[LogLine]) -> None:
        for line in lines:
            key = (line.task_id, line.attempt)
            if line.seq <= self._last_seq.get(key, 0):
                continue  # delivered again, or older than what is kept
            kept = self._attempts.get(key)
            if kept is None:
                kept = self._attempts[key] = deque(maxlen=self._per_attempt)
            self._attempts.move_to_end(key)
            if len(kept) == kept.maxlen:
                self._total -= 1
            kept.append(line)
            self._last_seq[key] = line.seq
            self._total += 1
        while self._total > self._max_lines:
            key, oldest = self._attempts.popitem(last=False)
            self._total -= len(oldest)
            self._last_seq.pop(key, None)

    async def read(self, query: LogQuery) -> LogPage:
        return page_of(list(self._attempts.get((query.task_id, query.attempt), ())), query)

    async def attempts(self, task_id: str) -> Sequence[int]:
        return sorted(attempt for (task, attempt) in self._attempts if task == task_id)

    async def forget_tasks(self, task_ids: Sequence[str]) -> None:
        gone = set(task_ids)
        for key in [key for key in self._attempts if key[0] in gone]:
            self._total -= len(self._attempts.pop(key))
            self._last_seq.pop(key, None)

    async def ping(self) -> None:
        """Memory always answers."""
