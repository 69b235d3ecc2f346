"""Kafka event bus latency and throughput on a real broker; prints a table.

Target (issue 5): <= 5 ms p50 per hop, publish -> received by a subscription, on loopback. Each hop is
measured one message at a time after a warm-up: a command to a node's ``commands()`` subscription and an
event to an ``events()`` subscription; ``publish`` alone is the broker's acknowledgement (acks=all).
Throughput is many concurrent publishes. A benchmark, not a test: it reports, it does not assert. Topics
live under a prefix of their own and are deleted at the end.
Run: SKALDS_KAFKA_BOOTSTRAP=127.0.0.1:9092 .venv/bin/python bench/kafka_latency.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from confluent_kafka import libversion
from confluent_kafka.admin import AdminClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import machine, service_address
from skalds.adapters.kafka.event_bus import KafkaEventBus
from skalds.domain.commands import CancelTask
from skalds.domain.events import TaskCreated
from skalds.domain.ports import Subscription
from skalds.domain.task import DesiredState, TaskStatus


def command(i: int) -> CancelTask:
    return CancelTask(
        task_id=f"t{i % 1_000}", node_id="bench-node", version=i, at=time.time_ns() // 1_000_000
    )


def event(i: int) -> TaskCreated:
    return TaskCreated(
        at=time.time_ns() // 1_000_000,
        task_id=f"t{i % 1_000}",
        version=i,
        from_status=None,
        to_status=TaskStatus.CREATED,
        desired_state=DesiredState.RUN,
        class_name="Bench",
    )


class Arrivals:
    """Reads a subscription in the background and stamps each message's arrival, by version."""

    def __init__(self, subscription: Subscription[Any]) -> None:
        self.subscription = subscription
        self.arrived: dict[int, float] = {}
        self._waiting: dict[int, asyncio.Future[float]] = {}
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        iterator: AsyncIterator[Any] = aiter(self.subscription)
        async for message in iterator:
            now = time.perf_counter()
            self.arrived[message.version] = now
            waiter = self._waiting.pop(message.version, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(now)

    async def arrival(self, version: int) -> float:
        if version in self.arrived:
            return self.arrived[version]
        waiter = self._waiting[version] = asyncio.get_running_loop().create_future()
        return await asyncio.wait_for(waiter, 30)

    async def close(self) -> None:
        await self.subscription.close()
        await self._reader


async def hops(
    bus: KafkaEventBus, arrivals: Arrivals, make: Callable[[int], Any], start: int, count: int
) -> tuple[list[float], list[float]]:
    """(publish acknowledged ms, publish -> received ms) for ``count`` messages sent one at a time."""
    acked, received = [], []
    for i in range(start, start + count):
        began = time.perf_counter()
        await bus.publish(make(i))
        acked.append((time.perf_counter() - began) * 1000)
        received.append((await arrivals.arrival(i) - began) * 1000)
    return acked, received


async def rate(publish: Callable[[int, int], Awaitable[object]], total: int, at_once: int) -> float:
    began = time.perf_counter()
    for start in range(0, total, at_once):
        await publish(start, at_once)
    return total / (time.perf_counter() - began)


def row(name: str, timings: list[float]) -> str:
    ordered = sorted(timings)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * len(ordered)))]
    return f"| {name} | {len(timings)} | {statistics.median(ordered):.2f} | {p99:.2f} | {ordered[-1]:.2f} |"


async def main(bootstrap: str, quick: bool) -> None:
    samples, throughput_total = (200, 5_000) if quick else (500, 20_000)
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    bus = KafkaEventBus(
        bootstrap_servers=bootstrap, topic_prefix=f"{prefix}.", consumer_group_prefix=prefix, client_id=prefix
    )
    await bus.start()
    try:
        commands, events = Arrivals(bus.commands("bench-node")), Arrivals(bus.events())
        client = f"librdkafka {libversion()[0]}"
        print(f"# Skalds Kafka event bus benchmark — {machine()}, {client}, broker {bootstrap}")
        print()
        print("## One message at a time, after a warm-up (target <= 5 ms p50 per hop)")
        print()
        await hops(bus, commands, command, 0, 50)  # warm-up: the group join, connections, JIT of the broker
        await hops(bus, events, event, 0, 50)
        command_acks, command_hops = await hops(bus, commands, command, 1_000_000, samples)
        event_acks, event_hops = await hops(bus, events, event, 1_000_000, samples)
        print("| measure | messages | p50 ms | p99 ms | max ms |")
        print("|---|---:|---:|---:|---:|")
        print(row("command: publish -> received by commands()", command_hops))
        print(row("event: publish -> received by events()", event_hops))
        print(row("publish acknowledged (command)", command_acks))
        print(row("publish acknowledged (event)", event_acks))
        print()
        print("## Publish throughput")
        print()
        print("| mode | messages | messages/s |")
        print("|---|---:|---:|")
        base = 2_000_000

        async def gathered(start: int, count: int) -> None:
            await asyncio.gather(*(bus.publish(event(base + start + i)) for i in range(count)))

        async def batched(start: int, count: int) -> None:
            await bus.publish_many([event(base + throughput_total + start + i) for i in range(count)])

        for at_once in (100, 1_000):
            per_second = await rate(gathered, throughput_total, at_once)
            print(f"| events, gather of {at_once:,} publish() | {throughput_total:,} | {per_second:,.0f} |")
        per_second = await rate(batched, throughput_total, 1_000)
        print(f"| events, publish_many of 1,000 | {throughput_total:,} | {per_second:,.0f} |")
        print()
        dropped = events.subscription.dropped  # type: ignore[attr-defined]
        print(f"Event subscriber kept up: {dropped} events dropped from its mailbox.")
        await commands.close()
        await events.close()
    finally:
        await bus.close()
        names = list(bus.topics.partitions_of(1, 1))
        admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until its futures resolve
        for future in admin.delete_topics(names, operation_timeout=10).values():
            await asyncio.to_thread(future.result, 10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer messages, for a smoke run")
    args = parser.parse_args()
    kafka_bootstrap = service_address("SKALDS_KAFKA_BOOTSTRAP", "Kafka broker")
    asyncio.run(main(kafka_bootstrap, args.quick))
