"""Time arithmetic for the analysis: a step function of time (slots busy, tasks waiting) and a span minus
the spans that cover it. Kept apart so the measures read as what they measure, not as bookkeeping.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable


class Step:
    """A step function of time built from (t, delta) changes; ``at(t)`` is its value just after t."""

    def __init__(self, changes: Iterable[tuple[float, int]]) -> None:
        merged: dict[float, int] = defaultdict(int)
        for t, delta in changes:
            merged[t] += delta
        self.times = sorted(merged)
        self.values: list[int] = []
        value = 0
        for t in self.times:
            value += merged[t]
            self.values.append(value)

    def at(self, t: float) -> int:
        index = bisect.bisect_right(self.times, t) - 1
        return self.values[index] if index >= 0 else 0


def subtract(span: tuple[float, float], covers: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """``span`` minus the union of ``covers``."""
    start, end = span
    left: list[tuple[float, float]] = []
    cursor = start
    for cover_start, cover_end in sorted(covers):
        if cover_end <= cursor or cover_start >= end:
            continue
        if cover_start > cursor:
            left.append((cursor, cover_start))
        cursor = max(cursor, cover_end)
    if cursor < end:
        left.append((cursor, end))
    return left
