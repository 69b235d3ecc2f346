"""A node's commands: its own consumer in the stable group ``{consumer_group_prefix}.{node_id}``.

The group reads the five command topics from the earliest offset the first time and from its committed
offsets afterwards, so commands sent while the node was away wait for it. Commands for other nodes are
skipped, and so are upstream-form messages (the controller's upstream intake acts on those); malformed
ones are parked; all count as handled. AT-LEAST-ONCE: a message's offset is committed only
once it is handled, that is when the reader asks for the next message (or the next batch, reading with
``batches``), or closes the subscription after it was yielded, unless the task that read it was cancelled
or failed (it crashed while handling it, so the node's next subscription gets it again). Node handlers are
idempotent: an assignment of a task already in the supervisor is ignored, and every command carries the
task version it was issued at.

Subscriptions for the same node share its group, so each command goes to one of them. A consumer that
hits a fatal error is replaced by a fresh one in the same group, which resumes from the commits.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from confluent_kafka import Message

from skalds.adapters.kafka.consumer import ConsumerThread
from skalds.adapters.kafka.dead_letters import DeadLetters
from skalds.adapters.kafka.handed_out import HandedOut
from skalds.adapters.kafka.mailbox import Mailbox
from skalds.adapters.kafka.messages import UpstreamFormError, WireCodec
from skalds.adapters.kafka.topics import Topics
from skalds.domain.commands import NodeCommand
from skalds.domain.errors import BackendUnavailableError, ValidationError
from skalds.domain.ports import Subscription


class KafkaCommandSubscription(Subscription[NodeCommand]):
    def __init__(
        self,
        node_id: str,
        config: dict[str, Any],
        *,
        topics: Topics,
        codec: WireCodec,
        dead_letters: DeadLetters,
        on_close: Callable[[KafkaCommandSubscription], None],
        close_timeout_s: float = 10.0,
    ) -> None:
        self.node_id = node_id
        self._topics = topics
        self._codec = codec
        self._dead_letters = dead_letters
        self._on_close = on_close
        self._close_timeout_s = close_timeout_s
        self._mailbox: Mailbox[Message] = Mailbox()
        self._consumer = ConsumerThread(
            config,
            name=f"skalds-kafka-commands-{node_id}",
            topics=topics.commands,
            on_batch=self._mailbox.put_many,
            on_end=self._consumer_ended,
        )
        self._handed = HandedOut(self._consumer)
        self.closed = False

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        self._consumer.start(loop)

    def __aiter__(self) -> AsyncIterator[NodeCommand]:
        return self._commands()

    async def _commands(self) -> AsyncIterator[NodeCommand]:
        while not self.closed:
            self._handed.handled()  # the reader asks for another: the one it had is done
            message = await self._mailbox.get()
            if message is None:
                return
            command = await self._accepted(message)
            if command is None:
                continue
            self._handed.hand([message])
            yield command

    def batches(self, limit: int) -> AsyncIterator[list[NodeCommand]]:
        return self._batches(limit)

    async def _batches(self, limit: int) -> AsyncIterator[list[NodeCommand]]:
        while not self.closed:
            self._handed.handled()  # the reader asks for another batch: the one it had is done
            batch: list[NodeCommand] = []
            taken: list[Message] = []
            message = await self._mailbox.get()
            while message is not None:
                # once the batch holds a command, what is skipped is marked with the batch: a mark
                # covers every message before it on its partition, those of this batch too
                command = await self._accepted(message, mark=not taken)
                if command is not None:
                    batch.append(command)
                if command is not None or taken:
                    taken.append(message)
                if len(batch) >= limit:
                    break
                message = self._mailbox.take()
            if self._mailbox.closed and not batch:
                await self._mailbox.get()  # raises the closing error, if there is one
                return
            if batch and not self.closed:  # closed during a parking: never handed out, never committed
                self._handed.hand(taken)
                yield batch

    async def _accepted(self, message: Message, *, mark: bool = True) -> NodeCommand | None:
        """The command for this node, or None once a message for another node or a bad one is dealt with
        (marked handled unless ``mark`` is false: a mark covers the messages before it on its partition)."""
        try:
            command = self._codec.decode_command(message.value())
            expected = self._topics.for_command(command)
            if expected != message.topic():
                raise ValidationError("title", f"a {type(command).__name__} belongs on {expected}")
        except ValidationError as error:
            reason = str(error)
            if isinstance(error, UpstreamFormError):
                if message.topic() in self._topics.upstream_requests:
                    if mark:  # a request for the controller's upstream intake, which acts on it
                        self._handed.mark(message)
                    return None
                reason = (
                    f"an upstream-form message on {message.topic()}, which upstream never had and only "
                    "Skalds commands use: pause and resume with POST /api/tasks/{id}/pause|resume"
                )
            parking = self._dead_letters.park(message, reason)
            await asyncio.shield(parking)  # a reader cancelled meanwhile does not stop the parking
            if mark:
                self._handed.mark(message)
            return None
        if command.node_id != self.node_id:
            if mark:
                self._handed.mark(message)
            return None
        return command

    def _consumer_ended(self, error: BaseException | None) -> None:
        if error is not None and not self.closed:
            detail = f"the command consumer of node {self.node_id} stopped: {error}"
            self._mailbox.close(BackendUnavailableError("kafka", detail))

    async def close(self) -> None:
        """Commit what was handled, then close the consumer: the node's next subscription resumes there."""
        if self.closed:
            return
        self.closed = True
        self._handed.closing()
        self._mailbox.close()
        self._on_close(self)
        await self._consumer.stop(self._close_timeout_s)
