"""Tasks in one SQLite file: the embedded default that survives a restart (``skalds up``).

The standard library's ``sqlite3`` in WAL mode, so readers never wait for the writer. Every call runs on one
thread of its own (sqlite3 blocks; the event loop must not), which also serialises the calls on the one
connection. A task is its camelCase document (adapters/task_documents.py) as JSON, beside the columns the
queries filter and sort on; a write compares and sets on ``version`` in its WHERE clause.

``synchronous=NORMAL``: a committed change survives the process crashing or being killed; a power cut may
lose the last few commits (WAL's documented trade), never corrupt the file.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from skalds.adapters.sqlite.checkpoints import SCHEMA as CHECKPOINTS_SCHEMA
from skalds.adapters.sqlite.checkpoints import SqliteCheckpointStore
from skalds.adapters.sqlite.transactions import transaction
from skalds.adapters.task_documents import task_from_document, task_to_document
from skalds.domain.errors import (
    BackendUnavailableError,
    ConflictError,
    TaskAlreadyExistsError,
    TaskNotFoundError,
    ValidationError,
)
from skalds.domain.ports import TaskOrder, TaskPage, TaskQuery, TaskRepository
from skalds.domain.task import Task, TaskStatus

T = TypeVar("T")
Row = tuple[Any, ...]
"""A task as the table's columns, in ``COLUMNS`` order."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    class_name TEXT NOT NULL,
    status TEXT NOT NULL,
    executor TEXT,
    mode TEXT NOT NULL,
    priority INTEGER NOT NULL,
    created INTEGER NOT NULL,
    retry_at INTEGER,
    version INTEGER NOT NULL,
    document TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tasks_newest ON tasks (created DESC, id);
