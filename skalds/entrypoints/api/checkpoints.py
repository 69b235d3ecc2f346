"""``/api/tasks/{id}/checkpoint``: what the task's worker last saved, and clearing it (a fresh start)."""

from __future__ import annotations

import json

from litestar import Controller, delete, get
from litestar.params import FromPath

from skalds.domain.checkpoints import Checkpoint
from skalds.entrypoints.api.injection import Injected
from skalds.entrypoints.api.openapi import READ, WRITE, error_responses
from skalds.entrypoints.api.replies import CheckpointReply


def _reply(task_id: str, checkpoint: Checkpoint | None) -> CheckpointReply:
    if checkpoint is None:
        return {
            "taskId": task_id,
            "checkpoint": None,
            "attempt": None,
            "sequence": None,
            "savedAt": None,
            "sizeBytes": None,
        }
    return {
        "taskId": task_id,
        "checkpoint": json.loads(checkpoint.value),
        "attempt": checkpoint.attempt,
        "sequence": checkpoint.sequence,
        "savedAt": checkpoint.saved_at,
        "sizeBytes": checkpoint.size_bytes,
    }


class CheckpointController(Controller):
    path = "/api/tasks/{task_id:str}/checkpoint"

    @get("/", responses=error_responses(*READ, 404))
    async def checkpoint(self, services: Injected, task_id: FromPath[str]) -> CheckpointReply:
        task, checkpoint = await services.task_checkpoints.of(task_id)
        return _reply(task.id, checkpoint)

    @delete("/", status_code=200, responses=error_responses(*WRITE, 404))
    async def clear(self, services: Injected, task_id: FromPath[str]) -> CheckpointReply:
        """The next attempt starts from zero; a worker running now stores its next save again."""
        task = await services.task_checkpoints.clear(task_id)
        return _reply(task.id, None)
