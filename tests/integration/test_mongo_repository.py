"""The MongoDB task repository on a real MongoDB-wire server (FerretDB in CI): the same contract as the
in-memory twin, plus what only the real thing has: indexes, upstream's documents, writers in separate
clients (as separate processes would be) and data the server refuses.

Each test gets its own database (the ``unique`` name), dropped afterwards.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import AsyncIterator
from typing import Any

import pytest
from bson import ObjectId

from skalds.adapters.mongo.checkpoints import MongoCheckpointStore
from skalds.adapters.mongo.repository import (
    CompareAndSet,
    MongoClient,
    MongoTaskRepository,
    mongo_client,
    mongo_task_repository,
)
from skalds.domain import lifecycle
from skalds.domain.errors import ConflictError, TaskAlreadyExistsError, TaskNotFoundError, ValidationError
from skalds.domain.lifecycle import TaskCommand
from skalds.domain.ports import TaskQuery
from skalds.domain.task import TaskMode, TaskStatus
from tests.contracts.checkpoints import CheckpointStoreContract
from tests.contracts.task_repository import TaskRepositoryContract, a_task, assigned, ids


@pytest.fixture
async def client(mongo_url: str, unique: str) -> AsyncIterator[MongoClient]:
    client = mongo_client(mongo_url)
    try:
        yield client
    finally:
        await client.drop_database(unique)
        await client.close()


@pytest.fixture(params=["conditional", "claims"])
def compare_and_set(request: pytest.FixtureRequest) -> CompareAndSet:
    """Both ways of writing pass everything here: conditional updates (our FerretDB build, MongoDB) and
    claims (any FerretDB 1.x)."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
async def repository(client: MongoClient, unique: str, compare_and_set: CompareAndSet) -> MongoTaskRepository:
    repository = MongoTaskRepository(client, database=unique, compare_and_set=compare_and_set)
    await repository.prepare()
    return repository


class TestMongoCheckpointStore(CheckpointStoreContract):
    @pytest.fixture
    def store(self, repository: MongoTaskRepository) -> MongoCheckpointStore:
        return repository.checkpoints


class TestMongoTaskRepository(TaskRepositoryContract):
    @pytest.fixture
    def repo(self, repository: MongoTaskRepository) -> MongoTaskRepository:
        return repository


async def test_a_filter_on_an_indexed_field_matches_as_on_mongodb(unique: str, client: MongoClient) -> None:
    """The server answers a string (or ``$in`` of strings) filter on a field that leads an index from that
    index when it can (ci/services.py's FerretDB build does): the result must still be MongoDB's, arrays
    holding the value included, other types and missing fields excluded."""
    collection = client[unique]["pushdown"]
    await collection.create_index([("state", 1), ("at", -1)])
    docs: list[dict[str, Any]] = [
        {"_id": f"s{i}", "state": ("Running", "Created", "Finished")[i % 3]} for i in range(30)
    ]
    docs += [
        {"_id": "array", "state": ["Finished", "Running"]},
        {"_id": "nested", "state": {"inner": "Running"}},
        {"_id": "number", "state": 7},
        {"_id": "missing"},
        {"_id": "array-of-other", "state": ["Finished"]},
    ]
    await collection.insert_many(docs)

    async def ids(where: dict[str, Any]) -> set[str]:
        return {doc["_id"] async for doc in collection.find(where, {"_id": 1})}

    running = {f"s{i}" for i in range(0, 30, 3)}
    created = {f"s{i}" for i in range(1, 30, 3)}
    assert await ids({"state": "Running"}) == running | {"array"}
    assert await ids({"state": {"$in": ["Running", "Created"]}}) == running | created | {"array"}
    assert await ids({"state": "Running", "_id": {"$ne": "s0"}}) == (running - {"s0"}) | {"array"}
    assert await ids({"state": {"$in": [7]}}) == {"number"}
    assert await collection.count_documents({"state": "Created"}) == 10
    await collection.update_many({"state": "Created"}, {"$set": {"seen": True}})
    assert await ids({"seen": True}) == created


