"""Compare-and-set on a task's ``version`` as one conditional update, where the server makes that atomic.

On MongoDB, ``update({_id, version: expected}, {$set})`` is a compare-and-set; on FerretDB 1.x it is not
(``claims`` says why), except on the build ``ci/services.py`` makes, whose writes take a lock
(``ci/ferretdb_patches.py``). A batch is unordered ``bulk_write`` commands. A command's reply says how many
statements matched, not which, so every statement also stores a write id of its own. When fewer matched
than were sent, the batch's documents are read back: a write id that is ours won; the version the statement
wrote, under another write id, lost to that writer. A statement whose document has moved on again since is
settled by the count: the matched statements not yet accounted for. Only when that count cannot tell two
such statements apart are they reported stale (logged), though one of them was stored.

A command the server refuses is redone one statement at a time, to find the one it refused.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Sequence
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, OperationFailure

from skalds.adapters.mongo.claims import Change, Outcome, current_versions, one_or_in

log = logging.getLogger(__name__)

WRITE_ID = "writeId"  # the last conditional write's id, stored with the task
BULK_STATEMENTS = 200  # statements per bulk write command
BULK_IN_FLIGHT = 2  # bulk commands in flight per batch


def version_filter(expected: int) -> Any:
    """Upstream's documents have no ``version``: they are at 1."""
    return {"$in": [1, None]} if expected == 1 else expected


