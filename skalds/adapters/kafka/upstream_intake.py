"""Upstream-form messages on the command topics, as requests for the control plane (docs/upstream.md).

One consumer group, ``{consumer_group_prefix}.upstream-intake``, reads ``task.assign``, ``task.cancel`` and
``task.update.attachment``: one member of the group (one dispatcher) gets each request. Our own commands on
those topics are skipped and so are malformed messages (each node parks those). A new group starts at the
end of the topics: requests from before the control plane first ran are history (an old cancel replayed
could stop a task retried since). A request is committed once handled (the reader asks for the next one, or
closes the subscription after a request it finished), so a crash in between hands it over again; committed
offsets carry the group across restarts. A partition that carried no request since the group formed has no
commit, so it starts at its end again: the dispatcher's full read of its queue still finds such tasks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from confluent_kafka import Message

from skalds.adapters.kafka.consumer import ConsumerThread
from skalds.adapters.kafka.handed_out import HandedOut
from skalds.adapters.kafka.mailbox import Mailbox
from skalds.adapters.kafka.messages import WireCodec
from skalds.adapters.kafka.topics import Topics
from skalds.domain.commands import AssignTask, CancelTask, UpdateTaskAttachments
from skalds.domain.errors import BackendUnavailableError, ValidationError
from skalds.domain.ports import Subscription
from skalds.domain.upstream_requests import UpstreamRequest, UpstreamRequestKind

_KINDS: Mapping[type[Any], UpstreamRequestKind] = {
    AssignTask: UpstreamRequestKind.ASSIGN,
    CancelTask: UpstreamRequestKind.CANCEL,
    UpdateTaskAttachments: UpstreamRequestKind.UPDATE_ATTACHMENTS,
}


class KafkaUpstreamRequests(Subscription[UpstreamRequest]):
    def __init__(
        self,
        config: dict[str, Any],
        *,
        topics: Topics,
        codec: WireCodec,
        on_close: Callable[[KafkaUpstreamRequests], None],
        close_timeout_s: float = 10.0,
    ) -> None:
        self._kind_of = {topics.for_command_class(command): kind for command, kind in _KINDS.items()}
        assert set(self._kind_of) == set(topics.upstream_requests)
        self._codec = codec
        self._on_close = on_close
        self._close_timeout_s = close_timeout_s
        self._mailbox: Mailbox[Message] = Mailbox()
        self._consumer = ConsumerThread(
            {**config, "auto.offset.reset": "latest"},
            name="skalds-kafka-upstream-intake",
            topics=tuple(self._kind_of),
            on_batch=self._mailbox.put_many,
            on_end=self._consumer_ended,
        )
        self._handed = HandedOut(self._consumer)
        self.closed = False

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        self._consumer.start(loop)

    def __aiter__(self) -> AsyncIterator[UpstreamRequest]:
        return self._requests()

    async def _requests(self) -> AsyncIterator[UpstreamRequest]:
        while not self.closed:
            self._handed.handled()  # the reader asks for another: the one it had is done
            message = await self._mailbox.get()
            if message is None:
                return
            request = self._request(message)
            if request is None:
                self._handed.mark(message)
                continue
            self._handed.hand([message])
            yield request

    def _request(self, message: Message) -> UpstreamRequest | None:
        kind = self._kind_of.get(message.topic() or "")
        if kind is None:
            return None
        try:
            return self._codec.decode_upstream_request(kind, message.value())
        except ValidationError:
            return None  # not a request; the nodes park it with the reason

    def _consumer_ended(self, error: BaseException | None) -> None:
        if error is not None and not self.closed:
            self._mailbox.close(
                BackendUnavailableError("kafka", f"the upstream intake's consumer stopped: {error}")
            )

    async def close(self) -> None:
        """Commit the request handed out last if its reader finished with it, then close the consumer."""
        if self.closed:
            return
        self.closed = True
        self._handed.closing()
        self._mailbox.close()
        self._on_close(self)
        await self._consumer.stop(self._close_timeout_s)
