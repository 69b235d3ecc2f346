"""Task output on a real broker: what a node ships reaches one log keeper, whole, even when it was shipped
before any keeper ran; a big batch is split below the broker's message limit; a malformed message is parked
and the keeper goes on."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from confluent_kafka import Producer

from skalds.adapters.kafka.task_logs import MAX_MESSAGE_BYTES, encode_log_lines
from skalds.domain.ports import Subscription
from skalds.domain.task_logs import LogLine
from tests.contracts.task_logs import line
from tests.integration.test_kafka_event_bus import open_bus, read_topic

WITHIN_S = 30.0


async def read_lines(subscription: Subscription[Sequence[LogLine]], count: int) -> list[LogLine]:
    got: list[LogLine] = []
    async with asyncio.timeout(WITHIN_S):
        async for batch in subscription:
            got.extend(batch)
            if len(got) >= count:
                return got
    return got


async def test_output_shipped_before_a_keeper_runs_reaches_it_in_order(
    kafka_bootstrap: str, unique: str
) -> None:
    async with open_bus(kafka_bootstrap, unique) as bus:
        await bus.ship([line(seq) for seq in range(1, 6)])
        await bus.ship([line(1, task="t2"), line(6)])
        keeper = bus.log_batches()
        try:
            got = await read_lines(keeper, 7)
        finally:
            await keeper.close()
        mine = [x for x in got if x.task_id == "t1"]
        assert mine == [line(seq) for seq in range(1, 7)]
        assert [x for x in got if x.task_id == "t2"] == [line(1, task="t2")]


async def test_a_big_batch_goes_as_messages_below_the_limit() -> None:
    lines = [line(seq, text="x" * 7_000) for seq in range(1, 301)]
    messages = encode_log_lines(lines)
    assert len(messages) > 1 and all(len(value) <= MAX_MESSAGE_BYTES for value, _ in messages)


async def test_a_malformed_message_is_parked_and_the_keeper_goes_on(
    kafka_bootstrap: str, unique: str
) -> None:
    async with open_bus(kafka_bootstrap, unique, partitions=1) as bus:
        producer = Producer({"bootstrap.servers": kafka_bootstrap})
        producer.produce(bus.topics.task_logs, b'{"lines": [["t1", "one"]]}', key=b"t1")
        producer.flush(10)
        await bus.ship([line(1)])
        keeper = bus.log_batches()
        try:
            assert await read_lines(keeper, 1) == [line(1)]
        finally:
            await keeper.close()
        [parked] = await asyncio.to_thread(read_topic, kafka_bootstrap, bus.topics.dead_letter, 1)
        assert dict(parked.headers())["skalds.origin.topic"] == bus.topics.task_logs.encode()
