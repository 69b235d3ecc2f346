"""Checkpoints in the tasks' SQLite file, on the repository's connection and thread (one writer)."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from skalds.adapters.sqlite.transactions import transaction
from skalds.domain.checkpoints import Checkpoint
from skalds.domain.ports import CheckpointStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoints (
    task_id TEXT PRIMARY KEY,
    attempt INTEGER NOT NULL,
    sequence INTEGER NOT NULL,
    value TEXT NOT NULL,
    saved_at INTEGER NOT NULL
) WITHOUT ROWID;
"""
# a save replaces the stored one only when it is newer: (attempt, sequence) compared as a row value
UPSERT = """
INSERT INTO checkpoints (task_id, attempt, sequence, value, saved_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (task_id) DO UPDATE SET
    attempt = excluded.attempt, sequence = excluded.sequence, value = excluded.value,
    saved_at = excluded.saved_at
WHERE (excluded.attempt, excluded.sequence) > (checkpoints.attempt, checkpoints.sequence)
"""
CHUNK = 500
COLUMNS = "task_id, attempt, sequence, value, saved_at"

Run = Callable[..., Awaitable[Any]]


def _checkpoint(row: tuple[Any, ...]) -> Checkpoint:
    task_id, attempt, sequence, value, saved_at = row
    return Checkpoint(task_id=task_id, attempt=attempt, sequence=sequence, value=value, saved_at=saved_at)


class SqliteCheckpointStore(CheckpointStore):
    def __init__(self, db: sqlite3.Connection, run: Run) -> None:
        self._db = db
        self._run = run  # the repository's: its thread, its error mapping

    async def save_many(self, checkpoints: Sequence[Checkpoint]) -> None:
        rows = [(c.task_id, c.attempt, c.sequence, c.value, c.saved_at) for c in checkpoints]
        await self._run(self._save, rows)

    def _save(self, rows: list[tuple[Any, ...]]) -> None:
        with transaction(self._db):
            self._db.executemany(UPSERT, rows)

    async def get(self, task_id: str) -> Checkpoint | None:
        found: Mapping[str, Checkpoint] = await self.get_many([task_id])
        return found.get(task_id)

    async def get_many(self, task_ids: Sequence[str]) -> Mapping[str, Checkpoint]:
        result: Mapping[str, Checkpoint] = await self._run(self._fetch, list(task_ids))
        return result

    def _fetch(self, task_ids: list[str]) -> dict[str, Checkpoint]:
        found: dict[str, Checkpoint] = {}
        for start in range(0, len(task_ids), CHUNK):
            chunk = task_ids[start : start + CHUNK]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT {COLUMNS} FROM checkpoints WHERE task_id IN ({marks})"
            for row in self._db.execute(sql, chunk):
                found[row[0]] = _checkpoint(row)
        return found

    async def delete(self, task_id: str) -> None:
        await self._run(self._db.execute, "DELETE FROM checkpoints WHERE task_id = ?", (task_id,))