class ConditionalWrites:
    """Changes to ``tasks`` as conditional writes; the server must make each one atomic."""

    def __init__(self, tasks: AsyncCollection[dict[str, Any]]) -> None:
        self._tasks = tasks

    async def drop_expired(self) -> None:
        """Nothing to drop: no claims are kept."""

    async def apply_one(self, change: Change) -> Outcome:
        """One compare-and-set in one command, whose reply says whether it matched."""
        return await self._single(change, change.task_id)

    async def apply(self, changes: Sequence[Change]) -> list[Outcome]:
        """Updates in bulk commands of up to BULK_STATEMENTS; deletes (rare) one at a time."""
        outcomes: list[Outcome | None] = [None] * len(changes)
        updates = [i for i, change in enumerate(changes) if change.fields is not None]
        for i, change in enumerate(changes):
            if change.fields is None:
                outcomes[i] = await self._single(change, change.task_id)
        in_flight = asyncio.Semaphore(BULK_IN_FLIGHT)

        async def write_chunk(positions: list[int]) -> None:
            async with in_flight:
                chunk = [changes[i] for i in positions]
                for i, outcome in zip(positions, await self._bulk(chunk), strict=True):
                    outcomes[i] = outcome

        size = BULK_STATEMENTS
        chunks = [updates[start : start + size] for start in range(0, len(updates), size)]
        results = await asyncio.gather(*(write_chunk(chunk) for chunk in chunks), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return [outcome or Outcome("missing") for outcome in outcomes]

    async def _bulk(self, chunk: Sequence[Change]) -> list[Outcome]:
        batch = secrets.token_hex(6)
        write_ids = [f"{batch}.{i}" for i in range(len(chunk))]
        statements = [
            UpdateOne(
                {"_id": change.task_id, "version": version_filter(change.expected)},
                {"$set": {**(change.fields or {}), WRITE_ID: write_id}},
            )
            for change, write_id in zip(chunk, write_ids, strict=True)
        ]
        try:
            matched = (await self._tasks.bulk_write(statements, ordered=False)).matched_count
        except (BulkWriteError, OperationFailure, KeyError):  # FerretDB's reply to a refusal lacks nModified
            return await self._one_by_one(chunk, write_ids)
        if matched == len(chunk):
            return [Outcome("won")] * len(chunk)
        return await self._settle(chunk, write_ids, matched)

    async def _settle(self, chunk: Sequence[Change], write_ids: list[str], matched: int) -> list[Outcome]:
        """Which statements matched, from what is stored now and how many did."""
        stored = await self._stored([change.task_id for change in chunk])
        outcomes: list[Outcome | None] = []
        unsettled: list[int] = []
        for i, (change, write_id) in enumerate(zip(chunk, write_ids, strict=True)):
            doc = stored.get(change.task_id)
            if doc is None:
                outcomes.append(None)  # not under its id: an upstream document, or gone
                unsettled.append(i)
                continue
            version = int(doc.get("version") or 1)
            if doc.get(WRITE_ID) == write_id:
                outcomes.append(Outcome("won"))
            elif version in (change.expected, _written_version(change)):
                outcomes.append(Outcome("stale", found=version))  # another writer's, or never matched
            else:
                outcomes.append(None)  # moved on again since: ours or not, the count tells
                unsettled.append(i)
        upstream = [i for i in unsettled if chunk[i].task_id not in stored]
        moved = [i for i in unsettled if chunk[i].task_id in stored]
        won_unseen = matched - sum(1 for outcome in outcomes if outcome is not None and outcome.kind == "won")
        if moved and won_unseen in (0, len(moved)):
            for i in moved:
                outcomes[i] = Outcome("won") if won_unseen else _stale(stored[chunk[i].task_id])
        elif moved:
            log.warning(
                "%d of %d conditional writes were overwritten before they could be told apart: "
                "reported stale, though %d of them were stored",
                len(moved),
                len(chunk),
                won_unseen,
            )
            for i in moved:
                outcomes[i] = _stale(stored[chunk[i].task_id])
        if upstream:  # an ObjectId _id: write by that _id, one at a time (once per such task)
            located = await current_versions(self._tasks, [chunk[i].task_id for i in upstream])
            for i in upstream:
                found = located.get(chunk[i].task_id)
                if found is None:
                    outcomes[i] = Outcome("missing")
                elif found[1] != chunk[i].expected:
                    outcomes[i] = Outcome("stale", found=found[1])
                else:
                    outcomes[i] = await self._single(chunk[i], found[0])
        return [outcome or Outcome("missing") for outcome in outcomes]

    async def _one_by_one(self, chunk: Sequence[Change], write_ids: list[str]) -> list[Outcome]:
        """After a refused command: what it stored is ours; the rest is redone alone."""
        stored = await self._stored([change.task_id for change in chunk])
        outcomes = []
        for change, write_id in zip(chunk, write_ids, strict=True):
            doc = stored.get(change.task_id)
            if doc is not None and doc.get(WRITE_ID) == write_id:
                outcomes.append(Outcome("won"))
            else:
                outcomes.append(await self.apply_one(change))
        return outcomes

    async def _single(self, change: Change, doc_id: Any) -> Outcome:
        where = {"_id": doc_id, "version": version_filter(change.expected)}
        try:
            if change.fields is None:
                done = (await self._tasks.delete_one(where)).deleted_count
            else:
                update = {"$set": {**change.fields, WRITE_ID: secrets.token_hex(6)}}
                done = (await self._tasks.update_one(where, update)).matched_count
        except OperationFailure as error:
            return Outcome("refused", error=error)
        except KeyError:  # FerretDB's reply to a refused update lacks nModified: send it raw for the reason
            done, refusal = await self._raw_update(change, where)
            if refusal is not None:
                return refusal
        if done:
            return Outcome("won")
        found = (await current_versions(self._tasks, [change.task_id])).get(change.task_id)
        if found is None:
            return Outcome("missing")
        if found[1] == change.expected and found[0] != doc_id:  # an upstream document: its ObjectId _id
            return await self._single(change, found[0])
        return Outcome("stale", found=found[1])

    async def _raw_update(self, change: Change, where: dict[str, Any]) -> tuple[int, Outcome | None]:
        """The update as a raw command, whose reply the driver does not parse: how many it matched, or
        the server's refusal."""
        update = {"$set": {**(change.fields or {}), WRITE_ID: secrets.token_hex(6)}}
        reply = await self._tasks.database.command(
            "update", self._tasks.name, updates=[{"q": where, "u": update}]
        )
        problems = reply.get("writeErrors")
        if not problems:
            return int(reply.get("n", 0)), None
        problem = problems[0]
        error = OperationFailure(problem.get("errmsg", "refused"), problem.get("code"), problem)
        return 0, Outcome("refused", error=error)

    async def _stored(self, task_ids: list[str]) -> dict[str, dict[str, Any]]:
        fields = {"id": 1, "version": 1, WRITE_ID: 1}
        docs = await self._tasks.find({"_id": one_or_in(task_ids)}, fields).to_list(None)
        return {doc["_id"]: doc for doc in docs if doc.get("id") == doc["_id"]}


def _written_version(change: Change) -> int | None:
    version = (change.fields or {}).get("version")
    return version if isinstance(version, int) else None


def _stale(doc: dict[str, Any]) -> Outcome:
    return Outcome("stale", found=int(doc.get("version") or 1))
