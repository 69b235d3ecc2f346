"""Heartbeat writes and batch reads of the Redis live-state store on a real server; prints a table.

Target (issue 5): >= 50,000 heartbeat writes/s pipelined, i.e. with many workers reporting at once: what a
node does, one ``record_heartbeats`` batch per beat for all its workers. A benchmark, not a test: it
reports, it does not assert. Keys live under a prefix of their own and are deleted at the end.
Run: SKALDS_REDIS_URL=redis://127.0.0.1:6380/0 .venv/bin/python bench/redis_heartbeats.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

from redis.asyncio import Redis
from redis.utils import HIREDIS_AVAILABLE

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import machine, service_address, timed_ms
from skalds.adapters.memory.live_state import InMemoryLiveStateStore
from skalds.adapters.redis.live_state import RedisLiveStateStore, redis_client
from skalds.adapters.system import SystemClock
from skalds.domain.heartbeat import HeartbeatReport
from skalds.domain.nodes import Node


def beat(clock: SystemClock, sequence: int) -> HeartbeatReport:
    return HeartbeatReport(received_at=clock.now_ms(), sequence=sequence, progress=sequence % 100, attempt=1)


async def sequential_writes(store: RedisLiveStateStore, clock: SystemClock, count: int) -> float:
    started = time.perf_counter()
    for i in range(count):
        await store.record_heartbeat(f"seq-{i % 1_000}", beat(clock, i))
    return count / (time.perf_counter() - started)


async def concurrent_writes(
    store: RedisLiveStateStore, clock: SystemClock, count: int, at_once: int
) -> float:
    started = time.perf_counter()
    for start in range(0, count, at_once):
        await asyncio.gather(
            *(
                store.record_heartbeat(f"task-{i % 10_000}", beat(clock, i))
                for i in range(start, start + at_once)
            )
        )
    return count / (time.perf_counter() - started)


async def batched_writes(store: RedisLiveStateStore, clock: SystemClock, count: int, batch: int) -> float:
    started = time.perf_counter()
    for start in range(0, count, batch):
        await store.record_heartbeats(
            [(f"task-{i % 10_000}", beat(clock, i)) for i in range(start, start + batch)]
        )
    return count / (time.perf_counter() - started)


async def in_memory_gather(clock: SystemClock, count: int, at_once: int) -> float:
    """The same gather loop on the in-memory twin: what the callers' tasks cost before any I/O."""
    memory = InMemoryLiveStateStore(clock)
    started = time.perf_counter()
    for start in range(0, count, at_once):
        await asyncio.gather(
            *(
                memory.record_heartbeat(f"task-{i % 10_000}", beat(clock, i))
                for i in range(start, start + at_once)
            )
        )
    return count / (time.perf_counter() - started)


async def delete_prefix(client: Redis, prefix: str) -> None:
    batch: list[bytes] = []
    async for key in client.scan_iter(match=f"{prefix}*", count=5_000):
        batch.append(key)
        if len(batch) >= 5_000:
            await client.delete(*batch)
            batch.clear()
    if batch:
        await client.delete(*batch)


async def server_version(client: Redis) -> str:
    info = await client.info("server")
    return str(info.get("redis_version", "?"))


async def main(url: str, quick: bool) -> None:
    writes, repeats = (20_000, 5) if quick else (100_000, 15)
    prefix = f"bench{uuid.uuid4().hex[:8]}:"
    clock = SystemClock()
    client = redis_client(url)
    store = RedisLiveStateStore(client, clock, key_prefix=prefix)
    try:
        parser = "hiredis" if HIREDIS_AVAILABLE else "pure-Python"
        version = await server_version(client)
        print(f"# Skalds Redis live-state benchmark — {machine()}, Redis {version}, {parser} RESP parser")
        print()
        print("## Heartbeat writes (target >= 50,000/s pipelined)")
        print()
        await concurrent_writes(store, clock, 5_000, 1_000)  # warm-up: loads the script, fills the pool
        print("| mode | writes | writes/s |")
        print("|---|---:|---:|")
        sequential = writes // 10
        rate = await sequential_writes(store, clock, sequential)
        print(f"| sequential awaits | {sequential:,} | {rate:,.0f} |")
        for at_once in (100, 1_000):
            rate = await concurrent_writes(store, clock, writes, at_once)
            print(f"| gather of {at_once:,} at a time | {writes:,} | {rate:,.0f} |")
        for batch in (100, 1_000):
            rate = await batched_writes(store, clock, writes, batch)
            print(f"| record_heartbeats (a node's beat), batches of {batch:,} | {writes:,} | {rate:,.0f} |")
        rate = await in_memory_gather(clock, writes, 1_000)
        print(f"| (reference) in-memory twin, gather of 1,000 | {writes:,} | {rate:,.0f} |")
        print()
        print("## Reads")
        print()
        await concurrent_writes(store, clock, 10_000, 1_000)  # every task-* id has a report
        ids = [f"task-{i}" for i in range(10_000)]
        now = clock.now_ms()
        for i in range(50):
            await store.put_node(Node(id=f"node-{i:02d}", registered_at=now, last_heartbeat_at=now))
        latest = await timed_ms(lambda: store.latest_heartbeats(ids), repeats)
        nodes = await timed_ms(store.list_nodes, repeats)
        history = await timed_ms(lambda: store.heartbeat_history("task-1", 50), repeats)
        assert len(await store.latest_heartbeats(ids)) == len(ids)
        assert len(await store.list_nodes()) == 50
        print(f"| call (median of {repeats}) | median ms | max ms |")
        print("|---|---:|---:|")
        print(f"| latest_heartbeats, 10,000 tasks | {statistics.median(latest):.1f} | {max(latest):.1f} |")
        print(f"| list_nodes, 50 nodes | {statistics.median(nodes):.2f} | {max(nodes):.2f} |")
        print(f"| heartbeat_history, 50 reports | {statistics.median(history):.2f} | {max(history):.2f} |")
    finally:
        await store.aclose()
        await delete_prefix(client, prefix)
        await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer writes and repeats, for a smoke run")
    args = parser.parse_args()
    redis_url = service_address("SKALDS_REDIS_URL", "Redis")
    asyncio.run(main(redis_url, args.quick))
