"""At-least-once for a subscription: the messages it handed its reader are marked handled (so committed)
only when the reader asks for more, or when the subscription closes after the reader finished with them
normally. A reader that was cancelled or failed while holding them (it crashed handling them) leaves them
unmarked, so the group's next member gets them again."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from confluent_kafka import Message

from skalds.adapters.kafka.consumer import ConsumerThread


def finished_normally(reader: asyncio.Task[Any] | None) -> bool:
    """Whether the task that read the last message is done with it (not cancelled, not failed)."""
    if reader is None:
        return True
    if reader.done():
        return not reader.cancelled() and reader.exception() is None
    return reader.cancelling() == 0


class HandedOut:
    def __init__(self, consumer: ConsumerThread) -> None:
        self._consumer = consumer
        self._messages: Sequence[Message] = ()  # handed out, not yet known to be handled
        self._reader: asyncio.Task[Any] | None = None

    def hand(self, messages: Sequence[Message]) -> None:
        """``messages`` go to the task running now."""
        self._messages, self._reader = messages, asyncio.current_task()

    def handled(self) -> None:
        """The reader asks for more: what it had is done."""
        for message in self._messages:
            self.mark(message)
        self._messages = ()

    def mark(self, message: Message) -> None:
        self._consumer.mark(message.topic() or "", message.partition() or 0, message.offset() or 0)

    def closing(self) -> None:
        """Mark what the reader holds if it finished with it; either way hold nothing more."""
        if finished_normally(self._reader):
            self.handled()
        self._messages = ()
