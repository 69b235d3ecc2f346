"""The LiveStateStore contract on a real Redis, plus what only Redis can get wrong: real TTLs, batch sizes,
the order of coalesced writes, values written by someone else, and a script cache that was flushed."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from skalds.adapters.redis.live_state import RedisLiveStateStore, redis_client, redis_live_state_store
from skalds.domain.errors import BackendUnavailableError
from skalds.domain.heartbeat import HeartbeatReport
from skalds.domain.nodes import Node
from tests.contracts.live_state_store import HOUR, LiveStateStoreContract, beat
from tests.fakes import FakeClock


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = redis_client(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(redis: Redis, unique: str) -> AsyncIterator[str]:
    """A key prefix of the test's own; its keys are deleted afterwards (they would expire in an hour)."""
    prefix = f"{unique}:"
    yield prefix
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=1_000)]
    if keys:
        await redis.delete(*keys)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def open_store(redis: Redis, prefix: str, clock: FakeClock) -> AsyncIterator[RedisLiveStateStore]:
    """On the shared client, as the contract asks: TTLs of one hour, a history of 50."""
    store = RedisLiveStateStore(
        redis, clock, key_prefix=prefix, heartbeat_ttl_ms=HOUR, node_ttl_ms=HOUR, history_limit=50
    )
    yield store
    await store.aclose()


@pytest.fixture
async def store(redis: Redis, prefix: str, clock: FakeClock) -> AsyncIterator[RedisLiveStateStore]:
    async for opened in open_store(redis, prefix, clock):
        yield opened


class TestRedisLiveStateStore(LiveStateStoreContract):
    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    async def store(  # type: ignore[override]
        self, redis: Redis, prefix: str, clock: FakeClock
    ) -> AsyncIterator[RedisLiveStateStore]:
        async for opened in open_store(redis, prefix, clock):
            yield opened


async def keys_under(redis: Redis, prefix: str) -> set[str]:
    return {key.decode() async for key in redis.scan_iter(match=f"{prefix}*", count=1_000)}


async def test_every_key_the_store_writes_carries_a_ttl(
    store: RedisLiveStateStore, redis: Redis, prefix: str, clock: FakeClock
) -> None:
    now = clock.now_ms()
    await store.record_heartbeat("t1", beat(now, progress=1.0))
    await store.record_heartbeat("t1", beat(now, 2, progress=2.0))
    await store.put_node(Node(id="n1", registered_at=now, last_heartbeat_at=now))
    await store.list_nodes()
    written = await keys_under(redis, prefix)
    assert written == {f"{prefix}{key}" for key in ("task:t1:latest", "task:t1:history", "node:n1", "nodes")}
    for key in written:
        ttl = await redis.pttl(key)
        assert 0 < ttl <= HOUR, f"{key} has PTTL {ttl}"


async def test_history_is_trimmed_in_redis_itself(redis: Redis, prefix: str, clock: FakeClock) -> None:
    store = RedisLiveStateStore(redis, clock, key_prefix=prefix, history_limit=3)
    for sequence in range(1, 8):
        await store.record_heartbeat("t1", beat(clock.now_ms(), sequence))
    assert await redis.llen(f"{prefix}task:t1:history") == 3
    assert [r.sequence for r in await store.heartbeat_history("t1", 10)] == [5, 6, 7]


async def test_a_batch_read_of_5000_tasks_is_correct(store: RedisLiveStateStore, clock: FakeClock) -> None:
    now = clock.now_ms()
    ids = [f"task-{i:05d}" for i in range(5_000)]
    written = await asyncio.gather(
        *(store.record_heartbeat(task_id, beat(now, i, progress=i / 7)) for i, task_id in enumerate(ids))
    )
    latest = await store.latest_heartbeats([*ids, "never-seen"])
    assert set(latest) == set(ids)
    assert all(latest[task_id] == report for task_id, report in zip(ids, written, strict=True))
    assert [latest[task_id].sequence for task_id in ids] == list(range(5_000))
    assert latest["task-00007"].progress == 1.0


