"""Alert rules over the event stream and node readings: node offline, task failed, failure rate, task
stalled, node resources. What a firing means (grouping, silences, acknowledgements, notifications) is the
``AlertBook``'s: the rules only say that a condition fired or cleared, and why.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence

from skalds.application.alert_book import AlertBook
from skalds.domain import events as ev
from skalds.domain.alerts import Alert, AlertRule, AlertThresholds, Severity
from skalds.domain.ports import (
    Clock,
    EventPublisher,
    EventSubscriber,
    IdGenerator,
    LiveStateStore,
    NotificationChannel,
)

log = logging.getLogger(__name__)

FAILURE_RATE_SUBJECT = "tasks"


class AlertService:
    def __init__(
        self,
        publisher: EventPublisher,
        live: LiveStateStore,
        clock: Clock,
        ids: IdGenerator,
        channels: Sequence[NotificationChannel],
        *,
        thresholds: AlertThresholds,
        history_limit: int = 1_000,
    ) -> None:
        self._live = live
        self._clock = clock
        self._thresholds = thresholds
        self._outcomes: deque[tuple[int, bool]] = deque()
        self.book = AlertBook(publisher, clock, ids, channels, history_limit=history_limit)

    @property
    def fired(self) -> dict[str, int]:
        """Rule -> alerts raised since start (grouped firings are not counted again)."""
        return self.book.fired

    def active(self) -> list[Alert]:
        return self.book.active()

    def history(self, limit: int = 100) -> list[Alert]:
        """Newest first, resolved ones included."""
        return self.book.history(limit)

    async def observe(self, event: ev.DomainEvent) -> None:
        match event:
            case ev.NodeWentOffline():
                silent = f" after {event.silent_for_ms} ms of silence" if event.silent_for_ms >= 0 else ""
                await self._raise(
                    AlertRule.NODE_OFFLINE,
                    event.node_id,
                    Severity.CRITICAL,
                    f"node {event.node_id} went offline{silent}",
                )
            case ev.NodeCameOnline():
                await self._resolve(AlertRule.NODE_OFFLINE, event.node_id, "the node came back online")
            case ev.TaskFailed():
                self._outcomes.append((event.at, True))
                severity = Severity.WARNING if event.attempts_left > 0 else Severity.CRITICAL
                retry = (
                    f"; {event.attempts_left} attempt(s) left"
                    if event.attempts_left
                    else "; no attempts left"
                )
                await self._raise(
                    AlertRule.TASK_FAILED,
                    event.task_id,
                    severity,
                    f"task {event.task_id} failed: {event.error}{retry}",
                )
                await self._resolve(AlertRule.TASK_STALLED, event.task_id, "the task failed")
            case ev.TaskFinished():
                self._outcomes.append((event.at, False))
                await self._resolve_task(event.task_id, "the task finished")
            case ev.TaskCancelled() | ev.TaskDeleted():
                await self._resolve_task(event.task_id, f"the task was {type(event).__name__[4:].lower()}")
            case ev.TaskRetried() if not event.automatic:
                await self._resolve(AlertRule.TASK_FAILED, event.task_id, "an operator retried the task")
            case ev.TaskVerdictChanged(verdict="stalled"):
                await self._raise(
                    AlertRule.TASK_STALLED,
                    event.task_id,
                    Severity.WARNING,
                    f"task {event.task_id} is alive but its progress stopped",
                )
            case ev.TaskVerdictChanged(previous="stalled"):
                await self._resolve(
                    AlertRule.TASK_STALLED, event.task_id, f"the task is {event.verdict} again"
                )
            case _:
                pass

    async def evaluate(self) -> None:
        """Rules over readings rather than events: node resources and the failure rate in its window."""
        now = self._clock.now_ms()
        limits = self._thresholds
        for node in await self._live.list_nodes():
            over = []
            if node.cpu_percent is not None and node.cpu_percent > limits.max_cpu_percent:
                over.append(f"CPU {node.cpu_percent:.0f}% > {limits.max_cpu_percent:g}%")
            if node.memory_percent is not None and node.memory_percent > limits.max_memory_percent:
                over.append(f"memory {node.memory_percent:.0f}% > {limits.max_memory_percent:g}%")
            if over:
                text = f"node {node.id}: {', '.join(over)}"
                await self._raise(AlertRule.NODE_RESOURCES, node.id, Severity.WARNING, text, occurrence=False)
            else:
                cpu, memory = (
                    "?" if value is None else f"{value:.0f}%"
                    for value in (node.cpu_percent, node.memory_percent)
                )
                reason = f"node {node.id} is back under its limits (CPU {cpu}, memory {memory})"
                await self._resolve(AlertRule.NODE_RESOURCES, node.id, reason)
        while self._outcomes and self._outcomes[0][0] < now - limits.failure_window_ms:
            self._outcomes.popleft()
        samples = len(self._outcomes)
        failed = sum(1 for _, bad in self._outcomes if bad)
        if samples >= limits.failure_min_samples and failed / samples > limits.failure_rate:
            message = (
                f"{failed} of the last {samples} finished tasks failed (threshold {limits.failure_rate:.0%})"
            )
            await self._raise(
                AlertRule.FAILURE_RATE, FAILURE_RATE_SUBJECT, Severity.CRITICAL, message, occurrence=False
            )
        else:
            await self._resolve(
                AlertRule.FAILURE_RATE, FAILURE_RATE_SUBJECT, "the failure rate is below the limit"
            )
        await self.book.expire_due()

    async def run(self, subscriber: EventSubscriber, *, interval_s: float) -> None:
        subscription = subscriber.events()

        async def listen() -> None:
            async for event in subscription:
                try:
                    await self.observe(event)
                except Exception:
                    log.exception("alert rule failed on %s", event)

        listener = asyncio.create_task(listen(), name="alerts-listener")
        try:
            while True:
                try:
                    await self.evaluate()
                except Exception:
                    log.exception("alert evaluation failed")
                await asyncio.sleep(interval_s)
        finally:
            listener.cancel()
            await subscription.close()

    async def _raise(
        self, rule: AlertRule, subject: str, severity: Severity, message: str, *, occurrence: bool = True
    ) -> None:
        await self.book.fire(rule, subject, severity, message, occurrence=occurrence)

    async def _resolve(self, rule: AlertRule, subject: str, reason: str) -> None:
        await self.book.resolve(rule, subject, reason)

    async def _resolve_task(self, task_id: str, reason: str) -> None:
        await self._resolve(AlertRule.TASK_FAILED, task_id, reason)
        await self._resolve(AlertRule.TASK_STALLED, task_id, reason)