CREATE INDEX IF NOT EXISTS tasks_dispatch ON tasks (status, priority DESC, created, id);
CREATE INDEX IF NOT EXISTS tasks_executor ON tasks (executor, status);
CREATE INDEX IF NOT EXISTS tasks_class ON tasks (class_name);
"""
COLUMNS = "id, class_name, status, executor, mode, priority, created, retry_at, version, document"
ORDERS = {
    TaskOrder.NEWEST_FIRST: " ORDER BY created DESC, id",
    TaskOrder.DISPATCH: " ORDER BY priority DESC, created, id",
    TaskOrder.ANY: "",
}
CHUNK = 500  # ids per IN (...): far below SQLite's limit on bound parameters


def _row(task: Task) -> Row:
    try:
        document = json.dumps(task_to_document(task), separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValidationError("attachments", f"cannot be stored as JSON: {error}") from None
    return (
        task.id,
        task.class_name,
        task.lifecycle_status.value,
        task.executor,
        task.mode.value,
        task.priority,
        task.create_date_time,
        task.retry_at,
        task.version,
        document,
    )


def _task(document: str) -> Task:
    return task_from_document(json.loads(document))


def _casefold(value: str | None) -> str | None:
    return None if value is None else value.casefold()


class SqliteTaskRepository(TaskRepository):
    def __init__(self, connection: sqlite3.Connection, executor: ThreadPoolExecutor, where: str) -> None:
        self._db = connection
        self._executor = executor
        self._where = where
        self.checkpoints = SqliteCheckpointStore(connection, self._run)
        """The tasks' checkpoints, in the same file, on the same thread."""

    async def _run(self, call: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, call, *args)
        except sqlite3.IntegrityError:
            raise  # our own bug (a constraint the code should have kept), not an outage
        except sqlite3.DatabaseError as error:
            # locked past busy_timeout, disk full, the file gone or damaged: the store cannot serve
            raise BackendUnavailableError("sqlite", f"{self._where}: {error}") from error

    async def get(self, task_id: str) -> Task:
        found = await self._run(self._fetch_one, task_id)
        if found is None:
            raise TaskNotFoundError(task_id)
        return found

    def _fetch_one(self, task_id: str) -> Task | None:
        row = self._db.execute("SELECT document FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return None if row is None else _task(row[0])

    async def get_many(self, task_ids: Sequence[str]) -> Mapping[str, Task]:
        return await self._run(self._fetch_many, list(task_ids))

    def _fetch_many(self, task_ids: Sequence[str]) -> dict[str, Task]:
        found: dict[str, Task] = {}
        for start in range(0, len(task_ids), CHUNK):
            chunk = task_ids[start : start + CHUNK]
            marks = ",".join("?" * len(chunk))
            for (document,) in self._db.execute(f"SELECT document FROM tasks WHERE id IN ({marks})", chunk):
                task = _task(document)
                found[task.id] = task
        return {task_id: found[task_id] for task_id in task_ids if task_id in found}

    async def list(self, query: TaskQuery) -> TaskPage:
        return await self._run(self._page, query)

    def _page(self, query: TaskQuery) -> TaskPage:
        where, parameters = _where(query)
        limit = -1 if query.limit is None else query.limit
        rows = self._db.execute(
            f"SELECT document FROM tasks{where}{ORDERS[query.order]} LIMIT ? OFFSET ?",
            [*parameters, limit, query.offset],
        ).fetchall()
        items = [_task(document) for (document,) in rows]
        if query.with_total:
            total = self._db.execute(f"SELECT COUNT(*) FROM tasks{where}", parameters).fetchone()[0]
        else:
            total = query.offset + len(items)
        return TaskPage(items=items, total=total)

    async def insert(self, task: Task) -> None:
        await self.insert_many([task])

    async def insert_many(self, tasks: Sequence[Task]) -> None:
        rows = [_row(task) for task in tasks]
        await self._run(self._insert_all, rows)

    def _insert_all(self, rows: Sequence[Row]) -> None:
        """All or nothing: one transaction; the first id already taken (or repeated) is named."""
        seen: set[str] = set()
        for row in rows:
            if row[0] in seen:
                raise TaskAlreadyExistsError(row[0])
            seen.add(row[0])
        with transaction(self._db):
            for row in rows:
                try:
                    self._db.execute(f"INSERT INTO tasks ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)", row)
                except sqlite3.IntegrityError:
                    raise TaskAlreadyExistsError(row[0]) from None

    async def update(self, task: Task, expected_version: int) -> None:
        row = _row(task)
        await self._run(self._update_one, row, expected_version)

    def _update_one(self, row: Row, expected_version: int) -> None:
        if not self._write(row, expected_version):
            self._refuse(row[0], expected_version)

    async def update_many(self, updates: Sequence[tuple[Task, int]]) -> Sequence[str]:
        rows = [(_row(task), expected) for task, expected in updates]
        return await self._run(self._update_all, rows)

    def _update_all(self, rows: Sequence[tuple[Row, int]]) -> Sequence[str]:
        with transaction(self._db):
            return [row[0] for row, expected in rows if not self._write(row, expected)]

    def _write(self, row: Row, expected_version: int) -> bool:
        cursor = self._db.execute(
            "UPDATE tasks SET class_name = ?, status = ?, executor = ?, mode = ?, priority = ?, created = ?,"
            " retry_at = ?, version = ?, document = ? WHERE id = ? AND version = ?",
            (*row[1:], row[0], expected_version),
        )
        return cursor.rowcount == 1

    async def delete(self, task_id: str, expected_version: int) -> None:
        await self._run(self._delete_one, task_id, expected_version)

    def _delete_one(self, task_id: str, expected_version: int) -> None:
        cursor = self._db.execute(
            "DELETE FROM tasks WHERE id = ? AND version = ?", (task_id, expected_version)
        )
        if cursor.rowcount != 1:
            self._refuse(task_id, expected_version)

    def _refuse(self, task_id: str, expected_version: int) -> None:
        """Why a conditional write changed nothing: the task is gone, or its version moved on."""
        row = self._db.execute("SELECT version FROM tasks WHERE id = ?", (task_id,)).fetchone()
        if row is None:
            raise TaskNotFoundError(task_id)
        raise ConflictError(task_id, expected_version, int(row[0]))

    async def class_names(self) -> Sequence[str]:
        rows = await self._run(self._all, "SELECT DISTINCT class_name FROM tasks ORDER BY class_name", ())
        return [name for (name,) in rows]

    async def count_by_status(self) -> Mapping[TaskStatus, int]:
        rows = await self._run(self._all, "SELECT status, COUNT(*) FROM tasks GROUP BY status", ())
        counts = {status: 0 for status in TaskStatus}
        counts.update({TaskStatus(status): count for status, count in rows})
        return counts

    async def count_by_executor(self, statuses: frozenset[TaskStatus]) -> Mapping[str, int]:
        if not statuses:
            return {}
        marks = ",".join("?" * len(statuses))
        sql = (
            "SELECT executor, COUNT(*) FROM tasks WHERE executor IS NOT NULL"
            f" AND status IN ({marks}) GROUP BY executor"
        )
        rows = await self._run(self._all, sql, [s.value for s in statuses])
        return {executor: count for executor, count in rows}

    async def ping(self) -> None:
        await self._run(self._all, "SELECT 1", ())

    def _all(self, sql: str, parameters: Iterable[Any]) -> Sequence[Any]:
        return self._db.execute(sql, tuple(parameters)).fetchall()


def _where(query: TaskQuery) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    parameters: list[Any] = []
    statuses = query.statuses
    if query.retry_due_by is not None:  # only failed tasks are ever due for a retry
        failed = frozenset({TaskStatus.FAILED})
        statuses = failed if statuses is None else statuses & failed
        clauses.append("retry_at IS NOT NULL AND retry_at <= ?")
        parameters.append(query.retry_due_by)
    if statuses is not None:
        clauses.append(f"status IN ({','.join('?' * len(statuses))})" if statuses else "0")
        parameters.extend(sorted(s.value for s in statuses))
    if query.class_name is not None:
        clauses.append("class_name = ?")
        parameters.append(query.class_name)
    if query.executor is not None:
        clauses.append("executor = ?")
        parameters.append(query.executor)
    if query.modes is not None:
        clauses.append(f"mode IN ({','.join('?' * len(query.modes))})" if query.modes else "0")
        parameters.extend(sorted(m.value for m in query.modes))
    if query.id_contains:
        clauses.append("instr(casefold(id), ?) > 0")
        parameters.append(query.id_contains.casefold())
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), parameters


def open_database(path: Path) -> sqlite3.Connection:
    """The file (and its folder) created if missing, in WAL mode, with the schema in place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=5000")
    db.create_function("casefold", 1, _casefold, deterministic=True)
    db.executescript(SCHEMA)
    db.executescript(CHECKPOINTS_SCHEMA)
    return db


async def sqlite_task_repository(path: Path) -> AsyncIterator[SqliteTaskRepository]:
    """A repository on its own connection and thread, the file opened before it is handed out."""
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="skalds-sqlite")
    loop = asyncio.get_running_loop()
    try:
        db = await loop.run_in_executor(executor, open_database, path)
    except (sqlite3.Error, OSError) as error:  # a folder that cannot be made, a file that is not a database
        executor.shutdown(wait=False)
        raise BackendUnavailableError("sqlite", f"{path}: {error}") from error
    try:
        yield SqliteTaskRepository(db, executor, str(path))
    finally:
        await loop.run_in_executor(executor, db.close)
        executor.shutdown(wait=True)