async def test_a_read_in_concurrent_chunks_answers_as_one_read_would(
    store: RedisLiveStateStore, redis: Redis, prefix: str, clock: FakeClock
) -> None:
    """4,500 ids are read as chunks of 2,000, 2,000 and 500 at once: each keeps the rules of one MGET."""
    ids = [f"task-{i:05d}" for i in range(4_500)]
    await store.record_heartbeats([(task_id, beat(clock.now_ms(), 1)) for task_id in ids[3_000:]])
    clock.advance(HOUR + 1)  # those written before are past the TTL, as the store's clock judges it
    fresh = await store.record_heartbeats(
        [(task_id, beat(clock.now_ms(), 2, progress=i)) for i, task_id in enumerate(ids[1_000:4_000])]
    )
    await redis.set(f"{prefix}task:{ids[2_500]}:latest", b"[not ours]", px=HOUR)
    latest = await store.latest_heartbeats(ids)
    expected = dict(zip(ids[1_000:4_000], fresh, strict=True))
    del expected[ids[2_500]]
    assert list(latest.items()) == list(expected.items())  # the order of the ids asked for, too


async def test_a_chunked_read_that_fails_is_backend_unavailable(unique: str) -> None:
    store = RedisLiveStateStore("redis://127.0.0.1:1/0", FakeClock(), key_prefix=f"{unique}:")
    try:
        with pytest.raises(BackendUnavailableError) as raised:
            await store.latest_heartbeats([f"t{i}" for i in range(5_000)])
        assert raised.value.backend == "redis"
    finally:
        await store.aclose()


async def test_a_progress_of_nan_or_infinity_reads_back(store: RedisLiveStateStore, clock: FakeClock) -> None:
    """The stored JSON spells them NaN and Infinity, which msgspec's strict JSON does not read."""
    await store.record_heartbeat("t1", beat(clock.now_ms(), progress=float("inf")))
    await store.record_heartbeat("t2", beat(clock.now_ms(), progress=float("nan")))
    latest = await store.latest_heartbeats(["t1", "t2"])
    assert latest["t1"].progress == float("inf")
    assert math.isnan(latest["t2"].progress or 0.0)


async def test_coalesced_heartbeats_of_one_task_keep_their_order(
    store: RedisLiveStateStore, clock: FakeClock
) -> None:
    start = clock.now_ms()
    progress = [1.0, 1.0, 2.0, 2.0, 2.0, 3.0]
    stored = await asyncio.gather(
        *(
            store.record_heartbeat("t1", beat(start + i, i + 1, progress=value))
            for i, value in enumerate(progress)
        )
    )
    assert [r.progress_changed_at for r in stored] == [
        start,
        start,
        start + 2,
        start + 2,
        start + 2,
        start + 5,
    ]
    assert [r.sequence for r in await store.heartbeat_history("t1", 10)] == [1, 2, 3, 4, 5, 6]


