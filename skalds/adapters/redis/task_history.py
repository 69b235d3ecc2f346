"""Task timelines and per-minute counts in Redis, beside the live state.

- ``{prefix}history:{task}:changes``: sorted set, score the task's version, member
  ``[at, version, change, status, attempt, executor, detail]`` as JSON; trimmed to the newest
  ``changes_per_task``; ``PEXPIRE`` the retention on every write.
- ``{prefix}history:{task}:progress``: sorted set, score the time, member ``[at, done, total]``; trimmed to
  the newest ``points_per_task``; the same expiry.
- ``{prefix}history:minute:{minute}``: hash of counters (``created``, ``finished``, ``failed``,
  ``cancelled``) and the last status sample (``s:Running`` ...), expiring after ``minutes_kept`` minutes.

A task's changes are kept by one script call, which skips a version already held (or older than the
oldest kept of a full set) and counts only what it kept, so an event delivered twice is counted once.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from itertools import groupby
from typing import Any

from redis.asyncio import Redis

from skalds.adapters.redis.calls import bounded_call
from skalds.adapters.redis.live_state import redacted, redis_client
from skalds.domain.ports import TaskHistoryStore
from skalds.domain.task import TaskStatus
from skalds.domain.task_history import (
    COUNTERS,
    MINUTE_MS,
    MinuteCounts,
    ProgressPoint,
    TaskTimeline,
    TimelineEntry,
    minute_of,
)

DAY_MS = 86_400_000
_KEEP_CHANGES = """
local cap = tonumber(ARGV[1])
local kept = 0
for i = 4, #ARGV, 3 do
  local version = tonumber(ARGV[i])
  local fresh = #redis.call('ZRANGEBYSCORE', KEYS[1], version, version, 'LIMIT', 0, 1) == 0
  if fresh and redis.call('ZCARD', KEYS[1]) >= cap then
    local lowest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    fresh = version > tonumber(lowest[2])
  end
  if fresh then
    redis.call('ZADD', KEYS[1], version, ARGV[i + 1])
    kept = kept + 1
    if ARGV[i + 2] ~= '' then
      local minute = KEYS[2 + (i - 4) / 3]
      redis.call('HINCRBY', minute, ARGV[i + 2], 1)
      redis.call('PEXPIRE', minute, ARGV[3])
    end
  end
