"""Tasks in a MongoDB collection (MongoDB 7, or FerretDB 1.24 on SQLite), with compare-and-set on ``version``.

Queries and inserts go straight to the collection. Updates and deletes are compare-and-sets on ``version``:
one conditional update each (``conditional``) where the server makes that atomic, which MongoDB does and
FerretDB 1.x does only in the build ``ci/services.py`` makes; elsewhere they claim the version first
(``claims``). ``compare_and_set="auto"`` picks by what the server says it is. Driver errors become
BackendUnavailableError; data that the server refuses becomes ValidationError.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal, TypeVar

from bson.errors import BSONError
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure, PyMongoError

from skalds.adapters.mongo.checkpoints import MongoCheckpointStore
from skalds.adapters.mongo.claims import CLAIM_GROUP, Change, ClaimedWrites, one_or_in
from skalds.adapters.mongo.conditional import ConditionalWrites
from skalds.adapters.mongo.documents import task_from_document, task_to_document
from skalds.domain.errors import (
    BackendUnavailableError,
    ConflictError,
    SkaldsError,
    TaskAlreadyExistsError,
    TaskNotFoundError,
    ValidationError,
)
from skalds.domain.ports import TaskOrder, TaskPage, TaskQuery, TaskRepository
from skalds.domain.task import Task, TaskStatus

log = logging.getLogger(__name__)

_A = TypeVar("_A")
_B = TypeVar("_B")

REFUSED_DATA_CODES = frozenset({2, 14, 52, 55, 56, 57})  # BadValue, TypeMismatch, bad field names
DUPLICATE_KEY = 11000

Document = dict[str, Any]
MongoClient = AsyncMongoClient[Document]
CompareAndSet = Literal["auto", "conditional", "claims"]
ATOMIC_FERRETDB = "-skalds."  # in the version of the FerretDB that ci/services.py builds (its writes lock)
CONDITIONAL_GROUP = 1_000  # changes per conditional batch (bulk commands of up to 200 statements)

UNIQUE_ID = IndexModel([("id", ASCENDING)], unique=True)  # upstream's index, same name (id_1): created once
BY_STATUS = IndexModel([("lifecycleStatus", ASCENDING), ("createDateTime", DESCENDING), ("id", ASCENDING)])
INDEXES = (
    UNIQUE_ID,
    IndexModel([("createDateTime", DESCENDING), ("id", ASCENDING)]),  # browsing everything
    BY_STATUS,
    IndexModel(  # the dispatcher's queue
        [("lifecycleStatus", ASCENDING), ("priority", DESCENDING), ("createDateTime", ASCENDING)]
    ),
    IndexModel([("executor", ASCENDING), ("lifecycleStatus", ASCENDING)]),  # load per node
    IndexModel([("retryAt", ASCENDING)]),  # due retries
    IndexModel([("className", ASCENDING)]),  # class filter and distinct class names
)
_SORTS: Mapping[TaskOrder, list[tuple[str, int]]] = {
    TaskOrder.NEWEST_FIRST: [("createDateTime", DESCENDING), ("id", ASCENDING)],
    TaskOrder.DISPATCH: [("priority", DESCENDING), ("createDateTime", ASCENDING), ("id", ASCENDING)],
    TaskOrder.ANY: [],
}
_FAILED = frozenset({TaskStatus.FAILED})


def redacted(url: str) -> str:
    """``scheme://hosts`` of a MongoDB URL: no credentials, path or options, for messages and logs."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return "<not a mongodb:// URL>"
    hosts = rest.split("/", 1)[0].split("?", 1)[0].rpartition("@")[2]
    return f"{scheme}://{hosts}"


def mongo_client(url: str, *, server_selection_timeout_ms: int = 5_000) -> MongoClient:
    """A client that fails fast when the server is down; create it in the event loop that uses it."""
    try:
        return AsyncMongoClient(
            url,
            serverSelectionTimeoutMS=server_selection_timeout_ms,
            connectTimeoutMS=server_selection_timeout_ms,
            socketTimeoutMS=max(30_000, server_selection_timeout_ms),  # a batch on FerretDB takes seconds
            appname="skalds",
        )
    except PyMongoError as error:
        raise ValidationError("mongo.url", f"not a usable MongoDB URL ({redacted(url)}): {error}") from None


