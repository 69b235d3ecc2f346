"""An awaitable produce: ``send`` returns once the broker has the messages, and never blocks the loop.

``produce()`` only enqueues in librdkafka. One poll thread serves the delivery reports; a batch counts
them and, once the last one is in, settles its future on the loop with one ``call_soon_threadsafe`` (one
wake-up per batch, not per message, so a monitor cycle's thousands of events cost little). A full local
queue waits for room instead of failing. A delivery failure (the broker stayed away for longer than
``delivery.timeout.ms``) raises BackendUnavailableError. librdkafka reconnects by itself; a producer that
hit a fatal error (possible with idempotence) is replaced by a fresh one on the next send.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from skalds.adapters.kafka.clients import log_client_error
from skalds.domain.errors import BackendUnavailableError

log = logging.getLogger(__name__)

Outgoing = tuple[str, bytes | None, str | bytes | None]  # topic, value, key
Headers = list[tuple[str, str | bytes | None]]
Landed = dict[tuple[str, int], int]  # (topic, partition) -> highest offset written


class _Batch:
    """Counts the delivery reports of one send; settles its future when the last one is in."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.future: asyncio.Future[Landed] = loop.create_future()
        self._loop = loop
        self._lock = threading.Lock()
        self._produced = 0
        self._delivered = 0
        self._sealed = False
        self._landed: Landed = {}
        self._error: str | None = None

    def seal(self, produced: int) -> None:
        """All ``produced`` messages are enqueued; the batch settles once that many reports are in."""
        with self._lock:
            self._produced, self._sealed = produced, True
            done = self._delivered == produced
        if done:
            self._settle()

    def delivered(self, error: KafkaError | None, message: Message) -> None:  # on the poll thread
        with self._lock:
            self._delivered += 1
            if error is not None:
                self._error = self._error or f"could not deliver to {message.topic()}: {error.str()}"
            else:
                at = (message.topic() or "", message.partition() or 0)
                self._landed[at] = max(self._landed.get(at, -1), message.offset() or 0)
            done = self._sealed and self._delivered == self._produced
        if done:
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
                self._loop.call_soon_threadsafe(self._settle)

    def _settle(self) -> None:
        if self.future.done():  # the caller gave up waiting; the messages are delivered (or not) all the same
            return
        if self._error is not None:
            self.future.set_exception(BackendUnavailableError("kafka", self._error))
        else:
            self.future.set_result(self._landed)


class DeliveringProducer:
    def __init__(
        self, config: dict[str, Any], *, queue_wait_s: float = 10.0, name: str = "skalds-kafka-producer"
    ) -> None:
        self._config = {**config, "error_cb": self._on_error}
        self._client = Producer(self._config)
        self._queue_wait_s = queue_wait_s
        self._fatal: str | None = None
        self._stopping = threading.Event()
        self._poller = threading.Thread(target=self._poll, name=name, daemon=True)

    def start(self) -> None:
        self._poller.start()

    async def send(self, messages: Sequence[Outgoing], headers: Headers | None = None) -> Landed:
        """Produce in order and wait for every acknowledgement; returns the highest offset per partition.

        Messages sent one after the other keep that order on their partition (idempotent producer)."""
        if self._stopping.is_set():
            raise BackendUnavailableError("kafka", "the producer is closed")
        self._renew_if_fatal()
        batch = _Batch(asyncio.get_running_loop())
        produced = 0
        try:
            for topic, value, key in messages:
                waited_since = None
                while not self._produced(batch, topic, value, key, headers):  # the local queue is full
                    waited_since = waited_since or time.monotonic()
                    if time.monotonic() - waited_since > self._queue_wait_s:
                        raise BackendUnavailableError(
                            "kafka", f"the producer's queue stayed full ({len(self._client)} messages wait)"
                        )
                    await asyncio.sleep(0.005)
                produced += 1
        finally:
            batch.seal(produced)
        return await batch.future

    def _produced(
        self, batch: _Batch, topic: str, value: bytes | None, key: str | bytes | None, headers: Headers | None
    ) -> bool:
        try:
            self._client.produce(topic, value, key, headers=headers, on_delivery=batch.delivered)
        except BufferError:
            return False
        except KafkaException as error:
            raise BackendUnavailableError("kafka", f"cannot produce to {topic}: {error.args[0]}") from None
        return True

    def _poll(self) -> None:
        while not self._stopping.is_set():
            self._client.poll(0.1)

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            log.error("kafka producer: fatal error, replacing the producer: %s", error.str())
            self._fatal = error.str()
        else:
            log_client_error(log, "producer", error)

    def _renew_if_fatal(self) -> None:
        if self._fatal is None:
            return
        old, self._client, self._fatal = self._client, Producer(self._config), None
        old.purge()
        old.poll(0)  # fails the batches of what it still held

    async def close(self, timeout_s: float) -> None:
        """Stop polling, deliver what is queued for up to ``timeout_s``, fail whatever is left."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self._poller.is_alive():
            await asyncio.to_thread(self._poller.join)
        left = await asyncio.to_thread(self._client.flush, timeout_s)
        if left:
            log.warning("kafka producer: %d messages were not delivered before closing", left)
            self._client.purge()
            self._client.poll(0)