end
if kept > 0 then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(cap + 1))
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return kept
"""


async def redis_task_history_store(store: RedisTaskHistoryStore) -> AsyncIterator[RedisTaskHistoryStore]:
    """Checked to answer before it is handed out, closed afterwards (a ``providers.Resource``)."""
    try:
        await store.ping()
        yield store
    finally:
        await store.aclose()


class RedisTaskHistoryStore(TaskHistoryStore):
    def __init__(
        self,
        url: str,
        *,
        password: str | None = None,
        key_prefix: str = "skalds:",
        changes_per_task: int = 500,
        points_per_task: int = 720,
        retention_ms: int = 7 * DAY_MS,
        minutes_kept: int = 1_440,
        timeout_s: float = 5.0,
    ) -> None:
        if min(changes_per_task, points_per_task, retention_ms, minutes_kept) < 1:
            raise ValueError("every bound of the task history must be at least 1")
        self._redis: Redis = redis_client(url, password=password)
        self._where = redacted(url)
        self._prefix = f"{key_prefix}history:"
        self._changes_per_task = changes_per_task
        self._points_per_task = points_per_task
        self._retention_ms = retention_ms
        self._minute_ttl_ms = minutes_kept * MINUTE_MS
        self._timeout_s = timeout_s
        self._keep_changes = self._redis.register_script(_KEEP_CHANGES)

    def _changes(self, task_id: str) -> str:
        return f"{self._prefix}{task_id}:changes"

    def _progress(self, task_id: str) -> str:
        return f"{self._prefix}{task_id}:progress"

    def _minute(self, minute: int) -> str:
        return f"{self._prefix}minute:{minute}"

    async def record(self, changes: Sequence[TimelineEntry], progress: Sequence[ProgressPoint]) -> None:
        if not changes and not progress:
            return
        async with bounded_call("record task history", self._where, self._timeout_s):
            pipe = self._redis.pipeline(transaction=False)
            by_task = sorted(changes, key=lambda entry: (entry.task_id, entry.version))
            for task_id, group in groupby(by_task, key=lambda entry: entry.task_id):
                entries = list(group)
                args: list[Any] = [self._changes_per_task, self._retention_ms, self._minute_ttl_ms]
                for entry in entries:
                    args += [entry.version, _encode_change(entry), entry.counted or ""]
                keys = [self._changes(task_id), *(self._minute(minute_of(e.at)) for e in entries)]
                await self._keep_changes(keys=keys, args=args, client=pipe)
            by_task_points = sorted(progress, key=lambda point: point.task_id)
            for task_id, points in groupby(by_task_points, key=lambda point: point.task_id):
                key = self._progress(task_id)
                pipe.zadd(key, {_encode_point(point): point.at for point in points})
                pipe.zremrangebyrank(key, 0, -(self._points_per_task + 1))
                pipe.pexpire(key, self._retention_ms)
            await pipe.execute()

    async def record_status_counts(self, minute: int, counts: Mapping[TaskStatus, int]) -> None:
        key = self._minute(minute_of(minute))
        sample: dict[Any, Any] = {f"s:{status.value}": counts.get(status, 0) for status in TaskStatus}
        async with bounded_call("record status counts", self._where, self._timeout_s):
            pipe = self._redis.pipeline(transaction=False)
            pipe.hset(key, mapping=sample)
            pipe.pexpire(key, self._minute_ttl_ms)
            await pipe.execute()

    async def timeline(self, task_id: str) -> TaskTimeline:
        async with bounded_call("read task history", self._where, self._timeout_s):
            pipe = self._redis.pipeline(transaction=False)
            pipe.zrange(self._changes(task_id), 0, -1)
            pipe.zrange(self._progress(task_id), 0, -1)
            changes, points = await pipe.execute()
        return TaskTimeline(
            changes=tuple(_decode_change(task_id, member) for member in changes),
            progress=tuple(_decode_point(task_id, member) for member in points),
        )

    async def minutes(self, first: int, last: int) -> Sequence[MinuteCounts]:
        starts = list(range(minute_of(first), minute_of(last) + 1, MINUTE_MS))
        if not starts:
            return []
        async with bounded_call("read counts per minute", self._where, self._timeout_s):
            pipe = self._redis.pipeline(transaction=False)
            for minute in starts:
                pipe.hgetall(self._minute(minute))
            found = await pipe.execute()
        return [_minute_counts(minute, fields) for minute, fields in zip(starts, found, strict=True)]

    async def forget_tasks(self, task_ids: Sequence[str]) -> None:
        if not task_ids:
            return
        keys = [key for task_id in task_ids for key in (self._changes(task_id), self._progress(task_id))]
        async with bounded_call("forget task history", self._where, self._timeout_s):
            for start in range(0, len(keys), 10_000):
                await self._redis.delete(*keys[start : start + 10_000])

    async def ping(self) -> None:
        async with bounded_call("ping", self._where, self._timeout_s):
            await self._redis.ping()

    async def aclose(self) -> None:
        await self._redis.aclose()


def _encode_change(entry: TimelineEntry) -> str:
    fields = [entry.at, entry.version, entry.change, entry.status.value]
    fields += [entry.attempt, entry.executor, entry.detail]
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


def _decode_change(task_id: str, member: bytes | str) -> TimelineEntry:
    at, version, change, status, attempt, executor, detail = json.loads(member)
    return TimelineEntry(
        task_id=task_id,
        at=at,
        version=version,
        change=change,
        status=TaskStatus(status),
        attempt=attempt,
        executor=executor,
        detail=detail,
    )


def _encode_point(point: ProgressPoint) -> str:
    return json.dumps([point.at, point.done, point.total], separators=(",", ":"))


def _decode_point(task_id: str, member: bytes | str) -> ProgressPoint:
    at, done, total = json.loads(member)
    return ProgressPoint(task_id=task_id, at=at, done=done, total=total)


def _minute_counts(minute: int, fields: Mapping[bytes, bytes]) -> MinuteCounts:
    values = {key.decode(): int(value) for key, value in fields.items()}
    sample = {TaskStatus(k[2:]): v for k, v in values.items() if k.startswith("s:")}
    counted = {name: values.get(name, 0) for name in COUNTERS.values()}
    return MinuteCounts(minute=minute, **counted, by_status=sample or None)