async def mongo_task_repository(
    url: str,
    *,
    database: str = "skalds",
    collection: str = "tasks",
    server_selection_timeout_ms: int = 5_000,
    compare_and_set: CompareAndSet = "auto",
) -> AsyncIterator[MongoTaskRepository]:
    """A repository on its own client: pinged and indexed before it is handed out, closed afterwards."""
    client = mongo_client(url, server_selection_timeout_ms=server_selection_timeout_ms)
    try:
        repository = MongoTaskRepository(
            client,
            database=database,
            collection=collection,
            where=redacted(url),
            compare_and_set=compare_and_set,
        )
        try:
            await repository.ping()
        except BackendUnavailableError as error:
            detail = f"no answer within {server_selection_timeout_ms} ms from {error.detail}"
            raise BackendUnavailableError("mongo", detail) from None
        await repository.prepare()
        yield repository
    finally:
        await client.close()


class MongoTaskRepository(TaskRepository):
    """The caller owns ``client`` (``mongo_task_repository`` makes and closes one); call ``prepare`` once."""

    def __init__(
        self,
        client: MongoClient,
        *,
        database: str = "skalds",
        collection: str = "tasks",
        where: str | None = None,
        claim_lease_ms: int = 60_000,
        busy_wait_s: float = 5.0,
        compare_and_set: CompareAndSet = "auto",
    ) -> None:
        self._client = client
        self._where = where or _hosts(client)  # the server, without credentials, for error messages
        try:
            db = client[database]
        except PyMongoError as error:
            raise ValidationError(
                "mongo.database", f"{database!r} cannot be a database name: {error}"
            ) from None
        self._tasks: AsyncCollection[Document] = db[collection]
        claims: AsyncCollection[Document] = db[f"{collection}.claims"]
        self._claimed = ClaimedWrites(self._tasks, claims, lease_ms=claim_lease_ms, busy_wait_s=busy_wait_s)
        self._conditional = ConditionalWrites(self._tasks)
        self.checkpoints = MongoCheckpointStore(db[f"{collection}.checkpoints"], self._errors)
        """The tasks' checkpoints, in a collection beside them."""
        self._asked_server = False
        self._ferretdb: str | None = None  # FerretDB's version once asked; None on MongoDB
        self._writes: ClaimedWrites | ConditionalWrites | None = None  # "auto": settled by the first write
        if compare_and_set == "conditional":
            self._writes = self._conditional
        elif compare_and_set == "claims":
            self._writes = self._claimed

    @property
    def compare_and_set(self) -> Literal["auto", "conditional", "claims"]:
        """How writes are made; ``auto`` until ``prepare`` or the first write has asked the server."""
        if self._writes is None:
            return "auto"
        return "conditional" if self._writes is self._conditional else "claims"

    async def _writer(self) -> ClaimedWrites | ConditionalWrites:
        """Writers of one collection must agree (a claim means nothing to a conditional write), so ``auto``
        asks the server before the first write, conditional on MongoDB and on our FerretDB build."""
        if self._writes is None:
            ferretdb = await self._ferretdb_version()
            atomic = ferretdb is None or ATOMIC_FERRETDB in ferretdb
            self._writes = self._conditional if atomic else self._claimed
            log.info("mongo compare-and-set: %s (server: %s)", self.compare_and_set, ferretdb or "MongoDB")
        return self._writes

    async def _ferretdb_version(self) -> str | None:
        """FerretDB's version, or None for MongoDB (asked once: the server does not change under us)."""
        if not self._asked_server:
            version = (await self._client.admin.command("buildInfo")).get("ferretdbVersion")
            self._ferretdb = None if version is None else str(version)
            self._asked_server = True
        return self._ferretdb

    async def ping(self) -> None:
        with self._errors():
            await self._client.admin.command("ping")

    async def prepare(self) -> None:
        """Create the indexes the queries use (idempotent), settle how writes are made, and drop claims that
        crashed writers left. FerretDB 1.x gets the unique id index and the status index only: it uses an
        index for a query only on _id (upstream) or on a string field that leads one (the build of
        ci/services.py: open tasks are then read without a scan), so the others would only slow every write
        (~30% for all seven)."""
        with self._errors():
            await self._writer()
            indexes = INDEXES if await self._ferretdb_version() is None else (UNIQUE_ID, BY_STATUS)
            existing = {index["name"] async for index in await self._tasks.list_indexes()}
            for index in indexes:  # one per call: FerretDB 1.24 panics re-creating several at once (verified)
                if index.document["name"] not in existing:
                    await self._tasks.create_indexes([index])
            await self._claimed.drop_expired()

    async def get(self, task_id: str) -> Task:
        with self._errors():
            doc = await self._tasks.find_one({"_id": task_id})
            if doc is None or doc.get("id") != task_id:  # an upstream document: ObjectId _id
                doc = await self._tasks.find_one({"id": task_id})
        if doc is None:
            raise TaskNotFoundError(task_id)
        return task_from_document(doc)

    async def get_many(self, task_ids: Sequence[str]) -> dict[str, Task]:
        """By ``_id`` (one indexed read), then by ``id`` for what that missed (upstream's ObjectId ``_id``s,
        or tasks that are gone: on FerretDB that second read scans the collection)."""
        wanted = sorted(set(task_ids))
        if not wanted:
            return {}
        with self._errors():
            docs = await self._tasks.find({"_id": one_or_in(wanted)}).to_list(None)
            found = {doc["id"]: doc for doc in docs if doc.get("id") == doc["_id"]}
            if missing := [task_id for task_id in wanted if task_id not in found]:
                for doc in await self._tasks.find({"id": one_or_in(missing)}).to_list(None):
                    found.setdefault(doc["id"], doc)
        return {task.id: task for task in _decoded(list(found.values()))}

    async def list(self, query: TaskQuery) -> TaskPage:
        where = _filter(query)
        cursor = self._tasks.find(where)
        if sort := _SORTS[query.order]:
            cursor = cursor.sort(sort)
        if query.offset:
            cursor = cursor.skip(query.offset)
        if query.limit is not None:
            cursor = cursor.limit(query.limit)
        with self._errors():
            docs: builtins.list[Document] = []
            if query.limit == 0:  # limit(0) means "no limit" to MongoDB
                total = await self._tasks.count_documents(where)
            elif not query.with_total:  # counting is a second scan on servers without an index
                docs = await cursor.to_list(None)
                total = query.offset + len(docs)
            else:
                docs, total = await _both(cursor.to_list(None), self._tasks.count_documents(where))
        return TaskPage(items=_decoded(docs), total=total)

    async def insert(self, task: Task) -> None:
        doc = {"_id": task.id, **task_to_document(task)}
        with self._errors():
            try:
                await self._tasks.insert_one(doc)
            except DuplicateKeyError:
                raise TaskAlreadyExistsError(task.id) from None

    async def insert_many(self, tasks: Sequence[Task]) -> None:
        """One read for the ids already taken (so a taken id stores nothing), then one ordered insert.

        The read asks ``id`` on MongoDB (its unique index also covers upstream's ObjectId documents) and
        ``_id`` on FerretDB 1.x, which scans the collection for anything else. A writer taking an id after
        the read stops the insert at it: the tasks before it stay stored, and the error names the id."""
        ids = [task.id for task in tasks]
        if not ids:
            return
        if (twice := _first_repeated(ids)) is not None:
            raise TaskAlreadyExistsError(twice)
        docs = [{"_id": task.id, **task_to_document(task)} for task in tasks]
        with self._errors():
            key = "id" if await self._ferretdb_version() is None else "_id"
            taken = {
                doc[key] for doc in await self._tasks.find({key: one_or_in(ids)}, {key: 1}).to_list(None)
            }
            if taken:
                raise TaskAlreadyExistsError(next(task_id for task_id in ids if task_id in taken))
            try:
                await self._tasks.insert_many(docs, ordered=True)
            except BulkWriteError as error:
                raise self._refusal(error, ids) from None

    def _refusal(self, error: BulkWriteError, ids: Sequence[str]) -> SkaldsError:
        """The first write error of an ordered insert (where it stopped) as ours."""
        first = (error.details.get("writeErrors") or [{}])[0]
        code, message = first.get("code"), str(first.get("errmsg", error))
        index = first.get("index")
        task_id = ids[index] if isinstance(index, int) and 0 <= index < len(ids) else None
        if code == DUPLICATE_KEY and task_id is not None:
            return TaskAlreadyExistsError(task_id)
        if code in REFUSED_DATA_CODES or "nested arrays" in message:
            return ValidationError("attachments", f"the server refused task {task_id!r}: {message[:300]}")
        return BackendUnavailableError("mongo", f"{self._where}: {_brief(error)}")

    async def update(self, task: Task, expected_version: int) -> None:
        await self._change_one(Change(task.id, expected_version, task_to_document(task)))

    async def delete(self, task_id: str, expected_version: int) -> None:
        await self._change_one(Change(task_id, expected_version, None))

    async def update_many(self, updates: Sequence[tuple[Task, int]]) -> Sequence[str]:
        changes = [Change(task.id, expected, task_to_document(task)) for task, expected in updates]
        lost: list[str] = []
        with self._errors():
            writes = await self._writer()
            group_size = CLAIM_GROUP if writes is self._claimed else CONDITIONAL_GROUP
            for start in range(0, len(changes), group_size):
                group = changes[start : start + group_size]
                for change, outcome in zip(group, await writes.apply(group), strict=True):
                    if outcome.kind == "won":
                        continue
                    lost.append(change.task_id)
                    if outcome.kind == "refused":
                        log.warning(
                            "task %r was not stored: the server refused it: %s", change.task_id, outcome.error
                        )
        return lost

    async def class_names(self) -> Sequence[str]:
        with self._errors():
            names = await self._tasks.distinct("className")
        return sorted(name for name in names if isinstance(name, str) and name)

    async def count_by_status(self) -> Mapping[TaskStatus, int]:
        counts = dict.fromkeys(TaskStatus, 0)
        rows = await self._aggregate([{"$group": {"_id": "$lifecycleStatus", "count": {"$sum": 1}}}])
        for row in rows:
            status = TaskStatus.CREATED if row["_id"] is None else row["_id"]  # upstream's default
            if status in counts:
                counts[TaskStatus(status)] += int(row["count"])
        return counts

    async def count_by_executor(self, statuses: frozenset[TaskStatus]) -> Mapping[str, int]:
        if not statuses:
            return {}
        match = {"lifecycleStatus": one_or_in(statuses), "executor": {"$ne": None}}
        rows = await self._aggregate(
            [{"$match": match}, {"$group": {"_id": "$executor", "count": {"$sum": 1}}}]
        )
        return {row["_id"]: int(row["count"]) for row in rows if isinstance(row["_id"], str)}

    async def _aggregate(self, pipeline: builtins.list[Document]) -> builtins.list[Document]:
        with self._errors():
            cursor = await self._tasks.aggregate(pipeline)
            return await cursor.to_list(None)

    async def _change_one(self, change: Change) -> None:
        """One compare-and-set, its outcome as ours: a missing task, a conflict, or refused data."""
        with self._errors():
            outcome = await (await self._writer()).apply_one(change)
        if outcome.kind == "missing":
            raise TaskNotFoundError(change.task_id)
        if outcome.kind == "stale":
            raise ConflictError(change.task_id, change.expected, outcome.found)
        if outcome.kind == "refused":
            assert outcome.error is not None
            with self._errors():
                raise outcome.error

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Driver errors out as ours: refused data is ValidationError; anything else means "unavailable"."""
        try:
            yield
        except OperationFailure as error:
            if error.code in REFUSED_DATA_CODES or "nested arrays" in str(error):
                raise ValidationError(
                    "attachments", f"the server refused the task: {_brief(error)}"
                ) from None
            raise BackendUnavailableError("mongo", f"{self._where}: {_brief(error)}") from error
        except PyMongoError as error:  # server selection, connection, network timeout
            raise BackendUnavailableError("mongo", f"{self._where}: {_brief(error)}") from error
        except BSONError as error:
            raise ValidationError("attachments", f"cannot be stored as BSON: {error}") from None


async def _both(first: Awaitable[_A], second: Awaitable[_B]) -> tuple[_A, _B]:
    """Both results; unlike a bare gather, neither call is left running unobserved when the other fails."""
    a, b = await asyncio.gather(first, second, return_exceptions=True)
    for result in (a, b):
        if isinstance(result, BaseException):
            raise result
    return a, b  # type: ignore[return-value]


def _filter(query: TaskQuery) -> Document:
    where: Document = {}
    statuses = query.statuses
    if query.retry_due_by is not None:  # only failed tasks are ever due for a retry
        statuses = _FAILED if statuses is None else statuses & _FAILED
        where["retryAt"] = {"$lte": query.retry_due_by}
    if statuses is not None:
        where["lifecycleStatus"] = one_or_in(statuses)
    if query.class_name is not None:
        where["className"] = query.class_name
    if query.id_contains:
        where["id"] = {"$regex": re.escape(query.id_contains), "$options": "i"}
    if query.executor is not None:
        where["executor"] = query.executor
    if query.modes is not None:
        where["mode"] = one_or_in(query.modes)
    return where


def _first_repeated(ids: Sequence[str]) -> str | None:
    seen: set[str] = set()
    for task_id in ids:
        if task_id in seen:
            return task_id
        seen.add(task_id)
    return None


def _decoded(docs: list[Document]) -> list[Task]:
    """Tasks of a page; a malformed stored document is logged and left out rather than failing the page."""
    tasks = []
    for doc in docs:
        try:
            tasks.append(task_from_document(doc))
        except ValidationError as error:
            log.warning("skipping stored task %r: %s", doc.get("id", doc.get("_id")), error)
    return tasks


def _hosts(client: MongoClient) -> str:
    seeds = sorted(client.topology_description.server_descriptions())
    return "mongodb://" + ",".join(f"{host}:{port}" for host, port in seeds)


def _brief(error: Exception) -> str:
    text = str(error).split(", Timeout:", 1)[0]  # drop the topology dump of a server selection timeout
    return f"{type(error).__name__}: {text[:300]}"