async def test_a_burst_larger_than_one_script_call_keeps_each_tasks_order(
    store: RedisLiveStateStore, clock: FakeClock
) -> None:
    """Beats of a burst go out in concurrent script calls; a task's beats must still land in order."""
    start = clock.now_ms()
    beats = [(f"t{i % 7}", beat(start + i, i, progress=float(i // 70))) for i in range(1_400)]
    stored = await asyncio.gather(*(store.record_heartbeat(task_id, report) for task_id, report in beats))
    assert [r.sequence for r in stored] == list(range(1_400))
    for task in range(7):
        sequences = [i for i in range(1_400) if i % 7 == task]
        history = await store.heartbeat_history(f"t{task}", 50)
        assert [r.sequence for r in history] == sequences[-50:]
        last = sequences[-1]
        assert history[-1].progress_changed_at == start + min(i for i in sequences if i // 70 == last // 70)


async def test_a_batch_of_heartbeats_is_stamped_like_single_ones(
    store: RedisLiveStateStore, clock: FakeClock
) -> None:
    start = clock.now_ms()
    first = await store.record_heartbeats([(f"t{i}", beat(start, 1, progress=1.0)) for i in range(600)])
    second = await store.record_heartbeats(
        [(f"t{i}", beat(start + 5, 2, progress=1.0 + i % 2)) for i in range(600)]
    )
    assert [r.progress_changed_at for r in first] == [start] * 600
    assert [r.progress_changed_at for r in second] == [start + 5 * (i % 2) for i in range(600)]
    assert list(await store.record_heartbeats([])) == []
    latest = await store.latest_heartbeats([f"t{i}" for i in range(600)])
    assert [latest[f"t{i}"] for i in range(600)] == second


async def test_values_that_are_not_ours_read_as_absent_and_are_logged_once(
    store: RedisLiveStateStore,
    redis: Redis,
    prefix: str,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = clock.now_ms()
    await store.record_heartbeat("good", beat(now))
    await redis.set(f"{prefix}task:bad:latest", b"\x80 not json", px=HOUR)
    await redis.set(f"{prefix}task:odd:latest", '{"r": "yesterday"}', px=HOUR)
    await redis.set(f"{prefix}node:bad", "[1, 2]", px=HOUR)
    await redis.zadd(f"{prefix}nodes", {"bad": now})
    await store.put_node(Node(id="good", registered_at=now, last_heartbeat_at=now))
    with caplog.at_level(logging.WARNING, logger="skalds.adapters.redis.live_state"):
        for _ in range(2):
            assert set(await store.latest_heartbeats(["good", "bad", "odd"])) == {"good"}
            assert list(await store.heartbeat_history("bad", 5)) == []
            assert await store.get_node("bad") is None
            assert [n.id for n in await store.list_nodes()] == ["good"]
    logged = [record.getMessage() for record in caplog.records]
    for key in ("task:bad:latest", "task:odd:latest", "node:bad"):
        assert sum(f"{prefix}{key}" in message for message in logged) == 1, logged
    fresh = await store.record_heartbeat("bad", beat(now, 9, progress=4.0))
    assert fresh.progress_changed_at == now
    assert (await store.latest_heartbeats(["bad"]))["bad"] == fresh


async def test_a_flushed_script_cache_is_reloaded(
    store: RedisLiveStateStore, redis: Redis, clock: FakeClock
) -> None:
    """What a restarted server looks like to the script: it no longer knows it."""
    await store.record_heartbeat("t1", beat(clock.now_ms(), 1))
    await redis.script_flush()
    stored = await asyncio.gather(
        *(store.record_heartbeat(f"t{i}", beat(clock.now_ms(), 2)) for i in range(600))
    )
    assert len(stored) == 600
    assert set(await store.latest_heartbeats(["t1", "t599"])) == {"t1", "t599"}


async def test_a_loop_of_store_calls_stops_when_cancelled(
    store: RedisLiveStateStore, clock: FakeClock
) -> None:
    """A monitor loop must stop on shutdown. With a socket timeout, redis-py sends through asyncio.wait_for,
    which on Python 3.11 swallowed most of these cancellations (the store's client has none)."""
    await store.put_node(Node(id="n1", registered_at=clock.now_ms()))

    async def spin() -> None:
        while True:
            await store.list_nodes()
            await store.latest_heartbeats(["t1", "t2"])
            await store.record_heartbeat("t1", beat(clock.now_ms()))

    for trial in range(25):
        task = asyncio.create_task(spin())
        await asyncio.sleep(0.002 + trial * 0.0004)
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=2)
        assert done and task.cancelled(), f"trial {trial}: the cancellation was swallowed"


async def test_the_resource_checks_the_server_and_closes_its_client(redis_url: str, unique: str) -> None:
    clock = FakeClock()
    resource = redis_live_state_store(RedisLiveStateStore(redis_url, clock, key_prefix=f"{unique}:"))
    store = await anext(resource)
    await store.ping()
    report = await store.record_heartbeat("t1", HeartbeatReport(received_at=clock.now_ms()))
    assert (await store.latest_heartbeats(["t1"]))["t1"] == report
    await store.forget_tasks(["t1"])
    with pytest.raises(StopAsyncIteration):
        await anext(resource)


async def test_an_unreachable_server_is_named_without_its_password() -> None:
    resource = redis_live_state_store(RedisLiveStateStore("redis://:s3cret@127.0.0.1:1/0", FakeClock()))
    with pytest.raises(BackendUnavailableError) as raised:
        await anext(resource)
    assert raised.value.backend == "redis"
    assert "127.0.0.1:1" in str(raised.value)
    assert "s3cret" not in str(raised.value)
