"""Alert rules over the event stream and node readings: node offline, task failed, failure rate, task
stalled, node resources. One active alert per (rule, subject) until its condition clears; a bounded history.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import replace

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
        self._publisher = publisher
        self._live = live
        self._clock = clock
        self._ids = ids
        self._channels = list(channels)
        self._thresholds = thresholds
        self._active: dict[tuple[AlertRule, str], Alert] = {}
        self._history: dict[str, Alert] = {}  # insertion-ordered, oldest first
        self._history_limit = history_limit
        self._outcomes: deque[tuple[int, bool]] = deque()
        self.fired: dict[str, int] = {}  # rule -> alerts raised since start

    def active(self) -> list[Alert]:
        return sorted(self._active.values(), key=lambda a: a.raised_at, reverse=True)

    def history(self, limit: int = 100) -> list[Alert]:
        """Newest first, resolved ones included."""
        return list(reversed(self._history.values()))[:limit]

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
                await self._resolve(AlertRule.NODE_OFFLINE, event.node_id)
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
                await self._resolve(AlertRule.TASK_STALLED, event.task_id)
            case ev.TaskFinished():
                self._outcomes.append((event.at, False))
                await self._resolve_task(event.task_id)
            case ev.TaskCancelled() | ev.TaskDeleted():
                await self._resolve_task(event.task_id)
            case ev.TaskRetried() if not event.automatic:
                await self._resolve(AlertRule.TASK_FAILED, event.task_id)
            case ev.TaskVerdictChanged(verdict="stalled"):
                await self._raise(
                    AlertRule.TASK_STALLED,
                    event.task_id,
                    Severity.WARNING,
                    f"task {event.task_id} is alive but its progress stopped",
                )
            case ev.TaskVerdictChanged(previous="stalled"):
                await self._resolve(AlertRule.TASK_STALLED, event.task_id)
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
            was_over = (AlertRule.NODE_RESOURCES, node.id) in self._active
            if over:
                message = f"node {node.id}: {', '.join(over)}"
                if not was_over:
                    log.info("resource alert raised: %s", message, extra={"node": node.id})
                await self._raise(AlertRule.NODE_RESOURCES, node.id, Severity.WARNING, message)
            else:
                if was_over:
                    log.info(
                        "resource alert resolved: node %s is back under its limits (CPU %s, memory %s)",
                        node.id,
                        "?" if node.cpu_percent is None else f"{node.cpu_percent:.0f}%",
                        "?" if node.memory_percent is None else f"{node.memory_percent:.0f}%",
                        extra={"node": node.id},
                    )
                await self._resolve(AlertRule.NODE_RESOURCES, node.id)
        while self._outcomes and self._outcomes[0][0] < now - limits.failure_window_ms:
            self._outcomes.popleft()
        samples = len(self._outcomes)
        failed = sum(1 for _, bad in self._outcomes if bad)
        if samples >= limits.failure_min_samples and failed / samples > limits.failure_rate:
            message = (
                f"{failed} of the last {samples} finished tasks failed (threshold {limits.failure_rate:.0%})"
            )
            await self._raise(AlertRule.FAILURE_RATE, FAILURE_RATE_SUBJECT, Severity.CRITICAL, message)
        else:
            await self._resolve(AlertRule.FAILURE_RATE, FAILURE_RATE_SUBJECT)

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

    async def _raise(self, rule: AlertRule, subject: str, severity: Severity, message: str) -> None:
        if (rule, subject) in self._active:
            return
        now = self._clock.now_ms()
        alert = Alert(
            id=self._ids.new_id(),
            rule=rule,
            severity=severity,
            subject=subject,
            message=message,
            raised_at=now,
        )
        self._active[(rule, subject)] = alert
        self.fired[rule.value] = self.fired.get(rule.value, 0) + 1
        self._history[alert.id] = alert
        if len(self._history) > self._history_limit:
            del self._history[next(iter(self._history))]
        await self._publisher.publish(
            ev.AlertRaised(
                at=now,
                alert_id=alert.id,
                rule=rule.value,
                severity=severity.value,
                subject=subject,
                message=message,
            )
        )
        await self._notify(alert)

    async def _resolve(self, rule: AlertRule, subject: str) -> None:
        alert = self._active.pop((rule, subject), None)
        if alert is None:
            return
        now = self._clock.now_ms()
        resolved = replace(alert, resolved_at=now)
        if alert.id in self._history:
            self._history[alert.id] = resolved
        await self._publisher.publish(
            ev.AlertResolved(at=now, alert_id=alert.id, rule=rule.value, subject=subject)
        )
        await self._notify(resolved)

    async def _resolve_task(self, task_id: str) -> None:
        await self._resolve(AlertRule.TASK_FAILED, task_id)
        await self._resolve(AlertRule.TASK_STALLED, task_id)

    async def _notify(self, alert: Alert) -> None:
        for channel in self._channels:
            try:
                await channel.notify(alert)
            except Exception:
                log.exception("notification channel %s failed for alert %s", type(channel).__name__, alert.id)
