"""Tasks in a MongoDB collection (MongoDB 7, or FerretDB 1.24 on SQLite), with compare-and-set on ``version``.

Every write claims the version it starts from. A filter on ``{id, version}`` is a compare-and-set on MongoDB
but not on FerretDB 1.x: it evaluates the filter, then writes, with no lock in between (verified: ten writers
doing ``update_one({"id", "version"}, ...)`` "won" 200 times and the counter reached 28). An insert into a
unique index is atomic on both, so a write first inserts ``{_id: "<expected version>:<task id>"}`` into
``<collection>.claims``. Of the writers starting from one version, exactly one gets the claim. It reads the
stored version, which cannot move from the claimed one while the claim is held, writes by ``_id`` when it
matches, then deletes the claim. So the winners of a batch are known before the bulk write, with no token to
read back. A claim that a crashed writer left behind is broken once it is older than ``claim_lease_ms``.

Batches: ``update_many`` claims, reads and releases groups of ``CLAIM_GROUP`` in one round trip each. It
writes with unordered ``bulk_write`` of at most ``BULK_STATEMENTS`` statements, because FerretDB 1.24 keeps
one SQLite connection per statement until the command ends. Its pool has 100, and a 150-statement update
froze the whole server (verified). Driver errors become BackendUnavailableError; data that the server
refuses becomes ValidationError.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from bson.errors import BSONError
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, DeleteOne, IndexModel, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
)

from skalds.adapters.mongo.documents import task_from_document, task_to_document
from skalds.domain.errors import (
    BackendUnavailableError,
    ConflictError,
    TaskAlreadyExistsError,
    TaskNotFoundError,
    ValidationError,
)
from skalds.domain.ports import TaskOrder, TaskPage, TaskQuery, TaskRepository
from skalds.domain.task import Task, TaskStatus

log = logging.getLogger(__name__)

_A = TypeVar("_A")
_B = TypeVar("_B")

CLAIM_GROUP = 100  # changes claimed, read and released per round trip
BULK_STATEMENTS = 16  # statements per bulk write command (FerretDB holds a connection per statement)
BULK_IN_FLIGHT = 2  # bulk commands in flight per group: FerretDB's SQLite uses both cores, not more
DUPLICATE_KEY = 11000
REFUSED_DATA_CODES = frozenset({2, 14, 52, 55, 56, 57})  # BadValue, TypeMismatch, bad field names

Document = dict[str, Any]
MongoClient = AsyncMongoClient[Document]

INDEXES = (
    IndexModel([("id", ASCENDING)], unique=True),  # upstream's index, same name (id_1): created once
    IndexModel([("createDateTime", DESCENDING), ("id", ASCENDING)]),  # browsing everything
    IndexModel([("lifecycleStatus", ASCENDING), ("createDateTime", DESCENDING), ("id", ASCENDING)]),
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
) -> AsyncIterator[MongoTaskRepository]:
    """A repository on its own client: pinged and indexed before it is handed out, closed afterwards."""
    client = mongo_client(url, server_selection_timeout_ms=server_selection_timeout_ms)
    try:
        repository = MongoTaskRepository(
            client, database=database, collection=collection, where=redacted(url)
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


@dataclass(frozen=True, slots=True)
class _Change:
    task_id: str
    expected: int
    fields: Document | None  # None: delete the task

    @property
    def claim_id(self) -> str:
        return f"{self.expected}:{self.task_id}"  # the version is an int: the first ":" splits it off


@dataclass(frozen=True, slots=True)
class _Outcome:
    kind: Literal["won", "busy", "stale", "missing", "refused"]
    found: int | None = None  # the stored version, for "stale"
    error: OperationFailure | None = None  # what the server said, for "refused"


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
        self._claims: AsyncCollection[Document] = db[f"{collection}.claims"]
        self._lease_ms = claim_lease_ms
        self._busy_wait_s = busy_wait_s  # how long a single write waits for a concurrent writer's claim
        self._unreleased: list[tuple[list[str], str]] = []  # claims a failed release left: retried later

    async def ping(self) -> None:
        with self._errors():
            await self._client.admin.command("ping")

    async def prepare(self) -> None:
        """Create the indexes the queries use (idempotent), and drop claims that crashed writers left."""
        with self._errors():
            existing = {index["name"] async for index in await self._tasks.list_indexes()}
            for index in INDEXES:  # one per call: FerretDB 1.24 panics re-creating several at once (verified)
                if index.document["name"] not in existing:
                    await self._tasks.create_indexes([index])
            await self._claims.delete_many({"at": {"$lt": _wall_ms() - self._lease_ms}})

    async def get(self, task_id: str) -> Task:
        with self._errors():
            doc = await self._tasks.find_one({"_id": task_id})
            if doc is None or doc.get("id") != task_id:  # an upstream document: ObjectId _id
                doc = await self._tasks.find_one({"id": task_id})
        if doc is None:
            raise TaskNotFoundError(task_id)
        return task_from_document(doc)

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

    async def update(self, task: Task, expected_version: int) -> None:
        await self._change_one(_Change(task.id, expected_version, task_to_document(task)))

    async def delete(self, task_id: str, expected_version: int) -> None:
        await self._change_one(_Change(task_id, expected_version, None))

    async def update_many(self, updates: Sequence[tuple[Task, int]]) -> Sequence[str]:
        changes = [_Change(task.id, expected, task_to_document(task)) for task, expected in updates]
        lost: list[str] = []
        with self._errors():
            for start in range(0, len(changes), CLAIM_GROUP):
                group = changes[start : start + CLAIM_GROUP]
                for change, outcome in zip(group, await self._apply(group), strict=True):
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
        match = {"lifecycleStatus": _one_or_in(statuses), "executor": {"$ne": None}}
        rows = await self._aggregate(
            [{"$match": match}, {"$group": {"_id": "$executor", "count": {"$sum": 1}}}]
        )
        return {row["_id"]: int(row["count"]) for row in rows if isinstance(row["_id"], str)}

    async def _aggregate(self, pipeline: builtins.list[Document]) -> builtins.list[Document]:
        with self._errors():
            cursor = await self._tasks.aggregate(pipeline)
            return await cursor.to_list(None)

    async def _change_one(self, change: _Change) -> None:
        """One compare-and-set; waits out a concurrent writer's claim so a conflict means a real change."""
        loop = asyncio.get_running_loop()
        deadline, pause = loop.time() + self._busy_wait_s, 0.002
        with self._errors():
            while (outcome := (await self._apply([change]))[0]).kind == "busy" and loop.time() < deadline:
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.1)
            if outcome.kind == "busy":  # the other writer is still at it: report what is stored now
                found = (await self._current([change.task_id])).get(change.task_id)
                outcome = _Outcome("missing") if found is None else _Outcome("stale", found=found[1])
        if outcome.kind == "missing":
            raise TaskNotFoundError(change.task_id)
        if outcome.kind == "stale":
            raise ConflictError(change.task_id, change.expected, outcome.found)
        if outcome.kind == "refused":
            assert outcome.error is not None
            with self._errors():
                raise outcome.error

    async def _apply(self, changes: Sequence[_Change]) -> builtins.list[_Outcome]:
        """Claim, read, write the winners, release: four round trips for up to CLAIM_GROUP changes."""
        owner = secrets.token_hex(8)
        try:
            held = await self._claim([change.claim_id for change in changes], owner)
        except (ConnectionFailure, asyncio.CancelledError):  # some may be stored: release them all later
            self._unreleased.append(([change.claim_id for change in changes], owner))
            raise
        claimed = [changes[i].claim_id for i in sorted(held)]
        try:
            current = await self._current(sorted({changes[i].task_id for i in held}))
            outcomes: list[_Outcome] = []
            winners: list[tuple[int, Any]] = []
            for i, change in enumerate(changes):
                found = current.get(change.task_id)
                if i not in held:
                    outcomes.append(_Outcome("busy"))
                elif found is None:
                    outcomes.append(_Outcome("missing"))
                elif found[1] != change.expected:
                    outcomes.append(_Outcome("stale", found=found[1]))
                else:
                    outcomes.append(_Outcome("won"))
                    winners.append((i, found[0]))
            for i, error in (await self._write([(changes[i], doc_id) for i, doc_id in winners])).items():
                outcomes[winners[i][0]] = _Outcome("refused", error=error)
        except (ConnectionFailure, asyncio.CancelledError):  # the server is away: release on a later write
            self._unreleased.append((claimed, owner))
            raise
        except BaseException:
            await self._release(claimed, owner)
            raise
        if await self._release(claimed, owner):  # the server answers: a good time for leftovers
            await self._release_unreleased()
        return outcomes

    async def _claim(self, claim_ids: builtins.list[str], owner: str) -> set[int]:
        """Positions whose claim we now hold; a claim older than the lease is broken and retried once."""
        now = _wall_ms()
        refused = await self._insert_claims(claim_ids, range(len(claim_ids)), owner, now)
        if refused:
            stale = {"_id": _one_or_in(claim_ids[i] for i in refused), "at": {"$lt": now - self._lease_ms}}
            if (await self._claims.delete_many(stale)).deleted_count:
                refused = await self._insert_claims(claim_ids, sorted(refused), owner, now)
        return set(range(len(claim_ids))) - refused

    async def _insert_claims(
        self, claim_ids: builtins.list[str], positions: Sequence[int], owner: str, now: int
    ) -> set[int]:
        docs = [{"_id": claim_ids[i], "owner": owner, "at": now} for i in positions]
        try:
            await self._claims.insert_many(docs, ordered=False)
        except BulkWriteError as error:
            problems = error.details.get("writeErrors", [])
            if any(problem.get("code") != DUPLICATE_KEY for problem in problems):
                raise
            return {positions[problem["index"]] for problem in problems}
        return set()

    async def _current(self, task_ids: builtins.list[str]) -> dict[str, tuple[Any, int]]:
        """Stored ``_id`` and version per task id; a document without ``version`` (upstream's) is at 1."""
        found: dict[str, tuple[Any, int]] = {}
        if not task_ids:
            return found
        fields = {"id": 1, "version": 1}
        for doc in await self._tasks.find({"_id": _one_or_in(task_ids)}, fields).to_list(None):
            if doc.get("id") == doc["_id"]:
                found[doc["id"]] = (doc["_id"], int(doc.get("version") or 1))
        if missing := [task_id for task_id in task_ids if task_id not in found]:  # upstream's ObjectId _ids
            for doc in await self._tasks.find({"id": _one_or_in(missing)}, fields).to_list(None):
                found[doc["id"]] = (doc["_id"], int(doc.get("version") or 1))
        return found

    async def _write(self, writes: builtins.list[tuple[_Change, Any]]) -> dict[int, OperationFailure]:
        """Unordered bulk writes in small commands. A command the server refuses is redone one statement
        at a time (harmless: we still hold the claims) to find the write it refused."""
        refused: dict[int, OperationFailure] = {}
        in_flight = asyncio.Semaphore(BULK_IN_FLIGHT)

        async def write_chunk(start: int) -> None:
            chunk = writes[start : start + BULK_STATEMENTS]
            async with in_flight:
                try:
                    await self._tasks.bulk_write(
                        [_operation(c, doc_id) for c, doc_id in chunk], ordered=False
                    )
                    return
                except (OperationFailure, KeyError):  # FerretDB's reply to a refused update lacks nModified
                    pass
                for offset, (change, doc_id) in enumerate(chunk):
                    try:
                        if change.fields is None:
                            await self._tasks.delete_one({"_id": doc_id})
                        else:
                            await self._tasks.update_one({"_id": doc_id}, {"$set": change.fields})
                    except OperationFailure as error:
                        refused[start + offset] = error

        results = await asyncio.gather(
            *(write_chunk(start) for start in range(0, len(writes), BULK_STATEMENTS)), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return refused

    async def _release(self, claim_ids: builtins.list[str], owner: str) -> bool:
        """Best effort: the writes are done, so a failure here must not report them failed."""
        if not claim_ids:
            return True
        try:
            await self._claims.delete_many({"_id": _one_or_in(claim_ids), "owner": owner})
        except PyMongoError as error:
            log.warning("could not release %d write claims (retried later): %s", len(claim_ids), error)
            self._unreleased.append((claim_ids, owner))
            return False
        return True

    async def _release_unreleased(self) -> None:
        while self._unreleased:
            claim_ids, owner = self._unreleased.pop()
            if not await self._release(claim_ids, owner):  # put back; the next success retries
                return

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


def _operation(change: _Change, doc_id: Any) -> UpdateOne | DeleteOne:
    if change.fields is None:
        return DeleteOne({"_id": doc_id})
    return UpdateOne({"_id": doc_id}, {"$set": change.fields})


def _filter(query: TaskQuery) -> Document:
    where: Document = {}
    statuses = query.statuses
    if query.retry_due_by is not None:  # only failed tasks are ever due for a retry
        statuses = _FAILED if statuses is None else statuses & _FAILED
        where["retryAt"] = {"$lte": query.retry_due_by}
    if statuses is not None:
        where["lifecycleStatus"] = _one_or_in(statuses)
    if query.class_name is not None:
        where["className"] = query.class_name
    if query.id_contains:
        where["id"] = {"$regex": re.escape(query.id_contains), "$options": "i"}
    if query.executor is not None:
        where["executor"] = query.executor
    if query.modes is not None:
        where["mode"] = _one_or_in(query.modes)
    return where


def _one_or_in(values: Any) -> Any:
    """An equality for one value (FerretDB uses its index only for a plain ``_id`` equality), else ``$in``."""
    listed = sorted(str(value) for value in values)
    return listed[0] if len(listed) == 1 else {"$in": listed}


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


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000
