"""Fakes of the outside world that are not ports with an in-memory twin: time."""

from __future__ import annotations

from skalds.domain.ports import Clock


class FakeClock(Clock):
    """A clock that moves only when told to."""

    def __init__(self, now_ms: int = 1_700_000_000_000) -> None:
        self._now = now_ms

    def now_ms(self) -> int:
        return self._now

    def advance(self, ms: int) -> None:
        self._now += ms

    def set(self, now_ms: int) -> None:
        self._now = now_ms
