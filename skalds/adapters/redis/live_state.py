"""Heartbeats and the node registry in Redis, one key per entry so that every entry carries its own TTL.

The layout is ours, not upstream's (``skalds:hash``, ``task:{id}:heartbeat``, reference §5): upstream kept
entries as fields of shared hashes, and per-field TTLs (HEXPIRE) need Redis 7.4, while we support 7.0. So:

- ``{prefix}task:{id}:latest``: string, the latest report as compact JSON (``records``) with ``c``
  (progress changed at) and ``w`` (written at, by the injected clock); ``PX`` heartbeat TTL.
- ``{prefix}task:{id}:history``: list of the same values, newest first, trimmed to ``history_limit``;
  ``PEXPIRE`` heartbeat TTL on every write.
- ``{prefix}node:{id}``: string, the node as compact JSON; ``PX`` node TTL.
- ``{prefix}nodes``: sorted set of node ids scored by last seen (the node's heartbeat, else its
  registration), ``PEXPIRE`` node TTL; ``list_nodes`` is ZRANGEBYSCORE plus one MGET, never KEYS or SCAN.

Expiry is judged by the injected clock against ``w`` and the node's last seen, exactly as the in-memory twin
does, so FakeClock tests hold; Redis's own TTLs garbage-collect what nobody forgets. ``record_heartbeat``
reads the previous report and writes the new one in one Lua script (atomic, one round trip), and concurrent
calls coalesce into batched script calls (``heartbeat_writer``). Driver errors become
``BackendUnavailableError``; a value that is not ours reads as absent and is logged once per key.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from skalds.adapters.redis.calls import bounded_call
from skalds.adapters.redis.heartbeat_writer import HeartbeatWriter
from skalds.adapters.redis.records import ReportDecoder, decode_node, encode_node
from skalds.domain.heartbeat import HeartbeatReport
from skalds.domain.nodes import Node
from skalds.domain.ports import Clock, LiveStateStore

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
KEYS_PER_CALL = 10_000  # keys per MGET / DEL
READ_CHUNK = 2_000  # latest_heartbeats reads at least this many keys per connection
READ_CONNECTIONS = 4  # and at most this many chunks at once


def redis_client(url: str, *, password: str | None = None, retries: int = 3) -> Redis:
    """A client that reconnects by itself: a dropped connection or a restarted server is retried with
    backoff (about 0.7 s in all for 3 retries) before a call gives up. ``rediss://`` URLs use TLS.

    No socket timeout, on purpose: with one, redis-py sends through ``asyncio.wait_for``, which on Python
    3.11 swallows a task's cancellation when the send completes at that moment (cpython gh-86296), so a
    monitor loop on this client could not be stopped. The store bounds each call with ``asyncio.timeout``.
    """
    options: dict[str, Any] = {} if password is None else {"password": password}
    return Redis.from_url(
        url,
        socket_timeout=None,
        socket_connect_timeout=2.0,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],  # BusyLoadingError is a ConnectionError
        **options,
    )


def redacted(url: str) -> str:
    """The URL without its password, for error messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


async def redis_live_state_store(store: RedisLiveStateStore) -> AsyncIterator[RedisLiveStateStore]:
    """A store checked to answer before it is handed out, closed afterwards (a ``providers.Resource``)."""
    try:
        await store.ping()
        yield store
    finally:
        await store.aclose()


