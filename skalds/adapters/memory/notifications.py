"""Alerts kept in memory: the embedded default channel, and what tests read to see what was notified."""

from __future__ import annotations

from collections import deque

from skalds.domain.alerts import Alert
from skalds.domain.ports import NotificationChannel


class InMemoryNotificationChannel(NotificationChannel):
    def __init__(self, limit: int = 1_000) -> None:
        self._delivered: deque[Alert] = deque(maxlen=limit)

    async def notify(self, alert: Alert) -> None:
        self._delivered.append(alert)

    @property
    def delivered(self) -> tuple[Alert, ...]:
        return tuple(self._delivered)