async def test_start_up_pings_and_creates_the_indexes_the_queries_use(
    mongo_url: str, unique: str, client: MongoClient
) -> None:
    """On FerretDB 1.x the unique id index and the status index only: it uses no other for a query (ours
    answers a status filter from the status index), so the others would only cost."""
    ferretdb = (await client.admin.command("buildInfo")).get("ferretdbVersion") is not None
    resource = mongo_task_repository(mongo_url, database=unique, collection="jobs")
    repository = await anext(resource)
    await repository.ping()
    await repository.prepare()  # idempotent: a second controller starting changes nothing
    await resource.aclose()
    keys = [list(index["key"].items()) async for index in await client[unique]["jobs"].list_indexes()]
    assert [("id", 1)] in keys
    unique_index = [i async for i in await client[unique]["jobs"].list_indexes() if i["name"] == "id_1"]
    assert unique_index and unique_index[0].get("unique") is True
    if ferretdb:
        assert sorted(keys) == [
            [("_id", 1)],
            [("id", 1)],
            [("lifecycleStatus", 1), ("createDateTime", -1), ("id", 1)],
        ]
        return
    assert [("createDateTime", -1), ("id", 1)] in keys
    assert [("lifecycleStatus", 1), ("createDateTime", -1), ("id", 1)] in keys
    assert [("lifecycleStatus", 1), ("priority", -1), ("createDateTime", 1)] in keys
    assert [("executor", 1), ("lifecycleStatus", 1)] in keys
    assert [("retryAt", 1)] in keys


def upstream_document(task_id: str, **fields: Any) -> dict[str, Any]:
    """What upstream stored (``Task.model_dump(by_alias=True)``, reference §7.2): no version or new fields."""
    return {
        "_id": ObjectId(),
        "id": task_id,
        "className": "MySimpleWorker",
        "source": "TestingScript",
        "name": None,
        "description": None,
        "executor": None,
        "dependencies": None,
        "mode": "Passive",
        "isPersistent": True,
        "createDateTime": 1724131200000,
        "updateDateTime": 1724131200000,
        "deadlineDateTime": 1724736000000,
        "lifecycleStatus": "Created",
        "priority": 0,
        "attachments": {"rtspUrl": "rtsp://example.com/stream", "fixFrame": 10},
        **fields,
    }


async def test_upstream_documents_are_read_listed_and_compare_and_set(
    repository: MongoTaskRepository, client: MongoClient, unique: str
) -> None:
    tasks = client[unique]["tasks"]
    await tasks.insert_many(
        [upstream_document("task_123"), upstream_document("task_456", attachments=None, priority=5)]
    )
    task = await repository.get("task_123")
    assert (task.class_name, task.source, task.mode, task.lifecycle_status) == (
        "MySimpleWorker",
        "TestingScript",
        TaskMode.PASSIVE,
        TaskStatus.CREATED,
    )
    assert (task.version, task.attempt, task.dependencies, task.required_labels) == (1, 0, (), {})
    assert task.attachments == {"rtspUrl": "rtsp://example.com/stream", "fixFrame": 10}
    assert (await repository.get("task_456")).attachments == {}
    assert ids(await repository.list(TaskQuery(statuses=frozenset({TaskStatus.CREATED})))) == [
        "task_123",
        "task_456",
    ]

    assign = lifecycle.apply(task, TaskCommand.ASSIGN, at=1724131300000, executor="skald_123")[0]
    with pytest.raises(ConflictError):
        await repository.update(assign, 2)
    await repository.update(assign, 1)  # expecting version 1 matches a document with no version yet
    assert await repository.get("task_123") == assign
    stored = await tasks.find_one({"id": "task_123"})
    assert stored is not None and isinstance(stored["_id"], ObjectId) and stored["version"] == 2

    other = await repository.get("task_456")
    lost = await repository.update_many([(assigned(other), 1), (assigned(a_task("missing")), 1)])
    assert list(lost) == ["missing"]
    assert (await repository.get("task_456")).lifecycle_status is TaskStatus.ASSIGNING
    await repository.delete("task_456", 2)
    assert await tasks.count_documents({"id": "task_456"}) == 0


