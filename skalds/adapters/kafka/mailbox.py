"""Messages waiting in the loop for one reader: what a consumer thread hands over, until it is read.

Readers wait on futures of their own, and a message leaves the mailbox only in the same step that returns
it, so a reader cancelled while waiting (a timeout) never loses one. A bounded mailbox drops its oldest
message when full and counts it; closing wakes every reader, and ends them with an error if given one.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class Mailbox(Generic[T]):
    def __init__(self, maxlen: int | None = None) -> None:
        self._items: deque[T] = deque(maxlen=maxlen)
        self._waiters: set[asyncio.Future[None]] = set()
        self._closed = False
        self._error: BaseException | None = None
        self.dropped = 0

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, item: T) -> None:
        self.put_many((item,))

    def put_many(self, items: Iterable[T]) -> None:
        if self._closed:
            return
        for item in items:
            if len(self._items) == self._items.maxlen:
                self.dropped += 1  # the append pushes out the oldest
            self._items.append(item)
        self._wake()

    def close(self, error: BaseException | None = None) -> None:
        if self._closed:
            return
        self._closed, self._error = True, error
        self._items.clear()
        self._wake()

    async def get(self) -> T | None:
        """The oldest message; None once closed (or the closing error)."""
        while True:
            if self._closed:
                if self._error is not None:
                    raise self._error
                return None
            if self._items:
                return self._items.popleft()
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.add(waiter)
            try:
                await waiter
            finally:
                self._waiters.discard(waiter)

    def take(self) -> T | None:
        """The oldest message if one is waiting (never waits); None when empty or closed."""
        if self._closed or not self._items:
            return None
        return self._items.popleft()

    def _wake(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
