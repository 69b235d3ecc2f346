"""The real clock and id generator; tests inject fakes instead."""

from __future__ import annotations

import time
import uuid

from skalds.domain.ports import Clock, IdGenerator


class SystemClock(Clock):
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class Uuid4IdGenerator(IdGenerator):
    def new_id(self) -> str:
        return uuid.uuid4().hex
