"""Checkpoints in a dict: the twin of the repositories' checkpoint tables (tests/contracts/checkpoints.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from skalds.domain.checkpoints import Checkpoint
from skalds.domain.ports import CheckpointStore


class InMemoryCheckpointStore(CheckpointStore):
    def __init__(self) -> None:
        self._latest: dict[str, Checkpoint] = {}

    async def save_many(self, checkpoints: Sequence[Checkpoint]) -> None:
        for checkpoint in checkpoints:
            if checkpoint.replaces(self._latest.get(checkpoint.task_id)):
                self._latest[checkpoint.task_id] = checkpoint

    async def get(self, task_id: str) -> Checkpoint | None:
        return self._latest.get(task_id)

    async def get_many(self, task_ids: Sequence[str]) -> Mapping[str, Checkpoint]:
        return {task_id: self._latest[task_id] for task_id in task_ids if task_id in self._latest}

    async def delete(self, task_id: str) -> None:
        self._latest.pop(task_id, None)
