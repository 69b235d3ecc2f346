"""Task output in the control plane: keeping what the nodes ship, and reading it for the API and CLI.

The keeper runs with the monitor (MONITOR and DISPATCHER modes): each shipped batch is stored before the
next is read, and a store that is away is retried rather than skipped, so a Redis restart delays output but
loses none of what the bus still holds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from skalds.domain.errors import BackendUnavailableError
from skalds.domain.ports import LogShipper, TaskLogStore, TaskRepository
from skalds.domain.task import Task
from skalds.domain.task_logs import LogLine, LogPage, LogQuery, level_threshold

log = logging.getLogger(__name__)


class LogKeeper:
    def __init__(self, store: TaskLogStore, *, retry_s: float = 1.0) -> None:
        self._store = store
        self._retry_s = retry_s
        self.kept = 0  # lines handed to the store, for the bench and the tests

    async def run(self, source: LogShipper) -> None:
        subscription = source.log_batches()
        try:
            async for batch in subscription:
                await self._keep(batch)
        finally:
            await subscription.close()

    async def _keep(self, lines: Sequence[LogLine]) -> None:
        failing = False
        while True:
            try:
                await self._store.append(lines)
            except BackendUnavailableError as error:
                if not failing:
                    log.warning("cannot store task output (%s); retrying every %.1f s", error, self._retry_s)
                    failing = True
                await asyncio.sleep(self._retry_s)
                continue
            if failing:
                log.info("storing task output again")
            self.kept += len(lines)
            return


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskOutput:
    """One page of a task's output and where it stands: which attempt, which attempts have lines."""

    task: Task
    attempt: int
    attempts: Sequence[int]
    page: LogPage


class TaskLogService:
    def __init__(self, repository: TaskRepository, store: TaskLogStore) -> None:
        self._repository = repository
        self._store = store

    async def read(
        self,
        task_id: str,
        *,
        attempt: int | None = None,
        after: int = 0,
        limit: int = 1_000,
        level: str | None = None,
        tail: bool = False,
    ) -> TaskOutput:
        """The task's output (TaskNotFoundError if there is no such task); ``attempt`` defaults to the
        task's current one. ValidationError naming the parameter for a bad one."""
        min_level = level_threshold(level)
        task = await self._repository.get(task_id)
        chosen = task.attempt if attempt is None else attempt
        query = LogQuery(
            task_id=task.id, attempt=chosen, after=after, limit=limit, min_level=min_level, tail=tail
        )
        page, attempts = await asyncio.gather(self._store.read(query), self._store.attempts(task.id))
        return TaskOutput(task=task, attempt=chosen, attempts=attempts, page=page)

    async def forget(self, task_ids: Sequence[str]) -> None:
        await self._store.forget_tasks(task_ids)
