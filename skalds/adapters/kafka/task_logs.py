"""Task output on ``skalds.task.logs``: nodes produce batches, the control plane's log keepers read them.

A message is ``{"lines": [[taskId, attempt, seq, at, level, stream, logger, message], ...]}`` (UTF-8
JSON, arrays rather than objects: a chatty task ships thousands of lines a second), keyed by task id, at most
``MAX_MESSAGE_BYTES`` (below Kafka's default 1 MB message limit). The topic has the command topics'
partitions, so several keepers share the work; one consumer group, ``{consumer_group_prefix}.log-keepers``,
reads it from its start the first time (output shipped before any controller ran is kept) and commits a
batch once the reader asks for the next, so a keeper that crashes mid-batch leaves it to the next (the store
keeps each line once). Malformed messages are parked on the dead-letter topic.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from itertools import groupby
from typing import Any

from confluent_kafka import Message

from skalds.adapters.kafka.consumer import ConsumerThread
from skalds.adapters.kafka.dead_letters import DeadLetters
from skalds.adapters.kafka.handed_out import HandedOut
from skalds.adapters.kafka.mailbox import Mailbox
from skalds.domain.errors import BackendUnavailableError, ValidationError
from skalds.domain.ports import Subscription
from skalds.domain.task_logs import LogLine, LogStream

MAX_MESSAGE_BYTES = 512 * 1024


def encode_log_lines(lines: Sequence[LogLine]) -> list[tuple[bytes, str]]:
    """(value, key) messages: one task's lines per message, none above ``MAX_MESSAGE_BYTES`` (a single
    line longer than that goes alone; lines are cut long before, in the worker)."""
    messages: list[tuple[bytes, str]] = []
    for task_id, group in groupby(lines, key=lambda line: line.task_id):
        rows: list[str] = []
        size = 0
        for line in group:
            row = json.dumps(
                [
                    task_id,
                    line.attempt,
                    line.seq,
                    line.at,
                    line.level,
                    line.stream.value,
                    line.logger,
                    line.message,
                ],
                ensure_ascii=False,
                separators=(",", ":"),
            )
            if rows and size + len(row) > MAX_MESSAGE_BYTES:
                messages.append((_message(rows), task_id))
                rows, size = [], 0
            rows.append(row)
            size += len(row) + 1
        messages.append((_message(rows), task_id))
    return messages


def _message(rows: list[str]) -> bytes:
    return ('{"lines":[' + ",".join(rows) + "]}").encode()


def decode_log_lines(value: bytes | None) -> tuple[LogLine, ...]:
    """The lines of one message; ValidationError naming what is wrong."""
    try:
        rows = json.loads(value or b"")["lines"]
        return tuple(
            LogLine(
                task_id=str(task_id),
                attempt=_integer(attempt),
                seq=_integer(seq),
                at=_integer(at),
                level=str(level),
                stream=LogStream(stream),
                logger=str(logger),
                message=str(message),
            )
            for task_id, attempt, seq, at, level, stream, logger, message in rows
        )
    except (ValueError, KeyError, TypeError) as error:
        raise ValidationError("lines", f"not a batch of task output lines: {error}") from None


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


class KafkaLogBatches(Subscription[Sequence[LogLine]]):
    def __init__(
        self,
        config: dict[str, Any],
        *,
        topic: str,
        dead_letters: DeadLetters,
        on_close: Callable[[KafkaLogBatches], None],
        close_timeout_s: float = 10.0,
    ) -> None:
        self._dead_letters = dead_letters
        self._on_close = on_close
        self._close_timeout_s = close_timeout_s
        self._mailbox: Mailbox[Message] = Mailbox()
        self._consumer = ConsumerThread(
            config,
            name="skalds-kafka-log-keeper",
            topics=(topic,),
            on_batch=self._mailbox.put_many,
            on_end=self._consumer_ended,
        )
        self._handed = HandedOut(self._consumer)
        self.closed = False

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        self._consumer.start(loop)

    def __aiter__(self) -> AsyncIterator[Sequence[LogLine]]:
        return self._batches()

    async def _batches(self) -> AsyncIterator[Sequence[LogLine]]:
        while not self.closed:
            self._handed.handled()
            first = await self._mailbox.get()
            if first is None:
                return
            messages = [first]
            while len(messages) < 100 and (more := self._mailbox.take()) is not None:
                messages.append(more)
            lines: list[LogLine] = []
            for message in messages:
                try:
                    lines.extend(decode_log_lines(message.value()))
                except ValidationError as error:
                    await self._dead_letters.park(message, str(error))
            self._handed.hand(messages)
            if lines:
                yield lines

    def _consumer_ended(self, error: BaseException | None) -> None:
        if error is not None and not self.closed:
            self._mailbox.close(
                BackendUnavailableError("kafka", f"the log keeper's consumer stopped: {error}")
            )

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._handed.closing()
        self._mailbox.close()
        self._on_close(self)
        await self._consumer.stop(self._close_timeout_s)
