"""A task's checkpoint: the latest state its worker saved, so that a later attempt resumes there instead
of starting from zero (hours of a crawl or a transcode)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    """``value`` is the JSON text the worker saved. Ordered by ``(attempt, sequence)``: a late write from an
    earlier attempt, or a redelivered one, never overwrites a newer checkpoint."""

    task_id: str
    attempt: int
    sequence: int
    value: str
    saved_at: int

    @property
    def order(self) -> tuple[int, int]:
        return (self.attempt, self.sequence)

    @property
    def size_bytes(self) -> int:
        return len(self.value.encode())

    def replaces(self, stored: Checkpoint | None) -> bool:
        return stored is None or self.order > stored.order