class RedisLiveStateStore(LiveStateStore):
    """Given a URL it owns its client (and closes it in ``aclose``); given a client, the caller does."""

    def __init__(
        self,
        redis: Redis | str,
        clock: Clock,
        *,
        password: str | None = None,
        key_prefix: str = "skalds:",
        heartbeat_ttl_ms: int = HOUR_MS,
        node_ttl_ms: int = HOUR_MS,
        history_limit: int = 50,
        timeout_s: float = 5.0,
        max_batch: int = 2_000,
    ) -> None:
        if history_limit < 1:
            raise ValueError(
                f"history_limit must be at least 1 (the latest report is kept), got {history_limit}"
            )
        if heartbeat_ttl_ms < 1 or node_ttl_ms < 1:
            raise ValueError(f"TTLs must be positive, got {heartbeat_ttl_ms=} and {node_ttl_ms=}")
        self._owns_client = isinstance(redis, str)
        self._redis = redis_client(redis, password=password) if isinstance(redis, str) else redis
        self._where = redacted(redis) if isinstance(redis, str) else _address(redis)
        self._clock = clock
        self._timeout_s = timeout_s
        self._heartbeat_ttl_ms = heartbeat_ttl_ms
        self._node_ttl_ms = node_ttl_ms
        self._history_limit = history_limit
        self._tasks = f"{key_prefix}task:"
        self._node = f"{key_prefix}node:"
        self._nodes = f"{key_prefix}nodes"
        self._writer = HeartbeatWriter(
            self._redis,
            clock,
            task_keys=self._task_keys,
            ttl_ms=heartbeat_ttl_ms,
            history_limit=history_limit,
            timeout_s=timeout_s,
            on_foreign=lambda key: self._log_foreign(key, ValueError("overwritten by a new heartbeat")),
            max_batch=max_batch,
        )
        self._logged_foreign: set[str] = set()
        self._reports = ReportDecoder()

    async def record_heartbeat(self, task_id: str, report: HeartbeatReport) -> HeartbeatReport:
        async with self._call("record_heartbeat", deadline=False):  # the writer bounds each script call
            return await self._writer.write(task_id, report)

    async def record_heartbeats(self, beats: Sequence[tuple[str, HeartbeatReport]]) -> list[HeartbeatReport]:
        """Many heartbeats in a few script calls (up to 250 beats each), each task's in order."""
        async with self._call("record_heartbeats", deadline=False):
            return await self._writer.write_many(beats)

    async def latest_heartbeats(self, task_ids: Sequence[str]) -> dict[str, HeartbeatReport]:
        """In chunks, up to four MGETs at once on their own connections, so that one chunk is decoded while
        Redis answers the next: a quarter or more off a 10,000-task read on the 2-CPU bench machine."""
        if not task_ids:
            return {}
        oldest = self._clock.now_ms() - self._heartbeat_ttl_ms
        size = max(READ_CHUNK, math.ceil(len(task_ids) / READ_CONNECTIONS))
        async with self._call("latest_heartbeats"):
            if len(task_ids) <= size:
                return await self._latest(task_ids, oldest)
            chunks = [task_ids[start : start + size] for start in range(0, len(task_ids), size)]
            parts = await asyncio.gather(
                *(self._latest(chunk, oldest) for chunk in chunks), return_exceptions=True
            )
            found: dict[str, HeartbeatReport] = {}
            for part in parts:  # every chunk has ended: none is left running when one failed
                if isinstance(part, BaseException):
                    raise part
                found.update(part)
        return found

    async def _latest(self, task_ids: Sequence[str], oldest: int) -> dict[str, HeartbeatReport]:
        """One chunk. Its keys are bytes because redis-py's asyncio client packs commands in Python (redis-py
        #4176), where a str key costs an encode per key: 2 ms of a 10,000-key MGET."""
        latest_key = self._latest_key
        keys = [latest_key(task_id).encode() for task_id in task_ids]
        values = await self._mget(keys)
        found: dict[str, HeartbeatReport] = {}
        read, report = self._reports.read, self._reports.report
        for task_id, raw in zip(task_ids, values, strict=True):
            if raw is None:
                continue
            try:
                stored = read(raw)
            except ValueError as error:
                self._log_foreign(self._latest_key(task_id), error)
                continue
            if stored.written_at >= oldest:
                found[task_id] = report(stored)
        return found

    async def heartbeat_history(self, task_id: str, limit: int) -> list[HeartbeatReport]:
        if limit <= 0:
            return []
        latest, history = self._task_keys(task_id)
        async with self._call("heartbeat_history"), self._redis.pipeline(transaction=False) as pipe:
            pipe.get(latest)
            pipe.lrange(history, 0, limit - 1)
            raw_latest, raw_history = await pipe.execute()
        if raw_latest is None or not self._live(latest, raw_latest):
            return []
        reports: list[HeartbeatReport] = []
        for raw in reversed(raw_history):
            try:
                reports.append(self._reports.decode(raw).report)
            except ValueError as error:
                self._log_foreign(history, error)
        return reports

    async def forget_tasks(self, task_ids: Sequence[str]) -> None:
        keys = [key for task_id in task_ids for key in self._task_keys(task_id)]
        async with self._call("forget_tasks"):
            for start in range(0, len(keys), KEYS_PER_CALL):
                await self._redis.delete(*keys[start : start + KEYS_PER_CALL])

    async def put_node(self, node: Node) -> None:
        value = encode_node(node)
        async with self._call("put_node"), self._redis.pipeline(transaction=True) as pipe:
            pipe.set(f"{self._node}{node.id}", value, px=self._node_ttl_ms)
            pipe.zadd(self._nodes, {node.id: _last_seen(node)})
            pipe.pexpire(self._nodes, self._node_ttl_ms)
            await pipe.execute()

    async def get_node(self, node_id: str) -> Node | None:
        key = f"{self._node}{node_id}"
        async with self._call("get_node"):
            raw = await self._redis.get(key)
        node = self._decoded_node(key, raw)
        if node is None or self._clock.now_ms() - _last_seen(node) > self._node_ttl_ms:
            return None
        return node

    async def list_nodes(self) -> list[Node]:
        oldest = self._clock.now_ms() - self._node_ttl_ms
        async with self._call("list_nodes"):
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.zremrangebyscore(self._nodes, "-inf", f"({oldest}")
                pipe.zrangebyscore(self._nodes, oldest, "+inf")
                _, ids = await pipe.execute()
            keys = [f"{self._node}{_as_str(node_id)}" for node_id in ids]
            values = await self._mget(keys) if keys else []
        nodes = [
            node for key, raw in zip(keys, values, strict=True) if (node := self._decoded_node(key, raw))
        ]
        return sorted((node for node in nodes if _last_seen(node) >= oldest), key=lambda node: node.id)

    async def remove_node(self, node_id: str) -> None:
        async with self._call("remove_node"), self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(f"{self._node}{node_id}")
            pipe.zrem(self._nodes, node_id)
            await pipe.execute()

    async def ping(self) -> None:
        """For the health endpoint: returns when Redis answers, else BackendUnavailableError."""
        async with self._call("ping"):
            await self._redis.ping()

    async def aclose(self) -> None:
        await self._writer.aclose()
        if self._owns_client:
            await self._redis.aclose()

    def _latest_key(self, task_id: str) -> str:
        return f"{self._tasks}{task_id}:latest"

    def _task_keys(self, task_id: str) -> tuple[str, str]:
        return self._latest_key(task_id), f"{self._tasks}{task_id}:history"

    async def _mget(self, keys: Sequence[bytes | str]) -> list[Any]:
        if len(keys) <= KEYS_PER_CALL:
            return list(await self._redis.mget(keys))
        async with self._redis.pipeline(transaction=False) as pipe:
            for start in range(0, len(keys), KEYS_PER_CALL):
                pipe.mget(keys[start : start + KEYS_PER_CALL])
            chunks = await pipe.execute()
        return [value for chunk in chunks for value in chunk]

    def _live(self, key: str, raw: bytes | str) -> bool:
        try:
            written_at = self._reports.read(raw).written_at
        except ValueError as error:
            self._log_foreign(key, error)
            return False
        return self._clock.now_ms() - written_at <= self._heartbeat_ttl_ms

    def _decoded_node(self, key: str, raw: bytes | str | None) -> Node | None:
        if raw is None:
            return None
        try:
            return decode_node(raw)
        except ValueError as error:
            self._log_foreign(key, error)
            return None

    def _log_foreign(self, key: str, error: ValueError) -> None:
        """Once per key: a value someone else wrote must not crash reads, nor flood the log."""
        if key in self._logged_foreign:
            return
        if len(self._logged_foreign) >= 10_000:
            self._logged_foreign.clear()
        self._logged_foreign.add(key)
        log.warning("redis key %r does not hold a Skalds value (%s); treating it as absent", key, error)

    @asynccontextmanager
    async def _call(self, operation: str, *, deadline: bool = True) -> AsyncIterator[None]:
        """Bounds a call by ``timeout_s`` and turns what the driver raises into BackendUnavailableError."""
        async with bounded_call(operation, self._where, self._timeout_s, deadline=deadline):
            yield


def _address(client: Redis) -> str:
    """Where a client we did not build points, for error messages (never with its password)."""
    options = client.connection_pool.connection_kwargs
    if "path" in options:
        return f"unix://{options['path']}"
    return f"redis://{options.get('host', 'localhost')}:{options.get('port', 6379)}/{options.get('db', 0)}"


def _last_seen(node: Node) -> int:
    return node.last_heartbeat_at if node.last_heartbeat_at is not None else node.registered_at


def _as_str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