async def test_update_many_across_several_groups_and_bulk_commands(repository: MongoTaskRepository) -> None:
    tasks = [a_task(f"t{i:03d}", now=i) for i in range(230)]
    for task in tasks:
        await repository.insert(task)
    for task in tasks[::10]:  # someone else got there first
        await repository.update(assigned(task, "other"), 1)
    lost = await repository.update_many([(assigned(task), 1) for task in tasks])
    assert sorted(lost) == [task.id for task in tasks[::10]]
    counts = await repository.count_by_executor(frozenset({TaskStatus.ASSIGNING}))
    assert dict(counts) == {"n1": 207, "other": 23}


async def test_writers_in_separate_clients_never_both_win(
    repository: MongoTaskRepository, mongo_url: str, unique: str
) -> None:
    """Two dispatchers in two processes: each task goes to exactly one of them."""
    tasks = [a_task(f"t{i:02d}") for i in range(40)]
    for task in tasks:
        await repository.insert(task)
    other_client = mongo_client(mongo_url)
    try:
        other = MongoTaskRepository(other_client, database=unique, compare_and_set=repository.compare_and_set)
        lost_a, lost_b = await asyncio.gather(
            repository.update_many([(assigned(task, "a"), 1) for task in tasks]),
            other.update_many([(assigned(task, "b"), 1) for task in reversed(tasks)]),
        )
    finally:
        await other_client.close()
    assert sorted([*lost_a, *lost_b]) == sorted(task.id for task in tasks)
    for task in tasks:
        stored = await repository.get(task.id)
        assert (stored.version, stored.executor) == (2, "b" if task.id in lost_a else "a")


async def test_a_claim_left_by_a_crashed_writer_is_broken_after_its_lease(
    client: MongoClient, unique: str
) -> None:
    repository = MongoTaskRepository(
        client, database=unique, claim_lease_ms=60_000, busy_wait_s=0.2, compare_and_set="claims"
    )
    await repository.prepare()
    await repository.insert(a_task("crashed"))
    await repository.insert(a_task("busy"))
    claims = client[unique]["tasks.claims"]
    await claims.insert_many(
        [{"_id": "1:crashed", "owner": "gone", "at": 0}, {"_id": "1:busy", "owner": "alive", "at": 2**62}]
    )
    await repository.update(assigned(a_task("crashed")), 1)  # the old claim is broken
    assert (await repository.get("crashed")).executor == "n1"
    with pytest.raises(ConflictError) as conflict:  # a live writer holds this one: wait, then give up
        await repository.update(assigned(a_task("busy")), 1)
    assert (conflict.value.expected_version, conflict.value.actual_version) == (1, 1)
    assert list(await repository.update_many([(assigned(a_task("busy")), 1)])) == ["busy"]
    assert await claims.count_documents({}) == 1  # only the foreign one is left


@pytest.mark.parametrize(
    "attachments",
    [{"a.b": 1}, {"$where": 1}, {"ok": {"nested.key": 1}}, {"x": math.nan}, {"x": [math.inf]}, {"x": 2**64}],
)
async def test_attachments_the_server_would_refuse_are_a_validation_error(
    repository: MongoTaskRepository, attachments: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError) as refused:
        await repository.insert(a_task("t1", attachments=attachments))
    assert refused.value.field == "attachments"
    await repository.insert(a_task("t1"))
    with pytest.raises(ValidationError):
        await repository.update(a_task("t1", attachments=attachments), 1)
    assert (await repository.get("t1")).attachments == {}


async def test_nested_arrays_are_stored_or_refused_as_a_validation_error(
    repository: MongoTaskRepository,
) -> None:
    """MongoDB stores arrays of arrays; FerretDB 1.x refuses them. Either way no driver error escapes."""
    zones = {"zones": [[0, 0], [10, 10]]}
    try:
        await repository.insert(a_task("t1", attachments=zones))
    except ValidationError as error:
        assert error.field == "attachments" and "nested arrays" in error.reason
        with pytest.raises(TaskNotFoundError):
            await repository.get("t1")
    else:
        assert (await repository.get("t1")).attachments == zones
    await repository.insert(a_task("t2"))
    try:
        await repository.update(a_task("t2", attachments=zones), 1)
    except ValidationError as error:
        assert "nested arrays" in error.reason
        assert (await repository.get("t2")).attachments == {}
        assert list(
            await repository.update_many(
                [(dataclasses.replace(a_task("t2", attachments=zones), version=2), 1)]
            )
        ) == ["t2"]
    assert (await repository.get("t2")).version in (1, 2)


