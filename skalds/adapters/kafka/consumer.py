"""One confluent-kafka Consumer and the one dedicated thread that makes every call to it.

librdkafka's consumer is blocking and not meant to be shared between threads, so the thread creates it,
subscribes (or assigns), polls, commits and closes it; the loop only receives batches through
``call_soon_threadsafe`` and hands back, with ``mark``, what it has handled. ``poll`` returns as soon as
one message is there; whatever else is already fetched follows in the same batch (``consume(n, 0)``).
Commits carry explicit offsets, so nothing is ever committed that the loop did not mark: at-least-once.
They go out asynchronously at most every ``poll_s`` (a busy node does not commit each message), and
synchronously when the consumer closes or its partitions are revoked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from skalds.adapters.kafka.clients import log_client_error

log = logging.getLogger(__name__)

Positions = Callable[[Consumer], list[TopicPartition]]


def _retrieved(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


def _resolve(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


class ConsumerThread:
    """Subscribes to ``topics`` in its group, or, given ``positions``, assigns exactly those partitions."""

    def __init__(
        self,
        config: dict[str, Any],
        *,
        name: str,
        topics: Sequence[str],
        on_batch: Callable[[list[Message]], None],
        on_end: Callable[[BaseException | None], None] | None = None,
        positions: Positions | None = None,
        poll_s: float = 0.1,
        batch_size: int = 500,
    ) -> None:
        self._config = {**config, "error_cb": self._on_error, "on_commit": self._on_commit}
        self._name = name
        self._topics = list(topics)
        self._on_batch = on_batch
        self._on_end = on_end
        self._positions = positions
        self._poll_s = poll_s
        self._batch_size = batch_size
        self._lock = threading.Lock()
        self._marked: dict[tuple[str, int], int] = {}  # next offset to commit, per partition
        self._dirty = False
        self._fatal: str | None = None
        self._assigned: dict[tuple[str, int], int] | None = None  # next offset per assigned partition
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready: asyncio.Future[None] | None = None
        self._ended: asyncio.Future[None] | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
        """Start the thread; the future resolves once subscribed or assigned (or fails with the reason)."""
        self._loop = loop
        self._ready, self._ended = loop.create_future(), loop.create_future()
        self._ready.add_done_callback(_retrieved)  # a caller that does not await it is told through on_end
        self._thread.start()
        return self._ready

    def mark(self, topic: str, partition: int, offset: int) -> None:
        """The message at ``offset`` (and everything before it on that partition) is handled."""
        with self._lock:
            key = (topic, partition)
            if offset + 1 > self._marked.get(key, -1):
                self._marked[key] = offset + 1
                self._dirty = True

    async def stop(self, timeout_s: float) -> None:
        """Commit what was marked, close the consumer (leaving its group), end the thread."""
        self._stopping.set()
        if self._ended is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._ended), timeout_s)
        except TimeoutError:
            log.warning(
                "kafka consumer %s did not close within %.1f s; it goes on closing", self._name, timeout_s
            )
            return
        await asyncio.to_thread(self._thread.join, timeout_s)  # it has only its last lines left to run

    # ---- everything below runs on the consumer's own thread ----------------------------------------------

    def _run(self) -> None:
        failure: BaseException | None = None
        while failure is None and not self._stopping.is_set():
            failure = self._run_one()
            if failure is None and self._fatal is not None:  # e.g. fenced: a fresh consumer carries on
                log.error("kafka consumer %s: fatal error, replacing it: %s", self._name, self._fatal)
                self._fatal = None
                self._stopping.wait(1.0)  # not a tight loop if the next one fails the same way
        self._finish(failure)

    def _run_one(self) -> BaseException | None:
        """One consumer's life: until stopped, a fatal error (None) or a failure (returned)."""
        try:
            consumer = Consumer(self._config)
        except (KafkaException, ValueError, TypeError) as error:
            self._report(self._ready, error)
            return error
        failure: BaseException | None = None
        try:
            if self._positions is None:
                consumer.subscribe(self._topics, on_revoke=self._on_revoke)
            else:
                if self._assigned is None:
                    self._assigned = {(p.topic, p.partition): p.offset for p in self._positions(consumer)}
                consumer.assign([TopicPartition(t, p, offset) for (t, p), offset in self._assigned.items()])
            self._report(self._ready, None)
            self._consume(consumer)
        except Exception as error:  # setup failed, or librdkafka raised: end this consumer, never hang
            log.exception("kafka consumer %s stopped", self._name)
            failure = error
            self._report(self._ready, error)
        finally:
            if self._fatal is None:
                self._commit(consumer, asynchronous=False)
            try:
                consumer.close()
            except (KafkaException, RuntimeError) as error:
                log.warning("kafka consumer %s: close failed: %s", self._name, error)
        return failure

    def _consume(self, consumer: Consumer) -> None:
        committed_at = 0.0
        while not self._stopping.is_set() and self._fatal is None:
            if time.monotonic() - committed_at >= self._poll_s:  # one commit per interval, not per message
                self._commit(consumer, asynchronous=True)
                committed_at = time.monotonic()
            first = consumer.poll(self._poll_s)
            if first is None:
                continue
            batch = [first, *consumer.consume(self._batch_size, 0)]
            messages = [message for message in batch if self._is_message(message)]
            if not messages:
                continue
            if self._assigned is not None:  # a replacement consumer resumes after these
                for message in messages:
                    self._assigned[(message.topic() or "", message.partition() or 0)] = (
                        message.offset() or 0
                    ) + 1
            if not self._hand_over(messages):
                return

    def _is_message(self, message: Message) -> bool:
        error = message.error()
        if error is None:
            return True
        if error.code() != KafkaError._PARTITION_EOF:
            self._on_error(error)
        return False

    def _hand_over(self, messages: list[Message]) -> bool:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(self._on_batch, messages)
        except RuntimeError:  # the loop is gone: nobody will read these
            return False
        return True

    def _commit(self, consumer: Consumer, *, asynchronous: bool) -> None:
        with self._lock:
            if not self._dirty:
                return
            offsets = [
                TopicPartition(topic, partition, offset)
                for (topic, partition), offset in self._marked.items()
            ]
            self._dirty = False
        try:
            if asynchronous:
                consumer.commit(offsets=offsets, asynchronous=True)
            else:
                consumer.commit(offsets=offsets, asynchronous=False)
        except (KafkaException, RuntimeError) as error:
            log.warning("kafka consumer %s: commit failed, will retry: %s", self._name, error)
            with self._lock:
                self._dirty = True

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._commit(consumer, asynchronous=False)  # hand the partitions over with what was handled

    def _on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if error is not None:
            log.warning("kafka consumer %s: commit failed, will retry: %s", self._name, error.str())
            with self._lock:
                self._dirty = True

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal() or error.code() == KafkaError._FATAL:
            log.error("kafka consumer %s: fatal: %s", self._name, error.str())
            self._fatal = error.str()
        else:
            log_client_error(log, f"consumer {self._name}", error)

    def _report(self, future: asyncio.Future[None] | None, error: BaseException | None) -> None:
        if future is None or self._loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            self._loop.call_soon_threadsafe(_resolve, future, error)

    def _finish(self, error: BaseException | None) -> None:
        self._report(self._ended, None)  # failures go to on_end; stopping always succeeds
        if self._on_end is not None and self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._on_end, error)
