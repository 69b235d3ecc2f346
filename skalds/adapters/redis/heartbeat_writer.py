"""Heartbeat writes in batches: the write path of the Redis live-state store that needs more than a command.

A node reports many workers at once, and a round trip costs far more than the work inside it. Concurrent
``write`` calls queue up and one drain task writes the queue, one batch in flight at a time, so a lone call
still goes out at once and a burst shares a few round trips. A batch is cut into script calls of up to
``SCRIPT_BEATS`` beats that go out concurrently (Redis runs one while the next is packed); each script call
reads the previous report and stores the new one atomically, stamping ``progress_changed_at``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from skalds.adapters.redis.records import encode_report_body
from skalds.domain.heartbeat import HeartbeatReport
from skalds.domain.ports import Clock

In = TypeVar("In")
Out = TypeVar("Out")
Beat = tuple[str, HeartbeatReport]

SCRIPT_BEATS = 250  # beats per script call: a few milliseconds of server time at most
SCRIPTS_IN_FLIGHT = 4  # concurrent script calls (so connections) per writer: enough to keep Redis busy

# KEYS: latest, history per beat. ARGV: now, oldest live written-at, TTL ms, last history index, then per
# beat "<received-at> <progress or nothing> <the report's JSON left open>". The previous value's progress,
# stamp and written-at are read from its tail (see ``records``), which is cheaper than cjson. Returns the
# progress_changed_at stamps joined by commas (empty for none) and the positions of values not ours.
RECORD_HEARTBEATS = """
local now, oldest, ttl, last = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local stamps, foreign = {}, {}
for i = 1, #KEYS, 2 do
  local latest, history = KEYS[i], KEYS[i + 1]
  local n = (i + 1) / 2
  local received, progress, body = string.match(ARGV[4 + n], '^(%-?%d+) (%S*) (.*)$')
  local fresh = true
  local stamp = ''
  local raw = redis.pcall('GET', latest)
  if type(raw) == 'string' then
    local p, c, w = string.match(raw, ',"p":([^,]+),"c":(%-?%d+),"w":(%-?%d+)}$')
    if w == nil then w = string.match(raw, ',"w":(%-?%d+)}$') end
    if w == nil or string.sub(raw, 1, 5) ~= '{"r":' then
      foreign[#foreign + 1] = n
    elseif tonumber(w) >= oldest then
      fresh = false
      if progress ~= '' and p ~= nil and tonumber(p) == tonumber(progress) then stamp = c end
    end
  elseif type(raw) == 'table' then
    foreign[#foreign + 1] = n
  end
  if fresh then redis.call('DEL', history) end
  if progress ~= '' and stamp == '' then stamp = received end
  local value = body
  if stamp ~= '' then value = value .. ',"c":' .. stamp end
  value = value .. ',"w":' .. now .. '}'
  redis.call('SET', latest, value, 'PX', ttl)
  redis.call('LPUSH', history, value)
  redis.call('LTRIM', history, 0, last)
  redis.call('PEXPIRE', history, ttl)
  stamps[n] = stamp
end
return {table.concat(stamps, ','), table.concat(foreign, ',')}
"""


class HeartbeatWriter:
    """Stores heartbeats under the keys ``task_keys(task_id)`` gives (latest, history); reports the latest
    keys whose previous value was not ours to ``on_foreign`` (they are overwritten). Raises redis errors,
    and TimeoutError when a script call takes longer than ``timeout_s``."""

    def __init__(
        self,
        redis: Redis,
        clock: Clock,
        *,
        task_keys: Callable[[str], tuple[str, str]],
        ttl_ms: int,
        history_limit: int,
        timeout_s: float,
        on_foreign: Callable[[str], None],
        max_batch: int = 2_000,
    ) -> None:
        self._redis = redis
        self._clock = clock
        self._task_keys = task_keys
        self._ttl_ms = ttl_ms
        self._last_index = history_limit - 1
        self._timeout_s = timeout_s
        self._on_foreign = on_foreign
        self._sha = redis.register_script(RECORD_HEARTBEATS).sha
        self._in_flight = asyncio.Semaphore(SCRIPTS_IN_FLIGHT)
        self._queue: Coalescer[Beat, HeartbeatReport] = Coalescer(self.write_many, max_batch=max_batch)

    async def write(self, task_id: str, report: HeartbeatReport) -> HeartbeatReport:
        """Coalesced with the calls that arrive while a batch is in flight."""
        return await self._queue.submit((task_id, report))

    async def write_many(self, beats: Sequence[Beat]) -> list[HeartbeatReport]:
        """A task's beats all land in one script call, in order, so concurrent calls cannot reorder them."""
        if not beats:
            return []
        now = self._clock.now_ms()
        head = (now, now - self._ttl_ms, self._ttl_ms, self._last_index)
        count = -(-len(beats) // SCRIPT_BEATS)
        if count == 1:
            return await self._write_chunk(beats, head)
        buckets: list[list[int]] = [[] for _ in range(count)]
        for index, (task_id, _) in enumerate(beats):
            buckets[hash(task_id) % count].append(index)
        buckets = [bucket for bucket in buckets if bucket]
        results = await asyncio.gather(
            *(self._write_chunk([beats[i] for i in bucket], head) for bucket in buckets),
            return_exceptions=True,
        )
        stored: dict[int, HeartbeatReport] = {}
        for bucket, result in zip(buckets, results, strict=True):
            if isinstance(result, BaseException):
                raise result
            stored.update(zip(bucket, result, strict=True))
        return [stored[index] for index in range(len(beats))]

    async def aclose(self) -> None:
        await self._queue.aclose()

    async def _write_chunk(self, chunk: Sequence[Beat], head: tuple[int, ...]) -> list[HeartbeatReport]:
        keys: list[bytes] = []
        args: list[Any] = list(head)
        for task_id, report in chunk:
            latest, history = self._task_keys(task_id)
            keys += (latest.encode(), history.encode())
            progress = "" if report.progress is None else repr(report.progress)
            args.append(f"{report.received_at} {progress} ".encode() + encode_report_body(report))
        async with self._in_flight, asyncio.timeout(self._timeout_s):  # the drain must never hang
            stamps, foreign = await self._run_script(len(keys), *keys, *args)
        for position in _as_str(foreign).split(",") if foreign else ():
            self._on_foreign(self._task_keys(chunk[int(position) - 1][0])[0])
        return [
            _stamped(report, int(stamp) if stamp else None)
            for (_, report), stamp in zip(chunk, _as_str(stamps).split(","), strict=True)
        ]

    async def _run_script(self, *keys_and_args: Any) -> Any:
        """EVALSHA, loading the script where Redis lost it (first use, a restart, SCRIPT FLUSH)."""
        try:
            return await self._redis.evalsha(self._sha, *keys_and_args)
        except NoScriptError:
            self._sha = await self._redis.script_load(RECORD_HEARTBEATS)
            return await self._redis.evalsha(self._sha, *keys_and_args)


class Coalescer(Generic[In, Out]):
    """``await submit(item)`` resolves with ``write``'s result for that item, or raises what ``write`` raised
    for its batch. A cancelled caller drops out of the result, never out of the write."""

    def __init__(self, write: Callable[[Sequence[In]], Awaitable[Sequence[Out]]], *, max_batch: int) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self._write = write
        self._max_batch = max_batch
        self._queue: list[tuple[In, asyncio.Future[Out]]] = []
        self._drain: asyncio.Task[None] | None = None

    async def submit(self, item: In) -> Out:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Out] = loop.create_future()
        self._queue.append((item, future))
        if self._drain is None:
            self._drain = loop.create_task(self._drain_queue())
        return await future

    async def aclose(self) -> None:
        """Wait for the writes already queued; later calls start a new drain."""
        drain = self._drain
        if drain is not None:
            await asyncio.gather(drain, return_exceptions=True)

    async def _drain_queue(self) -> None:
        batch: list[tuple[In, asyncio.Future[Out]]] = []
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                try:
                    results = await self._write([item for item, _ in batch])
                except Exception as error:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
            batch = []
        finally:
            self._drain = None
            for _, future in batch + self._queue:  # left over only when the drain itself was cancelled
                future.cancel()
            self._queue.clear()


def _stamped(report: HeartbeatReport, progress_changed_at: int | None) -> HeartbeatReport:
    """``dataclasses.replace`` without its introspection, which costs more than the rest of a write."""
    if report.progress_changed_at == progress_changed_at:
        return report
    return HeartbeatReport(
        received_at=report.received_at,
        sequence=report.sequence,
        progress=report.progress,
        progress_changed_at=progress_changed_at,
        outcome=report.outcome,
        error=report.error,
        paused=report.paused,
        applied_attachments_version=report.applied_attachments_version,
        attempt=report.attempt,
        progress_total=report.progress_total,
        progress_unit=report.progress_unit,
        progress_message=report.progress_message,
        cpu_percent=report.cpu_percent,
        memory_bytes=report.memory_bytes,
    )


def _as_str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
