"""The TaskHistoryStore contract on a real Redis, plus what only Redis does: real expiry."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from skalds.adapters.redis.live_state import redis_client
from skalds.adapters.redis.task_history import RedisTaskHistoryStore
from skalds.domain.task import TaskStatus
from tests.contracts.task_history import T0, TaskHistoryStoreContract, change, point

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


class TestRedisTaskHistoryStore(TaskHistoryStoreContract):
    @pytest.fixture
    async def store(  # type: ignore[override]
        self, redis_url: str, prefix: str
    ) -> AsyncIterator[RedisTaskHistoryStore]:
        store = RedisTaskHistoryStore(
            redis_url,
            key_prefix=prefix,
            changes_per_task=self.changes_per_task,
            points_per_task=self.points_per_task,
        )
        yield store
        await store.aclose()


async def test_every_key_expires(redis_url: str, redis: Redis, prefix: str) -> None:
    store = RedisTaskHistoryStore(redis_url, key_prefix=prefix, retention_ms=60_000, minutes_kept=5)
    try:
        await store.record([change(1, "TaskCreated")], [point(1, 1)])
        await store.record_status_counts(T0 + 2 * 60_000, {TaskStatus.CREATED: 1})
        ttls = {key.decode(): await redis.pttl(key) async for key in redis.scan_iter(match=f"{prefix}*")}
        assert len(ttls) == 4  # changes, progress, two minutes
        for key, ttl in ttls.items():
            limit = 5 * 60_000 if ":minute:" in key else 60_000
            assert 0 < ttl <= limit, key
    finally:
        await store.aclose()
