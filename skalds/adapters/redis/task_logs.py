"""Task output in Redis streams: one stream per task attempt, trimmed to the last lines, expiring.

- ``{prefix}logs:{task}:{attempt}``: a stream whose entry IDs are the lines' own numbers (``{seq}-0``) and
  whose one field ``j`` is ``[at, level, stream, logger, message]`` as JSON; ``MAXLEN ~`` the lines per
  attempt (Redis trims whole nodes, so a few more may stay); ``PEXPIRE`` the retention on every write.
- ``{prefix}logs:{task}:attempts``: sorted set of the attempts with lines, for the attempt list and purge.

A batch is one pipeline of one script call per attempt: the script adds only lines numbered after the
stream's last entry, so a batch delivered again (at least once) adds nothing and order is kept.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from itertools import groupby
from typing import Any

from redis.asyncio import Redis

from skalds.adapters.redis.calls import bounded_call
from skalds.adapters.redis.live_state import redacted, redis_client
from skalds.domain.ports import TaskLogStore
from skalds.domain.task_logs import LogLine, LogPage, LogQuery, LogStream

DAY_MS = 86_400_000
_APPEND = """
local top = 0
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last > 0 then top = tonumber(string.match(last[1][1], '^(%d+)')) end
local added = 0
for i = 4, #ARGV, 2 do
  if tonumber(ARGV[i]) > top then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], ARGV[i] .. '-0', 'j', ARGV[i + 1])
    top = tonumber(ARGV[i])
    added = added + 1
  end
end
if added > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return added
"""


async def redis_task_log_store(store: RedisTaskLogStore) -> AsyncIterator[RedisTaskLogStore]:
    """Checked to answer before it is handed out, closed afterwards (a ``providers.Resource``)."""
    try:
        await store.ping()
        yield store
    finally:
        await store.aclose()


class RedisTaskLogStore(TaskLogStore):
    def __init__(
        self,
        url: str,
        *,
        password: str | None = None,
        key_prefix: str = "skalds:",
        lines_per_attempt: int = 10_000,
        retention_ms: int = 7 * DAY_MS,
        timeout_s: float = 5.0,
    ) -> None:
        if lines_per_attempt < 1 or retention_ms < 1:
            raise ValueError(
                f"need lines_per_attempt and retention_ms >= 1, got {lines_per_attempt}, {retention_ms}"
            )
        self._redis: Redis = redis_client(url, password=password)
        self._where = redacted(url)
        self._prefix = f"{key_prefix}logs:"
        self._per_attempt = lines_per_attempt
        self._retention_ms = retention_ms
        self._timeout_s = timeout_s
        self._append = self._redis.register_script(_APPEND)

    def _stream(self, task_id: str, attempt: int) -> str:
        return f"{self._prefix}{task_id}:{attempt}"

    def _attempts(self, task_id: str) -> str:
        return f"{self._prefix}{task_id}:attempts"

    async def append(self, lines: Sequence[LogLine]) -> None:
        if not lines:
            return
        ordered = sorted(lines, key=lambda line: (line.task_id, line.attempt, line.seq))
        async with bounded_call("append task output", self._where, self._timeout_s):
            pipe = self._redis.pipeline(transaction=False)
            for (task_id, attempt), group in groupby(ordered, key=lambda line: (line.task_id, line.attempt)):
                args: list[Any] = [self._per_attempt, self._retention_ms, attempt]
                for line in group:
                    args.append(line.seq)
                    args.append(_encode(line))
                await self._append(
                    keys=[self._stream(task_id, attempt), self._attempts(task_id)], args=args, client=pipe
                )
            await pipe.execute()

    async def read(self, query: LogQuery) -> LogPage:
        """Reads in chunks from ``after`` (or back from the end for ``tail``) until ``limit`` lines pass the
        level filter or the stream ends."""
        key = self._stream(query.task_id, query.attempt)
        chunk = max(query.limit, 1_000) if query.min_level else query.limit
        picked: list[LogLine] = []
        entries: Any
        position: int | None = None  # the last entry looked at: the next chunk starts past it
        exhausted = False
        async with bounded_call("read task output", self._where, self._timeout_s):
            newest: Any = await self._redis.xrevrange(key, "+", "-", count=1)
            while len(picked) < query.limit:
                if query.tail:
                    high = "+" if position is None else f"({position}-0"
                    entries = await self._redis.xrevrange(key, high, f"({query.after}-0", count=chunk)
                else:
                    low = f"({query.after if position is None else position}-0"
                    entries = await self._redis.xrange(key, low, "+", count=chunk)
                for entry_id, fields in entries:
                    position = _seq(entry_id)
                    line = _decode(query.task_id, query.attempt, position, fields)
                    if line.level_number >= query.min_level:
                        picked.append(line)
                        if len(picked) == query.limit:
                            break
                if len(picked) < query.limit and len(entries) < chunk:
                    exhausted = True  # looked at everything there is
                    break
        last = _seq(newest[0][0]) if newest else 0
        if query.tail:
            picked.reverse()
        if query.tail or exhausted or position is None:
            return LogPage(lines=picked, last_seq=last, cursor=max(last, query.after))
        return LogPage(lines=picked, last_seq=last, cursor=position)

    async def attempts(self, task_id: str) -> Sequence[int]:
        async with bounded_call("list task output attempts", self._where, self._timeout_s):
            found: Any = await self._redis.zrange(self._attempts(task_id), 0, -1)
        return sorted(int(attempt) for attempt in found)

    async def forget_tasks(self, task_ids: Sequence[str]) -> None:
        if not task_ids:
            return
        async with bounded_call("forget task output", self._where, self._timeout_s):
            pipe = self._redis.pipeline(transaction=False)
            for task_id in task_ids:
                pipe.zrange(self._attempts(task_id), 0, -1)
            found = await pipe.execute()
            doomed = [
                key
                for task_id, attempts in zip(task_ids, found, strict=True)
                for key in (self._attempts(task_id), *(self._stream(task_id, int(a)) for a in attempts))
            ]
            for start in range(0, len(doomed), 10_000):
                await self._redis.delete(*doomed[start : start + 10_000])

    async def ping(self) -> None:
        async with bounded_call("ping", self._where, self._timeout_s):
            await self._redis.ping()

    async def aclose(self) -> None:
        await self._redis.aclose()


def _encode(line: LogLine) -> str:
    return json.dumps(
        [line.at, line.level, line.stream.value, line.logger, line.message],
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _seq(entry_id: bytes | str) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.partition("-")[0])


def _decode(task_id: str, attempt: int, seq: int, fields: dict[Any, Any]) -> LogLine:
    raw = fields.get(b"j") or fields.get("j") or '[0,"INFO","log","",""]'
    at, level, stream, logger, message = json.loads(raw)
    return LogLine(
        task_id=task_id,
        attempt=attempt,
        seq=seq,
        at=at,
        level=level,
        stream=LogStream(stream),
        logger=logger,
        message=message,
    )
