"""Parking malformed messages on the dead-letter topic, so one bad message never stops a consumer.

The parked copy keeps the original key and value, and says where it came from and why in its headers
(``skalds.origin.topic``, ``skalds.origin.partition``, ``skalds.origin.offset``, ``skalds.error``). Event
topics are read by every process, so each process that reads a bad event parks its own copy.
"""

from __future__ import annotations

import logging

from confluent_kafka import Message

from skalds.adapters.kafka.producer import DeliveringProducer, Headers
from skalds.domain.errors import BackendUnavailableError

log = logging.getLogger(__name__)


class DeadLetters:
    def __init__(self, producer: DeliveringProducer, topic: str) -> None:
        self._producer = producer
        self.topic = topic

    async def park(self, message: Message, reason: str) -> None:
        """Log and park; a failure to park is logged too (the log line keeps the message's address)."""
        origin = (message.topic() or "", message.partition() or 0, message.offset() or 0)
        log.warning("kafka: parking a malformed message from %s [%d] @ %d: %s", *origin, reason)
        headers: Headers = [
            ("skalds.origin.topic", origin[0]),
            ("skalds.origin.partition", str(origin[1])),
            ("skalds.origin.offset", str(origin[2])),
            ("skalds.error", reason),
        ]
        try:
            await self._producer.send([(self.topic, message.value(), message.key())], headers)
        except BackendUnavailableError as error:
            log.error("kafka: could not park the message from %s [%d] @ %d: %s", *origin, error)
