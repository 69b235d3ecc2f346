"""Checkpoints in a collection beside the tasks (``<collection>.checkpoints``), one document per task.

The value stays the worker's JSON text, so BSON's rules on keys and integers never refuse a checkpoint. A
save is a conditional upsert: it matches only a stored checkpoint older than itself, and when a newer one is
stored the upsert's insert hits the primary key instead, which means "keep the newer": ignored."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from skalds.domain.checkpoints import Checkpoint
from skalds.domain.ports import CheckpointStore

Document = dict[str, Any]


def _older_than(checkpoint: Checkpoint) -> Document:
    return {
        "_id": checkpoint.task_id,
        "$or": [
            {"attempt": {"$lt": checkpoint.attempt}},
            {"attempt": checkpoint.attempt, "sequence": {"$lt": checkpoint.sequence}},
        ],
    }


def _fields(checkpoint: Checkpoint) -> Document:
    return {
        "attempt": checkpoint.attempt,
        "sequence": checkpoint.sequence,
        "value": checkpoint.value,
        "savedAt": checkpoint.saved_at,
    }


def _checkpoint(doc: Mapping[str, Any]) -> Checkpoint:
    return Checkpoint(
        task_id=str(doc["_id"]),
        attempt=int(doc["attempt"]),
        sequence=int(doc["sequence"]),
        value=str(doc["value"]),
        saved_at=int(doc["savedAt"]),
    )


class MongoCheckpointStore(CheckpointStore):
    def __init__(
        self, collection: AsyncCollection[Document], errors: Callable[[], AbstractContextManager[None]]
    ) -> None:
        self._checkpoints = collection
        self._errors = errors  # the repository's driver-error mapping

    async def save_many(self, checkpoints: Sequence[Checkpoint]) -> None:
        """One conditional upsert each, at once (not one bulk write: FerretDB's reply to a bulk write with
        a duplicate key lacks a count the driver reads, and a batch is a node's few running tasks)."""
        with self._errors():
            await asyncio.gather(*(self._save(checkpoint) for checkpoint in checkpoints))

    async def _save(self, checkpoint: Checkpoint) -> None:
        with contextlib.suppress(DuplicateKeyError):  # a newer save is stored: keep it
            await self._checkpoints.update_one(
                _older_than(checkpoint), {"$set": _fields(checkpoint)}, upsert=True
            )

    async def get(self, task_id: str) -> Checkpoint | None:
        with self._errors():
            doc = await self._checkpoints.find_one({"_id": task_id})
        return None if doc is None else _checkpoint(doc)

    async def get_many(self, task_ids: Sequence[str]) -> Mapping[str, Checkpoint]:
        if not task_ids:
            return {}
        with self._errors():
            docs = await self._checkpoints.find({"_id": {"$in": list(task_ids)}}).to_list()
        return {str(doc["_id"]): _checkpoint(doc) for doc in docs}

    async def delete(self, task_id: str) -> None:
        with self._errors():
            await self._checkpoints.delete_one({"_id": task_id})
