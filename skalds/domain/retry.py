"""When a failed task may run again: bounded attempts with exponential backoff (upstream retried forever)."""

from __future__ import annotations

from dataclasses import dataclass

from skalds.domain.errors import ValidationError
from skalds.domain.task import Task


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Delay before attempt n+1 is ``base_delay_ms * factor**(n-1)``, capped at ``max_delay_ms``."""

    base_delay_ms: int = 5_000
    factor: float = 2.0
    max_delay_ms: int = 300_000

    def __post_init__(self) -> None:
        if self.base_delay_ms < 0:
            raise ValidationError("retry.baseDelayMs", f"must be >= 0, got {self.base_delay_ms}")
        if self.factor < 1:
            raise ValidationError("retry.factor", f"must be >= 1, got {self.factor}")
        if self.max_delay_ms < self.base_delay_ms:
            raise ValidationError("retry.maxDelayMs", "must be >= retry.baseDelayMs")

    def delay_ms(self, attempt: int) -> int:
        """Backoff after the ``attempt``-th attempt failed (attempt counts from 1)."""
        exponent = max(0, attempt - 1)
        delay = self.base_delay_ms * self.factor**exponent
        return int(min(delay, self.max_delay_ms))


def retry_at(task: Task, failed_at: int, policy: RetryPolicy) -> int | None:
    """When the task, failing now, may be retried automatically; None when it has no attempts left."""
    if task.attempts_left == 0:
        return None
    return failed_at + policy.delay_ms(task.attempt)
