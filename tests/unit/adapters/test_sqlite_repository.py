"""The SQLite repository: the contract every repository keeps, plus what only a file can show — tasks
outlive the process that wrote them, and a batch is stored whole or not at all."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from skalds.adapters.sqlite.checkpoints import SqliteCheckpointStore
from skalds.adapters.sqlite.repository import SqliteTaskRepository, sqlite_task_repository
from skalds.domain.errors import BackendUnavailableError, TaskAlreadyExistsError
from skalds.domain.ports import TaskQuery
from tests.contracts.checkpoints import CheckpointStoreContract, saved
from tests.contracts.task_repository import TaskRepositoryContract, a_task, assigned


@pytest.fixture
async def opened(tmp_path: Path) -> AsyncIterator[SqliteTaskRepository]:
    async for repository in sqlite_task_repository(tmp_path / "data" / "tasks.sqlite3"):
        yield repository


class TestSqliteTaskRepository(TaskRepositoryContract):
    @pytest.fixture
    def repo(self, opened: SqliteTaskRepository) -> SqliteTaskRepository:
        return opened


async def test_tasks_outlive_the_repository_that_wrote_them(tmp_path: Path) -> None:
    path = tmp_path / "tasks.sqlite3"
    async for first in sqlite_task_repository(path):
        await first.insert(a_task("t1", attachments={"a.b": [1, {"$c": 2**70}]}))
        await first.update(assigned(await first.get("t1")), 1)
    async for second in sqlite_task_repository(path):
        again = await second.get("t1")
        assert again.executor == "n1" and again.version == 2
        assert dict(again.attachments) == {"a.b": [1, {"$c": 2**70}]}  # JSON holds what BSON would not
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_a_batch_with_a_taken_id_stores_nothing(opened: SqliteTaskRepository) -> None:
    await opened.insert(a_task("taken"))
    with pytest.raises(TaskAlreadyExistsError):
        await opened.insert_many([a_task("new1"), a_task("taken"), a_task("new2")])
    assert (await opened.list(TaskQuery())).total == 1


async def test_a_file_that_cannot_be_opened_is_an_unavailable_backend(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(BackendUnavailableError) as refused:
        async for _ in sqlite_task_repository(blocker / "tasks.sqlite3"):
            pass
    assert refused.value.backend == "sqlite"


class TestSqliteCheckpointStore(CheckpointStoreContract):
    @pytest.fixture
    def store(self, opened: SqliteTaskRepository) -> SqliteCheckpointStore:
        return opened.checkpoints


async def test_checkpoints_outlive_the_process_too(tmp_path: Path) -> None:
    path = tmp_path / "tasks.sqlite3"
    async for first in sqlite_task_repository(path):
        await first.checkpoints.save_many([saved("t1", 1, 7, '{"row":7}')])
    async for second in sqlite_task_repository(path):
        assert await second.checkpoints.get("t1") == saved("t1", 1, 7, '{"row":7}')