async def test_required_labels_with_dotted_keys_round_trip(repository: MongoTaskRepository) -> None:
    task = a_task("t1", required_labels={"kubernetes.io/arch": "amd64", "$gpu": "a100"})
    await repository.insert(task)
    assert await repository.get("t1") == task


async def test_auto_asks_the_server_before_the_first_write_and_all_writers_agree(
    client: MongoClient, unique: str
) -> None:
    """``auto`` settles on conditional updates on MongoDB and on the FerretDB ci/services.py builds (its
    writes lock), on claims on any other FerretDB; a repository that was never prepared asks too."""
    info = await client.admin.command("buildInfo")
    ferretdb = info.get("ferretdbVersion")
    expected = "conditional" if ferretdb is None or "-skalds." in ferretdb else "claims"
    unprepared = MongoTaskRepository(client, database=unique)
    assert unprepared.compare_and_set == "auto"
    await unprepared.insert(a_task("t1"))
    await unprepared.update(assigned(a_task("t1")), 1)
    assert unprepared.compare_and_set == expected
    prepared = MongoTaskRepository(client, database=unique)
    await prepared.prepare()
    assert prepared.compare_and_set == expected


async def test_conditional_writers_racing_on_one_task_win_exactly_once_per_version(
    client: MongoClient, unique: str
) -> None:
    """Ten writers read the task and write the next version, over and over: every win is a version."""
    if (await client.admin.command("buildInfo")).get("ferretdbVersion", "-skalds.").find("-skalds.") < 0:
        pytest.skip("a stock FerretDB 1.x: conditional updates are not atomic there (claims are used)")
    repository = MongoTaskRepository(client, database=unique, compare_and_set="conditional")
    await repository.insert(a_task("hot"))
    wins = 0

    async def writer(name: str) -> None:
        nonlocal wins
        for _ in range(15):
            task = await repository.get("hot")
            change = dataclasses.replace(task, version=task.version + 1, executor=name)
            lost = await repository.update_many([(change, task.version)])
            wins += 0 if lost else 1

    await asyncio.gather(*(writer(f"w{i}") for i in range(10)))
    assert (await repository.get("hot")).version == 1 + wins


async def test_insert_many_writes_a_thousand_tasks_in_one_call(repository: MongoTaskRepository) -> None:
    tasks = [a_task(f"t{i:04d}", now=i, attachments={"n": i}) for i in range(1_000)]
    await repository.insert_many(tasks)
    page = await repository.list(TaskQuery(limit=None))
    assert page.total == 1_000
    assert await repository.get("t0999") == tasks[-1]


async def test_insert_many_racing_an_upstream_document_keeps_the_tasks_before_it(
    repository: MongoTaskRepository, client: MongoClient, unique: str
) -> None:
    """An id held by an upstream document (ObjectId ``_id``) is seen by the read first on MongoDB (nothing
    stored); FerretDB's read asks ``_id`` only, so the unique ``id`` index stops the ordered insert there,
    as a writer racing the read would: the tasks before it are stored, and the error names the id."""
    await client[unique]["tasks"].insert_one(upstream_document("old"))
    ferretdb = (await client.admin.command("buildInfo")).get("ferretdbVersion") is not None
    with pytest.raises(TaskAlreadyExistsError) as taken:
        await repository.insert_many([a_task("before"), a_task("old"), a_task("after")])
    assert taken.value.task_id == "old"
    stored = await repository.get_many(["before", "old", "after"])
    assert sorted(stored) == (["before", "old"] if ferretdb else ["old"])
    assert stored["old"].class_name == "MySimpleWorker"


async def test_insert_many_with_data_the_server_refuses_is_a_validation_error_naming_the_task(
    repository: MongoTaskRepository,
) -> None:
    with pytest.raises(ValidationError) as refused:
        await repository.insert_many([a_task("good"), a_task("bad", attachments={"a.b": 1})])
    assert refused.value.field == "attachments"
    assert "'bad'" in refused.value.reason or "a.b" in refused.value.reason
    assert "bad" not in await repository.get_many(["bad"])
