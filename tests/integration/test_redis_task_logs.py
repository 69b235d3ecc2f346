"""The TaskLogStore contract on a real Redis, plus what only Redis does: real expiry and a flushed script
cache."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from skalds.adapters.redis.live_state import redis_client
from skalds.adapters.redis.task_logs import RedisTaskLogStore
from tests.contracts.task_logs import TaskLogStoreContract, line, query

pytestmark = pytest.mark.integration


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = redis_client(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(redis: Redis, unique: str) -> AsyncIterator[str]:
    prefix = f"{unique}:"
    yield prefix
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=1_000)]
    if keys:
        await redis.delete(*keys)


class TestRedisTaskLogStore(TaskLogStoreContract):
    @pytest.fixture
    async def store(  # type: ignore[override]
        self, redis_url: str, prefix: str
    ) -> AsyncIterator[RedisTaskLogStore]:
        store = RedisTaskLogStore(redis_url, key_prefix=prefix, lines_per_attempt=self.lines_per_attempt)
        yield store
        await store.aclose()


async def test_every_key_expires_after_the_retention(redis_url: str, redis: Redis, prefix: str) -> None:
    store = RedisTaskLogStore(redis_url, key_prefix=prefix, retention_ms=60_000)
    try:
        await store.append([line(1), line(2, attempt=2)])
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
        assert len(keys) == 3  # two streams and the attempt list
        for key in keys:
            assert 0 < await redis.pttl(key) <= 60_000
    finally:
        await store.aclose()


async def test_a_flushed_script_cache_is_loaded_again(redis_url: str, redis: Redis, prefix: str) -> None:
    store = RedisTaskLogStore(redis_url, key_prefix=prefix)
    try:
        await store.append([line(1)])
        await redis.script_flush()
        await store.append([line(2)])
        assert [x.seq for x in (await store.read(query())).lines] == [1, 2]
    finally:
        await store.aclose()
