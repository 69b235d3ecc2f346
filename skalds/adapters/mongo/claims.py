"""Compare-and-set on a task's ``version`` that holds on FerretDB 1.x as well as on MongoDB.

Every write claims the version it starts from. A filter on ``{id, version}`` is a compare-and-set on MongoDB
but not on FerretDB 1.x: it evaluates the filter, then writes, with no lock in between (verified: ten writers
doing ``update_one({"id", "version"}, ...)`` "won" 200 times and the counter reached 28). An insert into a
unique index is atomic on both, so a write first inserts ``{_id: "<expected version>:<task id>"}`` into
``<collection>.claims``. Of the writers starting from one version, exactly one gets the claim. It reads the
stored version, which cannot move from the claimed one while the claim is held, writes by ``_id`` when it
matches, then deletes the claim. So the winners of a batch are known before the bulk write, with no token to
read back. A claim that a crashed writer left behind is broken once it is older than the lease.

Batches: callers hand over groups of at most ``CLAIM_GROUP`` changes, claimed, read and released in one round
trip each. Writes are unordered ``bulk_write`` commands of at most ``BULK_STATEMENTS`` statements, because
FerretDB 1.24 keeps one SQLite connection per statement until the command ends. Its pool has 100, and a
150-statement update froze the whole server (verified). Driver errors pass through unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pymongo import DeleteOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, ConnectionFailure, OperationFailure, PyMongoError

log = logging.getLogger(__name__)

CLAIM_GROUP = 100  # changes claimed, read and released per round trip
BULK_STATEMENTS = 16  # statements per bulk write command (FerretDB holds a connection per statement)
BULK_IN_FLIGHT = 2  # bulk commands in flight per group: FerretDB's SQLite uses both cores, not more
DUPLICATE_KEY = 11000


@dataclass(frozen=True, slots=True)
class Change:
    task_id: str
    expected: int
    fields: dict[str, Any] | None  # None: delete the task

    @property
    def claim_id(self) -> str:
        return f"{self.expected}:{self.task_id}"  # the version is an int: the first ":" splits it off


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: Literal["won", "busy", "stale", "missing", "refused"]
    found: int | None = None  # the stored version, for "stale"
    error: OperationFailure | None = None  # what the server said, for "refused"


class ClaimedWrites:
    """Changes to ``tasks`` that first claim their expected version in ``claims``; one per repository."""

    def __init__(
        self,
        tasks: AsyncCollection[dict[str, Any]],
        claims: AsyncCollection[dict[str, Any]],
        *,
        lease_ms: int,
        busy_wait_s: float,
    ) -> None:
        self._tasks = tasks
        self._claims = claims
        self._lease_ms = lease_ms
        self._busy_wait_s = busy_wait_s  # how long a single write waits for a concurrent writer's claim
        self._unreleased: list[tuple[list[str], str]] = []  # claims a failed release left: retried later

    async def drop_expired(self) -> None:
        """Delete the claims that crashed writers left, once they are older than the lease."""
        await self._claims.delete_many({"at": {"$lt": _wall_ms() - self._lease_ms}})

    async def apply_one(self, change: Change) -> Outcome:
        """One compare-and-set; waits out a concurrent writer's claim so "stale" means a real change."""
        loop = asyncio.get_running_loop()
        deadline, pause = loop.time() + self._busy_wait_s, 0.002
        while (outcome := (await self.apply([change]))[0]).kind == "busy" and loop.time() < deadline:
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.1)
        if outcome.kind == "busy":  # the other writer is still at it: report what is stored now
            found = (await current_versions(self._tasks, [change.task_id])).get(change.task_id)
            outcome = Outcome("missing") if found is None else Outcome("stale", found=found[1])
        return outcome

    async def apply(self, changes: Sequence[Change]) -> list[Outcome]:
        """Claim, read, write the winners, release: four round trips for up to CLAIM_GROUP changes."""
        owner = secrets.token_hex(8)
        try:
            held = await self._claim([change.claim_id for change in changes], owner)
        except (ConnectionFailure, asyncio.CancelledError):  # some may be stored: release them all later
            self._unreleased.append(([change.claim_id for change in changes], owner))
            raise
        claimed = [changes[i].claim_id for i in sorted(held)]
        try:
            current = await current_versions(self._tasks, sorted({changes[i].task_id for i in held}))
            outcomes: list[Outcome] = []
            winners: list[tuple[int, Any]] = []
            for i, change in enumerate(changes):
                found = current.get(change.task_id)
                if i not in held:
                    outcomes.append(Outcome("busy"))
                elif found is None:
                    outcomes.append(Outcome("missing"))
                elif found[1] != change.expected:
                    outcomes.append(Outcome("stale", found=found[1]))
                else:
                    outcomes.append(Outcome("won"))
                    winners.append((i, found[0]))
            for i, error in (await self._write([(changes[i], doc_id) for i, doc_id in winners])).items():
                outcomes[winners[i][0]] = Outcome("refused", error=error)
        except (ConnectionFailure, asyncio.CancelledError):  # the server is away: release on a later write
            self._unreleased.append((claimed, owner))
            raise
        except BaseException:
            await self._release(claimed, owner)
            raise
        if await self._release(claimed, owner):  # the server answers: a good time for leftovers
            await self._release_unreleased()
        return outcomes

    async def _claim(self, claim_ids: list[str], owner: str) -> set[int]:
        """Positions whose claim we now hold; a claim older than the lease is broken and retried once."""
        now = _wall_ms()
        refused = await self._insert_claims(claim_ids, range(len(claim_ids)), owner, now)
        if refused:
            stale = {"_id": one_or_in(claim_ids[i] for i in refused), "at": {"$lt": now - self._lease_ms}}
            if (await self._claims.delete_many(stale)).deleted_count:
                refused = await self._insert_claims(claim_ids, sorted(refused), owner, now)
        return set(range(len(claim_ids))) - refused

    async def _insert_claims(
        self, claim_ids: list[str], positions: Sequence[int], owner: str, now: int
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

    async def _write(self, writes: list[tuple[Change, Any]]) -> dict[int, OperationFailure]:
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

    async def _release(self, claim_ids: list[str], owner: str) -> bool:
        """Best effort: the writes are done, so a failure here must not report them failed."""
        if not claim_ids:
            return True
        try:
            await self._claims.delete_many({"_id": one_or_in(claim_ids), "owner": owner})
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


async def current_versions(
    tasks: AsyncCollection[dict[str, Any]], task_ids: Sequence[str]
) -> dict[str, tuple[Any, int]]:
    """Stored ``_id`` and version per task id; a document without ``version`` (upstream's) is at 1."""
    found: dict[str, tuple[Any, int]] = {}
    if not task_ids:
        return found
    fields = {"id": 1, "version": 1}
    for doc in await tasks.find({"_id": one_or_in(task_ids)}, fields).to_list(None):
        if doc.get("id") == doc["_id"]:
            found[doc["id"]] = (doc["_id"], int(doc.get("version") or 1))
    if missing := [task_id for task_id in task_ids if task_id not in found]:  # upstream's ObjectId _ids
        for doc in await tasks.find({"id": one_or_in(missing)}, fields).to_list(None):
            found[doc["id"]] = (doc["_id"], int(doc.get("version") or 1))
    return found


def one_or_in(values: Any) -> Any:
    """An equality for one value (FerretDB uses its index only for a plain ``_id`` equality), else ``$in``."""
    listed = sorted(str(value) for value in values)
    return listed[0] if len(listed) == 1 else {"$in": listed}


def _operation(change: Change, doc_id: Any) -> UpdateOne | DeleteOne:
    if change.fields is None:
        return DeleteOne({"_id": doc_id})
    return UpdateOne({"_id": doc_id}, {"$set": change.fields})


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000
