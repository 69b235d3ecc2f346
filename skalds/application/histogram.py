"""A cumulative latency histogram in plain Python, so the application can measure without a metrics library;
the API exposes it in Prometheus' format."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

DEFAULT_BUCKETS_MS: tuple[float, ...] = (
    5,
    10,
    25,
    50,
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    30_000,
    60_000,
)


@dataclass(slots=True)
class Histogram:
    buckets: tuple[float, ...] = DEFAULT_BUCKETS_MS
    counts: list[int] = field(default_factory=list)  # per bucket, not cumulative; last one is +Inf
    total: float = 0.0
    samples: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.buckets) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.samples += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """(upper bound, count of samples at or below it), ending with +Inf, as Prometheus wants them."""
        running, out = 0, []
        for bound, count in zip([*map(str, self.buckets), "+Inf"], self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out
